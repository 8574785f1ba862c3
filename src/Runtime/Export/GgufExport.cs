using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace TransformerGen;

/// <summary>What <see cref="GgufExport.Save"/> writes besides the weights.</summary>
public sealed class GgufExportOptions
{
    /// <summary>The hyperparameters the parameter table does not carry (<see cref="GgufHyperparameters.FromConfig"/>).</summary>
    public required GgufHyperparameters Hyperparameters { get; init; }

    /// <summary>How weight matrices are stored; vectors (norms, biases) stay F32 whatever this says.</summary>
    public GgufTensorType TensorType { get; init; } = GgufTensorType.F32;

    /// <summary>
    /// The vocabulary to embed; null writes <see cref="GgufVocabulary.Synthetic"/> of the model's size (only token ids can
    /// then be fed). The begin and end ids it names (<see cref="GgufVocabulary.BosId"/>, <see cref="GgufVocabulary.EosId"/>)
    /// are written in place of the hyperparameters'.
    /// </summary>
    public GgufVocabulary? Vocabulary { get; init; }

    /// <summary>
    /// <c>general.name</c>; null takes the model's class name. llama.cpp reads a name containing "phi3" or "phi-3" as a
    /// Phi-3's and then needs Phi-3's tokens in the vocabulary, which the export checks.
    /// </summary>
    public string? Name { get; init; }
}

/// <summary>One tensor of a written GGUF file.</summary>
/// <param name="Name">The GGUF name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="ModelName">The model's parameter it came from; <c>rope_scaling</c> for the rotary factors computed from the config (<c>rope_freqs</c>, <c>rope_factors_short</c>, <c>rope_factors_long</c>).</param>
/// <param name="Dimensions">ggml's <c>ne</c>, fastest first: the model's shape reversed.</param>
/// <param name="Type">How it is stored.</param>
public sealed record GgufTensorInfo(string Name, string ModelName, IReadOnlyList<long> Dimensions, GgufTensorType Type);

/// <summary>What <see cref="GgufExport.Save"/> wrote.</summary>
/// <param name="Architecture">llama.cpp's architecture name (<c>llama</c>, <c>qwen3</c>, <c>phi3</c>, <c>gemma3</c>, <c>gpt2</c>, <c>t5</c>, <c>bert</c> or <c>modern-bert</c>).</param>
/// <param name="Tensors">Every tensor, in file order.</param>
/// <param name="Bytes">The file's size.</param>
public sealed record GgufExportReport(string Architecture, IReadOnlyList<GgufTensorInfo> Tensors, long Bytes);

/// <summary>
/// Writes a decoder-only model as a GGUF v3 file that llama.cpp (and the apps built on it: LLamaSharp, Ollama, LM Studio)
/// loads: Llama-, Mistral-, SmolLM- and Qwen2-shaped models as llama.cpp's <c>llama</c> architecture, Qwen3 as <c>qwen3</c>,
/// Phi-3 as <c>phi3</c>, Gemma 3's text model as <c>gemma3</c>, GPT-2-shaped ones as <c>gpt2</c>, with weight matrices in
/// F32, BF16 or Q8_0, the hyperparameters llama.cpp requires and a vocabulary.
/// </summary>
/// <remarks>
/// <para>Only models compiled from a Hugging Face config (<see cref="ModelLayout.Family"/> <see cref="CheckpointFamily.Gpt2"/>,
/// <see cref="CheckpointFamily.Llama"/>, <see cref="CheckpointFamily.Qwen2"/>, <see cref="CheckpointFamily.Qwen3"/>,
/// <see cref="CheckpointFamily.Phi3"/>, <see cref="CheckpointFamily.Gemma3"/>) export; a Gemma 3 only as llama.cpp's
/// <c>gemma3</c> computes it (five sliding layers in six, a local rotary base of 10000, scores scaled by 1/√head size: see
/// <see cref="CheckGemma3"/>).
/// This project's own decoders (<see cref="CheckpointFamily.Native"/>: LayerNorm, erf GELU, a two-matrix MLP, interleaved
/// rotary or learned or sinusoidal positions) have no architecture in llama.cpp that computes what they compute:
/// <c>llama</c> is RMSNorm + SwiGLU, <c>gpt2</c> and <c>starcoder2</c> use ggml's tanh GELU (through an fp16 table) where
/// these models use erf, and none has sinusoidal positions or post-LN blocks.</para>
/// <para>Encoders: a BERT or ModernBERT sentence embedder exports as llama.cpp's <c>bert</c> or <c>modern-bert</c> through
/// the <c>SaveGguf</c> extension methods on <see cref="EncoderModel"/> (GgufExport.Bert.cs, GgufExport.ModernBert.cs), an encoder–decoder T5 through
/// <see cref="Seq2SeqModel.SaveGguf(string, GgufExportOptions)"/>.</para>
/// <para>The file is written beside its target under a temporary name, flushed, then renamed over it, so a
/// reader never sees half a file.</para>
/// </remarks>
public static partial class GgufExport
{
    /// <summary>Writes <paramref name="model"/>'s parameters to the GGUF file <paramref name="path"/>.</summary>
    /// <exception cref="NotSupportedException">The model's family has no llama.cpp architecture here, or the model has a part, shape or rotary scaling its architecture cannot hold or compute (the message says why).</exception>
    /// <exception cref="ArgumentException">The hyperparameters or the vocabulary contradict the model's tensor shapes or SeqLen, or the name asks llama.cpp for tokens the vocabulary lacks (the message names them).</exception>
    public static GgufExportReport Save(LanguageModel model, string path, GgufExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.SaveGguf(path, options);
    }

