using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using TransformerGen.Kernels;

namespace TransformerGen;

/// <summary>
/// What a GGUF file must say about a model that its parameter table does not: the head counts, the head size, the norm's
/// epsilon, the rotary base and the context length, plus the begin and end tokens. Read them from the Hugging Face
/// <c>config.json</c> the model was compiled from with <see cref="FromConfig"/>; <see cref="GgufExport"/> checks them
/// against the model's tensor shapes.
/// </summary>
public sealed partial record GgufHyperparameters
{
    /// <summary>Query heads per layer.</summary>
    public required int Heads { get; init; }

    /// <summary>Key/value heads per layer (equal to <see cref="Heads"/> without grouped-query attention).</summary>
    public required int KeyValueHeads { get; init; }

    /// <summary>Channels per head.</summary>
    public required int HeadDim { get; init; }

    /// <summary>The epsilon of every RMSNorm (Llama, Qwen2, Qwen3 and its per-head query and key norms) or LayerNorm (GPT-2).</summary>
    public required float NormEpsilon { get; init; }

    /// <summary>The rotary base θ (<c>rope_theta</c>; ModernBERT's global layers' <c>global_rope_theta</c>); unused by GPT-2.</summary>
    public float RopeTheta { get; init; } = 10000f;

    /// <summary>The positions the weights were trained for (<c>max_position_embeddings</c>, <c>n_positions</c>); 0 takes the model's <c>SeqLen</c>.</summary>
    public int ContextLength { get; init; }

    /// <summary>The begin-of-sequence id, or -1.</summary>
    public int BosToken { get; init; } = -1;

    /// <summary>The end-of-sequence id, or -1.</summary>
    public int EosToken { get; init; } = -1;

    /// <summary>
    /// Phi-3's or Gemma 3's attention window (<c>sliding_window</c>), ModernBERT's two-sided one (<c>local_attention</c>: a
    /// local layer's query sees |i − j| ≤ local_attention // 2), 0 for none; written as <c>{arch}.attention.sliding_window</c>,
    /// as llama.cpp's converter writes it (LLamaSharp 0.30.0's llama.cpp reads it and, for phi3, leaves the window off).
    /// </summary>
    public int SlidingWindow { get; init; }

    /// <summary>
    /// Gemma 3: which layers attend through <see cref="SlidingWindow"/> (<c>layer_types</c>' sliding_attention, else every
    /// layer but each <c>sliding_window_pattern</c>-th); ModernBERT: its local layers; null for the other families.
    /// </summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }

    /// <summary>The rotary base of the sliding layers: Gemma 3's <c>rope_local_base_freq</c>, ModernBERT's <c>local_rope_theta</c>; 0 for the other families.</summary>
    public float LocalRopeTheta { get; init; }

    /// <summary>Gemma 3's <c>query_pre_attn_scalar</c> (the scores are multiplied by its −½ power); 0 for the other families, whose scores take 1/√head size.</summary>
    public float QueryPreAttentionScalar { get; init; }

    /// <summary>T5's relative-position buckets per table (<c>relative_attention_num_buckets</c>); 0 for a model without them.</summary>
    public int RelativeBuckets { get; init; }

    /// <summary>T5's distance from which every distance shares the last bucket (<c>relative_attention_max_distance</c>).</summary>
    public int RelativeMaxDistance { get; init; }

    /// <summary>The id an encoder–decoder's decoder starts from (<c>decoder_start_token_id</c>), or -1.</summary>
    public int DecoderStartToken { get; init; } = -1;

    /// <summary>The padding id (<c>pad_token_id</c>), or -1.</summary>
    public int PadToken { get; init; } = -1;

    /// <summary>
    /// T5's feed-forward activation as its config resolves it (<c>dense_act_fn</c>, else derived from
    /// <c>feed_forward_proj</c>: "gated-gelu" means gelu_new), ModernBERT's <c>hidden_activation</c>, or null for the decoder
    /// families, whose activation the architecture fixes.
    /// </summary>
    public string? FeedForwardActivation { get; init; }

