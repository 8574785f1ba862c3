namespace TransformerGen.Generator
{
    /// <summary>
    /// The part of a Hugging Face <c>config.json</c> that the attribute cannot say, read once by <see cref="ConfigReader"/>:
    /// what the families differ in (norm kind and eps, feed-forward kind, key/value heads, rotary convention and theta,
    /// a bias flag per projection, embedding extras). The sizes they share with the attribute (vocabulary, width, heads,
    /// layers, feed-forward width) go into the <see cref="ModelSpec"/>'s own arguments. <c>PositionOffset</c> is the rows
    /// of a learned position table that come before position 0: RoBERTa numbers positions from <c>padding_idx + 1</c>.
    /// <c>QueryKeyNorm</c>: Qwen3's RMSNorm of each query and key head before the rotation (<c>q_norm</c>, <c>k_norm</c>).
    /// <c>ScoreHead</c>: a sequence classifier whose loss is not softmax cross-entropy (<c>problem_type</c> regression or
    /// multi_label_classification, or one label): its outputs are scores and the caller's loss seeds the backward pass.
    /// <c>LogitsBias</c>: the BART-shaped encoder–decoders' <c>final_logits_bias</c> added to the tied head's logits.
    /// <c>LookupPaddingRow</c>: the token table's <c>padding_idx</c> in transformers (the config's <c>pad_token_id</c>, even
    /// where the compiled model does not mask it as padding): lookups of that row pass no gradient back; −1 for none (GPT-2, T5).
    /// <c>RelativeBuckets</c>, <c>RelativeMaxDistance</c>: the relative-position bias of T5 (<c>relative_attention_num_buckets</c>,
    /// <c>relative_attention_max_distance</c>) and MPNet (32 buckets up to 128 in either direction, fixed in its code); 0 for none.
    /// Gemma 3: <c>NormUnitOffset</c>, its RMSNorms scale by <c>1 + weight</c>; <c>SandwichNorms</c>, each sub-layer's output
    /// RMS-normalized again before the residual sum (<c>post_attention_layernorm</c>, <c>post_feedforward_layernorm</c>, with
    /// <c>pre_feedforward_layernorm</c> before the feed-forward); <c>EmbeddingScale</c>, the token embeddings times √hidden_size;
    /// <c>SlidingWindow</c> and <c>SlidingLayers</c> (one 'S' or 'F' per layer), the layers whose queries see only the last
    /// sliding_window keys; <c>LocalRopeTheta</c>, those layers' rotary base (the other, full
    /// layers' linear rope scaling is <c>RopeScaling</c>); <c>ScoreScale</c>, the scores' factor query_pre_attn_scalar^−½ where it is not head_dim^−½
    /// (0 for that default). <c>Bidirectional</c>: EmbeddingGemma's encoder (<c>use_bidirectional_attention</c>), whose
    /// queries see every key, or on a sliding layer the keys with |i − j| &lt; <c>SlidingWindow</c> (transformers' own
    /// <c>sliding_window // 2 + 1</c>).
    /// <c>Dense</c>: the sentence-transformers Dense layers after the pooling (<see cref="SentenceTransformerModules"/>).
    /// ModernBERT: <c>NormBias</c> false, LayerNorms without a shift (<c>norm_bias</c>); <c>BareFirstAttention</c>, the
    /// first layer's attention reads the embeddings' output as it is (its <c>attn_norm</c> is an identity); a classifier's
    /// ModernBertPredictionHead (<c>head.dense</c>, with a bias when <c>ClassifierBias</c>, the <c>ClassifierActivation</c>
    /// (a feed-forward kind), <c>head.norm</c>) before <c>classifier</c>.
    /// <c>RopeScaling</c>: a Llama-family <c>rope_scaling</c> (llama3, yarn, longrope, linear) or Gemma 3's linear one on its full
    /// layers, null for the default rotation.
    /// <c>EmbeddingWidth</c>: ELECTRA's <c>embedding_size</c> where it differs from the hidden size (the token, position and
    /// type tables and the embedding LayerNorm are that wide, and <c>embeddings_project</c> maps them to DModel); 0 for DModel.
    /// <c>EndTokens</c>: a decoder's <c>eos_token_id</c> when the config lists several (Llama 3's 128001, 128008, 128009;
    /// Gemma 3 instruct's 1 and 106), every one that ends a generation; empty for a single id.
    /// </summary>
    internal sealed record FamilySpec(
        int Kind,
        string ConfigFile,
        int HeadDim,
        int KvHeads,
        int MaxPositions,
        float NormEps,
        bool RmsNorm,
        int FeedForward,
        bool Rotary,
        float RopeTheta,
        bool QkvBias,
        bool OutBias,
        bool FfnBias,
        int TypeVocab,
        bool EmbeddingNorm,
        int PositionOffset = 0,
        bool QueryKeyNorm = false,
        bool ScoreHead = false,
        bool LogitsBias = false,
        int LookupPaddingRow = -1,
        int RelativeBuckets = 0,
        int RelativeMaxDistance = 0,
        bool NormUnitOffset = false,
        bool SandwichNorms = false,
        float EmbeddingScale = 1f,
        int SlidingWindow = 0,
        string SlidingLayers = "",
        float LocalRopeTheta = 0f,
        float ScoreScale = 0f,
        EquatableArray<DenseLayer> Dense = default,
        bool UnnormalizedEmbeddings = false,
        bool Bidirectional = false,
        bool NormBias = true,
        bool BareFirstAttention = false,
        bool ClassifierBias = false,
        int ClassifierActivation = 0,
        RopeScalingSpec? RopeScaling = null,
        int EmbeddingWidth = 0,
        EquatableArray<int> EndTokens = default)
    {
        /// <summary>The runtime's <c>CheckpointFamily</c> values.</summary>
        public const int Gpt2 = 1, Bert = 2, Llama = 3, Qwen2 = 4, Roberta = 5, Qwen3 = 6, DistilBert = 7, Phi3 = 8, Marian = 9, Bart = 10, MBart = 11, M2M100 = 12, NomicBert = 13, T5 = 14, MPNet = 15, Gemma3 = 16, ModernBert = 17, Electra = 18;

        /// <summary>Whether the family is BERT-shaped (BERT itself; RoBERTa, XLM-RoBERTa, DistilBERT, MPNet and ELECTRA: BERT's layers under other names).</summary>
        public bool IsBertLike => Kind is Bert or Roberta or DistilBert or MPNet or Electra;

        /// <summary>
        /// Whether positions count only the tokens that are not padding, from <c>padding_idx + 1</c> (transformers'
        /// <c>create_position_ids_from_input_ids</c>): RoBERTa's and MPNet's. Its classifier is RobertaClassificationHead's
        /// shape too (<c>classifier.dense</c>, tanh, <c>classifier.out_proj</c>).
        /// </summary>
        public bool IsRobertaLike => Kind is Roberta or MPNet;

        /// <summary>Whether the family is an encoder–decoder of BART's layers (Marian, BART, mBART, M2M100/NLLB).</summary>
        public bool IsBartLike => Kind is Marian or Bart or MBart or M2M100;

        /// <summary>Positions a sequence may use: the table's rows after the first <see cref="PositionOffset"/>.</summary>
        public int UsablePositions => MaxPositions - PositionOffset;

        /// <summary>
        /// Feed-forward kinds: erf GELU, tanh GELU (<c>gelu_new</c>), ReLU, SwiGLU (<c>down(silu(gate)·up)</c>), SiLU (Marian's
        /// <c>swish</c>), GEGLU with the tanh GELU (<c>down(gelu_new(gate)·up)</c>, T5 v1.1's <c>gated-gelu</c>), and GEGLU
        /// with the erf GELU (ModernBERT's <c>Wo(gelu(input)·gate)</c>).
        /// </summary>
        public const int GeluErf = 0, GeluTanh = 1, Relu = 2, SwiGlu = 3, Silu = 4, GeGluTanh = 5, GeGluErf = 6;

        /// <summary>Whether the feed-forward is gated: one packed projection to gate | up, the activation of the gate times the up half.</summary>
        public bool GatedFeedForward => FeedForward is SwiGlu or GeGluTanh or GeGluErf;

        /// <summary>A learned relative-position bias on the scores (<see cref="RelativeBuckets"/> buckets): T5's and MPNet's.</summary>
        public bool RelativeAttention => RelativeBuckets > 0;

        /// <summary>T5's scores are not divided by √head_dim (the factor is folded into the query projection's initialization).</summary>
        public bool UnscaledScores => Kind == T5;

        /// <summary>Whether layer <paramref name="layer"/> attends through Gemma 3's sliding window (and its local rotary base).</summary>
        public bool IsSlidingLayer(int layer) => layer < SlidingLayers.Length && SlidingLayers[layer] == 'S';

        /// <summary>The runtime enum member's name, for generated code.</summary>
        public string KindName => Kind switch { Gpt2 => "Gpt2", Bert => "Bert", Llama => "Llama", Roberta => "Roberta", Qwen3 => "Qwen3", DistilBert => "DistilBert", Phi3 => "Phi3", Marian => "Marian", Bart => "Bart", MBart => "MBart", M2M100 => "M2M100", NomicBert => "NomicBert", T5 => "T5", MPNet => "MPNet", Gemma3 => "Gemma3", ModernBert => "ModernBert", Electra => "Electra", _ => "Qwen2" };

        public string FeedForwardName => FeedForward switch
        {
            GeluTanh => "GELU (tanh approximation, gelu_new)",
            Relu => "ReLU",
            SwiGlu => "SwiGLU (down(silu(gate)·up))",
            Silu => "SiLU (swish)",
            GeGluTanh => "GEGLU (down(gelu_new(gate)·up))",
            GeGluErf => "GEGLU (down(gelu(input)·gate))",
            _ => "GELU (erf)",
        };
    }
}