    /// <summary>
    /// Writes the file from <paramref name="model"/>'s parameters in PyTorch's layout, read one tensor at a time from
    /// whatever form the model holds them in (<see cref="TransformerModel.TensorReader"/>), which does not change.
    /// </summary>
    internal static GgufExportReport Write(LanguageModel model, string path, GgufExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        ModelLayout layout = model.Layout;
        GgufArchitecture architecture = layout.Family switch
        {
            CheckpointFamily.Llama or CheckpointFamily.Qwen2 => GgufArchitecture.Llama,
            CheckpointFamily.Qwen3 => GgufArchitecture.Qwen3,
            CheckpointFamily.Phi3 => GgufArchitecture.Phi3,
            CheckpointFamily.Gemma3 => GgufArchitecture.Gemma3,
            CheckpointFamily.Gpt2 => GgufArchitecture.Gpt2,
            CheckpointFamily.Native => throw new NotSupportedException(
                $"{layout.Name} uses this project's own layers (LayerNorm, erf GELU, a two-matrix MLP); no llama.cpp architecture computes them " +
                "(llama is RMSNorm + SwiGLU; gpt2 and starcoder2 use a tanh GELU). Compile the model from a Hugging Face config (gpt2, llama, qwen2, qwen3, phi3, gemma3_text) to export it."),
            _ => throw new NotSupportedException($"{layout.Name} is a {layout.Family} model; GGUF export covers the decoder families gpt2, llama, qwen2, qwen3, phi3 and gemma3"),
        };
        GgufHyperparameters h = options.Hyperparameters ?? throw new ArgumentException("options.Hyperparameters is required", nameof(options));
        CheckpointFamilyRules rules = CheckpointFamilyRules.For(layout.Family);

        // Match every parameter to the table; a tensor the table does not name would be lost, so it is an error.
        var byKey = new Dictionary<string, ParameterTensor>(StringComparer.Ordinal);
        foreach (ParameterTensor t in layout.Tensors) byKey[rules.KeyOf(t.Name)] = t;
        var planned = new List<(ParameterTensor Tensor, string GgufName, GgufRowOrder Rows, bool UnitOffset)>();
        var layers = new SortedSet<int>();
        foreach (ParameterTensor t in layout.Tensors)
        {
            string key = rules.KeyOf(t.Name);
            GgufTensorName? row = null;
            string layer = "";
            foreach (GgufTensorName candidate in architecture.Tensors)
                if (NamePattern.Matches(candidate.ModelKey, key, out layer)) { row = candidate; break; }
            if (row is null)
                throw new NotSupportedException($"{layout.Name}: tensor '{t.Name}' {t.ShapeText} has no place in llama.cpp's {architecture.Name} architecture" +
                    (architecture.Unplaced is { } why ? $" ({why})" : ""));
            if (NamePattern.Matches(architecture.LayerKey, key, out string l)) layers.Add(int.Parse(l, System.Globalization.CultureInfo.InvariantCulture));
            planned.Add((t, row.GgufName.Replace("{i}", layer, StringComparison.Ordinal), row.Rows, row.UnitOffset));
        }

        ParameterTensor embedding = planned.Find(p => p.GgufName == "token_embd.weight").Tensor
            ?? throw new ArgumentException($"{layout.Name} has no token embedding", nameof(model));
        int vocab = embedding.Shape[0], hidden = embedding.Shape[1];
        int blocks = layers.Count;
        CheckShapes(layout, architecture, h, byKey, rules, blocks, hidden, out int feedForward, out int contextLength);
        if (architecture == GgufArchitecture.Gemma3) CheckGemma3(layout, h, blocks, hidden);
        if (h.RopeScaling is { } scaling && (!architecture.Rotary || architecture == GgufArchitecture.Gemma3 && scaling.ScalingKind != Kernels.RotaryScaling.Kind.Linear))
            throw new ArgumentException($"{layout.Name}: RopeScaling {scaling} does not apply to {architecture.Name} (Gemma 3's full layers take linear scaling only)", nameof(options));
        h.CheckRopeScalingFits(layout);

        (GgufWriter writer, GgufVocabulary vocabulary) = StartFile(layout, options, architecture.Name, vocab, "embedding");
        string arch = architecture.Name;
        var infos = new List<GgufTensorInfo>();
        writer.Add($"{arch}.context_length", (uint)contextLength);
        writer.Add($"{arch}.embedding_length", (uint)hidden);
        writer.Add($"{arch}.block_count", (uint)blocks);
        writer.Add($"{arch}.feed_forward_length", (uint)feedForward);
        writer.Add($"{arch}.attention.head_count", (uint)h.Heads);
        writer.Add($"{arch}.attention.head_count_kv", (uint)h.KeyValueHeads);
        if (architecture.Rotary)
        {
            writer.Add($"{arch}.attention.key_length", (uint)h.HeadDim);
            writer.Add($"{arch}.attention.value_length", (uint)h.HeadDim);
            writer.Add($"{arch}.rope.dimension_count", (uint)h.HeadDim);
            writer.Add($"{arch}.rope.freq_base", h.RopeTheta);
            writer.Add($"{arch}.attention.layer_norm_rms_epsilon", h.NormEpsilon);
            if (architecture.SlidingWindow) writer.Add($"{arch}.attention.sliding_window", (uint)h.SlidingWindow);
            if (architecture == GgufArchitecture.Gemma3)
            {
                // As llama.cpp's converter writes it: the sliding layers' base (the full layers' linear scaling below).
                writer.Add($"{arch}.rope.freq_base_swa", h.LocalRopeTheta);
            }
            AddRopeScaling(writer, architecture, h, layout, infos);
        }
        else
        {
            writer.Add($"{arch}.attention.layer_norm_epsilon", h.NormEpsilon);
        }
        AddVocabulary(writer, vocabulary, h, vocab);

        // The values as the file holds them, read one tensor at a time from whatever form the model keeps them in.
        var reader = new TransformerModel.TensorReader(model);
        foreach ((ParameterTensor tensor, string name, GgufRowOrder rows, bool unitOffset) in planned)
        {
            long[] dimensions = new long[tensor.Shape.Length];
            for (int d = 0; d < dimensions.Length; d++) dimensions[d] = tensor.Shape[tensor.Shape.Length - 1 - d];
            GgufTensorType type = tensor.IsVector ? GgufTensorType.F32
                : options.TensorType == GgufTensorType.Q8_0 && dimensions[0] % GgufFormat.Q8BlockLength != 0 ? GgufTensorType.F32
                : options.TensorType;
            int heads = rows == GgufRowOrder.RotaryPairsQueryHeads ? h.Heads : h.KeyValueHeads;
            ParameterTensor source = tensor;
            GgufTensorValues values = unitOffset
                ? () => UnitOffset(reader.Read(source))
                : rows == GgufRowOrder.Unchanged
                    ? () => reader.Read(source)
                    : () => RotaryPairRows(reader.Read(source), heads, h.HeadDim, source.Length / source.Shape[0]);
            writer.AddTensor(name, dimensions, TypeId(type), values);
            infos.Add(new GgufTensorInfo(name, tensor.Name, dimensions, type));
        }

        long bytes = AtomicFile.Write(path, writer.WriteTo);
        return new GgufExportReport(arch, infos, bytes);
    }