    /// <summary>T5's <c>is_gated_act</c> (else a <c>feed_forward_proj</c> starting "gated-"): wi_0 and wi_1 rather than wi.</summary>
    public bool GatedFeedForward { get; init; }

    /// <summary>ModernBERT's [CLS] id (<c>cls_token_id</c>), or -1; written as <c>tokenizer.ggml.cls_token_id</c>.</summary>
    public int ClsToken { get; init; } = -1;

    /// <summary>ModernBERT's [SEP] id (<c>sep_token_id</c>), or -1; written as <c>tokenizer.ggml.seperator_token_id</c> (llama.cpp's spelling).</summary>
    public int SepToken { get; init; } = -1;

    /// <summary>
    /// ModernBERT: every how many layers one is global (<c>global_attn_every_n_layers</c>); the layers whose index is a
    /// multiple of it are, the others slide (<see cref="SlidingLayers"/>). 0 for the other families.
    /// </summary>
    public int GlobalLayerPeriod { get; init; }

    /// <summary>BERT's token-type rows (<c>type_vocab_size</c>), written as <c>tokenizer.ggml.token_type_count</c>; 0 for the other families.</summary>
    public int TokenTypeCount { get; init; }

    /// <summary>BERT's <c>position_embedding_type</c> ("absolute" unless the config says otherwise); null for the other families.</summary>
    public string? PositionEmbeddingType { get; init; }

    /// <summary>T5's <c>tie_word_embeddings</c> (true by default for model_type t5, false for mt5): the head reads <c>shared</c>.</summary>
    public bool TiedEmbeddings { get; init; }

