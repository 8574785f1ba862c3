using System;
using System.Collections.Generic;
using System.Globalization;

namespace TransformerGen;

public static partial class GgufExport
{
    /// <summary>The only <c>relative_attention_max_distance</c> llama.cpp computes: <c>llama_relative_position_bucket</c> fixes it at 128.</summary>
    internal const int LlamaCppRelativeMaxDistance = 128;

    /// <summary>
    /// Writes a <see cref="CheckpointFamily.T5"/> encoder–decoder as llama.cpp's <c>t5</c> (<see cref="Seq2SeqModel.SaveGguf(string, GgufExportOptions)"/>
    /// says what is written and what is refused), from a copy of its parameters in PyTorch's layout.
    /// </summary>
    internal static GgufExportReport SaveSeq2Seq(Seq2SeqModel model, string path, GgufExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        ModelLayout layout = model.Layout;
        if (layout.Family != CheckpointFamily.T5)
            throw new NotSupportedException($"{layout.Name} is a {layout.Family} encoder–decoder; GGUF export of encoder–decoders covers T5, Flan-T5 and mT5 (llama.cpp's t5), " +
                "the only encoder–decoder llama.cpp runs");
        float[] parameters = new float[layout.ParameterCount];
        model.CopyParametersTo(parameters);
        return WriteT5(layout, parameters, path, options);
    }