    /// <summary>
    /// The <c>tokenizer.ggml.*</c> keys of <paramref name="vocabulary"/>, with the begin, end and padding ids of <paramref name="h"/>
    /// that fall in the vocabulary, the begin and end ids the vocabulary names (<see cref="GgufVocabulary.BosId"/>,
    /// <see cref="GgufVocabulary.EosId"/>: tokenizer_config.json's, which llama.cpp's converter prefers to config.json's) in
    /// their place; whether llama.cpp adds the begin and end tokens is the vocabulary's unless <paramref name="addBos"/> or
    /// <paramref name="addEos"/> says.
    /// </summary>
    private static void AddVocabulary(GgufWriter writer, GgufVocabulary vocabulary, GgufHyperparameters h, int vocab, bool? addBos = null, bool? addEos = null)
    {
        writer.Add("tokenizer.ggml.model", vocabulary.Model);
        writer.Add("tokenizer.ggml.pre", vocabulary.PreTokenizer);
        writer.Add("tokenizer.ggml.tokens", vocabulary.Tokens);
        writer.Add("tokenizer.ggml.token_type", vocabulary.TokenTypes);
        if (vocabulary.Model == "gpt2") writer.Add("tokenizer.ggml.merges", vocabulary.Merges);
        if (vocabulary.Scores.Count > 0) writer.Add("tokenizer.ggml.scores", vocabulary.Scores);
        if (vocabulary.Model is "llama" or "t5")
        {
            writer.Add("tokenizer.ggml.add_space_prefix", vocabulary.AddSpacePrefix);
            writer.Add("tokenizer.ggml.remove_extra_whitespaces", vocabulary.RemoveExtraWhitespaces);
        }
        if (vocabulary.PrecompiledCharsMap is { Length: > 0 } charsMap) writer.Add("tokenizer.ggml.precompiled_charsmap", charsMap);
        if (vocabulary.UnknownId >= 0) writer.Add("tokenizer.ggml.unknown_token_id", (uint)vocabulary.UnknownId);
        int bos = vocabulary.BosId >= 0 ? vocabulary.BosId : h.BosToken, eos = vocabulary.EosId >= 0 ? vocabulary.EosId : h.EosToken;
        if (bos >= 0 && bos < vocab) writer.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        if (eos >= 0 && eos < vocab) writer.Add("tokenizer.ggml.eos_token_id", (uint)eos);
        if (h.PadToken >= 0 && h.PadToken < vocab) writer.Add("tokenizer.ggml.padding_token_id", (uint)h.PadToken);
        writer.Add("tokenizer.ggml.add_bos_token", addBos ?? vocabulary.AddBos);
        if (addEos ?? vocabulary.AddEos) writer.Add("tokenizer.ggml.add_eos_token", true);
        if (vocabulary.ChatTemplate is { } template) writer.Add("tokenizer.chat_template", template);
    }

