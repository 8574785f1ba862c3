using System;
using System.Collections.Generic;
using System.Globalization;

namespace TransformerGen;

public static partial class GgufExport
{
    /// <summary>
    /// The activation names llama.cpp's <c>modern-bert</c> reads from <c>modern-bert.hidden_activation</c>
    /// (<c>llm_ffn_op_type_from_string</c>): "gelu" for its GEGLU, which is ggml's tanh GELU through its fp16 table (LLamaSharp
    /// 0.30.0's build has no erf GEGLU), "silu" for its SwiGLU.
    /// </summary>
    internal const string LlamaCppGelu = "gelu", LlamaCppSilu = "silu";

    /// <summary>
    /// Writes a ModernBERT sentence embedder (<see cref="CheckpointFamily.ModernBert"/>) as llama.cpp's <c>modern-bert</c>
    /// (<see cref="GgufArchitecture.ModernBert"/> names the tensors), with weight matrices in F32, BF16 or Q8_0, the keys
    /// llama.cpp reads for it and a vocabulary. llama.cpp then gives, in embedding mode, the pooled final-norm hidden states
    /// (<c>modern-bert.pooling_type</c>: mean for a mean-pooled model, CLS for one pooled from [CLS]), which its applications
    /// (llama-embedding, llama-server) L2-normalize, as the compiled model does; with pooling none, each token's last hidden
    /// state.
    /// </summary>
    /// <remarks>
    /// <para>What llama.cpp computes, and so what is written (LLamaSharp 0.30.0's build, <c>llama_model_modern_bert</c>): the
    /// window of the local layers as <c>modern-bert.attention.sliding_window</c> = <c>local_attention</c>, which llama.cpp's
    /// symmetric window turns into |i − j| ≤ <c>local_attention</c> / 2, as transformers does; which layers are global as
    /// <c>modern-bert.attention.sliding_window_pattern</c> = <c>global_attn_every_n_layers</c> (llama.cpp makes layer 0 and
    /// every period-th after it global, ModernBertAttention's rule); the global layers' rotary base as
    /// <c>modern-bert.rope.freq_base</c> and the local layers' as <c>modern-bert.rope.freq_base_swa</c>; the feed-forward's
    /// activation as <c>modern-bert.hidden_activation</c>; bidirectional attention (<c>attention.causal</c> false).</para>
    /// <para>What is refused: biases anywhere (<c>norm_bias</c>, <c>attention_bias</c>, <c>mlp_bias</c>: llama.cpp's
    /// <c>modern-bert</c> loads none), sentence-transformers Dense layers after the pooling and classifier heads (llama.cpp's
    /// embeddings end at the pooling), <c>layer_types</c> other than the period's, and activations llama.cpp does not compute.
    /// The erf GELU of <c>hidden_activation</c> "gelu" (ModernBERT's own) is written as llama.cpp's GELU, the tanh form read
    /// from ggml's fp16 table: the only difference llama.cpp's run keeps from ours, measured in the tests.</para>
    /// <para>The parameters are copied (<see cref="TransformerModel.CopyParametersTo"/>), so a packed inference instance stays packed.</para>
    /// </remarks>
    /// <exception cref="NotSupportedException">The model is not a ModernBERT sentence embedder, or has a part llama.cpp's <c>modern-bert</c> computes otherwise (the message says which).</exception>
    /// <exception cref="ArgumentException">The hyperparameters or the vocabulary contradict the model.</exception>
    public static GgufExportReport SaveGguf(this EncoderModel model, string path, GgufExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        ModelLayout layout = model.Layout;
        if (layout.Family is not (CheckpointFamily.ModernBert or CheckpointFamily.Bert))
            throw new NotSupportedException($"{layout.Name} is a {layout.Family} encoder; the GGUF export of encoders covers BERT sentence embedders (llama.cpp's bert) " +
                "and ModernBERT sentence embedders (llama.cpp's modern-bert)" + (layout.Family == CheckpointFamily.Roberta
                    ? ": a RoBERTa counts its positions from the padding id + 1, and llama.cpp's bert from 0" : ""));
        float[] parameters = new float[layout.ParameterCount];
        model.CopyParametersTo(parameters);
        return layout.Family == CheckpointFamily.Bert
            ? WriteBert(layout, parameters, path, options)
            : WriteModernBert(layout, parameters, path, options);
    }

