using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>A Hugging Face config file of the project (a <c>TransformerConfig</c> item): its path and text.</summary>
    internal sealed record ConfigText(string Path, string? Text);

    /// <summary>
    /// The second front end (DESIGN.md, "Model families"): reads the <c>config.json</c> a declaration names into the same
    /// <see cref="ModelSpec"/> the attribute fills, with the family's defaults written where each key is read (as each
    /// family's configuration class in transformers declares them). Everything a config says that the compiler cannot
    /// build is a diagnostic naming the key and its value; nothing is ignored silently.
    /// </summary>
    internal sealed partial class ConfigReader
    {
        private readonly ModelSpec _spec;
        private readonly string _file;
        private readonly Dictionary<string, object?> _keys;
        private readonly List<DiagnosticInfo> _found = new();
        private LocationInfo? Where => _spec.Config.Location ?? _spec.AttributeLocation;

        private ConfigReader(ModelSpec spec, string file, Dictionary<string, object?> keys)
        {
            _spec = spec;
            _file = file;
            _keys = keys;
        }

        /// <summary>
        /// The spec with the config applied, or null and the reasons when the config cannot be found, read or compiled.
        /// A spec without <c>Config</c> comes back unchanged.
        /// </summary>
        public static (ModelSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics) Apply(ModelSpec spec, EquatableArray<ConfigText> configs)
        {
            string? requested = spec.Config.Value;
            if (string.IsNullOrEmpty(requested)) return (spec, EquatableArray<DiagnosticInfo>.Empty);
            LocationInfo? where = spec.Config.Location ?? spec.AttributeLocation;
            string wanted = Normalize(requested!), tail = wanted;
            // Only "./" and "../" steps are dropped before matching the end of a path: ".cache/" is a folder of its own.
            while (true)
            {
                if (tail.StartsWith("./", StringComparison.Ordinal)) tail = tail.Substring(2);
                else if (tail.StartsWith("../", StringComparison.Ordinal)) tail = tail.Substring(3);
                else if (tail.StartsWith("/", StringComparison.Ordinal)) tail = tail.Substring(1);
                else break;
            }
            ConfigText? match = configs
                .Where(c => Normalize(c.Path).EndsWith("/" + tail, StringComparison.OrdinalIgnoreCase) || string.Equals(Normalize(c.Path), wanted, StringComparison.OrdinalIgnoreCase))
                .OrderBy(c => c.Path.Length)
                .FirstOrDefault();
            if (match is null)
            {
                string available = configs.Count == 0 ? "none" : string.Join(", ", configs.Select(c => c.Path).OrderBy(p => p, StringComparer.Ordinal));
                return (null, One(DiagnosticDescriptors.ConfigNotFound, where, requested!, available));
            }
            string name = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(match.Path) ?? "") + "/" + System.IO.Path.GetFileName(match.Path);
            Dictionary<string, object?> keys;
            try
            {
                if (MiniJson.Parse(match.Text ?? "") is not List<KeyValuePair<string, object?>> obj) throw new FormatException("the top level is not an object");
                keys = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (KeyValuePair<string, object?> pair in obj) keys[pair.Key] = pair.Value;
            }
            catch (FormatException e)
            {
                return (null, One(DiagnosticDescriptors.ConfigUnreadable, where, name, e.Message));
            }
            var reader = new ConfigReader(spec, name, keys);
            ModelSpec? resolved = reader.Read();
            if (resolved is { IsEncoderOnly: true, Family: { } family } && resolved.Head.Value == EnumValues.SentenceEmbedding)
                resolved = reader.ApplyModules(resolved, family, match.Path, configs);
            return reader._found.Count > 0 ? (null, new EquatableArray<DiagnosticInfo>(reader._found)) : (resolved, EquatableArray<DiagnosticInfo>.Empty);
        }

        /// <summary>
        /// A sentence embedder takes its pooling and its Dense layers from the sentence-transformers modules beside the
        /// config (<see cref="SentenceTransformerModules"/>), when the folder has them: a declared <c>Pooling</c> that
        /// contradicts <c>1_Pooling/config.json</c> is a TG0043.
        /// </summary>
        private ModelSpec ApplyModules(ModelSpec spec, FamilySpec family, string configPath, EquatableArray<ConfigText> configs)
        {
            SentenceTransformerModules modules = SentenceTransformerModules.Read(configPath, configs, spec.DModel.Value,
                (file, key, value, why) => _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigUnsupported, Where, file, key, value, why)));
            if (!modules.Found) return spec;
            if (modules.Pooling is int pooling && spec.Pooling.IsSet && spec.Pooling.Value != pooling)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.Pooling.Location, "Pooling", EnumText("Pooling", spec.Pooling.Value),
                    "1_Pooling/config.json", pooling == EnumValues.MeanPooling ? "pooling_mode_mean_tokens" : "pooling_mode_cls_token", "the folder's sentence-transformers pooling"));
            return spec with
            {
                Pooling = modules.Pooling is int mode ? new Argument<int>(mode, spec.Pooling.Location) : spec.Pooling,
                // sentence-transformers normalizes only where modules.json lists a Normalize module: the "dot" retrieval models
                // (msmarco-*-dot, multi-qa-*-dot) score by the dot product of their vectors as they are.
                Family = family with { Dense = new EquatableArray<DenseLayer>(modules.Dense), UnnormalizedEmbeddings = !modules.Normalizes },
            };
        }

        private static EquatableArray<DiagnosticInfo> One(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? where, params object[] args) =>
            new([DiagnosticInfo.Create(descriptor, where, args)]);

        private static string Normalize(string path) => path.Replace('\\', '/');

        private ModelSpec? Read()
        {
            string? modelType = String("model_type");
            switch (modelType)
            {
                case "gpt2": return Gpt2();
                case "bert": return Bert(FamilySpec.Bert);
                case "roberta": case "xlm-roberta": return Bert(FamilySpec.Roberta);
                case "electra": return Bert(FamilySpec.Electra);
                case "distilbert": return DistilBert();
                case "nomic_bert": return NomicBert();
                case "mpnet": return MPNet();
                case "modernbert": return ModernBert();
                case "llama": case "mistral": return Llama(FamilySpec.Llama, modelType);
                case "qwen2": return Llama(FamilySpec.Qwen2, modelType);
                case "qwen3": return Llama(FamilySpec.Qwen3, modelType);
                case "phi3": return Llama(FamilySpec.Phi3, modelType);
                case "gemma3_text": return Gemma3();
                case "gemma3": return Gemma3Multimodal();
                case "marian": return EncoderDecoder(FamilySpec.Marian);
                case "bart": return EncoderDecoder(FamilySpec.Bart);
                case "mbart": return EncoderDecoder(FamilySpec.MBart);
                case "m2m_100": return EncoderDecoder(FamilySpec.M2M100);
                case "t5": case "mt5": return T5(modelType);
                case null:
                    _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigMissingKey, Where, _file, "model_type", "Hugging Face"));
                    return null;
                default:
                    Unsupported("model_type", modelType, "only gpt2, bert, roberta, xlm-roberta, electra, distilbert, nomic_bert, mpnet, modernbert, llama, mistral, phi3, qwen2, qwen3, gemma3_text, gemma3, marian, bart, mbart, m2m_100, t5 and mt5 are known");
                    return null;
            }
        }

        // ----- the three families -----

        private ModelSpec? Gpt2()
        {
            int embd = Required("n_embd", "hidden_size"), layers = Required("n_layer", "num_hidden_layers"), heads = Required("n_head", "num_attention_heads");
            int positions = Required("n_positions", "max_position_embeddings"), vocab = Required("vocab_size");
            int inner = Int("n_inner") ?? 4 * embd;
            int feedForward = Activation("activation_function", "gelu_new", gated: false);
            float eps = Float("layer_norm_epsilon") ?? 1e-5f;
            RequireFlag("scale_attn_weights", true, "attention scores not divided by √head_dim");
            RequireFlag("scale_attn_by_inverse_layer_idx", false, "scores also divided by layer index + 1");
            RequireFlag("add_cross_attention", false, "cross-attention in a GPT-2 block");
            if (embd > 0 && heads > 0 && embd % heads != 0) Unsupported("n_head", heads, $"n_embd {embd} is not a multiple of it");
            var family = new FamilySpec(FamilySpec.Gpt2, _file, heads > 0 ? embd / heads : 0, heads, positions, eps, RmsNorm: false, feedForward,
                Rotary: false, RopeTheta: 0f, QkvBias: true, OutBias: true, FfnBias: true, TypeVocab: 0, EmbeddingNorm: false);
            return Resolve(family, EnumValues.DecoderOnly, vocab, embd, heads, layers, inner, EnumValues.Learned, EnumValues.PreNorm, tied: Bool("tie_word_embeddings") ?? true);
        }

        /// <summary>
        /// BERT, RoBERTa/XLM-RoBERTa or ELECTRA (<paramref name="kind"/>): the same layers; RoBERTa's positions start after its
        /// padding id; ELECTRA's embeddings are <c>embedding_size</c> wide and <c>embeddings_project</c> maps them to the hidden
        /// size where the two differ (ELECTRA-small's discriminator: 128 to 256).
        /// </summary>
        private ModelSpec? Bert(int kind)
        {
            int hidden = Required("hidden_size"), layers = Required("num_hidden_layers"), heads = Required("num_attention_heads");
            int inner = Required("intermediate_size"), vocab = Required("vocab_size"), positions = Required("max_position_embeddings");
            int feedForward = Activation("hidden_act", "gelu", gated: false);
            float eps = Float("layer_norm_eps") ?? 1e-12f;
            string? positionType = String("position_embedding_type");
            if (positionType is not null && positionType != "absolute")
                Unsupported("position_embedding_type", positionType, "only absolute learned positions are compiled");
            RequireFlag("is_decoder", false, "a BERT used as a decoder");
            RequireFlag("add_cross_attention", false, "cross-attention in a BERT layer");
            if (hidden > 0 && heads > 0 && hidden % heads != 0) Unsupported("num_attention_heads", heads, $"hidden_size {hidden} is not a multiple of it");
            // RoBERTa (create_position_ids_from_input_ids): position ids count from padding_idx + 1, rows 0..padding_idx unused.
            int pad = Int("pad_token_id") ?? (kind == FamilySpec.Roberta ? 1 : 0);
            int embedding = kind == FamilySpec.Electra ? Int("embedding_size") ?? 128 : hidden; // ElectraConfig's default
            if (embedding <= 0) Unsupported("embedding_size", embedding, "a positive width is expected");
            var family = new FamilySpec(kind, _file, heads > 0 ? hidden / heads : 0, heads, positions, eps, RmsNorm: false, feedForward,
                Rotary: false, RopeTheta: 0f, QkvBias: true, OutBias: true, FfnBias: true, TypeVocab: Int("type_vocab_size") ?? 2, EmbeddingNorm: true,
                PositionOffset: kind == FamilySpec.Roberta ? pad + 1 : 0, LookupPaddingRow: pad, EmbeddingWidth: embedding != hidden && embedding > 0 ? embedding : 0);
            (int? classes, bool scores) = BertHead();
            return Resolve(family with { ScoreHead = scores }, EnumValues.EncoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Learned, EnumValues.PostNorm, tied: true,
                pad: pad, classes: classes);
        }

        /// <summary>
        /// DistilBERT (configuration_distilbert.py's keys: dim, n_layers, n_heads, hidden_dim, activation): BERT's post-LN
        /// layers with no token types, LayerNorm eps fixed at 1e-12 in its modules, learned positions.
        /// </summary>
        private ModelSpec? DistilBert()
        {
            int hidden = Required("dim"), layers = Required("n_layers"), heads = Required("n_heads");
            int inner = Required("hidden_dim"), vocab = Required("vocab_size"), positions = Required("max_position_embeddings");
            int feedForward = Activation("activation", "gelu", gated: false);
            RequireFlag("sinusoidal_pos_embds", false, "a fixed sinusoidal position table");
            if (hidden > 0 && heads > 0 && hidden % heads != 0) Unsupported("n_heads", heads, $"dim {hidden} is not a multiple of it");
            int pad = Int("pad_token_id") ?? 0;
            var family = new FamilySpec(FamilySpec.DistilBert, _file, heads > 0 ? hidden / heads : 0, heads, positions, 1e-12f, RmsNorm: false, feedForward,
                Rotary: false, RopeTheta: 0f, QkvBias: true, OutBias: true, FfnBias: true, TypeVocab: 0, EmbeddingNorm: true, LookupPaddingRow: pad);
            (int? classes, bool scores) = BertHead();
            return Resolve(family with { ScoreHead = scores }, EnumValues.EncoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Learned, EnumValues.PostNorm, tied: true,
                pad: pad, classes: classes);
        }

        /// <summary>
        /// NomicBERT (nomic-embed-text; the keys of the configuration_hf_nomic_bert.py its hub folder ships, GPT2Config's
        /// names): BERT's post-LN layers and token types with rotary positions instead of a learned table (half-split, base
        /// <c>rotary_emb_base</c>), Q | K | V fused in <c>Wqkv</c>, a SwiGLU feed-forward <c>fc2(fc11(x)·silu(fc12(x)))</c>,
        /// and no biases in attention or MLP. The vocabulary is rounded up to <c>pad_vocab_size_multiple</c> and the feed-forward
        /// width to a multiple of 256, as the model does.
        /// What its code can do and the compiler cannot is refused: pre-norm layers, partial or interleaved or xPos-scaled
        /// rotation, other activations, biases, and dynamic NTK scaling beyond <c>max_trained_positions</c> (it changes
        /// nothing within them).
        /// </summary>
        private ModelSpec? NomicBert()
        {
            int hidden = Required("n_embd"), layers = Required("n_layer"), heads = Required("n_head"), vocab = Required("vocab_size");
            int positions = Int("n_positions") ?? 2048;
            // NomciBertGatedMLP: hidden_features = n_inner (or 8·n_embd/3), rounded up to a multiple of 256.
            int inner = Int("n_inner") ?? 8 * hidden / 3;
            inner = (inner + 255) / 256 * 256;
            int multiple = Int("pad_vocab_size_multiple") ?? 1;
            if (multiple > 1 && vocab % multiple != 0) vocab += multiple - vocab % multiple;
            string activation = String("activation_function") ?? "gelu";
            if (activation != "swiglu") Unsupported("activation_function", activation, "only the swiglu feed-forward (fc2(fc11(x)·silu(fc12(x)))) is compiled for nomic_bert");
            float eps = Float("layer_norm_epsilon") ?? 1e-5f;
            // NomicBertConfig's defaults: biases on, rotary_scaling_factor 1.0 (dynamic NTK beyond max_trained_positions).
            RequireFlag("prenorm", false, "pre-norm NomicBERT layers");
            RequireFlag("rotary_emb_interleaved", false, "interleaved rotary pairs");
            RequireFlag("norm_mlp", false, "a LayerNorm inside the feed-forward");
            foreach ((string key, string what) in new[] { ("qkv_proj_bias", "attention biases"), ("mlp_fc1_bias", "feed-forward biases"), ("mlp_fc2_bias", "feed-forward biases") })
                if (Bool(key) ?? true) Unsupported(key, true, what + " are not implemented" + (_keys.ContainsKey(key) ? "" : " (NomicBertConfig's default when the key is absent)"));
            if (Float("rotary_emb_fraction") is float fraction && fraction != 1f) Unsupported("rotary_emb_fraction", fraction, "only whole-head rotation is implemented");
            if (_keys.TryGetValue("rotary_emb_scale_base", out object? xpos) && xpos is not null) Unsupported("rotary_emb_scale_base", Text(xpos), "xPos-scaled rotation is not implemented");
            if (_keys.TryGetValue("rotary_head_dim", out object? headDimBug) && headDimBug is true) Unsupported("rotary_head_dim", true, "rotation along the heads instead of the positions is not implemented");
            int seqLen = _spec.SeqLen.Value, trained = Int("max_trained_positions") ?? 2048;
            object? ntk = _keys.TryGetValue("rotary_scaling_factor", out object? factor) ? factor : 1.0;
            if (ntk is not null && seqLen > trained)
                Unsupported("rotary_scaling_factor", Text(ntk), $"dynamic NTK scaling is not implemented; it changes nothing up to max_trained_positions = {trained}, which SeqLen = {seqLen} exceeds");
            if (hidden > 0 && heads > 0 && (hidden % heads != 0 || hidden / heads % 2 != 0))
                Unsupported("n_head", heads, $"n_embd {hidden} must split into heads of an even size (rotary positions)");
            // A GPT2Config has no pad_token_id: then the word table has no padding row, and padding masks use BERT's [PAD], 0.
            int? configPad = Int("pad_token_id");
            var family = new FamilySpec(FamilySpec.NomicBert, _file, heads > 0 ? hidden / heads : 0, heads, positions, eps, RmsNorm: false, FamilySpec.SwiGlu,
                Rotary: true, RopeTheta: Float("rotary_emb_base") ?? 1000f, QkvBias: false, OutBias: false, FfnBias: false, TypeVocab: Int("type_vocab_size") ?? 2,
                EmbeddingNorm: true, LookupPaddingRow: configPad ?? -1);
            (int? classes, _) = BertHead();
            if (classes is not null) Unsupported("architectures", Text(_keys["architectures"]), "only NomicBertModel (sentence embeddings) is compiled for nomic_bert");
            return Resolve(family, EnumValues.EncoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Rotary, EnumValues.PostNorm, tied: true, pad: configPad ?? 0);
        }

        /// <summary>
        /// MPNet (MPNetModel; sentence-transformers/all-mpnet-base-v2, multi-qa-mpnet-base): BERT's post-LN layers under
        /// its own names (<c>attention.attn.q/k/v/o</c>), no token types, RoBERTa's positions (counted from the padding id
        /// + 1 over the tokens that are not padding), and one relative-position bias for the whole encoder
        /// (<c>encoder.relative_attention_bias</c>) added to every layer's scaled scores. transformers' MPNetEmbeddings
        /// fixes the padding id at 1 and MPNetEncoder.compute_position_bias buckets relative positions into 32 buckets up to
        /// distance 128 whatever the config says, so a config that says otherwise is refused rather than read differently.
        /// Its sequence classifier is RoBERTa's head (<c>classifier.dense</c>, tanh, <c>classifier.out_proj</c>).
        /// </summary>
        private ModelSpec? MPNet()
        {
            int hidden = Required("hidden_size"), layers = Required("num_hidden_layers"), heads = Required("num_attention_heads");
            int inner = Required("intermediate_size"), vocab = Required("vocab_size"), positions = Required("max_position_embeddings");
            int feedForward = Activation("hidden_act", "gelu", gated: false);
            // MPNetConfig's default eps; all-mpnet-base-v2's file says 1e-5.
            float eps = Float("layer_norm_eps") ?? 1e-12f;
            const int Buckets = 32, MaxDistance = 128, Pad = 1;
            int buckets = Int("relative_attention_num_buckets") ?? Buckets;
            if (buckets != Buckets)
                Unsupported("relative_attention_num_buckets", buckets, $"MPNetEncoder.compute_position_bias buckets relative positions into {Buckets} whatever the table's size, so only {Buckets} is compiled");
            if (Int("pad_token_id") is int pad && pad != Pad)
                Unsupported("pad_token_id", pad, $"MPNetEmbeddings numbers positions from its fixed padding id {Pad}, so only {Pad} is compiled");
            if (hidden > 0 && heads > 0 && hidden % heads != 0) Unsupported("num_attention_heads", heads, $"hidden_size {hidden} is not a multiple of it");
            var family = new FamilySpec(FamilySpec.MPNet, _file, heads > 0 ? hidden / heads : 0, heads, positions, eps, RmsNorm: false, feedForward,
                Rotary: false, RopeTheta: 0f, QkvBias: true, OutBias: true, FfnBias: true, TypeVocab: 0, EmbeddingNorm: true,
                PositionOffset: Pad + 1, LookupPaddingRow: Pad, RelativeBuckets: Buckets, RelativeMaxDistance: MaxDistance);
            (int? classes, bool scores) = BertHead();
            return Resolve(family with { ScoreHead = scores }, EnumValues.EncoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Learned, EnumValues.PostNorm, tied: true,
                pad: Pad, classes: classes);
        }

        /// <summary>
        /// ModernBERT (ModernBertModel, ModernBertForMaskedLM; answerdotai/ModernBERT-base and -large, gte-modernbert-base,
        /// modernbert-embed-base): pre-norm layers over a normalized token embedding (no positions in it), LayerNorms without
        /// bias (<c>norm_bias</c>) and no norm before the first layer's attention, Q | K | V fused in <c>Wqkv</c>, GEGLU
        /// <c>Wo(act(input)·gate)</c> over <c>Wi</c>'s two halves, no biases (<c>attention_bias</c>, <c>mlp_bias</c>), rotary
        /// positions (rotate_half) and every <c>global_attn_every_n_layers</c>-th layer from the first global (base
        /// <c>global_rope_theta</c>), the others local: |i − j| ≤ <c>local_attention</c> // 2, base <c>local_rope_theta</c>;
        /// transformers 5 writes the bases under <c>rope_parameters</c> and the kinds under <c>layer_types</c>. A
        /// <c>final_norm</c> ends the stack. Absent keys take ModernBertConfig's defaults.
        /// </summary>
        private ModelSpec? ModernBert()
        {
            int hidden = Required("hidden_size"), layers = Required("num_hidden_layers"), heads = Required("num_attention_heads");
            int inner = Required("intermediate_size"), vocab = Required("vocab_size"), positions = Int("max_position_embeddings") ?? 8192;
            if (hidden > 0 && heads > 0 && (hidden % heads != 0 || hidden / heads % 2 != 0))
                Unsupported("num_attention_heads", heads, $"hidden_size {hidden} must split into heads of an even size (rotary positions)");
            if (Int("head_dim") is int headDim && heads > 0 && headDim != hidden / heads)
                Unsupported("head_dim", headDim, $"ModernBertAttention sizes its heads hidden_size / num_attention_heads = {hidden / Math.Max(heads, 1)}");
            string activation = String("hidden_activation") ?? "gelu";
            int feedForward = activation switch
            {
                "gelu" => FamilySpec.GeGluErf,
                "gelu_new" or "gelu_pytorch_tanh" => FamilySpec.GeGluTanh,
                "silu" or "swish" => FamilySpec.SwiGlu,
                _ => -1,
            };
            if (feedForward < 0)
            {
                Unsupported("hidden_activation", activation, "ModernBERT's gated feed-forward has kernels for gelu, gelu_pytorch_tanh (gelu_new) and silu");
                feedForward = FamilySpec.GeGluErf;
            }
            float eps = Float("norm_eps") ?? 1e-5f;
            bool normBias = Bool("norm_bias") ?? false, attentionBias = Bool("attention_bias") ?? false, mlpBias = Bool("mlp_bias") ?? false;

            // Each layer's kind: global when its index is a multiple of global_attn_every_n_layers (what ModernBertAttention
            // tests for the window); transformers 5's layer_types, where given, choose the rotary base and must agree.
            int every = Int("global_attn_every_n_layers") ?? 3, local = Int("local_attention") ?? 128;
            if (every <= 0) Unsupported("global_attn_every_n_layers", every, "a positive period is expected");
            // local_attention // 2 = 0 would let a local query see only itself, which the kernels' window (0 = none) cannot say.
            if (local < 2) Unsupported("local_attention", local, "a window of at least 2 (1 position either side) is expected");
            var kinds = new System.Text.StringBuilder();
            for (int i = 0; i < layers; i++) kinds.Append(every > 0 && i % every == 0 ? 'F' : 'S');
            if (_keys.TryGetValue("layer_types", out object? types) && types is not null)
            {
                var listed = new System.Text.StringBuilder();
                if (types is List<object?> list)
                    foreach (object? type in list) listed.Append(type switch { "full_attention" => 'F', "sliding_attention" => 'S', _ => '?' });
                if (listed.ToString() != kinds.ToString())
                    Unsupported("layer_types", Text(types), $"ModernBERT windows every layer whose index is not a multiple of global_attn_every_n_layers = {every}, so layer_types must list those as sliding_attention and the others as full_attention");
            }
            float globalTheta = Float("global_rope_theta") ?? 160000f, localTheta = Float("local_rope_theta") ?? 10000f;
            if (Object("rope_parameters") is { } parameters)
            {
                foreach (KeyValuePair<string, object?> kind in parameters)
                {
                    if (kind.Value is not List<KeyValuePair<string, object?>> rope || Lookup(rope, "rope_theta") is not double ropeBase)
                    {
                        Unsupported("rope_parameters", Text(parameters), "each layer kind's rope_theta is expected");
                        continue;
                    }
                    if (RopeScalingOf(rope) is not null)
                        Unsupported("rope_parameters", Text(parameters), "scaled rotary positions are not implemented");
                    if (kind.Key == "full_attention") globalTheta = (float)ropeBase;
                    else if (kind.Key == "sliding_attention") localTheta = (float)ropeBase;
                    else Unsupported("rope_parameters", Text(parameters), "only full_attention and sliding_attention layers are known");
                }
            }
            else if (_keys.TryGetValue("rope_scaling", out object? scaling) && scaling is not null)
                Unsupported("rope_scaling", Text(scaling), "scaled rotary positions are not implemented");

            // The classifiers' ModernBertPredictionHead: head.dense (classifier_bias), classifier_activation, head.norm; a sequence
            // classifier pools as classifier_pooling says.
            int classifierActivation = Activation("classifier_activation", "gelu", gated: false);
            string? pooling = String("classifier_pooling");
            int pad = Int("pad_token_id") ?? 50283;
            var family = new FamilySpec(FamilySpec.ModernBert, _file, heads > 0 ? hidden / heads : 0, heads, positions, eps, RmsNorm: false, feedForward,
                Rotary: true, globalTheta, QkvBias: attentionBias, OutBias: attentionBias, FfnBias: mlpBias, TypeVocab: 0, EmbeddingNorm: true,
                LookupPaddingRow: pad, SlidingWindow: local / 2 + 1, SlidingLayers: kinds.ToString(), LocalRopeTheta: localTheta,
                Bidirectional: true, NormBias: normBias, BareFirstAttention: true,
                ClassifierBias: Bool("classifier_bias") ?? false, ClassifierActivation: classifierActivation);
            if (_spec.Head.Value == EnumValues.Classification && pooling is not null and not "cls" and not "mean")
                Unsupported("classifier_pooling", pooling, "ModernBertForSequenceClassification pools by cls or mean");
            bool meanPooled = pooling == "mean";
            if (_spec.Head.Value == EnumValues.Classification && _spec.Pooling.IsSet && (_spec.Pooling.Value == EnumValues.MeanPooling) != meanPooled)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, _spec.Pooling.Location, "Pooling", EnumText("Pooling", _spec.Pooling.Value), _file,
                    "classifier_pooling", pooling ?? "cls"));
            (int? classes, bool scores) = BertHead(pooledBy: "classifier_pooling");
            ModelSpec? spec = Resolve(family with { ScoreHead = scores }, EnumValues.EncoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Rotary, EnumValues.PreNorm,
                tied: true, pad: pad, classes: classes);
            return spec is not null && _spec.Head.Value == EnumValues.Classification
                ? spec with { Pooling = new Argument<int>(meanPooled ? EnumValues.MeanPooling : EnumValues.FirstToken, spec.Pooling.Location) }
                : spec;
        }

        /// <summary>
        /// The head a BERT-like checkpoint holds, from its first <c>architectures</c> entry, checked against the declared
        /// <c>Head</c>: <c>…ForSequenceClassification</c> (one label per sequence, from the pooled [CLS] token),
        /// <c>…ForTokenClassification</c> (one per token), or none (<c>…Model</c>, <c>…ForMaskedLM</c>, <c>…ForPreTraining</c>:
        /// sentence embeddings only); other task heads (question answering, multiple choice) are refused. Returns the
        /// labels of a classifier (<c>id2label</c>'s entries, else <c>num_labels</c>) or null, and whether its outputs are
        /// scores with no loss of the model's own (<c>problem_type</c> regression or multi_label_classification, or one label).
        /// <paramref name="pooledBy"/> names the key that chooses a sequence classifier's pooling where the family has one
        /// (ModernBERT's <c>classifier_pooling</c>); the caller then checks the declared <c>Pooling</c> against it.
        /// </summary>
        private (int? Labels, bool Scores) BertHead(string? pooledBy = null)
        {
            string? architecture = _keys.TryGetValue("architectures", out object? list) && list is List<object?> { Count: > 0 } names ? names[0] as string : null;
            int head = architecture switch
            {
                not null when architecture.EndsWith("ForSequenceClassification", StringComparison.Ordinal) => EnumValues.Classification,
                not null when architecture.EndsWith("ForTokenClassification", StringComparison.Ordinal) => EnumValues.Tagging,
                null => EnumValues.SentenceEmbedding,
                _ when architecture.EndsWith("Model", StringComparison.Ordinal) || architecture.EndsWith("ForMaskedLM", StringComparison.Ordinal)
                    || architecture.EndsWith("ForPreTraining", StringComparison.Ordinal) => EnumValues.SentenceEmbedding,
                _ => -1,
            };
            if (head < 0)
            {
                Unsupported("architectures", architecture!, "only the sequence and token classification heads are compiled (or no head: sentence embeddings)");
                return (null, false);
            }
            if (_spec.Head.Value != head)
            {
                string holds = head switch
                {
                    EnumValues.Classification => "a sequence classifier; declare Head = EncoderHead.Classification (the default)",
                    EnumValues.Tagging => "a token classifier; declare Head = EncoderHead.Tagging",
                    _ => "no classifier; declare Head = EncoderHead.SentenceEmbedding",
                };
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigUnsupported, _spec.Head.Location ?? Where, _file, "architectures",
                    $"{architecture ?? "(none)"} with {EnumText("Head", _spec.Head.Value)}", $"the checkpoint holds {holds}"));
                return (null, false);
            }
            if (head == EnumValues.SentenceEmbedding) return (null, false);
            // A family whose classifier pools as a key says (ModernBERT's classifier_pooling) checks the declaration itself.
            if (head == EnumValues.Classification && pooledBy is null && _spec.Pooling.IsSet && _spec.Pooling.Value != EnumValues.FirstToken)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, _spec.Pooling.Location, "Pooling", EnumText("Pooling", _spec.Pooling.Value), _file,
                    "architectures", "its classifier reads the pooled [CLS] token"));
            int labels = Object("id2label") is { Count: > 0 } id2label ? id2label.Count : Int("num_labels") ?? 2;
            if (head == EnumValues.Tagging && labels < 2)
                Unsupported("num_labels", labels, "a token classifier needs 2 labels or more");
            // transformers' problem_type: softmax cross-entropy for single_label_classification (or none with 2+ labels);
            // regression (also one label with none given: a cross-encoder's relevance score) and multi_label_classification
            // take losses on scores (MSE, BCE), which the caller computes: no loss of the model's own.
            string? problem = String("problem_type");
            if (problem is not null and not "single_label_classification" and not "regression" and not "multi_label_classification")
                Unsupported("problem_type", problem, "only single_label_classification, regression and multi_label_classification are known");
            if (head == EnumValues.Tagging && problem is not null and not "single_label_classification")
                Unsupported("problem_type", problem, "a token classifier is compiled with softmax cross-entropy only");
            return (labels, head == EnumValues.Classification && (labels == 1 || problem is "regression" or "multi_label_classification"));
        }

        /// <summary>
        /// The BART-shaped encoder–decoders (configuration_marian.py's, configuration_bart.py's and configuration_mbart.py's
        /// keys): the same layers with biases everywhere, one token table shared by both stacks and tied to the head (plus
        /// <c>final_logits_bias</c>), optionally scaled by √d_model (<c>scale_embedding</c>). They differ in what transformers'
        /// modeling code fixes, not in keys:
        /// <list type="bullet">
        /// <item>Marian (the opus-mt translation models): post-LN, fixed sinusoidal positions with the sines in the first half
        /// of the channels; the decoder starts from the padding id.</item>
        /// <item>BART: post-LN, learned positions whose table starts 2 rows early, and a LayerNorm on each stack's embeddings
        /// (<c>layernorm_embedding</c>).</item>
        /// <item>mBART: BART's embeddings with pre-LN layers and a final LayerNorm on each stack (<c>layer_norm</c>).</item>
        /// <item>M2M100 (NLLB): mBART's layers without <c>layernorm_embedding</c> or <c>final_logits_bias</c>, and fairseq's fixed
        /// sinusoids (sines then cosines, frequencies spaced over d/2 − 1 steps) numbered from <c>pad_token_id</c> + 1.</item>
        /// </list>
        /// Keys left over from fairseq and Marian's toolkit that the modeling code never reads (<c>normalize_before</c>,
        /// <c>add_final_layer_norm</c>, <c>normalize_embedding</c>, <c>static_position_embeddings</c>) are not read here either:
        /// the model computes what transformers computes.
        /// </summary>
        private ModelSpec? EncoderDecoder(int kind)
        {
            int d = Required("d_model"), vocab = Required("vocab_size"), positions = Required("max_position_embeddings");
            int encoderLayers = Required("encoder_layers"), decoderLayers = Required("decoder_layers");
            int heads = Required("encoder_attention_heads"), decoderHeads = Required("decoder_attention_heads");
            int ffn = Required("encoder_ffn_dim"), decoderFfn = Required("decoder_ffn_dim");
            // M2M100Config defaults to relu and a scaled embedding; MarianConfig, BartConfig and MBartConfig to gelu and none.
            bool m2m = kind == FamilySpec.M2M100;
            int feedForward = Activation("activation_function", m2m ? "relu" : "gelu", gated: false);
            if (decoderHeads != heads) Unsupported("decoder_attention_heads", decoderHeads, $"the decoder must have as many heads as the encoder (encoder_attention_heads = {heads})");
            if (decoderFfn != ffn) Unsupported("decoder_ffn_dim", decoderFfn, $"the decoder's feed-forward must be as wide as the encoder's (encoder_ffn_dim = {ffn})");
            if (d > 0 && heads > 0 && d % heads != 0) Unsupported("encoder_attention_heads", heads, $"d_model {d} is not a multiple of it");
            bool marian = kind == FamilySpec.Marian;
            if (marian && d % 2 != 0) Unsupported("d_model", d, "the sinusoidal positions need an even width");
            if (m2m && d < 4) Unsupported("d_model", d, "fairseq's sinusoids divide by d_model / 2 − 1, which needs a width of 4 or more");
            RequireFlag("share_encoder_decoder_embeddings", true, "separate encoder and decoder token tables");
            if (Int("decoder_vocab_size") is int decoderVocab && decoderVocab != vocab)
                Unsupported("decoder_vocab_size", decoderVocab, $"with one shared token table it must equal vocab_size = {vocab}");
            // MarianConfig's defaults are opus-mt-en-de's ids; BartConfig's and MBartConfig's are fairseq's (<s> 0, <pad> 1, </s> 2).
            int pad = Int("pad_token_id") ?? (marian ? 58100 : 1), start = Int("decoder_start_token_id") ?? (marian ? 58100 : 2), eos = FirstId("eos_token_id") ?? (marian ? 0 : 2);
            // BartLearnedPositionalEmbedding keeps 2 rows before position 0 (fairseq's offset): max_position_embeddings + 2 rows.
            // Marian's and M2M100's sinusoids are computed, not stored: a constant table of the positions a model uses.
            bool learned = !marian && !m2m;
            var family = new FamilySpec(kind, _file, heads > 0 ? d / heads : 0, heads, learned ? positions + 2 : positions, 1e-5f, RmsNorm: false, feedForward,
                Rotary: false, RopeTheta: 0f, QkvBias: true, OutBias: true, FfnBias: true, TypeVocab: 0, EmbeddingNorm: learned, PositionOffset: learned ? 2 : 0,
                LogitsBias: !m2m, LookupPaddingRow: pad);
            return Resolve(family, EnumValues.EncoderDecoder, vocab, d, heads, encoderLayers, ffn, learned ? EnumValues.Learned : EnumValues.Sinusoidal,
                kind is FamilySpec.MBart or FamilySpec.M2M100 ? EnumValues.PreNorm : EnumValues.PostNorm, tied: Bool("tie_word_embeddings") ?? true, pad: pad,
                seq2seq: new Seq2SeqSizes(encoderLayers, decoderLayers, start, eos, Bool("scale_embedding") ?? m2m));
        }

        /// <summary>
        /// T5, T5 v1.1, Flan-T5 and mT5 (configuration_t5.py's and configuration_mt5.py's keys): pre-norm layers with T5's
        /// RMSNorm (no mean, no bias, <c>layer_norm_epsilon</c>), projections without biases, queries and keys of
        /// <c>d_kv</c> channels per head (num_heads·d_kv need not be d_model), unscaled scores plus a learned relative-position
        /// bias per stack (<c>relative_attention_num_buckets</c>, <c>relative_attention_max_distance</c>) and no other
        /// positions, so no sequence limit; one token table <c>shared</c>, which the head reads times d_model^−½ when tied
        /// (T5Config's default; MT5Config's is untied, with <c>lm_head</c>). <c>feed_forward_proj</c> is <c>act</c> or
        /// <c>gated-act</c>; <c>gated-gelu</c> means the tanh GELU (transformers maps it to gelu_new).
        /// </summary>
        private ModelSpec? T5(string modelType)
        {
            int d = Required("d_model"), headDim = Required("d_kv"), ffn = Required("d_ff"), layers = Required("num_layers"), heads = Required("num_heads");
            int vocab = Required("vocab_size");
            int decoderLayers = Int("num_decoder_layers") ?? layers;
            int buckets = Int("relative_attention_num_buckets") ?? 32, maxDistance = Int("relative_attention_max_distance") ?? 128;
            if (buckets < 4) Unsupported("relative_attention_num_buckets", buckets, "the encoder's buckets are split by direction, and each direction needs an exact and a logarithmic bucket");
            if (maxDistance <= buckets / 4) Unsupported("relative_attention_max_distance", maxDistance, $"it must exceed the {buckets / 4} distances bucketed exactly");
            float eps = Float("layer_norm_epsilon") ?? 1e-6f;
            // T5Config derives dense_act_fn and is_gated_act from feed_forward_proj ("gated-gelu" meaning gelu_new); a saved
            // config.json carries both, and PretrainedConfig sets them after the derivation, so the saved ones decide.
            string projection = String("feed_forward_proj") ?? "relu";
            bool gatedByName = projection.StartsWith("gated-", StringComparison.Ordinal);
            string derived = projection == "gated-gelu" ? "gelu_new" : gatedByName ? projection.Substring("gated-".Length) : projection;
            bool gatedFf = Bool("is_gated_act") ?? gatedByName;
            string act = String("dense_act_fn") ?? derived;
            string key = _keys.ContainsKey("dense_act_fn") ? "dense_act_fn" : "feed_forward_proj";
            int feedForward = (act, gatedFf) switch
            {
                ("relu", false) => FamilySpec.Relu,
                ("gelu", false) => FamilySpec.GeluErf,
                ("gelu_new" or "gelu_pytorch_tanh", false) => FamilySpec.GeluTanh,
                ("silu" or "swish", false) => FamilySpec.Silu,
                ("gelu_new" or "gelu_pytorch_tanh", true) => FamilySpec.GeGluTanh,
                ("silu" or "swish", true) => FamilySpec.SwiGlu,
                _ => -1,
            };
            if (feedForward < 0)
            {
                Unsupported(key, gatedFf ? "gated " + act : act, "T5's feed-forward has kernels for relu, gelu, gelu_new and silu, and gated for gelu_new (gated-gelu) and silu");
                feedForward = FamilySpec.Relu;
            }
            int pad = Int("pad_token_id") ?? 0, eos = FirstId("eos_token_id") ?? 1, start = Int("decoder_start_token_id") ?? pad;
            // T5's shared table is a plain nn.Embedding (no padding_idx): every lookup trains its row.
            var family = new FamilySpec(FamilySpec.T5, _file, headDim, heads, MaxPositions: 0, eps, RmsNorm: true, feedForward,
                Rotary: false, RopeTheta: 0f, QkvBias: false, OutBias: false, FfnBias: false, TypeVocab: 0, EmbeddingNorm: false,
                RelativeBuckets: buckets, RelativeMaxDistance: maxDistance);
            return Resolve(family, EnumValues.EncoderDecoder, vocab, d, heads, layers, ffn, EnumValues.Relative, EnumValues.PreNorm,
                tied: Bool("tie_word_embeddings") ?? modelType == "t5", pad: pad,
                seq2seq: new Seq2SeqSizes(layers, decoderLayers, start, eos, ScaleEmbeddings: false));
        }

        /// <summary>What an encoder–decoder config adds to <see cref="Resolve"/>: its stacks, the decoder's first token and end, the embedding scale.</summary>
        private sealed record Seq2SeqSizes(int EncoderLayers, int DecoderLayers, int DecoderStart, int Eos, bool ScaleEmbeddings);

        private ModelSpec? Llama(int kind, string modelType)
        {
            int hidden = Required("hidden_size"), layers = Required("num_hidden_layers"), heads = Required("num_attention_heads");
            int inner = Required("intermediate_size"), vocab = Required("vocab_size"), positions = Required("max_position_embeddings");
            int kvHeads = Int("num_key_value_heads") ?? heads;
            int headDim = Int("head_dim") ?? (heads > 0 ? hidden / heads : 0);
            if (Int("head_dim") is null && heads > 0 && hidden % heads != 0) Unsupported("num_attention_heads", heads, $"hidden_size {hidden} is not a multiple of it and there is no head_dim");
            if (kvHeads <= 0 || heads % kvHeads != 0) Unsupported("num_key_value_heads", kvHeads, $"it must divide num_attention_heads = {heads}");
            if (headDim <= 0 || headDim % 2 != 0) Unsupported("head_dim", headDim, "rotary positions need an even head size");
            Activation("hidden_act", "silu", gated: true);
            float eps = Float("rms_norm_eps") ?? (kind == FamilySpec.Phi3 ? 1e-5f : 1e-6f); // configuration_phi3.py defaults to 1e-5, the others to 1e-6
            var ropeParameters = Object("rope_parameters");
            float theta = Float("rope_theta") ?? (ropeParameters is not null && Lookup(ropeParameters, "rope_theta") is double t ? (float)t : 10000f);
            // transformers 5 moves rope_theta into rope_parameters; a file with both must not say two things.
            if (Float("rope_theta") is float top && ropeParameters is not null && Lookup(ropeParameters, "rope_theta") is double nested && (float)nested != top)
                Unsupported("rope_parameters", Text(ropeParameters), $"its rope_theta {Text(nested)} contradicts the top-level rope_theta = {Text(top)}");
            RopeScalingSpec? scaling = LlamaRopeScaling(headDim, positions);
            if (Float("partial_rotary_factor") is float partial && partial != 1f) Unsupported("partial_rotary_factor", partial, "only whole-head rotation is implemented");
            int seqLen = _spec.SeqLen.Value;
            if (kind is FamilySpec.Qwen2 or FamilySpec.Qwen3 && Bool("use_sliding_window") == true)
                Unsupported("use_sliding_window", true, "sliding-window attention is not implemented");
            if (kind is FamilySpec.Llama or FamilySpec.Phi3 && Int("sliding_window") is int window && window < seqLen)
                Unsupported("sliding_window", window, $"a window shorter than SeqLen = {seqLen} is not implemented (one at least as long has no effect)");
            bool attentionBias = Bool("attention_bias") ?? false, mlpBias = Bool("mlp_bias") ?? false;
            // Qwen2 hard-codes q/k/v biases; Llama, Mistral and Qwen3 read attention_bias (Qwen3 adds q_norm and k_norm).
            var family = new FamilySpec(kind, _file, headDim, kvHeads, positions, eps, RmsNorm: true, FamilySpec.SwiGlu,
                Rotary: true, theta, QkvBias: kind == FamilySpec.Qwen2 || attentionBias, OutBias: kind != FamilySpec.Qwen2 && attentionBias,
                FfnBias: kind != FamilySpec.Qwen2 && mlpBias, TypeVocab: 0, EmbeddingNorm: false, QueryKeyNorm: kind == FamilySpec.Qwen3,
                LookupPaddingRow: Int("pad_token_id") ?? -1, RopeScaling: scaling);
            _ = modelType;
            return Resolve(family, EnumValues.DecoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Rotary, EnumValues.PreNorm,
                tied: Bool("tie_word_embeddings") ?? false, pad: DecoderPad());
        }

        /// <summary>
        /// Gemma 3's text model (<c>gemma3_text</c>: gemma-3-270m, gemma-3-1b): Llama's pre-norm decoder with Gemma's RMSNorm
        /// (1 + weight) before and after each sub-layer, q_norm and k_norm, GEGLU with the tanh GELU, embeddings times
        /// √hidden_size, and the layers alternating between a sliding window with their own rotary base
        /// (<c>rope_local_base_freq</c>) and full attention (<c>rope_theta</c>, linearly scaled when <c>rope_scaling</c> says so).
        /// Absent keys take Gemma3TextConfig's defaults.
        /// </summary>
        private ModelSpec? Gemma3()
        {
            // Gemma3TextConfig's token ids where the file gives none: <pad> 0, <eos> 1, <bos> 2.
            foreach ((string id, double value) in new[] { ("pad_token_id", 0.0), ("eos_token_id", 1.0), ("bos_token_id", 2.0) })
                if (!_keys.ContainsKey(id)) _keys[id] = value;
            int hidden = Required("hidden_size"), layers = Required("num_hidden_layers"), heads = Required("num_attention_heads");
            int inner = Required("intermediate_size"), vocab = Required("vocab_size"), positions = Int("max_position_embeddings") ?? 131072;
            int kvHeads = Int("num_key_value_heads") ?? 4, headDim = Int("head_dim") ?? 256;
            if (kvHeads <= 0 || heads % kvHeads != 0) Unsupported("num_key_value_heads", kvHeads, $"it must divide num_attention_heads = {heads}");
            if (headDim <= 0 || headDim % 2 != 0) Unsupported("head_dim", headDim, "rotary positions need an even head size");
            string activation = String("hidden_activation") ?? "gelu_pytorch_tanh";
            if (activation is not ("gelu_pytorch_tanh" or "gelu_new"))
                Unsupported("hidden_activation", activation, "Gemma's gated feed-forward has a kernel for the tanh GELU (gelu_pytorch_tanh) only");
            float eps = Float("rms_norm_eps") ?? 1e-6f, theta = Float("rope_theta") ?? 1e6f, localTheta = Float("rope_local_base_freq") ?? 1e4f;
            float linear = 1f;
            // transformers 5 writes each layer kind's rotation under rope_parameters ({"full_attention": {"rope_theta": …,
            // "rope_type": …}, "sliding_attention": {…}}) instead of rope_theta, rope_local_base_freq and rope_scaling.
            if (Object("rope_parameters") is { } parameters)
            {
                foreach (KeyValuePair<string, object?> kind in parameters)
                {
                    if (kind.Value is not List<KeyValuePair<string, object?>> rope || Lookup(rope, "rope_theta") is not double ropeBase)
                    {
                        Unsupported("rope_parameters", Text(parameters), "each layer kind's rope_theta is expected");
                        continue;
                    }
                    if (kind.Key == "full_attention")
                    {
                        theta = (float)ropeBase;
                        linear = RopeLinearFactor("rope_parameters", rope, parameters);
                    }
                    else if (kind.Key == "sliding_attention")
                    {
                        localTheta = (float)ropeBase;
                        if (RopeLinearFactor("rope_parameters", rope, parameters) != 1f)
                            Unsupported("rope_parameters", Text(parameters), "scaled rotary positions on the sliding layers are not implemented");
                    }
                    else Unsupported("rope_parameters", Text(parameters), "only full_attention and sliding_attention layers are known");
                }
            }
            if (Object("rope_scaling") is { } scaling) linear = RopeLinearFactor("rope_scaling", scaling, scaling);
            else if (_keys.TryGetValue("rope_scaling", out object? other) && other is not null)
                Unsupported("rope_scaling", other, "an object with rope_type and factor is expected");
            if (Float("partial_rotary_factor") is float partial && partial != 1f) Unsupported("partial_rotary_factor", partial, "only whole-head rotation is implemented");
            // Scores × query_pre_attn_scalar^−½ (a Python float, rounded to float32 where it multiplies the float32 scores).
            float scalar = Float("query_pre_attn_scalar") ?? 256f, scoreScale = 0f;
            if (!(scalar > 0f)) Unsupported("query_pre_attn_scalar", scalar, "a positive number is expected");
            else if (scalar != headDim) scoreScale = (float)(1.0 / Math.Sqrt(scalar));
            foreach (string cap in new[] { "attn_logit_softcapping", "final_logit_softcapping" })
                if (_keys.TryGetValue(cap, out object? value) && value is not null) Unsupported(cap, value, "logit soft-capping (Gemma 2's) is not implemented");
            // EmbeddingGemma: an encoder (Gemma3TextModel under sentence-transformers) whose full layers see every key and
            // whose sliding layers see |i − j| < sliding_window // 2 + 1, the window Gemma3TextConfig makes of the file's.
            bool bidirectional = Bool("use_bidirectional_attention") ?? false;
            bool attentionBias = Bool("attention_bias") ?? false;

            // Which layers slide: layer_types when the config lists them, else every pattern-th layer is full.
            int window = Int("sliding_window") ?? 4096;
            var sliding = new System.Text.StringBuilder();
            if (_keys.TryGetValue("layer_types", out object? types) && types is List<object?> list)
            {
                if (list.Count != layers) Unsupported("layer_types", types, $"one entry per layer (num_hidden_layers = {layers}) is expected");
                foreach (object? type in list)
                {
                    if (type is "sliding_attention") sliding.Append('S');
                    else if (type is "full_attention") sliding.Append('F');
                    else Unsupported("layer_types", types, "each entry must be sliding_attention or full_attention");
                }
            }
            else
            {
                int pattern = Int("sliding_window_pattern") ?? Int("_sliding_window_pattern") ?? 6;
                if (pattern <= 0) Unsupported("sliding_window_pattern", pattern, "a positive period is expected");
                for (int i = 0; i < layers; i++) sliding.Append(pattern > 0 && (i + 1) % pattern == 0 ? 'F' : 'S');
            }
            if (window <= 0) Unsupported("sliding_window", window, "a positive window is expected");
            else if (bidirectional) window = window / 2 + 1;

            var family = new FamilySpec(FamilySpec.Gemma3, _file, headDim, kvHeads, positions, eps, RmsNorm: true, FamilySpec.GeGluTanh,
                Rotary: true, theta, QkvBias: attentionBias, OutBias: attentionBias, FfnBias: false, TypeVocab: 0, EmbeddingNorm: false,
                QueryKeyNorm: true, LookupPaddingRow: Int("pad_token_id") ?? 0, NormUnitOffset: true, SandwichNorms: true,
                EmbeddingScale: (float)Math.Sqrt(hidden), SlidingWindow: window, SlidingLayers: sliding.ToString(), LocalRopeTheta: localTheta,
                RopeScaling: linear != 1f ? new RopeScalingSpec("linear", linear) : null, ScoreScale: scoreScale, Bidirectional: bidirectional);
            if (bidirectional)
            {
                // Its padding id is masked as keys and left out of the mean, as the attention mask does in transformers.
                if (_spec.Head.Value != EnumValues.SentenceEmbedding)
                    Unsupported("use_bidirectional_attention", true, "a bidirectional Gemma 3 (EmbeddingGemma) compiles as a sentence embedder only: declare Head = EncoderHead.SentenceEmbedding");
                return Resolve(family, EnumValues.EncoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Rotary, EnumValues.PreNorm,
                    tied: true, pad: Int("pad_token_id") ?? 0);
            }
            return Resolve(family, EnumValues.DecoderOnly, vocab, hidden, heads, layers, inner, EnumValues.Rotary, EnumValues.PreNorm,
                tied: Bool("tie_word_embeddings") ?? true, pad: DecoderPad());
        }

        /// <summary>
        /// Gemma 3's multimodal checkpoints (<c>gemma3</c>: gemma-3-4b, -12b, -27b, Gemma3ForConditionalGeneration): their
        /// language model, compiled from <c>text_config</c> as a <c>gemma3_text</c> model (its absent keys take
        /// Gemma3TextConfig's defaults: vocab_size 262208, 8 heads on 4 key/value heads, …). The token ids the top level
        /// gives (the instruction-tuned models' list of end ids, 1 and 106) stand where text_config has none. The vision
        /// tower and the projector are not compiled; the loader skips their tensors.
        /// </summary>
        private ModelSpec? Gemma3Multimodal()
        {
            if (Object("text_config") is not { } text)
            {
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigMissingKey, Where, _file, "text_config", "gemma3"));
                return null;
            }
            var keys = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (KeyValuePair<string, object?> pair in text) keys[pair.Key] = pair.Value;
            if (keys.TryGetValue("model_type", out object? type) && type is not (null or "gemma3_text"))
                Unsupported("text_config", Text(type), "the language model of a gemma3 config is a gemma3_text");
            foreach (string id in new[] { "bos_token_id", "eos_token_id", "pad_token_id" })
                if (!keys.ContainsKey(id) && _keys.TryGetValue(id, out object? value)) keys[id] = value;
            var reader = new ConfigReader(_spec, _file + " (text_config)", keys);
            ModelSpec? spec = reader.Gemma3();
            _found.AddRange(reader._found);
            return spec;
        }

        /// <summary>
        /// The factor of a rotation's linear scaling (<c>rope_type</c> linear), 1 for none (default); any other type is
        /// refused under <paramref name="key"/>, whose whole value <paramref name="shown"/> the diagnostic shows.
        /// </summary>
        private float RopeLinearFactor(string key, List<KeyValuePair<string, object?>> rope, List<KeyValuePair<string, object?>> shown)
        {
            string? type = Lookup(rope, "rope_type") as string ?? Lookup(rope, "type") as string;
            if (type is null or "default") return 1f;
            if (type == "linear" && Lookup(rope, "factor") is double factor && factor > 0) return (float)factor;
            Unsupported(key, Text(shown), "of the scaled rotary positions only linear scaling (Gemma 3's) is implemented");
            return 1f;
        }

        /// <summary>
        /// A decoder's padding id, unless it is also its end (or begin) of sequence (SmolLM2 pads with &lt;|im_end|&gt;):
        /// padding is masked as keys and ignored as targets, and transformers never masks a real end-of-turn token.
        /// </summary>
        private int? DecoderPad()
        {
            int? pad = Int("pad_token_id");
            return pad is int id && (id == FirstId("eos_token_id") || id == Int("bos_token_id")) ? null : pad;
        }

        private static object? RopeScalingOf(List<KeyValuePair<string, object?>> parameters) =>
            Lookup(parameters, "rope_type") is string type && type != "default" ? type : null;

        /// <summary>
        /// Fills the spec's sizes from the config, checking every size the attribute also gives against it, and the
        /// sequence length against the config's positions.
        /// </summary>
        private ModelSpec? Resolve(FamilySpec family, int architecture, int vocab, int dModel, int heads, int layers, int dff, int positional, int norm, bool tied,
            int? pad = null, int? classes = null, Seq2SeqSizes? seq2seq = null)
        {
            string Key(string attribute) => (attribute, family.Kind) switch
            {
                ("Vocab" or "TargetVocab", _) => "vocab_size",
                ("DModel", _) when family.IsBartLike => "d_model",
                ("Heads", _) when family.IsBartLike => "encoder_attention_heads",
                ("Layers" or "EncoderLayers", _) when family.IsBartLike => "encoder_layers",
                ("DecoderLayers", _) when family.IsBartLike => "decoder_layers",
                ("DFF", _) when family.IsBartLike => "encoder_ffn_dim",
                ("DModel", FamilySpec.T5) => "d_model",
                ("Heads", FamilySpec.T5) => "num_heads",
                ("Layers" or "EncoderLayers", FamilySpec.T5) => "num_layers",
                ("DecoderLayers", FamilySpec.T5) => "num_decoder_layers",
                ("DFF", FamilySpec.T5) => "d_ff",
                ("DModel", FamilySpec.Gpt2 or FamilySpec.NomicBert) => "n_embd",
                ("DModel", FamilySpec.DistilBert) => "dim",
                ("DModel", _) => "hidden_size",
                ("Heads", FamilySpec.Gpt2 or FamilySpec.NomicBert) => "n_head",
                ("Heads", FamilySpec.DistilBert) => "n_heads",
                ("Heads", _) => "num_attention_heads",
                ("Layers", FamilySpec.Gpt2 or FamilySpec.NomicBert) => "n_layer",
                ("Layers", FamilySpec.DistilBert) => "n_layers",
                ("Layers", _) => "num_hidden_layers",
                (_, FamilySpec.Gpt2 or FamilySpec.NomicBert) => "n_inner",
                (_, FamilySpec.DistilBert) => "hidden_dim",
                _ => "intermediate_size",
            };
            Argument<int> Sized(string attribute, Argument<int> given, int value)
            {
                if (given.IsSet && given.Value != value)
                    _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, given.Location, attribute, given.Value, _file, Key(attribute), value));
                return new Argument<int>(value, given.Location ?? _spec.Config.Location);
            }
            Argument<int> Fixed(string attribute, Argument<int> given, int value, string key, string meaning)
            {
                if (given.IsSet && given.Value != value)
                    _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, given.Location, attribute, EnumText(attribute, given.Value), _file, key, meaning));
                return new Argument<int>(value, given.Location ?? _spec.Config.Location);
            }
            ModelSpec spec = _spec;
            if (spec.SeqLen.Value > family.UsablePositions && family.MaxPositions > 0)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.SeqLen.Location ?? Where, "SeqLen", spec.SeqLen.Value, _file,
                    family.Kind is FamilySpec.Gpt2 or FamilySpec.NomicBert ? "n_positions" : "max_position_embeddings", PositionsText(family)));
            // Without a TargetSeqLen the target is SeqLen long, which the check above covers.
            if (seq2seq is not null && spec.TargetSeqLen.Value > family.UsablePositions && family.MaxPositions > 0)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.TargetSeqLen.Location ?? Where, "TargetSeqLen", spec.TargetSeqLen.Value, _file,
                    "max_position_embeddings", PositionsText(family)));
            if (spec.TiedEmbeddings.IsSet && spec.TiedEmbeddings.Value != tied)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.TiedEmbeddings.Location, "TiedEmbeddings", spec.TiedEmbeddings.Value ? "true" : "false",
                    _file, "tie_word_embeddings", tied ? "true" : "false"));
            // An encoder–decoder's stacks and target vocabulary are sizes of the config (checked below); its TargetSeqLen is the
            // declaration's, as SeqLen is.
            foreach ((string name, bool isSet, LocationInfo? at) in new[]
                     {
                         ("ScaleEmbeddings", spec.ScaleEmbeddings.IsSet, spec.ScaleEmbeddings.Location), ("AttentionWindow", spec.AttentionWindow.IsSet, spec.AttentionWindow.Location),
                         ("EncoderLayers", spec.EncoderLayers.IsSet && seq2seq is null, spec.EncoderLayers.Location), ("DecoderLayers", spec.DecoderLayers.IsSet && seq2seq is null, spec.DecoderLayers.Location),
                         ("TargetVocab", spec.TargetVocab.IsSet && seq2seq is null, spec.TargetVocab.Location), ("TargetSeqLen", spec.TargetSeqLen.IsSet && seq2seq is null, spec.TargetSeqLen.Location),
                     })
                if (isSet) _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, at, name, "(given)", _file, "model_type", "the config fixes the architecture"));
            if (spec.Classes.IsSet && classes is null)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.Classes.Location, "Classes", spec.Classes.Value, _file, "model_type", "the config fixes the architecture"));
            else if (spec.Classes.IsSet && spec.Classes.Value != classes)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.Classes.Location, "Classes", spec.Classes.Value, _file,
                    Object("id2label") is { Count: > 0 } ? "id2label" : "num_labels", $"the classifier has {classes} labels"));
            int padToken = pad ?? spec.PadToken.Value;
            if (spec.PadToken.IsSet && pad is int configPad && configPad != spec.PadToken.Value)
                _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigContradiction, spec.PadToken.Location, "PadToken", spec.PadToken.Value, _file, "pad_token_id", configPad));
            int bos = Int("bos_token_id") ?? spec.BosToken.Value, eos = FirstId("eos_token_id") ?? spec.EosToken.Value;
            if (seq2seq is not null)
            {
                spec = spec with
                {
                    EncoderLayers = Sized("EncoderLayers", spec.EncoderLayers, seq2seq.EncoderLayers),
                    DecoderLayers = Sized("DecoderLayers", spec.DecoderLayers, seq2seq.DecoderLayers),
                    TargetVocab = Sized("TargetVocab", spec.TargetVocab, vocab),
                    ScaleEmbeddings = new Argument<bool>(seq2seq.ScaleEmbeddings, null),
                };
                // The decoder's first token is decoder_start_token_id, and the encoder–decoder options need it given: the config gives it.
                bos = seq2seq.DecoderStart;
                eos = seq2seq.Eos;
            }
            LocationInfo? bosLocation = seq2seq is not null ? spec.BosToken.Location ?? _spec.Config.Location : spec.BosToken.Location;
            return spec with
            {
                Architecture = Fixed("Architecture", spec.Architecture, architecture, "model_type", "the config fixes the architecture"),
                Vocab = Sized("Vocab", spec.Vocab, vocab),
                DModel = Sized("DModel", spec.DModel, dModel),
                Heads = Sized("Heads", spec.Heads, heads),
                Layers = Sized("Layers", spec.Layers, layers),
                DFF = Sized("DFF", spec.DFF, dff),
                Positional = Fixed("Positional", spec.Positional, positional, "model_type", "the family fixes how positions enter"),
                Norm = Fixed("Norm", spec.Norm, norm, "model_type", "the family fixes where the norms sit"),
                Activation = Fixed("Activation", spec.Activation, EnumValues.Gelu, family.Kind is FamilySpec.Gpt2 or FamilySpec.NomicBert || family.IsBartLike ? "activation_function" : family.Kind == FamilySpec.DistilBert ? "activation" : family.Kind == FamilySpec.T5 ? "feed_forward_proj" : family.Kind is FamilySpec.Gemma3 or FamilySpec.ModernBert ? "hidden_activation" : "hidden_act", family.FeedForwardName),
                TiedEmbeddings = new Argument<bool>(tied, spec.TiedEmbeddings.Location),
                PadToken = new Argument<int>(padToken, spec.PadToken.Location),
                BosToken = new Argument<int>(bos >= 0 && bos < vocab ? bos : -1, bosLocation),
                EosToken = new Argument<int>(eos >= 0 && eos < vocab ? eos : -1, spec.EosToken.Location),
                Pooling = classes is null ? spec.Pooling : new Argument<int>(EnumValues.FirstToken, spec.Pooling.Location),
                Classes = classes is int labels ? new Argument<int>(labels, spec.Classes.Location ?? _spec.Config.Location) : spec.Classes,
                Family = architecture == EnumValues.DecoderOnly && EndIds(vocab) is { Length: > 1 } ends ? family with { EndTokens = new EquatableArray<int>(ends) } : family,
            };
        }

        /// <summary>The ids of an <c>eos_token_id</c> list within the vocabulary, in order; empty for a single id or none.</summary>
        private int[] EndIds(int vocab) =>
            _keys.TryGetValue("eos_token_id", out object? value) && value is List<object?> list
                ? list.OfType<double>().Where(d => d == Math.Floor(d) && d >= 0 && d < vocab).Select(d => (int)d).Distinct().ToArray()
                : [];

        /// <summary>How many positions a family's table holds, as TG0043 says it.</summary>
        private static string PositionsText(FamilySpec family) => family.PositionOffset == 0
            ? $"the model knows {family.MaxPositions} positions"
            : family.IsRobertaLike
                ? $"the model knows {family.UsablePositions} positions ({family.MaxPositions} rows, positions counted from {(family.Kind == FamilySpec.Roberta ? "pad_token_id" : "the padding id")} + 1 = {family.PositionOffset})"
                : $"the model knows {family.UsablePositions} positions (its learned table has {family.PositionOffset} more rows before position 0)";

        /// <summary>An enum argument as the user wrote it (<c>Positional.Rotary</c>), not its number.</summary>
        private static string EnumText(string attribute, int value)
        {
            string[] names = attribute switch
            {
                "Architecture" => ["Architecture.DecoderOnly", "Architecture.EncoderDecoder", "Architecture.EncoderOnly"],
                "Positional" => ["Positional.Sinusoidal", "Positional.Learned", "Positional.Rotary", "Positional.Relative"],
                "Norm" => ["NormPlacement.Post", "NormPlacement.Pre"],
                "Activation" => ["Activation.Relu", "Activation.Gelu"],
                "Head" => ["EncoderHead.Classification", "EncoderHead.Tagging", "EncoderHead.SentenceEmbedding"],
                "Pooling" => ["Pooling.FirstToken", "Pooling.Mean"],
                _ => [],
            };
            return value >= 0 && value < names.Length ? names[value] : value.ToString(CultureInfo.InvariantCulture);
        }

        // ----- keys -----

        /// <summary>
        /// The feed-forward kind a config's activation asks for. A gated family (Llama's MLP, down(act(gate)·up)) has a
        /// kernel for silu only (SwiGLU); an ungated one (GPT-2, BERT, Marian) for gelu, gelu_new, relu and silu.
        /// </summary>
        private int Activation(string key, string fallback, bool gated)
        {
            string value = String(key) ?? fallback;
            if (gated)
            {
                if (value is "silu" or "swish") return FamilySpec.SwiGlu;
                Unsupported(key, value, "the gated feed-forward down(act(gate)·up) has a kernel for silu (SwiGLU) only");
                return FamilySpec.SwiGlu;
            }
            switch (value)
            {
                case "gelu": return FamilySpec.GeluErf;
                case "gelu_new": case "gelu_pytorch_tanh": case "gelu_fast": return FamilySpec.GeluTanh;
                case "relu": return FamilySpec.Relu;
                case "silu": case "swish": return FamilySpec.Silu;
                default:
                    Unsupported(key, value, "this family's feed-forward has kernels for gelu, gelu_new (gelu_pytorch_tanh, gelu_fast), relu and silu (swish)");
                    return FamilySpec.GeluErf;
            }
        }

        private void RequireFlag(string key, bool expected, string what)
        {
            if (Bool(key) is bool value && value != expected) Unsupported(key, value, what + " is not implemented");
        }

        private void Unsupported(string key, object value, string why) =>
            _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigUnsupported, Where, _file, key, Text(value), why));

        private static string Text(object? value) => value switch
        {
            null => "null",
            bool b => b ? "true" : "false",
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            float f => f.ToString("R", CultureInfo.InvariantCulture),
            string s => s,
            List<KeyValuePair<string, object?>> o => "{" + string.Join(", ", o.Select(p => p.Key + ": " + Text(p.Value))) + "}",
            List<object?> list => "[" + string.Join(", ", list.Select(Text)) + "]",
            _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
        };

        private int Required(params string[] keys)
        {
            foreach (string key in keys)
            {
                if (Int(key) is int value) return value;
                if (_keys.TryGetValue(key, out object? present) && present is not null) return 0; // Int reported the wrong type
            }
            _found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ConfigMissingKey, Where, _file, keys[0], String("model_type") ?? "Hugging Face"));
            return 0;
        }

        private int? Int(string key)
        {
            if (!_keys.TryGetValue(key, out object? value) || value is null) return null;
            if (value is double d && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
            Unsupported(key, value, "an integer is expected");
            return null;
        }

        /// <summary>A token id, or the first of a list of them (Llama 3 lists several end-of-sequence ids).</summary>
        private int? FirstId(string key)
        {
            if (_keys.TryGetValue(key, out object? value) && value is List<object?> list)
            {
                if (list.Count > 0 && list[0] is double d && d == Math.Floor(d) && d >= 0 && d <= int.MaxValue) return (int)d;
                Unsupported(key, value, "a token id or a list of token ids is expected");
                return null;
            }
            return Int(key);
        }

        private float? Float(string key) => _keys.TryGetValue(key, out object? value) && value is double d ? (float)d : null;

        private bool? Bool(string key) => _keys.TryGetValue(key, out object? value) && value is bool b ? b : null;

        private string? String(string key) => _keys.TryGetValue(key, out object? value) ? value as string : null;

        private List<KeyValuePair<string, object?>>? Object(string key) =>
            _keys.TryGetValue(key, out object? value) ? value as List<KeyValuePair<string, object?>> : null;

        private static object? Lookup(List<KeyValuePair<string, object?>> obj, string key)
        {
            foreach (KeyValuePair<string, object?> pair in obj) if (pair.Key == key) return pair.Value;
            return null;
        }
    }
}