    private static void CheckShapes(ModelLayout layout, GgufArchitecture architecture, GgufHyperparameters h,
        Dictionary<string, ParameterTensor> byKey, CheckpointFamilyRules rules, int blocks, int hidden, out int feedForward, out int contextLength)
    {
        if (blocks == 0) throw new ArgumentException($"{layout.Name} has no layers", nameof(layout));
        if (h.Heads <= 0 || h.KeyValueHeads <= 0 || h.HeadDim <= 0 || h.Heads % h.KeyValueHeads != 0)
            throw new ArgumentException($"heads {h.Heads}, key/value heads {h.KeyValueHeads}, head size {h.HeadDim}: each must be positive and the key/value heads must divide the heads", nameof(h));
        if (!(h.NormEpsilon > 0f)) throw new ArgumentException($"the norm epsilon must be positive, not {h.NormEpsilon}", nameof(h));
        int Rows(string key) => byKey.TryGetValue(key, out ParameterTensor? t) ? t.Shape[0]
            : throw new ArgumentException($"{layout.Name} has no tensor '{key}' (with the family's prefix '{rules.Prefix}' optional)", nameof(layout));
        if (architecture.Rotary)
        {
            if (h.HeadDim % 2 != 0) throw new ArgumentException($"rotary positions need an even head size, not {h.HeadDim}", nameof(h));
            int queryWidth = h.Heads * h.HeadDim, keyWidth = h.KeyValueHeads * h.HeadDim;
            if (byKey.TryGetValue("layers.0.self_attn.qkv_proj.weight", out ParameterTensor? qkv))
            {
                // Phi-3's fused projection, rows Q | K | V.
                if (qkv.Shape[0] != queryWidth + 2 * keyWidth)
                    throw new ArgumentException($"{layout.Name}: qkv_proj has {qkv.Shape[0]} rows; {h.Heads} heads and {h.KeyValueHeads} key/value heads of {h.HeadDim} need {queryWidth + 2 * keyWidth}", nameof(h));
            }
            else
            {
                int q = Rows("layers.0.self_attn.q_proj.weight"), k = Rows("layers.0.self_attn.k_proj.weight");
                if (q != queryWidth || k != keyWidth)
                    throw new ArgumentException($"{layout.Name}: q_proj has {q} rows and k_proj {k}; {h.Heads} heads and {h.KeyValueHeads} key/value heads of {h.HeadDim} need {queryWidth} and {keyWidth}", nameof(h));
            }
            if (architecture.HeadsSpanHiddenSize && queryWidth != hidden)
                throw new NotSupportedException($"{layout.Name}: {h.Heads} heads of {h.HeadDim} are {queryWidth} channels wide, not the hidden size {hidden}; " +
                    $"llama.cpp's {architecture.Name} sizes attn_output and splits attn_qkv by the hidden size, so it cannot hold this model");
            // Qwen3's per-head norms scale one head's channels: each must be head-size long.
            foreach (string norm in new[] { "layers.0.self_attn.q_norm.weight", "layers.0.self_attn.k_norm.weight" })
                if (byKey.TryGetValue(norm, out ParameterTensor? n) && n.Length != h.HeadDim)
                    throw new ArgumentException($"{layout.Name}: {n.Name} has {n.Length} channels; heads of {h.HeadDim} need as many", nameof(h));
            // gate_proj's rows, or half of Phi-3's gate_up_proj (rows gate | up).
            feedForward = byKey.TryGetValue("layers.0.mlp.gate_up_proj.weight", out ParameterTensor? gateUp)
                ? gateUp.Shape[0] / 2
                : Rows("layers.0.mlp.gate_proj.weight");
            contextLength = h.ContextLength > 0 ? h.ContextLength : layout.SeqLen;
        }
        else
        {
            if (h.Heads != h.KeyValueHeads || h.Heads * h.HeadDim != hidden)
                throw new ArgumentException($"{layout.Name}: GPT-2 has as many key/value heads as heads, and heads × head size = {hidden}; got {h.Heads}, {h.KeyValueHeads} and {h.HeadDim}", nameof(h));
            feedForward = Rows("h.0.mlp.c_fc.weight");
            // llama.cpp sizes the position table by the context length, so the two must agree.
            contextLength = Rows("wpe.weight");
        }
    }