    /// <summary>
    /// A sentence embedder's tensors placed under <paramref name="architecture"/>'s GGUF names: each by its key (the family's
    /// prefix off), its GGUF name with the layer number put in, and the layer numbers seen. A sentence-transformers module
    /// (a Dense layer after the pooling) or a tensor the architecture has no place for is refused: llama.cpp's embeddings
    /// are the pooled hidden states.
    /// </summary>
    private static (Dictionary<string, ParameterTensor> ByKey, List<(ParameterTensor Tensor, string GgufName)> Planned, SortedSet<int> Layers) PlaceEncoderTensors(
        ModelLayout layout, GgufArchitecture architecture)
    {
        CheckpointFamilyRules rules = CheckpointFamilyRules.For(layout.Family);
        var byKey = new Dictionary<string, ParameterTensor>(StringComparer.Ordinal);
        var planned = new List<(ParameterTensor Tensor, string GgufName)>();
        var layers = new SortedSet<int>();
        foreach (ParameterTensor t in layout.Tensors)
        {
            if (SentenceTransformersFolder.ModuleOf(t.Name) is { } module)
                throw new NotSupportedException($"{layout.Name}: the sentence-transformers module {module} ({t.Name} {t.ShapeText}) has no place in llama.cpp's {architecture.Name}, " +
                    "whose embeddings are the pooled hidden states: llama.cpp would leave the Dense layer out");
            string key = rules.KeyOf(t.Name);
            byKey[key] = t;
            GgufTensorName? row = null;
            string layer = "";
            foreach (GgufTensorName candidate in architecture.Tensors)
                if (NamePattern.Matches(candidate.ModelKey, key, out layer)) { row = candidate; break; }
            if (row is null)
                throw new NotSupportedException($"{layout.Name}: tensor '{t.Name}' {t.ShapeText} has no place in llama.cpp's {architecture.Name} architecture ({architecture.Unplaced})");
            if (NamePattern.Matches(architecture.LayerKey, key, out string l)) layers.Add(int.Parse(l, CultureInfo.InvariantCulture));
            planned.Add((t, row.GgufName.Replace("{i}", layer, StringComparison.Ordinal)));
        }
        return (byKey, planned, layers);
    }

    /// <summary>
    /// <see cref="SaveGguf(EncoderModel, string, GgufExportOptions)"/> with the hyperparameters of the Hugging Face
    /// <paramref name="config"/> the model was compiled from, weight matrices of <paramref name="tensorType"/>, and
    /// <paramref name="vocabulary"/> (null: a synthetic one of the model's size, for feeding token ids).
    /// </summary>
    public static GgufExportReport SaveGguf(this EncoderModel model, string path, string config, GgufTensorType tensorType = GgufTensorType.F32, GgufVocabulary? vocabulary = null) =>
        model.SaveGguf(path, new GgufExportOptions { Hyperparameters = GgufHyperparameters.FromConfig(config), TensorType = tensorType, Vocabulary = vocabulary });

