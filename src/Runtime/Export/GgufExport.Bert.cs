using System;
using System.Collections.Generic;
using System.Globalization;

namespace TransformerGen;

public static partial class GgufExport
{
    /// <summary>
    /// Writes a BERT sentence embedder (<see cref="CheckpointFamily.Bert"/>: all-MiniLM-L6-v2, bge-small and the like) as
    /// llama.cpp's <c>bert</c> (<see cref="GgufArchitecture.Bert"/> names the tensors), reached through
    /// <see cref="SaveGguf(EncoderModel, string, GgufExportOptions)"/>.
    /// </summary>
    /// <remarks>
    /// <para>What llama.cpp's <c>bert</c> computes (LLamaSharp 0.30.0's build, <c>llama_model_bert</c>): the token row plus
    /// the position row of each token's position (counted from 0) plus token-type row 0 whatever the segment (llama.cpp
    /// feeds no token types), LayerNorm with <c>bert.attention.layer_norm_epsilon</c>; then in each layer Q, K and V with
    /// their biases, unmasked softmax attention scaled by 1/√head size (<c>bert.attention.causal</c> false), the output
    /// projection, residual and LayerNorm, <c>ffn_up</c> with its bias, GELU, <c>ffn_down</c> with its bias, residual and
    /// LayerNorm; no final norm. It pools by <c>bert.pooling_type</c> (mean or [CLS], as the model pools) and its applications
    /// L2-normalize, as the compiled model does (a dot-product model, <see cref="ModelLayout.UnnormalizedEmbeddings"/>, is
    /// written the same: llama.cpp's pooled vectors are its embeddings, and its applications' normalization is turned off
    /// at run time, <c>--embd-normalize -1</c>, which no key of the file can say). So the file holds the model's own floats under llama.cpp's names, the
    /// position table's rows as <c>bert.context_length</c> (llama.cpp sizes <c>position_embd</c> by it) and the
    /// token-type rows as <c>tokenizer.ggml.token_type_count</c> (llama.cpp refuses a <c>bert</c> without it).</para>
    /// <para>The one difference llama.cpp keeps: its GELU is ggml's tanh form read from an fp16 table, where BERT's
    /// <c>hidden_act</c> "gelu" is the erf form (measured in the tests). Refused, with the reason: <c>hidden_act</c> other
    /// than the GELUs, a <c>position_embedding_type</c> other than absolute, a sentence-transformers Dense layer after the
    /// pooling, a pooler, classifier or tagging head (llama.cpp's embeddings end at the pooling), and the families whose
    /// graph differs — RoBERTa (positions from the padding id + 1), DistilBERT, MPNet, NomicBERT — by
    /// <see cref="SaveGguf(EncoderModel, string, GgufExportOptions)"/>.</para>
    /// </remarks>
    private static GgufExportReport WriteBert(ModelLayout layout, float[] parameters, string path, GgufExportOptions options)
    {
        GgufArchitecture architecture = GgufArchitecture.Bert;
        GgufHyperparameters h = options.Hyperparameters ?? throw new ArgumentException("options.Hyperparameters is required", nameof(options));
        if (h.TokenTypeCount <= 0 || h.PositionEmbeddingType is null || h.FeedForwardActivation is null)
            throw new ArgumentException($"{layout.Name} is a BERT; its hyperparameters must come from a BERT config (GgufHyperparameters.FromConfig of model_type bert: " +
                "the token types, the position embedding type and hidden_act)", nameof(options));
        if (h.PositionEmbeddingType != "absolute")
            throw new NotSupportedException($"{layout.Name}: position_embedding_type {h.PositionEmbeddingType}; llama.cpp's bert adds absolute position rows only");
        // ggml_gelu, the tanh form through an fp16 table, is the only activation llama.cpp's bert applies.
        if (h.FeedForwardActivation is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh"))
            throw new NotSupportedException($"{layout.Name}: hidden_act {h.FeedForwardActivation}; llama.cpp's bert computes its feed-forward with GELU only");
        (Dictionary<string, ParameterTensor> byKey, List<(ParameterTensor Tensor, string GgufName)> planned, SortedSet<int> layers) = PlaceEncoderTensors(layout, architecture);

        ParameterTensor Take(string key) => byKey.TryGetValue(key, out ParameterTensor? t) ? t
            : throw new ArgumentException($"{layout.Name} has no tensor '{key}', which a BERT has", nameof(options));
        ParameterTensor embedding = Take("embeddings.word_embeddings.weight");
        int vocab = embedding.Shape[0], hidden = embedding.Shape[1], blocks = layers.Count;
        int positions = Take("embeddings.position_embeddings.weight").Shape[0];
        int tokenTypes = Take("embeddings.token_type_embeddings.weight").Shape[0];
        Take("embeddings.LayerNorm.bias");
        if (blocks == 0 || layers.Max != blocks - 1) throw new ArgumentException($"{layout.Name}'s layers are not numbered 0 to {blocks - 1}", nameof(options));
        if (h.Heads <= 0 || h.KeyValueHeads != h.Heads || h.Heads * h.HeadDim != hidden)
            throw new ArgumentException($"heads {h.Heads}, key/value heads {h.KeyValueHeads}, head size {h.HeadDim}: a BERT of hidden size {hidden} has as many key/value heads as heads " +
                "and heads × head size = hidden size", nameof(options));
        if (!(h.NormEpsilon > 0f)) throw new ArgumentException($"the norm epsilon must be positive, not {h.NormEpsilon}", nameof(options));
        if (tokenTypes != h.TokenTypeCount)
            throw new ArgumentException($"{layout.Name}'s token-type table has {tokenTypes} rows; the hyperparameters say type_vocab_size {h.TokenTypeCount}", nameof(options));
        int feedForward = Take("encoder.layer.0.intermediate.dense.weight").Shape[0];
        for (int i = 0; i < blocks; i++)
        {
            foreach (string part in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                // llama.cpp reads attn_q/k/v's biases as required once it finds the weights, and every projection is hidden × hidden.
                if (Take($"encoder.layer.{i}.{part}.weight").Shape[0] != hidden || Take($"encoder.layer.{i}.{part}.bias").Length != hidden)
                    throw new ArgumentException($"{layout.Name}: layer {i}'s {part} is not {hidden} wide, with a bias, as llama.cpp's bert reads it", nameof(options));
            }
            if (Take($"encoder.layer.{i}.intermediate.dense.weight").Shape[0] != feedForward)
                throw new ArgumentException($"{layout.Name}: layer {i}'s intermediate size differs from layer 0's {feedForward}; llama.cpp's bert has one feed-forward length", nameof(options));
            Take($"encoder.layer.{i}.attention.output.LayerNorm.bias");
            Take($"encoder.layer.{i}.output.LayerNorm.bias");
        }

        (GgufWriter writer, GgufVocabulary vocabulary) = StartFile(layout, options, architecture.Name, vocab, "embedding");
        string arch = architecture.Name;
        writer.Add($"{arch}.context_length", (uint)positions);
        writer.Add($"{arch}.embedding_length", (uint)hidden);
        writer.Add($"{arch}.feed_forward_length", (uint)feedForward);
        writer.Add($"{arch}.block_count", (uint)blocks);
        writer.Add($"{arch}.attention.head_count", (uint)h.Heads);
        writer.Add($"{arch}.attention.head_count_kv", (uint)h.KeyValueHeads);
        writer.Add($"{arch}.attention.layer_norm_epsilon", h.NormEpsilon);
        writer.Add($"{arch}.attention.causal", false);
        writer.Add($"{arch}.pooling_type", (uint)(layout.Pooling == Pooling.Mean ? LlamaCppPoolingMean : LlamaCppPoolingCls));
        writer.Add("tokenizer.ggml.token_type_count", (uint)tokenTypes);

        // As llama.cpp's WordPiece tokenizer does by default: [CLS] (as the begin token) before a text and [SEP] after it.
        int cls = vocabulary.ClsId, sep = vocabulary.SepId;
        AddVocabulary(writer, vocabulary, h with { BosToken = cls, EosToken = -1, PadToken = vocabulary.PadId >= 0 ? vocabulary.PadId : h.PadToken },
            vocab, addBos: true, addEos: false);
        writer.Add("tokenizer.ggml.add_sep_token", true);
        if (cls >= 0) writer.Add("tokenizer.ggml.cls_token_id", (uint)cls);
        if (sep >= 0) writer.Add("tokenizer.ggml.seperator_token_id", (uint)sep);
        if (vocabulary.MaskId >= 0) writer.Add("tokenizer.ggml.mask_token_id", (uint)vocabulary.MaskId);

        var infos = new List<GgufTensorInfo>();
        foreach ((ParameterTensor tensor, string name) in planned)
        {
            long[] dimensions = new long[tensor.Shape.Length];
            for (int d = 0; d < dimensions.Length; d++) dimensions[d] = tensor.Shape[tensor.Shape.Length - 1 - d];
            // The embedding tables are read row by row (ggml_get_rows, a view of token_types' row 0) and stay as wide as the model's.
            GgufTensorType type = tensor.IsVector ? GgufTensorType.F32
                : options.TensorType == GgufTensorType.Q8_0 && dimensions[0] % GgufFormat.Q8BlockLength != 0 ? GgufTensorType.F32
                : name == "token_types.weight" ? GgufTensorType.F32
                : options.TensorType;
            ParameterTensor source = tensor;
            writer.AddTensor(name, dimensions, TypeId(type), () => parameters.AsSpan(source.Offset, source.Length));
            infos.Add(new GgufTensorInfo(name, tensor.Name, dimensions, type));
        }

        long bytes = AtomicFile.Write(path, writer.WriteTo);
        return new GgufExportReport(arch, infos, bytes);
    }
}