    /// <summary>The period of llama.cpp's Gemma 3 layers: in each six, five slide and the sixth attends to all (<c>set_swa_pattern(6)</c>).</summary>
    internal const int LlamaCppGemma3Pattern = 6;

    /// <summary>The base of llama.cpp's rotary embedding in Gemma 3's sliding layers when a file does not say one, as older builds fix it.</summary>
    internal const float LlamaCppGemma3LocalTheta = 10000f;

    /// <summary>The layer count of Gemma 3 27B, for which llama.cpp scales the scores by 1/√(embedding_length / head_count).</summary>
    internal const int LlamaCppGemma3LargeLayers = 62;

    /// <summary>
    /// Refuses a Gemma 3 that llama.cpp's <c>gemma3</c> would compute otherwise than the model does. What llama.cpp fixes
    /// rather than reads (LLamaSharp 0.30.0's build, llama.cpp 815a2a5, <c>llama_model_gemma3::load_arch_hparams</c>; older
    /// builds fix more):
    /// <list type="bullet">
    /// <item>Which layers slide: every sixth is full and the others slide (<c>set_swa_pattern(6)</c>: layer i slides when
    /// i mod 6 &lt; 5), as Hugging Face's default <c>sliding_window_pattern</c> 6 makes them. LLamaSharp 0.30.0's build reads a
    /// period from <c>gemma3.attention.sliding_window_pattern</c>, but llama.cpp's converter writes none and older builds
    /// ignore it, so a model whose <c>layer_types</c> differ is refused rather than written with a key that only some builds honour.</item>
    /// <item>The sliding layers' rotary base: <c>gemma3.rope.freq_base_swa</c>, which llama.cpp's converter writes and
    /// LLamaSharp 0.30.0's build reads, but builds before it fix at 10000 (<c>rope_freq_base_train_swa = 10000.0f</c>): a
    /// <c>rope_local_base_freq</c> other than 10000 is refused for the same reason. Their rotary positions are never scaled.</item>
    /// <item>The score scale: 1/√<c>key_length</c>, or 1/√(<c>embedding_length</c> / <c>head_count</c>) for a model of 62
    /// layers (Gemma 3 27B); <c>query_pre_attn_scalar</c> is not read, so a model whose scalar differs is refused.</item>
    /// </list>
    /// </summary>
    private static void CheckGemma3(ModelLayout layout, GgufHyperparameters h, int blocks, int hidden)
    {
        if (h.SlidingLayers is not { } sliding || !(h.LocalRopeTheta > 0f) || !(h.QueryPreAttentionScalar > 0f))
            throw new ArgumentException($"{layout.Name} is a Gemma 3; its hyperparameters must come from a Gemma 3 config (GgufHyperparameters.FromConfig of model_type gemma3_text: " +
                "the sliding layers, the local rotary base and query_pre_attn_scalar)", nameof(h));
        if (sliding.Count != blocks)
            throw new ArgumentException($"{layout.Name} has {blocks} layers; the hyperparameters say which of {sliding.Count} slide", nameof(h));
        if (h.SlidingWindow <= 0)
            throw new ArgumentException($"{layout.Name}: a Gemma 3's sliding_window must be positive, not {h.SlidingWindow}", nameof(h));
        for (int i = 0; i < blocks; i++)
        {
            if (sliding[i] == i % LlamaCppGemma3Pattern < LlamaCppGemma3Pattern - 1) continue;
            var ours = new System.Text.StringBuilder();
            foreach (bool s in sliding) ours.Append(s ? 'S' : 'F');
            throw new NotSupportedException(
                $"{layout.Name}: layer_types (or sliding_window_pattern) make layer {i} {(sliding[i] ? "sliding" : "full")} ({ours}, S sliding, F full); " +
                $"llama.cpp's gemma3 makes every {LlamaCppGemma3Pattern}th layer full and slides the others (layers {LlamaCppGemma3Pattern - 1}, {2 * LlamaCppGemma3Pattern - 1}, … full), " +
                "and its converter writes no pattern that every llama.cpp build would read, so llama.cpp would run this model wrong");
        }
        if (h.LocalRopeTheta != LlamaCppGemma3LocalTheta)
            throw new NotSupportedException(
                $"{layout.Name}: rope_local_base_freq is {h.LocalRopeTheta.ToString(System.Globalization.CultureInfo.InvariantCulture)}; llama.cpp's gemma3 rotates the sliding layers with base " +
                $"{LlamaCppGemma3LocalTheta.ToString(System.Globalization.CultureInfo.InvariantCulture)} in builds that do not read gemma3.rope.freq_base_swa, so llama.cpp would run this model wrong");
        int scoreDim = blocks == LlamaCppGemma3LargeLayers ? hidden / h.Heads : h.HeadDim;
        if (h.QueryPreAttentionScalar != scoreDim)
            throw new NotSupportedException(
                $"{layout.Name}: query_pre_attn_scalar is {h.QueryPreAttentionScalar.ToString(System.Globalization.CultureInfo.InvariantCulture)}; llama.cpp's gemma3 does not read it and scales the scores by 1/√{scoreDim} " +
                (blocks == LlamaCppGemma3LargeLayers ? $"(embedding_length / head_count, as for Gemma 3 27B's {LlamaCppGemma3LargeLayers} layers)" : "(key_length, the head size)") +
                ", so llama.cpp would run this model wrong");
    }