    private static GgufExportReport WriteModernBert(ModelLayout layout, float[] parameters, string path, GgufExportOptions options)
    {
        GgufArchitecture architecture = GgufArchitecture.ModernBert;
        GgufHyperparameters h = options.Hyperparameters ?? throw new ArgumentException("options.Hyperparameters is required", nameof(options));
        if (h.GlobalLayerPeriod <= 0 || h.SlidingLayers is null || h.FeedForwardActivation is null)
            throw new ArgumentException($"{layout.Name} is a ModernBERT; its hyperparameters must come from a ModernBERT config (GgufHyperparameters.FromConfig of model_type modernbert: " +
                "the layer period, the window, both rotary bases and the activation)", nameof(options));
        (Dictionary<string, ParameterTensor> byKey, List<(ParameterTensor Tensor, string GgufName)> planned, SortedSet<int> layers) = PlaceEncoderTensors(layout, architecture);

        ParameterTensor Take(string key) => byKey.TryGetValue(key, out ParameterTensor? t) ? t
            : throw new ArgumentException($"{layout.Name} has no tensor '{key}', which a ModernBERT has", nameof(options));
        ParameterTensor embedding = Take("embeddings.tok_embeddings.weight");
        int vocab = embedding.Shape[0], hidden = embedding.Shape[1], blocks = layers.Count;
        if (blocks == 0 || layers.Max != blocks - 1) throw new ArgumentException($"{layout.Name}'s layers are not numbered 0 to {blocks - 1}", nameof(options));
        if (h.Heads <= 0 || h.KeyValueHeads != h.Heads || h.Heads * h.HeadDim != hidden || h.HeadDim % 2 != 0)
            throw new ArgumentException($"heads {h.Heads}, key/value heads {h.KeyValueHeads}, head size {h.HeadDim}: a ModernBERT of hidden size {hidden} has as many key/value heads as heads, " +
                "heads × head size = hidden size, and an even head size (rotary positions)", nameof(options));
        if (!(h.NormEpsilon > 0f)) throw new ArgumentException($"the norm epsilon must be positive, not {h.NormEpsilon}", nameof(options));
        int feedForward = Take("layers.0.mlp.Wi.weight").Shape[0] / 2;
        for (int i = 0; i < blocks; i++)
        {
            // llama.cpp reads layer 0's attn_norm as optional and applies it when present; transformers makes it an identity.
            if (byKey.ContainsKey($"layers.{i}.attn_norm.weight") != (i > 0))
                throw new ArgumentException($"{layout.Name}: layer {i} {(i > 0 ? "has no" : "has an")} attn_norm; a ModernBERT normalizes every layer's attention input but the first's", nameof(options));
            int qkv = Take($"layers.{i}.attn.Wqkv.weight").Shape[0], up = Take($"layers.{i}.mlp.Wi.weight").Shape[0];
            if (qkv != 3 * hidden)
                throw new ArgumentException($"{layout.Name}: layer {i}'s Wqkv has {qkv} rows; llama.cpp's modern-bert splits it into Q, K and V of the hidden size {hidden}", nameof(options));
            if (up != 2 * feedForward)
                throw new ArgumentException($"{layout.Name}: layer {i}'s Wi has {up} rows, layer 0's {2 * feedForward}; llama.cpp's modern-bert has one feed-forward length", nameof(options));
        }

        // The activation llama.cpp computes for the gated feed-forward.
        string activation = h.FeedForwardActivation switch
        {
            "gelu" or "gelu_new" or "gelu_pytorch_tanh" => LlamaCppGelu,
            "silu" or "swish" => LlamaCppSilu,
            _ => throw new NotSupportedException($"{layout.Name}: hidden_activation {h.FeedForwardActivation}; llama.cpp's modern-bert gates its feed-forward with GELU or SiLU only"),
        };

        // Which layers are global: llama.cpp's rule (set_swa_pattern with the dense layer first) is ModernBERT's.
        if (h.SlidingLayers.Count != blocks)
            throw new ArgumentException($"{layout.Name} has {blocks} layers; the hyperparameters say which of {h.SlidingLayers.Count} slide", nameof(options));
        bool anySliding = false;
        for (int i = 0; i < blocks; i++)
        {
            anySliding |= h.SlidingLayers[i];
            if (h.SlidingLayers[i] != (i % h.GlobalLayerPeriod != 0))
                throw new NotSupportedException($"{layout.Name}: layer {i} is {(h.SlidingLayers[i] ? "local" : "global")}; llama.cpp's modern-bert makes the layers whose index is a multiple of " +
                    $"the period {h.GlobalLayerPeriod} global and the others local, so llama.cpp would run this model wrong");
        }
        if (anySliding && h.SlidingWindow < 2)
            throw new NotSupportedException($"{layout.Name}: local_attention {h.SlidingWindow} lets a local layer's query see its own key only; not exported");

        (GgufWriter writer, GgufVocabulary vocabulary) = StartFile(layout, options, architecture.Name, vocab, "embedding");
        string arch = architecture.Name;
        writer.Add($"{arch}.context_length", (uint)(h.ContextLength > 0 ? h.ContextLength : layout.SeqLen));
        writer.Add($"{arch}.embedding_length", (uint)hidden);
        writer.Add($"{arch}.feed_forward_length", (uint)feedForward);
        writer.Add($"{arch}.block_count", (uint)blocks);
        writer.Add($"{arch}.attention.head_count", (uint)h.Heads);
        writer.Add($"{arch}.attention.head_count_kv", (uint)h.KeyValueHeads);
        writer.Add($"{arch}.attention.key_length", (uint)h.HeadDim);
        writer.Add($"{arch}.attention.value_length", (uint)h.HeadDim);
        writer.Add($"{arch}.attention.layer_norm_epsilon", h.NormEpsilon);
        writer.Add($"{arch}.attention.causal", false);
        writer.Add($"{arch}.pooling_type", (uint)(layout.Pooling == Pooling.Mean ? LlamaCppPoolingMean : LlamaCppPoolingCls));
        writer.Add($"{arch}.hidden_activation", activation);
        writer.Add($"{arch}.rope.dimension_count", (uint)h.HeadDim);
        writer.Add($"{arch}.rope.freq_base", h.RopeTheta);
        writer.Add($"{arch}.rope.scaling.type", "none");
        if (anySliding)
        {
            writer.Add($"{arch}.rope.freq_base_swa", h.LocalRopeTheta);
            writer.Add($"{arch}.attention.sliding_window", (uint)h.SlidingWindow);
            writer.Add($"{arch}.attention.sliding_window_pattern", (uint)h.GlobalLayerPeriod);
        }
        // As llama.cpp's converter does: [CLS] before and [SEP] after a tokenized text.
        AddVocabulary(writer, vocabulary, h, vocab, addBos: true, addEos: true);
        writer.Add("tokenizer.ggml.add_sep_token", true);
        if (h.ClsToken >= 0 && h.ClsToken < vocab) writer.Add("tokenizer.ggml.cls_token_id", (uint)h.ClsToken);
        if (h.SepToken >= 0 && h.SepToken < vocab) writer.Add("tokenizer.ggml.seperator_token_id", (uint)h.SepToken);
        if (vocabulary.MaskId >= 0) writer.Add("tokenizer.ggml.mask_token_id", (uint)vocabulary.MaskId);

        var infos = new List<GgufTensorInfo>();
        foreach ((ParameterTensor tensor, string name) in planned)
        {
            long[] dimensions = new long[tensor.Shape.Length];
            for (int d = 0; d < dimensions.Length; d++) dimensions[d] = tensor.Shape[tensor.Shape.Length - 1 - d];
            GgufTensorType type = tensor.IsVector ? GgufTensorType.F32
                : options.TensorType == GgufTensorType.Q8_0 && dimensions[0] % GgufFormat.Q8BlockLength != 0 ? GgufTensorType.F32
                : options.TensorType;
            ParameterTensor source = tensor;
            writer.AddTensor(name, dimensions, TypeId(type), () => parameters.AsSpan(source.Offset, source.Length));
            infos.Add(new GgufTensorInfo(name, tensor.Name, dimensions, type));
        }

        long bytes = AtomicFile.Write(path, writer.WriteTo);
        return new GgufExportReport(arch, infos, bytes);
    }

    /// <summary>llama.cpp's <c>LLAMA_POOLING_TYPE_MEAN</c> and <c>LLAMA_POOLING_TYPE_CLS</c>, as <c>{arch}.pooling_type</c> holds them.</summary>
    internal const int LlamaCppPoolingMean = 1, LlamaCppPoolingCls = 2;
}