    /// <summary>The T5 file from <paramref name="parameters"/> in PyTorch's layout (<see cref="SaveSeq2Seq"/>).</summary>
    private static GgufExportReport WriteT5(ModelLayout layout, float[] parameters, string path, GgufExportOptions options)
    {
        GgufArchitecture architecture = GgufArchitecture.T5;
        GgufHyperparameters h = options.Hyperparameters ?? throw new ArgumentException("options.Hyperparameters is required", nameof(options));
        if (h.RelativeBuckets <= 0 || h.FeedForwardActivation is null)
            throw new ArgumentException($"{layout.Name} is a T5; its hyperparameters must come from a T5 config (GgufHyperparameters.FromConfig of model_type t5 or mt5)", nameof(options));
        CheckpointFamilyRules rules = CheckpointFamilyRules.For(layout.Family);

        var byKey = new Dictionary<string, ParameterTensor>(StringComparer.Ordinal);
        var planned = new List<(ParameterTensor Tensor, string GgufName)>();
        int encoderBlocks = 0, decoderBlocks = 0;
        foreach (ParameterTensor t in layout.Tensors)
        {
            string key = rules.KeyOf(t.Name);
            byKey[key] = t;
            GgufTensorName? row = null;
            string layer = "";
            foreach (GgufTensorName candidate in architecture.Tensors)
                if (NamePattern.Matches(candidate.ModelKey, key, out layer)) { row = candidate; break; }
            if (row is null)
                throw new NotSupportedException($"{layout.Name}: tensor '{t.Name}' {t.ShapeText} has no place in llama.cpp's t5 architecture");
            if (NamePattern.Matches("encoder.block.{i}.layer.0.layer_norm.weight", key, out string e)) encoderBlocks = Math.Max(encoderBlocks, int.Parse(e, CultureInfo.InvariantCulture) + 1);
            if (NamePattern.Matches("decoder.block.{i}.layer.0.layer_norm.weight", key, out string d)) decoderBlocks = Math.Max(decoderBlocks, int.Parse(d, CultureInfo.InvariantCulture) + 1);
            planned.Add((t, row.GgufName.Replace("{i}", layer, StringComparison.Ordinal)));
        }

        ParameterTensor Take(string key) => byKey.TryGetValue(key, out ParameterTensor? t) ? t
            : throw new ArgumentException($"{layout.Name} has no tensor '{key}'", nameof(layout));
        ParameterTensor shared = Take("shared.weight");
        int vocab = shared.Shape[0], dModel = shared.Shape[1];
        if (encoderBlocks == 0 || decoderBlocks == 0) throw new ArgumentException($"{layout.Name} has {encoderBlocks} encoder and {decoderBlocks} decoder blocks", nameof(layout));
        if (decoderBlocks > encoderBlocks)
            throw new NotSupportedException($"{layout.Name} has {decoderBlocks} decoder blocks and {encoderBlocks} encoder blocks; llama.cpp sizes its per-block tables by the encoder's " +
                "count (t5.block_count), and LLamaSharp 0.30.0's build fails to load a t5 file with more decoder blocks (vector::_M_range_check)");
        if (h.Heads <= 0 || h.HeadDim <= 0 || h.KeyValueHeads != h.Heads)
            throw new ArgumentException($"heads {h.Heads}, key/value heads {h.KeyValueHeads}, head size {h.HeadDim}: a T5 has as many key/value heads as heads, of a positive size", nameof(options));
        if (!(h.NormEpsilon > 0f)) throw new ArgumentException($"the norm epsilon must be positive, not {h.NormEpsilon}", nameof(options));
        int width = h.Heads * h.HeadDim;
        foreach (string side in new[] { "encoder", "decoder" })
        {
            int q = Take($"{side}.block.0.layer.0.SelfAttention.q.weight").Shape[0];
            if (q != width)
                throw new ArgumentException($"{layout.Name}: the {side}'s q has {q} rows; the config's {h.Heads} heads of d_kv {h.HeadDim} need {width}", nameof(options));
            ParameterTensor bias = Take($"{side}.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
            if (bias.Shape[0] != h.RelativeBuckets || bias.Shape[1] != h.Heads)
                throw new ArgumentException($"{layout.Name}: {bias.Name} {bias.ShapeText}; the config's {h.RelativeBuckets} buckets and {h.Heads} heads need [{h.RelativeBuckets}, {h.Heads}]", nameof(options));
        }
        if (h.RelativeMaxDistance != LlamaCppRelativeMaxDistance)
            throw new NotSupportedException($"{layout.Name}: relative_attention_max_distance {h.RelativeMaxDistance}; llama.cpp's t5 buckets distances up to {LlamaCppRelativeMaxDistance} " +
                "whatever the file says (llama_relative_position_bucket), so it would look farther keys up in other buckets");

        // llama.cpp picks the activation from the tensors: a gate means GELU (ggml's tanh form), none means ReLU.
        bool gated = byKey.ContainsKey("encoder.block.0.layer.1.DenseReluDense.wi_0.weight");
        if (gated != h.GatedFeedForward)
            throw new ArgumentException($"the config's feed-forward is {(h.GatedFeedForward ? "gated" : "not gated")} and {layout.Name}'s {(gated ? "has" : "has no")} wi_0", nameof(options));
        bool computable = gated ? h.FeedForwardActivation is "gelu_new" or "gelu_pytorch_tanh" : h.FeedForwardActivation == "relu";
        if (!computable)
            throw new NotSupportedException($"{layout.Name}: the {(gated ? "gated " : "")}{h.FeedForwardActivation} feed-forward; llama.cpp's t5 computes ReLU on wi, or gated the tanh GELU " +
                "on wi_0 (gelu_new, T5 v1.1's, Flan-T5's and mT5's), and nothing else");
        int feedForward = Take(gated ? "encoder.block.0.layer.1.DenseReluDense.wi_1.weight" : "encoder.block.0.layer.1.DenseReluDense.wi.weight").Shape[0];

        bool tied = !byKey.ContainsKey("lm_head.weight");
        if (tied != h.TiedEmbeddings)
            throw new ArgumentException($"the config says tie_word_embeddings = {h.TiedEmbeddings}, and {layout.Name} {(tied ? "has no" : "has its own")} lm_head.weight", nameof(options));

        const string arch = "t5";
        (GgufWriter writer, GgufVocabulary vocabulary) = StartFile(layout, options, arch, vocab, "shared table",
            $" (GgufVocabulary.FromTokenizerFolder(folder, {vocab}) fills the rows past the tokenizer's ids with unused [PADn] tokens, as llama.cpp's converter does: t5-small's 32100 ids in 32128 rows)");
        writer.Add($"{arch}.context_length", (uint)(h.ContextLength > 0 ? h.ContextLength : layout.SeqLen));
        writer.Add($"{arch}.embedding_length", (uint)dModel);
        writer.Add($"{arch}.feed_forward_length", (uint)feedForward);
        writer.Add($"{arch}.block_count", (uint)encoderBlocks);
        if (decoderBlocks != encoderBlocks) writer.Add($"{arch}.decoder_block_count", (uint)decoderBlocks);
        writer.Add($"{arch}.attention.head_count", (uint)h.Heads);
        writer.Add($"{arch}.attention.head_count_kv", (uint)h.KeyValueHeads);
        writer.Add($"{arch}.attention.key_length", (uint)h.HeadDim);
        writer.Add($"{arch}.attention.value_length", (uint)h.HeadDim);
        writer.Add($"{arch}.attention.layer_norm_epsilon", h.NormEpsilon);
        writer.Add($"{arch}.attention.layer_norm_rms_epsilon", h.NormEpsilon);
        writer.Add($"{arch}.attention.relative_buckets_count", (uint)h.RelativeBuckets);
        if (h.DecoderStartToken >= 0 && h.DecoderStartToken < vocab) writer.Add($"{arch}.decoder_start_token_id", (uint)h.DecoderStartToken);
        AddVocabulary(writer, vocabulary, h, vocab);

        var infos = new List<GgufTensorInfo>();
        void AddTensor(string name, string modelName, ReadOnlySpan<int> shape, bool isVector, GgufTensorValues values)
        {
            long[] dimensions = new long[shape.Length];
            for (int i = 0; i < dimensions.Length; i++) dimensions[i] = shape[shape.Length - 1 - i];
            GgufTensorType type = isVector ? GgufTensorType.F32
                : options.TensorType == GgufTensorType.Q8_0 && dimensions[0] % GgufFormat.Q8BlockLength != 0 ? GgufTensorType.F32
                : options.TensorType;
            // The relative-position tables are small and looked up by row (ggml_get_rows), not multiplied: kept exact.
            if (name.Contains("attn_rel_b", StringComparison.Ordinal)) type = GgufTensorType.F32;
            writer.AddTensor(name, dimensions, TypeId(type), values);
            infos.Add(new GgufTensorInfo(name, modelName, dimensions, type));
        }
        foreach ((ParameterTensor tensor, string name) in planned)
        {
            ParameterTensor source = tensor;
            AddTensor(name, tensor.Name, tensor.Shape, tensor.IsVector, () => parameters.AsSpan(source.Offset, source.Length));
            if (tied && name == "token_embd.weight")
            {
                // transformers' tied T5 head reads the decoder's output × d_model^−½ (the compiler's ScaleOp); llama.cpp's reads
                // the table as it is, so the scaled table is written as a head of its own.
                float scale = (float)(1.0 / Math.Sqrt(dModel));
                AddTensor("output.weight", tensor.Name, tensor.Shape, isVector: false, () =>
                {
                    var scaled = new float[source.Length];
                    System.Numerics.Tensors.TensorPrimitives.Multiply(parameters.AsSpan(source.Offset, source.Length), scale, scaled);
                    return scaled;
                });
            }
        }

        long bytes = AtomicFile.Write(path, writer.WriteTo);
        return new GgufExportReport(arch, infos, bytes);
    }
}