    /// <summary><c>1 + w</c> for each of a Gemma norm's weights <c>w</c>, rounded once as <c>Gemma3RMSNorm</c>'s <c>1.0 + weight.float()</c> is.</summary>
    private static float[] UnitOffset(ReadOnlySpan<float> weights)
    {
        var result = new float[weights.Length];
        for (int i = 0; i < result.Length; i++) result[i] = 1f + weights[i];
        return result;
    }

    /// <summary>The tokens llama.cpp looks up by text in a vocabulary whose model is named as a Phi-3 (<see cref="CheckNameKeyedTokens"/>).</summary>
    private static readonly string[] Phi3NamedTokens = ["</s>", "<unk>", "<s>", "<|endoftext|>"];

    /// <summary>
    /// A file's writer with the <c>general.*</c> keys and <c>{arch}.vocab_size</c> written, and its vocabulary: the options'
    /// (else a synthetic one of <paramref name="vocab"/> tokens), which must have as many tokens as the model's
    /// <paramref name="table"/> has rows (<paramref name="hint"/> says how to make one) and the tokens llama.cpp looks up by
    /// the model's name.
    /// </summary>
    private static (GgufWriter Writer, GgufVocabulary Vocabulary) StartFile(ModelLayout layout, GgufExportOptions options, string arch, int vocab, string table, string hint = "")
    {
        GgufVocabulary vocabulary = options.Vocabulary ?? GgufVocabulary.Synthetic(vocab);
        if (vocabulary.Count != vocab)
            throw new ArgumentException($"the vocabulary has {vocabulary.Count} tokens; {layout.Name}'s {table} has {vocab} rows{hint}", nameof(options));
        string modelName = options.Name ?? layout.Name;
        CheckNameKeyedTokens(modelName, vocabulary);
        var writer = new GgufWriter();
        writer.Add("general.architecture", arch);
        writer.Add("general.name", modelName);
        writer.Add("general.file_type", GgufFormat.FileType(options.TensorType));
        writer.Add("general.quantization_version", GgufFormat.QuantizationVersion);
        writer.Add($"{arch}.vocab_size", (uint)vocab);
        return (writer, vocabulary);
    }

