using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>The forward passes of the Hugging Face families (MODEL_FAMILIES.md §1–3, Marian's and T5's encoder–decoders, NomicBERT from its hub code, MPNet, Gemma 3's text model and ModernBERT); Qwen2 runs as Llama.</summary>
internal enum HfFamily { Gpt2, Bert, Llama, Marian, NomicBert, T5, MPNet, Gemma3, ModernBert }

/// <summary>sentence-transformers <c>Pooling</c>: the mean over the attention mask's tokens, or the first token's state.</summary>
internal enum HfPooling { Mean, Cls }

/// <summary>
/// One sentence-transformers <c>Dense</c> module (<c>N_Dense/config.json</c>): <c>y = activation(x·Wᵀ + b)</c>, its weight
/// <c>linear.weight</c> <c>[out, in]</c> and bias <c>linear.bias</c> <c>[out]</c> in <c>N_Dense/model.safetensors</c>.
/// </summary>
/// <param name="Path">The module's folder, as modules.json names it (<c>2_Dense</c>); its tensors' names start with it.</param>
/// <param name="Tanh">The activation: <c>torch.nn.modules.activation.Tanh</c>, else <c>torch.nn.modules.linear.Identity</c>.</param>
internal sealed record HfDenseLayer(string Path, int InFeatures, int OutFeatures, bool Bias, bool Tanh);

/// <summary>What a BERT-like checkpoint holds on top of the encoder: nothing (<c>BertModel</c>), a sequence classifier or a token classifier.</summary>
internal enum HfEncoderHead { None, SequenceClassification, TokenClassification }

/// <summary>
/// What a Hugging Face <c>config.json</c> says about the architecture, read as <c>transformers</c> reads it: each
/// family's defaults apply where a key is absent or null, and any key that would change the computation in a way these
/// references do not implement is refused rather than ignored.
/// </summary>
internal sealed partial record HfConfig
{
    public required string ModelType { get; init; }
    public required HfFamily Family { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    /// <summary>Key/value heads (Llama/Qwen2 <c>num_key_value_heads</c>, default = heads); the heads elsewhere.</summary>
    public required int KeyValueHeads { get; init; }
    /// <summary>Llama/Qwen2 <c>head_dim</c>, default hidden/heads; hidden/heads elsewhere.</summary>
    public required int HeadDim { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MaxPositions { get; init; }
    /// <summary>The <c>transformers</c> activation name (<c>activation_function</c> or <c>hidden_act</c>).</summary>
    public required string Activation { get; init; }
    /// <summary>LayerNorm or RMSNorm ε.</summary>
    public required double NormEps { get; init; }
    public required bool TieWordEmbeddings { get; init; }

    // GPT-2
    public bool ScaleAttnWeights { get; init; } = true;
    public bool ScaleAttnByInverseLayerIdx { get; init; }

    // BERT
    public int TypeVocabSize { get; init; }
    /// <summary>
    /// RoBERTa and XLM-RoBERTa: position ids from the padding id (<c>create_position_ids_from_input_ids</c>); M2M100 numbers
    /// its sinusoids the same way.
    /// </summary>
    public bool PositionsFromPadding { get; init; }
    public int PadTokenId { get; init; }
    /// <summary>BERT-like: the head <c>architectures[0]</c> names (sequence or token classification), else none.</summary>
    public HfEncoderHead EncoderHead { get; init; }
    /// <summary>A classifier's labels: <c>id2label</c>'s entries, else <c>num_labels</c> (2).</summary>
    public int Labels { get; init; }
    /// <summary>BERT-like: <c>architectures[0]</c> as the file gives it (null without), which decides the head and, for ELECTRA, the unread head tensors a file may hold.</summary>
    public string? Architecture { get; init; }

    // Llama / Qwen2
    public double RopeTheta { get; init; } = 10000.0;
    public bool QkvBias { get; init; }
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    /// <summary>Qwen3: RMSNorm of each query and key head over its channels before the rotation (<c>q_norm</c>, <c>k_norm</c>).</summary>
    public bool QueryKeyNorm { get; init; }

    // Marian (MarianMTModel): the fields above describe the encoder (d_model, encoder_layers, encoder_attention_heads,
    // encoder_ffn_dim); these the decoder and the generation settings.
    public int DecoderLayers { get; init; }
    public int DecoderHeads { get; init; }
    public int DecoderIntermediateSize { get; init; }
    /// <summary><c>scale_embedding</c>: token embeddings multiplied by √d_model.</summary>
    public bool ScaleEmbedding { get; init; }
    /// <summary>The first decoder input (<c>decoder_start_token_id</c>; the padding id in opus-mt).</summary>
    public int DecoderStartTokenId { get; init; }
    public int EosTokenId { get; init; }
    /// <summary>The single-token entries of <c>bad_words_ids</c>: never generated.</summary>
    public int[] BannedTokens { get; init; } = [];
    /// <summary>
    /// BART and mBART: each stack's own learned position table of <c>max_position_embeddings</c> + 2 rows, position p
    /// reading row p + 2 (BartLearnedPositionalEmbedding), then <c>layernorm_embedding</c>; false: Marian's fixed sinusoids.
    /// </summary>
    public bool LearnedPositions { get; init; }
    /// <summary>mBART, M2M100: pre-LN layers and a final <c>layer_norm</c> on each stack; false: post-LN (Marian, BART).</summary>
    public bool PreNorm { get; init; }
    /// <summary>Marian, BART, mBART: <c>final_logits_bias</c> added to the logits; M2M100 has none.</summary>
    public bool FinalLogitsBias { get; init; }

    // NomicBERT (RopeTheta is rotary_emb_base, QkvBias qkv_proj_bias for Wqkv and out_proj alike, MlpBias mlp_fc1_bias
    // for fc11 and fc12).
    /// <summary>NomicBERT <c>mlp_fc2_bias</c>: a bias on <c>fc2</c>.</summary>
    public bool MlpOutputBias { get; init; }
    /// <summary>
    /// NomicBERT: the longest sequence the plain rotary tables serve; beyond it a <c>rotary_scaling_factor</c> (NomicBertConfig
    /// defaults it to 1.0) switches to NomicBertDynamicNTKRotaryEmbedding's rescaled base, which is not implemented.
    /// </summary>
    public int RotaryUnscaledPositions { get; init; } = int.MaxValue;

    // T5 (T5ForConditionalGeneration): HiddenSize is d_model, Heads num_heads, HeadDim d_kv (heads·d_kv may differ from
    // d_model), IntermediateSize d_ff for both stacks, Layers num_layers, DecoderLayers num_decoder_layers, NormEps
    // layer_norm_epsilon, Activation dense_act_fn.
    /// <summary>T5 <c>is_gated_act</c>: the feed-forward is <c>wo(act(wi_0·x) ⊙ wi_1·x)</c>, else <c>wo(act(wi·x))</c>.</summary>
    public bool GatedFeedForward { get; init; }
    /// <summary>
    /// T5 <c>relative_attention_num_buckets</c>: rows of each stack's <c>relative_attention_bias</c> table. MPNet: rows of
    /// the encoder's one table, of which the bucket function (always 32 buckets) reads the first 32.
    /// </summary>
    public int RelativeBuckets { get; init; }
    /// <summary>T5 <c>relative_attention_max_distance</c> (MPNet: 128, fixed): distances from here on share the last bucket.</summary>
    public int RelativeMaxDistance { get; init; }

    // Gemma 3 (gemma3_text): QueryKeyNorm, ScaleEmbedding (by √hidden) and RopeTheta (the global layers' θ) as above,
    // QkvBias and OutputBias both attention_bias, Activation hidden_activation.
    /// <summary>Gemma 3 <c>query_pre_attn_scalar</c>: attention scores are multiplied by its −½ power (not head_dim's).</summary>
    public double QueryPreAttnScalar { get; init; }
    /// <summary>Gemma 3 <c>rope_local_base_freq</c>: θ of the sliding layers' rotary table, which is never scaled.</summary>
    public double RopeLocalTheta { get; init; }
    /// <summary>
    /// Gemma 3 <c>rope_scaling</c> <c>{"rope_type": "linear", "factor": f}</c>: the global layers' inverse frequencies
    /// divided by f (positions read as p / f); 1 without scaling.
    /// </summary>
    public double RopeLinearFactor { get; init; } = 1.0;
    /// <summary>Gemma 3 <c>sliding_window</c>: on a sliding layer, key j is visible from query i iff 0 ≤ i − j &lt; window.</summary>
    public int SlidingWindow { get; init; }
    /// <summary>Gemma 3, one per layer: true for <c>"sliding_attention"</c>, false for <c>"full_attention"</c>.</summary>
    public bool[] SlidingLayers { get; init; } = [];
    /// <summary>
    /// Gemma 3 <c>use_bidirectional_attention</c> (EmbeddingGemma's Gemma3TextModel): no causal mask. A full-attention layer
    /// sees every unpadded key; a sliding layer sees key j from query i iff |i − j| &lt; <see cref="SlidingWindow"/>, which
    /// then holds the effective window: Gemma3TextConfig.__init__ replaces the file's <c>sliding_window</c> w by
    /// w // 2 + 1 (512 → 257, up to 256 positions on each side).
    /// </summary>
    public bool Bidirectional { get; init; }

    // sentence-transformers modules (modules.json beside config.json; without it, mean pooling, no Dense, Normalize).
    /// <summary>Whether a modules.json sits beside config.json: <see cref="SentenceModuleFiles"/> lists the files it brings.</summary>
    public bool HasSentenceModules => SentenceModuleFiles.Length > 0;
    /// <summary>The pooling of <c>1_Pooling/config.json</c> (<c>pooling_mode_mean_tokens</c> or <c>pooling_mode_cls_token</c>).</summary>
    public HfPooling Pooling { get; init; } = HfPooling.Mean;
    /// <summary>The Dense modules after the pooling, in modules.json's order (EmbeddingGemma: 768 → 3072 → 768).</summary>
    public HfDenseLayer[] DenseLayers { get; init; } = [];
    /// <summary>Whether modules.json ends in <c>Normalize</c> (L2); true without modules.json, as the encoders here assume.</summary>
    public bool Normalize { get; init; } = true;
    /// <summary>The sentence-transformers files beside config.json, relative to its folder: modules.json, the pooling's and each Dense's config.json.</summary>
    public string[] SentenceModuleFiles { get; init; } = [];
    /// <summary>The width of a sentence embedding: the last Dense's <c>out_features</c>, else the hidden size.</summary>
    public int EmbeddingSize => DenseLayers.Length > 0 ? DenseLayers[^1].OutFeatures : HiddenSize;

    /// <summary>A decoder-only language model (an encoder–decoder has its own entry points); a bidirectional Gemma 3 is an encoder.</summary>
    public bool IsDecoder => Family is HfFamily.Gpt2 or HfFamily.Llama || (Family == HfFamily.Gemma3 && !Bidirectional);

    public static HfConfig Read(string path)
    {
        JsonObject json = JsonNode.Parse(File.ReadAllText(path))?.AsObject()
            ?? throw new InvalidDataException($"{path} is not a JSON object");
        string modelType = String(json, "model_type") ?? throw new InvalidDataException($"{path} has no model_type");
        HfConfig config = modelType switch
        {
            "gpt2" => Gpt2(json),
            "bert" => Bert(json, "bert"),
            "roberta" or "xlm-roberta" => Bert(json, modelType),
            "distilbert" => DistilBert(json),
            "electra" => Electra(json),
            "llama" => Llama(json, qwen2: false),
            "qwen2" => Llama(json, qwen2: true),
            "qwen3" => Llama(json, qwen2: false) with { ModelType = "qwen3", QueryKeyNorm = true },
            "phi3" => Phi3(json),
            "marian" => Marian(json),
            "bart" or "mbart" => Bart(json, modelType),
            "m2m_100" => M2M100(json),
            "nomic_bert" => NomicBert(json),
            "t5" or "mt5" => T5(json, modelType),
            "mpnet" => MPNet(json),
            "gemma3_text" => Gemma3(json),
            "modernbert" => ModernBert(json),
            _ => throw new NotSupportedException($"model_type '{modelType}' has no reference here"),
        };
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!File.Exists(Path.Combine(folder, "modules.json"))) return config;
        config = SentenceModules(config, folder);
        if (config.DenseLayers.Length > 0 && config.Family is not (HfFamily.Gemma3 or HfFamily.Bert))
            throw new NotSupportedException($"sentence-transformers Dense modules on {modelType} are not implemented (on Gemma 3 and BERT only)");
        return config;
    }

    // sentence-transformers' modules.json: a list of {idx, name, path, type}, run in order. The Transformer module is the
    // model of config.json (path ""); Pooling reads <path>/config.json; Dense reads <path>/config.json (in_features,
    // out_features, bias, activation_function) and its weights from <path>/model.safetensors; Normalize is F.normalize
    // (p = 2, dim = 1) and has no files. Any other module, or a Dense activation other than Identity or Tanh, is refused.
    private static HfConfig SentenceModules(HfConfig config, string folder)
    {
        JsonArray modules = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "modules.json")))?.AsArray()
            ?? throw new InvalidDataException($"{folder}/modules.json is not a JSON list");
        var files = new List<string> { "modules.json" };
        var dense = new List<HfDenseLayer>();
        HfPooling pooling = HfPooling.Mean;
        bool normalize = false, pooled = false;
        int width = config.HiddenSize;
        for (int i = 0; i < modules.Count; i++)
        {
            JsonObject module = modules[i]?.AsObject() ?? throw new InvalidDataException($"modules.json entry {i} is not an object");
            string type = String(module, "type") ?? throw new InvalidDataException($"modules.json entry {i} has no type");
            string modulePath = String(module, "path") ?? "";
            if (normalize) throw new NotSupportedException($"{type} after Normalize is not implemented");
            switch (type)
            {
                case "sentence_transformers.models.Transformer":
                    if (i != 0 || modulePath != "") throw new NotSupportedException("the Transformer module must come first, from config.json's own folder");
                    break;
                case "sentence_transformers.models.Pooling":
                {
                    if (i != 1) throw new NotSupportedException("Pooling must follow the Transformer directly");
                    string file = Path.Combine(modulePath, "config.json");
                    JsonObject p = ReadObject(folder, file);
                    files.Add(file);
                    if (Int(p, "word_embedding_dimension") is int dimension && dimension != config.HiddenSize)
                        throw new InvalidDataException($"{file}: word_embedding_dimension {dimension}, the model's hidden size is {config.HiddenSize}");
                    bool mean = Bool(p, "pooling_mode_mean_tokens") ?? false, cls = Bool(p, "pooling_mode_cls_token") ?? false;
                    foreach (string other in new[] { "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken" })
                        if (Bool(p, other) == true) throw new NotSupportedException($"{file}: {other} is not implemented");
                    if (mean == cls) throw new NotSupportedException($"{file}: exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token must be set");
                    pooling = cls ? HfPooling.Cls : HfPooling.Mean;
                    pooled = true;
                    break;
                }
                case "sentence_transformers.models.Dense":
                {
                    if (!pooled) throw new NotSupportedException("a Dense module before the Pooling is not implemented");
                    string file = Path.Combine(modulePath, "config.json");
                    JsonObject d = ReadObject(folder, file);
                    files.Add(file);
                    int inputs = Int(d, "in_features") ?? throw new InvalidDataException($"{file} has no in_features");
                    int outputs = Int(d, "out_features") ?? throw new InvalidDataException($"{file} has no out_features");
                    if (inputs != width) throw new InvalidDataException($"{file}: in_features {inputs}, the previous module gives {width}");
                    // Dense's defaults: bias True, activation Tanh.
                    string activation = String(d, "activation_function") ?? "torch.nn.modules.activation.Tanh";
                    bool tanh = activation switch
                    {
                        "torch.nn.modules.activation.Tanh" => true,
                        "torch.nn.modules.linear.Identity" => false,
                        _ => throw new NotSupportedException($"{file}: activation_function '{activation}' is not implemented (Identity or Tanh)"),
                    };
                    dense.Add(new HfDenseLayer(modulePath, inputs, outputs, Bool(d, "bias") ?? true, tanh));
                    width = outputs;
                    break;
                }
                case "sentence_transformers.models.Normalize":
                    normalize = true;
                    break;
                default:
                    throw new NotSupportedException($"sentence-transformers module '{type}' is not implemented");
            }
        }
        if (!pooled) throw new NotSupportedException("modules.json without a Pooling module is not implemented");
        return config with { Pooling = pooling, DenseLayers = dense.ToArray(), Normalize = normalize, SentenceModuleFiles = files.ToArray() };
    }

    private static JsonObject ReadObject(string folder, string file) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(folder, file)))?.AsObject() ?? throw new InvalidDataException($"{file} is not a JSON object");

    // configuration_gpt2.py: attribute_map maps hidden_size→n_embd etc.; n_inner null → 4·n_embd; tie_word_embeddings
    // is PretrainedConfig's default (true).
    private static HfConfig Gpt2(JsonObject json)
    {
        if (Bool(json, "reorder_and_upcast_attn") == true)
            throw new NotSupportedException("reorder_and_upcast_attn scales before the product (baddbmm alpha): not implemented");
        if (Bool(json, "add_cross_attention") == true) throw new NotSupportedException("GPT-2 cross-attention is not implemented");
        int embd = Int(json, "n_embd") ?? 768, heads = Int(json, "n_head") ?? 12;
        return new HfConfig
        {
            ModelType = "gpt2",
            Family = HfFamily.Gpt2,
            VocabSize = Int(json, "vocab_size") ?? 50257,
            HiddenSize = embd,
            Layers = Int(json, "n_layer") ?? 12,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Divide(embd, heads),
            IntermediateSize = Int(json, "n_inner") ?? 4 * embd,
            MaxPositions = Int(json, "n_positions") ?? 1024,
            Activation = String(json, "activation_function") ?? "gelu_new",
            NormEps = Double(json, "layer_norm_epsilon") ?? 1e-5,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings") ?? true,
            ScaleAttnWeights = Bool(json, "scale_attn_weights") ?? true,
            ScaleAttnByInverseLayerIdx = Bool(json, "scale_attn_by_inverse_layer_idx") ?? false,
        };
    }

    // configuration_bert.py defaults (bert-base-uncased); configuration_roberta.py keeps them but pad_token_id 1;
    // configuration_electra.py passes its own sizes (HfConfig.Electra.cs).
    private static HfConfig Bert(JsonObject json, string modelType, (int Hidden, int Layers, int Heads, int Inner)? sizes = null)
    {
        bool roberta = modelType is "roberta" or "xlm-roberta";
        (int Hidden, int Layers, int Heads, int Inner) defaults = sizes ?? (768, 12, 12, 3072);
        string positions = String(json, "position_embedding_type") ?? "absolute";
        if (positions != "absolute") throw new NotSupportedException($"position_embedding_type '{positions}' is not implemented");
        int hidden = Int(json, "hidden_size") ?? defaults.Hidden, heads = Int(json, "num_attention_heads") ?? defaults.Heads;
        string? architecture = (json["architectures"] as JsonArray)?.FirstOrDefault()?.GetValue<string>();
        return new HfConfig
        {
            ModelType = modelType,
            Family = HfFamily.Bert,
            PositionsFromPadding = roberta,
            Architecture = architecture,
            EncoderHead = architecture switch
            {
                string a when a.EndsWith("ForSequenceClassification", StringComparison.Ordinal) => HfEncoderHead.SequenceClassification,
                string a when a.EndsWith("ForTokenClassification", StringComparison.Ordinal) => HfEncoderHead.TokenClassification,
                _ => HfEncoderHead.None,
            },
            Labels = json["id2label"] is JsonObject labels ? labels.Count : Int(json, "num_labels") ?? 2,
            PadTokenId = Int(json, "pad_token_id") ?? (roberta ? 1 : 0),
            VocabSize = Int(json, "vocab_size") ?? 30522,
            HiddenSize = hidden,
            Layers = Int(json, "num_hidden_layers") ?? defaults.Layers,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Divide(hidden, heads),
            IntermediateSize = Int(json, "intermediate_size") ?? defaults.Inner,
            MaxPositions = Int(json, "max_position_embeddings") ?? 512,
            Activation = String(json, "hidden_act") ?? "gelu",
            NormEps = Double(json, "layer_norm_eps") ?? 1e-12,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings") ?? true,
            TypeVocabSize = Int(json, "type_vocab_size") ?? 2,
        };
    }

    // configuration_distilbert.py: its own keys (dim, n_layers, n_heads, hidden_dim, activation), no token types, and
    // modeling_distilbert.py's LayerNorms fixed at eps 1e-12; sinusoidal_pos_embds would replace the learned positions.
    private static HfConfig DistilBert(JsonObject json)
    {
        if (Bool(json, "sinusoidal_pos_embds") == true) throw new NotSupportedException("sinusoidal_pos_embds is not implemented");
        int dim = Int(json, "dim") ?? 768, heads = Int(json, "n_heads") ?? 12;
        HfConfig bert = Bert(json, "distilbert");
        return bert with
        {
            HiddenSize = dim,
            Layers = Int(json, "n_layers") ?? 6,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Divide(dim, heads),
            IntermediateSize = Int(json, "hidden_dim") ?? 4 * 768,
            Activation = String(json, "activation") ?? "gelu",
            NormEps = 1e-12,
            TypeVocabSize = 0,
            PositionsFromPadding = false,
            PadTokenId = Int(json, "pad_token_id") ?? 0,
        };
    }

    // configuration_llama.py / configuration_qwen2.py / configuration_qwen3.py: all default tie_word_embeddings to false
    // and rms_norm_eps to 1e-6. Qwen2 hard-codes q/k/v biases and no o_proj or MLP bias; Llama and Qwen3 read
    // attention_bias (Qwen3's MLP has no bias, and its configs carry no mlp_bias, so reading it changes nothing). Newer
    // configs may put rope_theta under rope_parameters, with the scaling's keys (HfConfig.RopeScaling.cs).
    private static HfConfig Llama(JsonObject json, bool qwen2, bool phi3 = false)
    {
        double theta = Double(json, "rope_theta") ?? 10000.0;
        if (json["rope_parameters"] is JsonObject rope) theta = Double(rope, "rope_theta") ?? theta;
        if (Double(json, "partial_rotary_factor") is double factor && factor != 1.0)
            throw new NotSupportedException("partial_rotary_factor is not implemented");
        if (Bool(json, "use_sliding_window") == true) throw new NotSupportedException("Qwen2/Qwen3 sliding-window attention is not implemented");
        int hidden = Int(json, "hidden_size") ?? 4096, heads = Int(json, "num_attention_heads") ?? 32;
        int headDim = Int(json, "head_dim") ?? Divide(hidden, heads), maxPositions = Int(json, "max_position_embeddings") ?? (phi3 ? 4096 : 2048);
        bool attentionBias = Bool(json, "attention_bias") ?? false;
        return new HfConfig
        {
            ModelType = qwen2 ? "qwen2" : "llama",
            Family = HfFamily.Llama,
            VocabSize = Int(json, "vocab_size") ?? 32000,
            HiddenSize = hidden,
            Layers = Int(json, "num_hidden_layers") ?? 32,
            Heads = heads,
            KeyValueHeads = Int(json, "num_key_value_heads") ?? heads,
            HeadDim = headDim,
            IntermediateSize = Int(json, "intermediate_size") ?? 11008,
            MaxPositions = maxPositions,
            Activation = String(json, "hidden_act") ?? "silu",
            NormEps = Double(json, "rms_norm_eps") ?? 1e-6,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings") ?? false,
            RopeTheta = theta,
            RopeScaling = LlamaRopeScaling(json, phi3, maxPositions, headDim),
            QkvBias = qwen2 || attentionBias,
            OutputBias = !qwen2 && attentionBias,
            MlpBias = !qwen2 && (Bool(json, "mlp_bias") ?? false),
            // LlamaModel's embed_tokens takes padding_idx = pad_token_id, even where the pad is the end of a turn (SmolLM2, Phi-3).
            PadTokenId = Int(json, "pad_token_id") ?? -1,
        };
    }

    // configuration_phi3.py: Llama's keys; no biases (modeling_phi3 builds qkv_proj, o_proj, gate_up_proj and down_proj
    // without), rms_norm_eps 1e-5, 4096 positions and untied by default, and a top-level original_max_position_embeddings
    // (default 4096) that longrope scaling reads; partial rotation is refused above. sliding_window is not implemented:
    // it changes nothing for sequences no longer than it, which the fixtures keep to.
    private static HfConfig Phi3(JsonObject json) =>
        Llama(json, qwen2: false, phi3: true) with
        {
            ModelType = "phi3",
            NormEps = Double(json, "rms_norm_eps") ?? 1e-5,
            QkvBias = false,
            OutputBias = false,
            MlpBias = false,
        };

    // configuration_marian.py's defaults (vocab 58101, d_model 1024, 12 + 12 layers of 16 heads, ffn 4096, erf gelu,
    // scale_embedding false, pad = decoder start 58100, eos 0); modeling_marian's LayerNorms use torch's default ε 1e-5.
    // normalize_before, normalize_embedding, add_final_layer_norm and static_position_embeddings are BART-era keys that
    // opus-mt configs still carry and modeling_marian never reads: ignored, as there. Unshared embeddings (a separate
    // decoder vocabulary) and an untied head are refused.
    private static HfConfig Marian(JsonObject json)
    {
        if (Bool(json, "share_encoder_decoder_embeddings") == false) throw new NotSupportedException("Marian with separate encoder and decoder embeddings is not implemented");
        if (Bool(json, "tie_word_embeddings") == false) throw new NotSupportedException("Marian with an untied lm_head is not implemented");
        int vocab = Int(json, "vocab_size") ?? 58101, d = Int(json, "d_model") ?? 1024;
        if ((Int(json, "decoder_vocab_size") ?? vocab) != vocab) throw new NotSupportedException("decoder_vocab_size differs from vocab_size: the loss would view the logits with the wrong width");
        int heads = Int(json, "encoder_attention_heads") ?? 16, decoderHeads = Int(json, "decoder_attention_heads") ?? 16;
        Divide(d, decoderHeads);
        int pad = Int(json, "pad_token_id") ?? 58100;
        return new HfConfig
        {
            ModelType = "marian",
            Family = HfFamily.Marian,
            VocabSize = vocab,
            HiddenSize = d,
            Layers = Int(json, "encoder_layers") ?? 12,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Divide(d, heads),
            IntermediateSize = Int(json, "encoder_ffn_dim") ?? 4096,
            MaxPositions = Int(json, "max_position_embeddings") ?? 1024,
            Activation = String(json, "activation_function") ?? "gelu",
            NormEps = 1e-5,
            TieWordEmbeddings = true,
            PadTokenId = pad,
            DecoderLayers = Int(json, "decoder_layers") ?? 12,
            DecoderHeads = decoderHeads,
            DecoderIntermediateSize = Int(json, "decoder_ffn_dim") ?? 4096,
            ScaleEmbedding = Bool(json, "scale_embedding") ?? false,
            DecoderStartTokenId = Int(json, "decoder_start_token_id") ?? 58100,
            FinalLogitsBias = true,
            EosTokenId = Int(json, "eos_token_id") ?? 0,
            BannedTokens = json["bad_words_ids"] is JsonArray banned
                ? banned.OfType<JsonArray>().Where(w => w.Count == 1).Select(w => w[0]!.GetValue<int>()).ToArray()
                : [],
        };
    }

    // configuration_bart.py / configuration_mbart.py: the same keys as Marian's with fairseq's defaults (vocab 50265 for
    // both, d_model 1024, 12 + 12 layers of 16 heads, ffn 4096, erf gelu, scale_embedding false, <s> 0, <pad> 1, </s> 2,
    // decoder start 2) and BART's positions; modeling_mbart puts the norms before each sub-layer and adds a final one per
    // stack. The fairseq leftovers (normalize_before, normalize_embedding, add_final_layer_norm, static_position_embeddings)
    // are not read by the modeling code: the model type alone fixes where the norms sit.
    private static HfConfig Bart(JsonObject json, string modelType)
    {
        HfConfig marian = Marian(json);
        return marian with
        {
            ModelType = modelType,
            VocabSize = Int(json, "vocab_size") ?? 50265,
            PadTokenId = Int(json, "pad_token_id") ?? 1,
            DecoderStartTokenId = Int(json, "decoder_start_token_id") ?? 2,
            EosTokenId = Int(json, "eos_token_id") ?? 2,
            LearnedPositions = true,
            PreNorm = modelType == "mbart",
        };
    }

    // configuration_m2m_100.py: Marian's keys with M2M100's defaults (vocab 128112, d_model 1024, 12 + 12 layers of 16
    // heads, ffn 4096, relu, scale_embedding true, <s> 0, <pad> 1, </s> 2 = decoder start); modeling_m2m_100 has mBART's
    // pre-LN layers and final norms, no layernorm_embedding or final_logits_bias, and fairseq's sinusoids numbered from
    // the padding id. NLLB's configs are M2M100's.
    private static HfConfig M2M100(JsonObject json)
    {
        HfConfig marian = Marian(json);
        return marian with
        {
            ModelType = "m2m_100",
            VocabSize = Int(json, "vocab_size") ?? 128112,
            Activation = String(json, "activation_function") ?? "relu",
            ScaleEmbedding = Bool(json, "scale_embedding") ?? true,
            PadTokenId = Int(json, "pad_token_id") ?? 1,
            DecoderStartTokenId = Int(json, "decoder_start_token_id") ?? 2,
            EosTokenId = Int(json, "eos_token_id") ?? 2,
            PositionsFromPadding = true,
            PreNorm = true,
            FinalLogitsBias = false,
        };
    }

    // configuration_hf_nomic_bert.py: NomicBertConfig is a GPT2Config (n_embd 768, n_head 12, n_layer 12, n_inner null,
    // n_positions 1024, vocab 50257, layer_norm_epsilon 1e-5, activation_function gelu_new) with its own defaults:
    // rotary_emb_fraction 0.0, rotary_emb_base 1000, qkv_proj_bias, mlp_fc1_bias and mlp_fc2_bias true, type_vocab_size 2,
    // pad_vocab_size_multiple 1, rotary_scaling_factor 1.0, max_trained_positions 2048. Neither sets pad_token_id:
    // absent, it is PretrainedConfig's None and word_embeddings has no padding row. modeling_hf_nomic_bert.py reads the
    // vocabulary rounded up to pad_vocab_size_multiple, and NomciBertGatedMLP rounds the hidden width up to a multiple of
    // 256 (n_inner null: int(8·n_embd/3) first). causal, use_rms_norm, parallel_block and the fused_*/use_flash_attn flags
    // are stored but never read by NomicBertModel's forward pass: ignored, as there.
    private static HfConfig NomicBert(JsonObject json)
    {
        if (Bool(json, "prenorm") == true) throw new NotSupportedException("NomicBERT prenorm is not implemented");
        if ((Double(json, "rotary_emb_fraction") ?? 0.0) != 1.0) throw new NotSupportedException("NomicBERT without full rotary positions (rotary_emb_fraction ≠ 1) is not implemented");
        if (Bool(json, "rotary_emb_interleaved") == true) throw new NotSupportedException("interleaved rotary positions are not implemented");
        if (json["rotary_emb_scale_base"] is JsonNode) throw new NotSupportedException("rotary_emb_scale_base is not implemented");
        if (Bool(json, "rotary_head_dim") == true) throw new NotSupportedException("rotary_head_dim is not implemented");
        if (Bool(json, "norm_mlp") == true) throw new NotSupportedException("norm_mlp (a LayerNorm after the gate) is not implemented");
        string activation = String(json, "activation_function") ?? "gelu_new";
        if (activation is not ("swiglu" or "geglu" or "glu")) throw new NotSupportedException($"NomicBERT's ungated MLP ('{activation}') is not implemented");
        int embd = Int(json, "n_embd") ?? 768, heads = Int(json, "n_head") ?? 12;
        if ((Int(json, "num_heads_kv") ?? heads) != heads) throw new NotSupportedException("NomicBERT num_heads_kv is not implemented");
        int vocab = Int(json, "vocab_size") ?? 50257, multiple = Int(json, "pad_vocab_size_multiple") ?? 1;
        if (vocab % multiple != 0) vocab += multiple - vocab % multiple;
        int inner = Int(json, "n_inner") ?? 8 * embd / 3;
        inner = (inner + 255) / 256 * 256;
        // rotary_scaling_factor: absent → 1.0, null or 0 → none (the plain NomicBertRotaryEmbedding).
        double? scaling = json.ContainsKey("rotary_scaling_factor") ? Double(json, "rotary_scaling_factor") : 1.0;
        return new HfConfig
        {
            ModelType = "nomic_bert",
            Family = HfFamily.NomicBert,
            VocabSize = vocab,
            HiddenSize = embd,
            Layers = Int(json, "n_layer") ?? 12,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Divide(embd, heads),
            IntermediateSize = inner,
            MaxPositions = Int(json, "n_positions") is int p && p > 0 ? p : 2048,
            Activation = activation,
            NormEps = Double(json, "layer_norm_epsilon") ?? 1e-5,
            TieWordEmbeddings = false,
            TypeVocabSize = Int(json, "type_vocab_size") ?? 2,
            PadTokenId = Int(json, "pad_token_id") ?? -1,
            RopeTheta = Double(json, "rotary_emb_base") ?? 1000.0,
            QkvBias = Bool(json, "qkv_proj_bias") ?? true,
            OutputBias = Bool(json, "qkv_proj_bias") ?? true,
            MlpBias = Bool(json, "mlp_fc1_bias") ?? true,
            MlpOutputBias = Bool(json, "mlp_fc2_bias") ?? true,
            RotaryUnscaledPositions = scaling is double f && f != 0 ? Int(json, "max_trained_positions") ?? 2048 : int.MaxValue,
        };
    }

    // configuration_t5.py (T5Config: vocab 32128, d_model 512, d_kv 64, d_ff 2048, 6 layers, num_decoder_layers null →
    // num_layers, 8 heads, 32 buckets up to distance 128, ε 1e-6, feed_forward_proj "relu", pad 0, eos 1, tied) and
    // configuration_mt5.py (MT5Config: the same keys, vocab 250112, d_ff 1024, "gated-gelu", untied). feed_forward_proj
    // is "act" or "gated-act"; T5Config derives dense_act_fn (the act, "gated-gelu" read as gelu_new for backwards
    // compatibility) and is_gated_act from it, but a saved config.json carries both keys and PretrainedConfig.__init__
    // sets them after the derivation: the file's dense_act_fn and is_gated_act win when present. decoder_start_token_id
    // has no default (T5's _shift_right refuses None); n_positions, dropout_rate and initializer_factor are not read by
    // the forward pass (positions are relative, without limit).
    private static HfConfig T5(JsonObject json, string modelType)
    {
        bool mt5 = modelType == "mt5";
        string projection = String(json, "feed_forward_proj") ?? (mt5 ? "gated-gelu" : "relu");
        string[] parts = projection.Split('-');
        if (parts.Length > 2 || parts.Length == 2 && parts[0] != "gated")
            throw new InvalidDataException($"feed_forward_proj '{projection}' is not 'act' or 'gated-act'");
        string activation = String(json, "dense_act_fn") ?? (projection == "gated-gelu" ? "gelu_new" : parts[^1]);
        int d = Int(json, "d_model") ?? 512, layers = Int(json, "num_layers") ?? 6, heads = Int(json, "num_heads") ?? 8;
        int buckets = Int(json, "relative_attention_num_buckets") ?? 32;
        if (Bool(json, "is_encoder_decoder") == false) throw new NotSupportedException("T5 without a decoder (T5EncoderModel) has no reference here");
        return new HfConfig
        {
            ModelType = modelType,
            Family = HfFamily.T5,
            VocabSize = Int(json, "vocab_size") ?? (mt5 ? 250112 : 32128),
            HiddenSize = d,
            Layers = layers,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Int(json, "d_kv") ?? 64,
            IntermediateSize = Int(json, "d_ff") ?? (mt5 ? 1024 : 2048),
            MaxPositions = Int(json, "n_positions") ?? 512,
            Activation = activation,
            NormEps = Double(json, "layer_norm_epsilon") ?? 1e-6,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings") ?? !mt5,
            PadTokenId = Int(json, "pad_token_id") ?? 0,
            EosTokenId = Int(json, "eos_token_id") ?? 1,
            DecoderStartTokenId = Int(json, "decoder_start_token_id")
                ?? throw new InvalidDataException("decoder_start_token_id is not set: T5's _shift_right needs it (T5 checkpoints use the padding id)"),
            DecoderLayers = Int(json, "num_decoder_layers") ?? layers,
            DecoderHeads = heads,
            DecoderIntermediateSize = Int(json, "d_ff") ?? (mt5 ? 1024 : 2048),
            GatedFeedForward = Bool(json, "is_gated_act") ?? parts[0] == "gated",
            RelativeBuckets = buckets >= 4 ? buckets : throw new InvalidDataException($"{buckets} relative attention buckets: the bidirectional buckets need 4 or more"),
            RelativeMaxDistance = Int(json, "relative_attention_max_distance") ?? 128,
        };
    }

    // configuration_mpnet.py (MPNetConfig: vocab 30527, hidden 768, 12 layers of 12 heads, intermediate 3072, erf gelu,
    // 512 positions, ε 1e-12, 32 relative buckets, <s> 0, <pad> 1, </s> 2). modeling_mpnet.py ignores pad_token_id:
    // MPNetEmbeddings hard-codes padding_idx 1 for both tables and for the RoBERTa-style position ids, and
    // compute_position_bias always buckets into 32 (max_distance 128, both fixed), so a table of fewer rows fails on
    // lookup and rows past 32 are never read. No token types; the dropouts and initializer_range change nothing here.
    private static HfConfig MPNet(JsonObject json)
    {
        int hidden = Int(json, "hidden_size") ?? 768, heads = Int(json, "num_attention_heads") ?? 12;
        int buckets = Int(json, "relative_attention_num_buckets") ?? 32;
        if (buckets < 32) throw new InvalidDataException($"{buckets} relative attention buckets: MPNet's compute_position_bias always buckets into 32, so a smaller table fails on lookup");
        return new HfConfig
        {
            ModelType = "mpnet",
            Family = HfFamily.MPNet,
            VocabSize = Int(json, "vocab_size") ?? 30527,
            HiddenSize = hidden,
            Layers = Int(json, "num_hidden_layers") ?? 12,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = Divide(hidden, heads),
            IntermediateSize = Int(json, "intermediate_size") ?? 3072,
            MaxPositions = Int(json, "max_position_embeddings") ?? 512,
            Activation = String(json, "hidden_act") ?? "gelu",
            NormEps = Double(json, "layer_norm_eps") ?? 1e-12,
            TieWordEmbeddings = false,
            PadTokenId = 1,
            PositionsFromPadding = true,
            EosTokenId = Int(json, "eos_token_id") ?? 2,
            RelativeBuckets = buckets,
            RelativeMaxDistance = 128,
        };
    }

    // configuration_gemma3.py (Gemma3TextConfig): vocab 262208, hidden 2304, intermediate 9216, 26 layers of 8 heads on
    // 4 key/value heads, head_dim 256 (not hidden/heads), gelu_pytorch_tanh, 131072 positions, ε 1e-6, pad 0, eos 1,
    // bos 2, tied, no attention bias, θ 1e6 for the global layers and rope_local_base_freq 1e4 for the sliding ones,
    // query_pre_attn_scalar 256, sliding_window 4096, rope_scaling and both softcappings null. rope_scaling applies to the
    // global table only (the local one is built from a copy of the config with the default rope). Without layer_types,
    // layer i slides unless i + 1 is a multiple of the sliding_window_pattern kwarg (default 6); the constructor reads
    // that key after PretrainedConfig has stored the file's keys, so a saved "_sliding_window_pattern" never decides.
    // use_bidirectional_attention (EmbeddingGemma) lifts the causal mask and, in the constructor, halves the sliding window
    // (w // 2 + 1; see Bidirectional). Not implemented, so refused: the softcappings, rope types other than linear.
    private static HfConfig Gemma3(JsonObject json)
    {
        if (json["final_logit_softcapping"] is JsonNode) throw new NotSupportedException("Gemma final_logit_softcapping is not implemented");
        if (json["attn_logit_softcapping"] is JsonNode) throw new NotSupportedException("Gemma attn_logit_softcapping is not implemented");
        if (json["rope_parameters"] is JsonNode) throw new NotSupportedException("rope_parameters (per layer type) is not implemented; rope_theta, rope_local_base_freq and rope_scaling are");
        if (Double(json, "partial_rotary_factor") is double partial && partial != 1.0) throw new NotSupportedException("partial_rotary_factor is not implemented");
        double factor = 1.0;
        if (json["rope_scaling"] is JsonObject scaling)
        {
            string type = String(scaling, "rope_type") ?? String(scaling, "type") ?? "default";
            if (type == "linear") factor = Double(scaling, "factor") ?? throw new InvalidDataException("linear rope_scaling without a factor");
            else if (type != "default") throw new NotSupportedException($"rope_type '{type}' is not implemented (only linear)");
            if (factor < 1.0) throw new InvalidDataException($"linear rope_scaling factor {factor} is below 1");
        }
        int layers = Int(json, "num_hidden_layers") ?? 26, heads = Int(json, "num_attention_heads") ?? 8;
        bool[] sliding;
        if (json["layer_types"] is JsonArray types)
        {
            sliding = types.Select(t => t?.GetValue<string>() switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                string other => throw new InvalidDataException($"layer type '{other}' is not sliding_attention or full_attention"),
                null => throw new InvalidDataException("a null layer type"),
            }).ToArray();
            if (sliding.Length != layers) throw new InvalidDataException($"{sliding.Length} layer_types for {layers} layers");
        }
        else
        {
            int pattern = Int(json, "sliding_window_pattern") ?? 6;
            if (pattern < 1) throw new InvalidDataException($"sliding_window_pattern {pattern}");
            sliding = Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0).ToArray();
        }
        int? window = Int(json, "sliding_window") ?? (json.ContainsKey("sliding_window") ? null : 4096);
        if (window is null && sliding.Contains(true)) throw new InvalidDataException("sliding layers without a sliding_window");
        if (window is < 1) throw new InvalidDataException($"sliding_window {window}");
        bool bidirectional = Bool(json, "use_bidirectional_attention") ?? false;
        if (bidirectional && window is int raw) window = raw / 2 + 1;
        bool bias = Bool(json, "attention_bias") ?? false;
        return new HfConfig
        {
            ModelType = "gemma3_text",
            Family = HfFamily.Gemma3,
            VocabSize = Int(json, "vocab_size") ?? 262208,
            HiddenSize = Int(json, "hidden_size") ?? 2304,
            Layers = layers,
            Heads = heads,
            KeyValueHeads = Int(json, "num_key_value_heads") ?? 4,
            HeadDim = Int(json, "head_dim") ?? 256,
            IntermediateSize = Int(json, "intermediate_size") ?? 9216,
            MaxPositions = Int(json, "max_position_embeddings") ?? 131072,
            Activation = String(json, "hidden_activation") ?? "gelu_pytorch_tanh",
            NormEps = Double(json, "rms_norm_eps") ?? 1e-6,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings") ?? true,
            // Gemma3TextScaledWordEmbedding(vocab, hidden, padding_idx = pad_token_id, embed_scale = √hidden).
            PadTokenId = Int(json, "pad_token_id") ?? 0,
            // gemma-3-1b-it lists two ends of turn ([1, 106]): the first stands for them here.
            EosTokenId = json["eos_token_id"] is JsonArray ends ? ends[0]!.GetValue<int>() : Int(json, "eos_token_id") ?? 1,
            ScaleEmbedding = true,
            QueryKeyNorm = true,
            QkvBias = bias,
            OutputBias = bias,
            RopeTheta = Double(json, "rope_theta") ?? 1_000_000.0,
            RopeLocalTheta = Double(json, "rope_local_base_freq") ?? 10_000.0,
            RopeLinearFactor = factor,
            QueryPreAttnScalar = Double(json, "query_pre_attn_scalar") ?? 256,
            SlidingWindow = window ?? 0,
            SlidingLayers = sliding,
            Bidirectional = bidirectional,
        };
    }

    private static int Divide(int size, int heads) =>
        size % heads == 0 ? size / heads : throw new InvalidDataException($"hidden size {size} is not a multiple of {heads} heads");

    // A key that is absent or null takes the default, as in transformers.
    private static int? Int(JsonObject json, string key) => json[key] is JsonNode n ? n.GetValue<int>() : null;
    private static double? Double(JsonObject json, string key) => json[key] is JsonNode n ? n.GetValue<double>() : null;
    private static bool? Bool(JsonObject json, string key) => json[key] is JsonNode n ? n.GetValue<bool>() : null;
    private static string? String(JsonObject json, string key) => json[key] is JsonNode n ? n.GetValue<string>() : null;
}