    /// <summary>
    /// Reads the hyperparameters from a Hugging Face <c>config.json</c> of a <c>gpt2</c>, <c>llama</c>, <c>mistral</c>,
    /// <c>qwen2</c>, <c>qwen3</c>, <c>phi3</c>, <c>gemma3_text</c> (or <c>gemma3</c>'s <c>text_config</c>), <c>t5</c>, <c>mt5</c>, <c>modernbert</c> or <c>bert</c> model, with each family's defaults where a key is absent (MODEL_FAMILIES.md §1.3, §3.4): GPT-2's
    /// <c>layer_norm_epsilon</c> 1e-5; Llama's, Qwen2's, Qwen3's and Phi-3's <c>num_key_value_heads</c> = heads, <c>head_dim</c> = hidden / heads,
    /// <c>rms_norm_eps</c> 1e-6, <c>rope_theta</c> 1e4 (also read from <c>rope_parameters</c>); Phi-3's <c>sliding_window</c> (null: 0);
    /// Gemma3TextConfig's for Gemma 3, as the compiler reads them (4 key/value heads, <c>head_dim</c> 256, ε 1e-6, θ 1e6, local θ
    /// (<c>rope_local_base_freq</c>) 1e4, <c>rope_scaling</c> linear or none, window 4096, the sliding layers from <c>layer_types</c>
    /// or every <c>sliding_window_pattern</c>-th full (6), <c>query_pre_attn_scalar</c> 256, 131072 positions, ids pad 0, eos 1, bos 2); T5Config's for
    /// T5 and mT5 (<c>num_heads</c> 8, <c>d_kv</c> 64, ε 1e-6, 32 buckets up to distance 128, start and padding id 0, end id 1,
    /// <c>feed_forward_proj</c> relu, tied for t5 and untied for mt5); ModernBertConfig's for ModernBERT, as the compiler reads
    /// them (<c>global_attn_every_n_layers</c> 3, <c>local_attention</c> 128, <c>global_rope_theta</c> 160000 and
    /// <c>local_rope_theta</c> 10000 or transformers 5's <c>rope_parameters</c>, <c>layer_types</c> checked against the period,
    /// <c>norm_eps</c> 1e-5, <c>hidden_activation</c> gelu, 8192 positions, ids [CLS] 50281, [SEP] 50282, padding 50283); BertConfig's
    /// for BERT (<c>hidden_act</c> gelu, <c>layer_norm_eps</c> 1e-12, 512 positions, <c>type_vocab_size</c> 2, padding id 0,
    /// <c>position_embedding_type</c> absolute).
    /// An <c>eos_token_id</c> list gives its first id.
    /// The Llama family's rotary scaling is read with the compiler's rules into <see cref="RopeScaling"/> (see
    /// <see cref="ReadLlamaRopeScaling"/>); which kinds a GGUF file can then carry is <see cref="GgufExport"/>'s to say.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not such a config, or has what the compiler refuses too (a rotary scaling other than the Llama family's kinds and Gemma 3's linear one, or a bad value of one, named by its key; ModernBERT <c>layer_types</c> other than its period's).</exception>
    public static GgufHyperparameters FromConfig(string configPath)
    {
        ArgumentNullException.ThrowIfNull(configPath);
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(configPath));
        JsonElement root = document.RootElement;
        string modelType = String(root, "model_type") ?? throw new InvalidDataException($"'{configPath}' has no model_type");
        int bos = Integer(root, "bos_token_id") ?? -1, eos = Integer(root, "eos_token_id") ?? -1;
        if (modelType == "gemma3")
        {
            // Gemma3ForConditionalGeneration (gemma-3-4b and larger): its language model's text_config, whose absent ids
            // the top level gives.
            if (!root.TryGetProperty("text_config", out JsonElement text) || text.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"'{configPath}': a gemma3 config needs a text_config (its language model)");
            (root, modelType) = (text, "gemma3_text");
            bos = Integer(root, "bos_token_id") ?? bos;
            eos = Integer(root, "eos_token_id") ?? eos;
        }
        switch (modelType)
        {
            case "gpt2":
            {
                int heads = Require(Integer(root, "n_head"), "n_head");
                int hidden = Require(Integer(root, "n_embd"), "n_embd");
                return new GgufHyperparameters
                {
                    Heads = heads, KeyValueHeads = heads, HeadDim = hidden / heads,
                    NormEpsilon = Number(root, "layer_norm_epsilon") ?? 1e-5f,
                    ContextLength = Integer(root, "n_positions") ?? 0, BosToken = bos, EosToken = eos,
                };
            }
            case "llama" or "mistral" or "qwen2" or "qwen3" or "phi3":
            {
                int heads = Require(Integer(root, "num_attention_heads"), "num_attention_heads");
                int hidden = Require(Integer(root, "hidden_size"), "hidden_size");
                int headDim = Integer(root, "head_dim") ?? (heads > 0 ? hidden / heads : 0);
                float theta = Number(root, "rope_theta")
                    ?? (root.TryGetProperty("rope_parameters", out JsonElement rope) && rope.ValueKind == JsonValueKind.Object ? Number(rope, "rope_theta") : null)
                    ?? 10000f;
                LlamaRope scaling = ReadLlamaRopeScaling(root, modelType, headDim, configPath);
                return new GgufHyperparameters
                {
                    Heads = heads, KeyValueHeads = Integer(root, "num_key_value_heads") ?? heads, HeadDim = headDim,
                    NormEpsilon = Number(root, "rms_norm_eps") ?? 1e-6f, RopeTheta = theta,
                    ContextLength = Integer(root, "max_position_embeddings") ?? 0, BosToken = bos, EosToken = eos,
                    SlidingWindow = modelType == "phi3" ? Integer(root, "sliding_window") ?? 0 : 0,
                    RopeScaling = scaling.Scaling, RopeOriginalContext = scaling.OriginalContext, RopeLongFactors = scaling.LongFactors,
                };
            }
            case "gemma3_text":
            {
                // Gemma3TextConfig's defaults, as the compiler's ConfigReader.Gemma3 reads them.
                int heads = Require(Integer(root, "num_attention_heads"), "num_attention_heads");
                int layers = Require(Integer(root, "num_hidden_layers"), "num_hidden_layers");
                float linear = 1f, theta = Number(root, "rope_theta") ?? 1e6f, localTheta = Number(root, "rope_local_base_freq") ?? 1e4f;
                // transformers 5 writes each layer kind's rotation under rope_parameters instead.
                if (root.TryGetProperty("rope_parameters", out JsonElement parameters) && parameters.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty kind in parameters.EnumerateObject())
                    {
                        float? ropeBase = kind.Value.ValueKind == JsonValueKind.Object ? Number(kind.Value, "rope_theta") : null;
                        if (ropeBase is null || kind.Name is not ("full_attention" or "sliding_attention"))
                            throw new InvalidDataException($"'{configPath}': rope_parameters {parameters.GetRawText()}: full_attention and sliding_attention, each with its rope_theta, are expected");
                        float factor = LinearFactor(kind.Value, "rope_parameters", configPath);
                        if (kind.Name == "full_attention") (theta, linear) = (ropeBase.Value, factor);
                        else if (factor != 1f)
                            throw new InvalidDataException($"'{configPath}': rope_parameters {parameters.GetRawText()}: scaled rotary positions on the sliding layers are not exported");
                        else localTheta = ropeBase.Value;
                    }
                }
                if (root.TryGetProperty("rope_scaling", out JsonElement scaling) && scaling.ValueKind == JsonValueKind.Object)
                    linear = LinearFactor(scaling, "rope_scaling", configPath);
                var sliding = new List<bool>(layers);
                if (root.TryGetProperty("layer_types", out JsonElement types) && types.ValueKind == JsonValueKind.Array)
                {
                    foreach (JsonElement type in types.EnumerateArray())
                        sliding.Add(type.ValueKind == JsonValueKind.String && type.GetString() == "sliding_attention"
                            ? true
                            : type.ValueKind == JsonValueKind.String && type.GetString() == "full_attention"
                                ? false
                                : throw new InvalidDataException($"'{configPath}': layer_types has {type.GetRawText()}; sliding_attention or full_attention is expected"));
                }
                else
                {
                    int pattern = Integer(root, "sliding_window_pattern") ?? Integer(root, "_sliding_window_pattern") ?? 6;
                    for (int i = 0; i < layers; i++) sliding.Add(pattern <= 0 || (i + 1) % pattern != 0);
                }
                return new GgufHyperparameters
                {
                    Heads = heads, KeyValueHeads = Integer(root, "num_key_value_heads") ?? 4, HeadDim = Integer(root, "head_dim") ?? 256,
                    NormEpsilon = Number(root, "rms_norm_eps") ?? 1e-6f, RopeTheta = theta,
                    ContextLength = Integer(root, "max_position_embeddings") ?? 131072, BosToken = bos >= 0 ? bos : 2, EosToken = eos >= 0 ? eos : 1,
                    PadToken = Integer(root, "pad_token_id") ?? 0,
                    SlidingWindow = Integer(root, "sliding_window") ?? 4096, SlidingLayers = sliding,
                    LocalRopeTheta = localTheta, RopeScaling = linear != 1f ? RotaryScaling.Linear(linear) : null,
                    QueryPreAttentionScalar = Number(root, "query_pre_attn_scalar") ?? 256f,
                };
            }
            case "modernbert":
            {
                // ModernBertConfig's defaults, as the compiler's ConfigReader.ModernBert reads them.
                int heads = Require(Integer(root, "num_attention_heads"), "num_attention_heads");
                int hidden = Require(Integer(root, "hidden_size"), "hidden_size");
                int layers = Require(Integer(root, "num_hidden_layers"), "num_hidden_layers");
                if (heads <= 0 || hidden % heads != 0)
                    throw new InvalidDataException($"'{configPath}': {heads} heads do not divide hidden_size {hidden}");
                if (Integer(root, "head_dim") is int headDim && headDim != hidden / heads)
                    throw new InvalidDataException($"'{configPath}' says head_dim = {headDim}; ModernBERT's heads are hidden_size / num_attention_heads = {hidden / heads} wide");
                int every = Integer(root, "global_attn_every_n_layers") ?? 3, window = Integer(root, "local_attention") ?? 128;
                if (every <= 0) throw new InvalidDataException($"'{configPath}' says global_attn_every_n_layers = {every}; a positive period is expected");
                var sliding = new List<bool>(layers);
                for (int i = 0; i < layers; i++) sliding.Add(i % every != 0);
                if (root.TryGetProperty("layer_types", out JsonElement types) && types.ValueKind == JsonValueKind.Array)
                {
                    int i = 0;
                    foreach (JsonElement type in types.EnumerateArray())
                    {
                        bool? listed = type.ValueKind != JsonValueKind.String ? null
                            : type.GetString() switch { "sliding_attention" => true, "full_attention" => false, _ => null };
                        if (listed is null || i >= layers || listed != sliding[i])
                            throw new InvalidDataException($"'{configPath}': layer_types {types.GetRawText()} disagree with global_attn_every_n_layers = {every} (ModernBERT windows the layers whose index is not a multiple of it)");
                        i++;
                    }
                    if (i != layers) throw new InvalidDataException($"'{configPath}': layer_types lists {i} layers of {layers}");
                }
                float globalTheta = Number(root, "global_rope_theta") ?? 160000f, localTheta = Number(root, "local_rope_theta") ?? 10000f;
                // transformers 5 writes the bases per layer kind under rope_parameters.
                if (root.TryGetProperty("rope_parameters", out JsonElement parameters) && parameters.ValueKind == JsonValueKind.Object)
                {
                    foreach (JsonProperty kind in parameters.EnumerateObject())
                    {
                        float? ropeBase = kind.Value.ValueKind == JsonValueKind.Object ? Number(kind.Value, "rope_theta") : null;
                        if (ropeBase is null || kind.Name is not ("full_attention" or "sliding_attention"))
                            throw new InvalidDataException($"'{configPath}': rope_parameters {parameters.GetRawText()}: full_attention and sliding_attention, each with its rope_theta, are expected");
                        if ((String(kind.Value, "rope_type") ?? String(kind.Value, "type")) is { } ropeType && ropeType != "default")
                            throw new InvalidDataException($"'{configPath}': rope_parameters.{kind.Name} is {ropeType}; scaled rotary positions are not exported (the compiler refuses them too)");
                        if (kind.Name == "full_attention") globalTheta = ropeBase.Value;
                        else localTheta = ropeBase.Value;
                    }
                }
                else if (root.TryGetProperty("rope_scaling", out JsonElement scaling) && scaling.ValueKind != JsonValueKind.Null)
                {
                    throw new InvalidDataException($"'{configPath}': rope_scaling is not exported (the model compiler refuses it too)");
                }
                return new GgufHyperparameters
                {
                    Heads = heads, KeyValueHeads = heads, HeadDim = hidden / heads,
                    NormEpsilon = Number(root, "norm_eps") ?? 1e-5f, RopeTheta = globalTheta, LocalRopeTheta = localTheta,
                    ContextLength = Integer(root, "max_position_embeddings") ?? 8192,
                    BosToken = bos >= 0 ? bos : 50281, EosToken = eos >= 0 ? eos : 50282, PadToken = Integer(root, "pad_token_id") ?? 50283,
                    ClsToken = Integer(root, "cls_token_id") ?? 50281, SepToken = Integer(root, "sep_token_id") ?? 50282,
                    SlidingWindow = window, SlidingLayers = sliding, GlobalLayerPeriod = every,
                    FeedForwardActivation = String(root, "hidden_activation") ?? "gelu",
                };
            }
            case "bert":
            {
                // BertConfig's defaults, as the compiler reads them: erf GELU, LayerNorm ε 1e-12, 512 positions, 2 token types.
                int heads = Require(Integer(root, "num_attention_heads"), "num_attention_heads");
                int hidden = Require(Integer(root, "hidden_size"), "hidden_size");
                if (heads <= 0 || hidden % heads != 0)
                    throw new InvalidDataException($"'{configPath}': {heads} heads do not divide hidden_size {hidden}");
                return new GgufHyperparameters
                {
                    Heads = heads, KeyValueHeads = heads, HeadDim = hidden / heads,
                    NormEpsilon = Number(root, "layer_norm_eps") ?? 1e-12f,
                    ContextLength = Integer(root, "max_position_embeddings") ?? 512,
                    PadToken = Integer(root, "pad_token_id") ?? 0,
                    FeedForwardActivation = String(root, "hidden_act") ?? "gelu",
                    TokenTypeCount = Integer(root, "type_vocab_size") ?? 2,
                    PositionEmbeddingType = String(root, "position_embedding_type") ?? "absolute",
                };
            }
            case "t5" or "mt5":
            {
                // T5Config's defaults (transformers' configuration_t5.py), as the compiler's ConfigReader.T5 reads them.
                string projection = String(root, "feed_forward_proj") ?? "relu";
                bool gatedByName = projection.StartsWith("gated-", StringComparison.Ordinal);
                string derived = projection == "gated-gelu" ? "gelu_new" : gatedByName ? projection["gated-".Length..] : projection;
                int heads = Integer(root, "num_heads") ?? 8;
                return new GgufHyperparameters
                {
                    Heads = heads, KeyValueHeads = heads, HeadDim = Integer(root, "d_kv") ?? 64,
                    NormEpsilon = Number(root, "layer_norm_epsilon") ?? 1e-6f,
                    ContextLength = Integer(root, "n_positions") ?? 512, BosToken = -1, EosToken = Integer(root, "eos_token_id") ?? 1,
                    RelativeBuckets = Integer(root, "relative_attention_num_buckets") ?? 32,
                    RelativeMaxDistance = Integer(root, "relative_attention_max_distance") ?? 128,
                    DecoderStartToken = Integer(root, "decoder_start_token_id") ?? 0,
                    PadToken = Integer(root, "pad_token_id") ?? 0,
                    FeedForwardActivation = String(root, "dense_act_fn") ?? derived,
                    GatedFeedForward = Boolean(root, "is_gated_act") ?? gatedByName,
                    TiedEmbeddings = Boolean(root, "tie_word_embeddings") ?? modelType == "t5",
                };
            }
            default:
                throw new InvalidDataException($"'{configPath}': model_type '{modelType}' is not a model GGUF export knows (gpt2, llama, mistral, qwen2, qwen3, phi3, gemma3_text, gemma3, t5, mt5, modernbert, bert)");
        }

        int Require(int? value, string key) => value ?? throw new InvalidDataException($"'{configPath}' has no {key}");
    }

    /// <summary>A rotation's linear scaling factor (rope_type linear), 1 for the default; any other type is not exported.</summary>
    private static float LinearFactor(JsonElement rope, string key, string configPath)
    {
        string? type = String(rope, "rope_type") ?? String(rope, "type");
        if (type is null or "default") return 1f;
        if (type == "linear" && Number(rope, "factor") is float factor && factor > 0) return factor;
        throw new InvalidDataException($"'{configPath}': {key} {rope.GetRawText()} is not exported (of the scaled rotary positions only Gemma 3's linear scaling is)");
    }

    private static string? String(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int? Integer(JsonElement o, string key)
    {
        if (!o.TryGetProperty(key, out JsonElement v)) return null;
        if (v.ValueKind == JsonValueKind.Array) v = v.GetArrayLength() > 0 ? v[0] : default;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;
    }

    private static bool? Boolean(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static float? Number(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? (float)v.GetDouble() : null;
}