    /// <summary>
    /// llama.cpp sets Phi-3's token attributes by the model's name, not its architecture: when <c>general.name</c> contains
    /// "phi3" or "phi-3" (ASCII letters in any case), it looks up <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c>, <c>&lt;s&gt;</c> and
    /// <c>&lt;|endoftext|&gt;</c> by text (llama-vocab.cpp, "set attributes by model/tokenizer/architecture name"), and a
    /// vocabulary without one of them makes it refuse the file ("error loading model vocabulary: _Map_base::at"; seen with
    /// LLamaSharp 0.30.0's build and the synthetic vocabulary). Phi-3's own vocabulary has all four.
    /// </summary>
    private static void CheckNameKeyedTokens(string name, GgufVocabulary vocabulary)
    {
        var folded = new System.Text.StringBuilder(name.Length);
        foreach (char c in name) folded.Append(c is >= 'A' and <= 'Z' ? (char)(c + ('a' - 'A')) : c); // std::tolower, byte by byte
        string lower = folded.ToString();
        if (!lower.Contains("phi3", StringComparison.Ordinal) && !lower.Contains("phi-3", StringComparison.Ordinal)) return;
        var present = new HashSet<string>(vocabulary.Tokens, StringComparer.Ordinal);
        List<string> missing = Phi3NamedTokens.Where(t => !present.Contains(t)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException(
                $"general.name '{name}' contains \"phi3\" or \"phi-3\", for which llama.cpp looks up Phi-3's tokens {string.Join(", ", Phi3NamedTokens)} by text, " +
                $"and this vocabulary has no {string.Join(", ", missing)} (llama.cpp would refuse the file). Pass Phi-3's own vocabulary, or a Name without \"phi3\"", nameof(name));
    }

    /// <summary>
    /// The rows of a query or key projection (or its bias: <paramref name="rowLength"/> 1) reordered from
    /// <c>rotate_half</c>'s pairs (i, i + D/2) to adjacent pairs (2i, 2i + 1), head by head (<see cref="GgufRowOrder"/>).
    /// </summary>
    internal static float[] RotaryPairRows(ReadOnlySpan<float> source, int heads, int headDim, int rowLength)
    {
        if (source.Length != heads * headDim * rowLength)
            throw new ArgumentException($"{source.Length} values are not {heads} heads of {headDim} rows of {rowLength}", nameof(source));
        var result = new float[source.Length];
        int half = headDim / 2;
        for (int head = 0; head < heads; head++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    source.Slice((head * headDim + j * half + i) * rowLength, rowLength)
                        .CopyTo(result.AsSpan((head * headDim + 2 * i + j) * rowLength, rowLength));
        return result;
    }

    private static GgufFormat.TensorType TypeId(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => GgufFormat.TensorType.F32,
        GgufTensorType.BF16 => GgufFormat.TensorType.BF16,
        GgufTensorType.Q8_0 => GgufFormat.TensorType.Q8_0,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a GgufTensorType"),
    };
}
