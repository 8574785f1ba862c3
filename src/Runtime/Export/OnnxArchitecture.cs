using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.Json;

namespace TransformerGen;

/// <summary>
/// How positions enter an exported model: a learned table, sinusoids (the paper's interleaved ones; Marian's split ones, sin
/// in the first half of the channels and cos in the second; fairseq's, M2M100's), a rotation of queries and keys, or only
/// T5's relative-position bias (<see cref="Relative"/>: nothing added to the embeddings, a learned scalar per head and bucket
/// of key − query distances added to each self-attention's scores). The bias itself is
/// <see cref="OnnxArchitecture.RelativeAttentionBias"/>, which a model may also have beside absolute positions (MPNet's
/// learned table).
/// </summary>
internal enum OnnxPositions { Learned, Sinusoidal, SinusoidalSplit, SinusoidalFairseq, RotaryInterleaved, RotaryHalf, Relative }

/// <summary>
/// The feed-forward network's activation in an exported model (<see cref="Silu"/>: x·sigmoid(x), Marian's swish;
/// <see cref="GeGluTanh"/>: gelu_tanh(gate)·up, T5 v1.1's and Flan-T5's gated-gelu; <see cref="GeGluErf"/>: the same with the
/// erf GELU, ModernBERT's gelu(input)·gate over the two halves of its <c>Wi</c>).
/// </summary>
internal enum OnnxFeedForward { GeluErf, GeluTanh, Relu, Silu, SwiGlu, GeGluTanh, GeGluErf }

/// <summary>
/// The activation after a classifier's dense layer (<see cref="OnnxArchitecture.PoolerDense"/>): tanh (BERT's pooler,
/// RoBERTa's and MPNet's classification heads), ReLU (DistilBERT's pre_classifier) or the erf GELU (ELECTRA's
/// ElectraClassificationHead).
/// </summary>
internal enum OnnxPoolerActivation { Tanh, Relu, GeluErf }

/// <summary>
/// One sentence-transformers Dense module (<paramref name="Module"/>, <c>2_Dense</c>): <c>activation(x·Wᵀ + b)</c>, the
/// bias absent when the module has none, tanh or Identity.
/// </summary>
internal sealed record OnnxDense(string Module, ParameterTensor Weight, ParameterTensor? Bias, bool Tanh);

/// <summary>
/// The parameters of one layer, by role: each projection is one or more tensors stacked by rows, as the model multiplies
/// them (GPT-2's c_attn and Phi-3's qkv_proj are q | k | v already, BERT and Llama keep q, k and v apart; Llama's gate and
/// up, Phi-3's gate_up_proj).
/// <paramref name="QueryNorm"/> and <paramref name="KeyNorm"/> <c>[headDim]</c> are Qwen3's <c>q_norm</c> and <c>k_norm</c>:
/// an RMSNorm of each query and key head, between the projection and the rotation. <paramref name="AttentionNorm"/> is null
/// only in a pre-norm layer whose attention reads its input as it is (ModernBERT's first layer, whose <c>attn_norm</c> is an
/// identity).
/// </summary>
internal sealed record OnnxLayerTensors(
    ParameterTensor? AttentionNorm, ParameterTensor? AttentionNormBias,
    ParameterTensor[] QueryKeyValue, ParameterTensor[]? QueryKeyValueBias,
    ParameterTensor Output, ParameterTensor? OutputBias,
    ParameterTensor FeedForwardNorm, ParameterTensor? FeedForwardNormBias,
    ParameterTensor[] Up, ParameterTensor[]? UpBias,
    ParameterTensor Down, ParameterTensor? DownBias,
    ParameterTensor? QueryNorm = null, ParameterTensor? KeyNorm = null)
{
    /// <summary>Gemma 3's norm of the attention's output before the residual sum (<c>post_attention_layernorm</c>).</summary>
    public ParameterTensor? PostAttentionNorm { get; init; }

    /// <summary>Gemma 3's norm of the feed-forward's output before the residual sum (<c>post_feedforward_layernorm</c>).</summary>
    public ParameterTensor? PostFeedForwardNorm { get; init; }

    /// <summary>Gemma 3 and ModernBERT: the layer attends through the sliding window, with the sliding (local) layers' rotary table.</summary>
    public bool Sliding { get; init; }
}

/// <summary>
/// The cross-attention of a decoder layer of an encoder–decoder model: its norm, the query projection applied to the
/// decoder's stream, the key and value projections (rows K | V, one tensor or two stacked as the graph multiplies them)
/// applied to the encoder's output, and the output projection. This project's models hold them in PyTorch's
/// <c>multihead_attn</c> (norm <c>norm2</c>; the query the first DModel rows of the stacked <c>in_proj_weight</c>, keys and
/// values the other rows); the Hugging Face encoder–decoders in <c>encoder_attn.{q,k,v,out}_proj</c> and
/// <c>encoder_attn_layer_norm</c>; T5's in <c>layer.1.EncDecAttention.{q,k,v,o}</c> and <c>layer.1.layer_norm</c>, without
/// biases.
/// </summary>
internal sealed record OnnxCrossAttentionTensors(
    ParameterTensor Norm, ParameterTensor? NormBias,
    ParameterTensor Query, ParameterTensor? QueryBias,
    ParameterTensor[] KeyValue, ParameterTensor[]? KeyValueBias,
    ParameterTensor Output, ParameterTensor? OutputBias);

/// <summary>
/// The decoder of an encoder–decoder model, whose encoder <see cref="OnnxArchitecture"/> describes: its own embedding,
/// positions and length, causal layers with cross-attention to the encoder's output, and the head over its vocabulary.
/// </summary>
internal sealed class OnnxDecoderStack
{
    public required int Vocab { get; init; }
    public required int SeqLen { get; init; }
    /// <summary>Whether the model masks a padding id in the decoder's input (the graph then takes <c>decoder_attention_mask</c>).</summary>
    public required bool MasksPadding { get; init; }
    public required ParameterTensor TokenEmbedding { get; init; }
    public ParameterTensor? PositionEmbedding { get; init; }
    /// <summary>The norm of the embeddings and positions before the first layer (BART's and mBART's <c>layernorm_embedding</c>).</summary>
    public ParameterTensor? EmbeddingNorm { get; init; }
    public ParameterTensor? EmbeddingNormBias { get; init; }
    public required IReadOnlyList<OnnxLayerTensors> Layers { get; init; }
    public required IReadOnlyList<OnnxCrossAttentionTensors> CrossAttention { get; init; }
    public ParameterTensor? FinalNorm { get; init; }
    public ParameterTensor? FinalNormBias { get; init; }
    /// <summary>The head's own matrix, or null when it is tied to <see cref="TokenEmbedding"/>.</summary>
    public ParameterTensor? LanguageModelHead { get; init; }
    /// <summary>A vector added to the logits (Marian's, BART's and mBART's <c>final_logits_bias</c> <c>[1, vocab]</c>).</summary>
    public ParameterTensor? LogitsBias { get; init; }
    /// <summary>
    /// The factor on the head's input: T5's tied head reads the decoder's output × d_model^−½ (the table it shares with the
    /// embeddings is not scaled); 1 for every other model.
    /// </summary>
    public float HeadScale { get; init; } = 1f;
    /// <summary>The decoder's relative-position table <c>[buckets, heads]</c> (T5's causal buckets), with <see cref="OnnxPositions.Relative"/>.</summary>
    public ParameterTensor? RelativeAttentionBias { get; init; }
}

/// <summary>
/// What the ONNX export needs to know about a model that its parameter table does not say, and the table read by role.
/// The runtime sees a generated model only through its <see cref="ModelLayout"/>, which carries sizes and names but not
/// the norm's epsilon, the activation, the rotary convention or the head count. They come from the declaration itself: the
/// <see cref="TransformerModelAttribute"/> on the model's class (this project's own models), or the Hugging Face
/// <c>config.json</c> a family model was compiled from, read with each family's defaults as the compiler reads them
/// (MODEL_FAMILIES.md §1.3, §2.4, §3.4). Every tensor of the table must find its role here, or the export is refused.
/// </summary>
internal sealed record OnnxArchitecture
{
    public required string Name { get; init; }
    public required bool Encoder { get; init; }
    public required int Vocab { get; init; }
    public required int DModel { get; init; }
    public required int Heads { get; init; }
    public required int KeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int SeqLen { get; init; }
    public required bool RmsNorm { get; init; }
    public required float NormEpsilon { get; init; }
    public required bool PreNorm { get; init; }
    public required OnnxPositions Positions { get; init; }
    public float RopeTheta { get; init; } = 10000f;
    /// <summary>
    /// The rotary scaling of the global layers' tables (<see cref="OnnxPositions.RotaryHalf"/>): the Llama family's
    /// <c>rope_scaling</c> (<see cref="GgufHyperparameters.RopeScaling"/>), Gemma 3's linear one; null for none.
    /// </summary>
    public Kernels.RotaryScaling? RopeScaling { get; init; }
    /// <summary>
    /// The rotary base of the sliding layers (Gemma 3's <c>rope_local_base_freq</c>, ModernBERT's <c>local_rope_theta</c>); 0 when
    /// no layer slides.
    /// </summary>
    public float LocalRopeTheta { get; init; }
    /// <summary>
    /// Gemma 3 and ModernBERT: how far a query on a sliding layer sees, in positions (the kernels' window): keys i − w … i in
    /// a decoder, i − w … i + w in an encoder (EmbeddingGemma's, ModernBERT's local layers); 0 when no layer slides.
    /// </summary>
    public int SlidingWindow { get; init; }
    /// <summary>Gemma 3: every RMSNorm scales by 1 + weight.</summary>
    public bool NormUnitOffset { get; init; }
    /// <summary>The scores' factor where it is not 1/√headDim (Gemma 3's query_pre_attn_scalar^−½); 0 for that default.</summary>
    public float ScoreScale { get; init; }
    public required OnnxFeedForward FeedForward { get; init; }
    public float EmbeddingScale { get; init; } = 1f;
    public int AttentionWindow { get; init; }
    public EncoderHead Head { get; init; }
    public Pooling Pooling { get; init; }
    /// <summary>A sentence embedder whose embeddings are not L2-normalized (<see cref="ModelLayout.UnnormalizedEmbeddings"/>).</summary>
    public bool UnnormalizedEmbeddings { get; init; }
    /// <summary>A sentence embedder's sentence-transformers Dense layers between the pooling and the normalization.</summary>
    public IReadOnlyList<OnnxDense> Dense { get; init; } = [];
    public required ParameterTensor TokenEmbedding { get; init; }
    public ParameterTensor? PositionEmbedding { get; init; }
    /// <summary>The rows of <see cref="PositionEmbedding"/> before position 0 (RoBERTa's, up to its padding id; BART's 2, in both stacks).</summary>
    public int PositionOffset { get; init; }
    /// <summary>The position number of position 0 in fairseq's sinusoids (M2M100's <c>pad_token_id + 1</c>).</summary>
    public int SinusoidFirstPosition { get; init; }
    /// <summary>
    /// Whether q·kᵀ goes to the softmax as it is (T5, whose Mesh TensorFlow initialization folds the 1/√headDim into the query projection) rather
    /// than divided by √headDim, in every attention of the model.
    /// </summary>
    public bool UnscaledScores { get; init; }
    /// <summary>
    /// The (encoder's, or the only stack's) relative-position table <c>[buckets, heads]</c>, whose rows by the bucket of each
    /// key − query distance are added to every self-attention's scores (after the 1/√headDim, when the scores are scaled):
    /// T5's <c>block.0.layer.0.SelfAttention.relative_attention_bias</c> (<see cref="OnnxPositions.Relative"/>, no other
    /// positions) and MPNet's <c>encoder.relative_attention_bias</c> (beside its learned positions), bidirectional buckets in
    /// an encoder. Null for a model without one.
    /// </summary>
    public ParameterTensor? RelativeAttentionBias { get; init; }
    /// <summary>The relative-position tables' buckets (<c>relative_attention_num_buckets</c>).</summary>
    public int RelativeBuckets { get; init; }
    /// <summary>The distance from which all share the last bucket (<c>relative_attention_max_distance</c>).</summary>
    public int RelativeMaxDistance { get; init; }
    public ParameterTensor? TokenTypeEmbedding { get; init; }
    public ParameterTensor? EmbeddingNorm { get; init; }
    public ParameterTensor? EmbeddingNormBias { get; init; }
    /// <summary>
    /// ELECTRA's <c>embeddings_project</c> <c>[DModel, E]</c> where its embeddings (the token, position and type tables and
    /// their LayerNorm) are <c>embedding_size</c> = E wide and its layers DModel: a linear map after the embeddings' norm,
    /// with <see cref="EmbeddingProjectionBias"/>. Null where the embeddings are DModel wide already.
    /// </summary>
    public ParameterTensor? EmbeddingProjection { get; init; }
    public ParameterTensor? EmbeddingProjectionBias { get; init; }
    public required IReadOnlyList<OnnxLayerTensors> Layers { get; init; }
    public ParameterTensor? FinalNorm { get; init; }
    public ParameterTensor? FinalNormBias { get; init; }
    /// <summary>The LM head's own matrix, or null when it is tied to <see cref="TokenEmbedding"/> (decoders).</summary>
    public ParameterTensor? LanguageModelHead { get; init; }
    public ParameterTensor? Classifier { get; init; }
    public ParameterTensor? ClassifierBias { get; init; }
    /// <summary>
    /// The dense layer (<see cref="PoolerActivation"/> after it) between the pooled token and <see cref="Classifier"/>: BERT's
    /// pooler, RoBERTa's, MPNet's and ELECTRA's classifier.dense, DistilBERT's pre_classifier.
    /// </summary>
    public ParameterTensor? PoolerDense { get; init; }
    public ParameterTensor? PoolerDenseBias { get; init; }
    /// <summary>The activation after <see cref="PoolerDense"/>: tanh but for DistilBERT's (ReLU) and ELECTRA's (the erf GELU).</summary>
    public OnnxPoolerActivation PoolerActivation { get; init; }
    /// <summary>
    /// The decoder of an encoder–decoder model; the rest of this object then describes its encoder (<see cref="Encoder"/>
    /// true, <see cref="FinalNorm"/> the encoder's own norm of pre-LN, no head).
    /// </summary>
    public OnnxDecoderStack? Decoder { get; init; }

    /// <summary>Query heads per key/value head.</summary>
    public int Group => Heads / KeyValueHeads;

    /// <summary>Rows of the position tables (sinusoids, rotary angles): the longer of the model's streams.</summary>
    public int PositionRows => Math.Max(SeqLen, Decoder?.SeqLen ?? 0);

    /// <summary>
    /// Reads the architecture of <paramref name="model"/>: from its <see cref="TransformerModelAttribute"/>, and for a model
    /// compiled from a Hugging Face config from <paramref name="configPath"/> as well.
    /// </summary>
    /// <exception cref="NotSupportedException">The model has a part no standard ONNX graph here computes (the message says which).</exception>
    /// <exception cref="ArgumentException">The config is missing for a family model, or contradicts the model's tensors.</exception>
    public static OnnxArchitecture Of(TransformerModel model, string? configPath)
    {
        ModelLayout layout = model.Layout;
        TransformerModelAttribute declaration = DeclarationOf(model.GetType())
            ?? throw new NotSupportedException($"{layout.Name} carries no [TransformerModel] attribute; the ONNX export reads the architecture from the declaration");
        var table = new TensorTable(layout);
        OnnxArchitecture architecture = layout.Family == CheckpointFamily.Native
            ? Native(layout, declaration, table)
            : Family(layout, declaration, table, configPath ?? throw new ArgumentException(
                $"{layout.Name} was compiled from a Hugging Face config ({layout.Family}); pass that config.json's path: the export reads the norm's epsilon, the activation, the head counts and the rotary base from it",
                nameof(configPath)));
        table.CheckAllUsed();
        return architecture;
    }

    private static TransformerModelAttribute? DeclarationOf(Type? type)
    {
        for (; type is not null; type = type.BaseType)
            if (type.GetCustomAttribute<TransformerModelAttribute>(inherit: false) is { } attribute) return attribute;
        return null;
    }

    // ----- this project's own models (PyTorch nn.Transformer names) -----

    private static OnnxArchitecture Native(ModelLayout layout, TransformerModelAttribute d, TensorTable table)
    {
        // An encoder–decoder is described as its encoder (the first stack, bidirectional) plus its decoder.
        bool seq2seq = layout.Architecture == Architecture.EncoderDecoder;
        bool encoder = layout.Architecture != Architecture.DecoderOnly;
        bool pre = d.Norm == NormPlacement.Pre;
        ParameterTensor embedding = table.Take(seq2seq ? "source_embedding.weight" : "token_embedding.weight");
        int dModel = embedding.Shape[1];
        if (d.Heads <= 0 || dModel % d.Heads != 0) throw new ArgumentException($"{layout.Name}: {d.Heads} heads do not divide DModel = {dModel}");
        List<OnnxLayerTensors> layers = NativeLayers(table, encoder ? "encoder.layers." : "decoder.layers.", cross: null);
        OnnxPositions positions = d.Positional switch
        {
            Positional.Learned => OnnxPositions.Learned,
            Positional.Sinusoidal => OnnxPositions.Sinusoidal,
            _ => OnnxPositions.RotaryInterleaved,
        };
        bool learned = positions == OnnxPositions.Learned;
        bool classifier = encoder && !seq2seq && d.Head != EncoderHead.SentenceEmbedding;
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = encoder,
            Vocab = layout.Vocab,
            DModel = dModel,
            Heads = d.Heads,
            KeyValueHeads = d.Heads,
            HeadDim = dModel / d.Heads,
            SeqLen = layout.SeqLen,
            RmsNorm = false,
            NormEpsilon = 1e-5f, // the compiler's LayerNorm for its own models (Lowerer.Norm), PyTorch's default
            PreNorm = pre,
            Positions = positions,
            FeedForward = d.Activation == Activation.Gelu ? OnnxFeedForward.GeluErf : OnnxFeedForward.Relu,
            EmbeddingScale = d.ScaleEmbeddings ? (float)Math.Sqrt(dModel) : 1f,
            AttentionWindow = d.AttentionWindow,
            Head = d.Head,
            Pooling = layout.Pooling,
            UnnormalizedEmbeddings = layout.UnnormalizedEmbeddings,
            TokenEmbedding = embedding,
            PositionEmbedding = learned ? table.Take(seq2seq ? "source_pos_embedding.weight" : "pos_embedding.weight") : null,
            Layers = layers,
            FinalNorm = pre ? table.Take(seq2seq ? "encoder.norm.weight" : "norm_f.weight") : null,
            FinalNormBias = pre ? table.Take(seq2seq ? "encoder.norm.bias" : "norm_f.bias") : null,
            LanguageModelHead = !encoder && !d.TiedEmbeddings ? table.Take("lm_head.weight") : null,
            Classifier = classifier ? table.Take("classifier.weight") : null,
            ClassifierBias = classifier ? table.Take("classifier.bias") : null,
            Decoder = seq2seq ? NativeDecoder(layout, d, table, pre, learned) : null,
        };
    }

    /// <summary>The decoder of this project's encoder–decoder models (Lowerer.Build: target_embedding, decoder.layers.*, decoder.norm).</summary>
    private static OnnxDecoderStack NativeDecoder(ModelLayout layout, TransformerModelAttribute d, TensorTable table, bool pre, bool learned)
    {
        var cross = new List<OnnxCrossAttentionTensors>();
        List<OnnxLayerTensors> layers = NativeLayers(table, "decoder.layers.", cross);
        return new OnnxDecoderStack
        {
            Vocab = layout.TargetVocab,
            SeqLen = layout.DecoderSeqLen,
            MasksPadding = layout.PadToken >= 0,
            TokenEmbedding = table.Take("target_embedding.weight"),
            PositionEmbedding = learned ? table.Take("target_pos_embedding.weight") : null,
            Layers = layers,
            CrossAttention = cross,
            FinalNorm = pre ? table.Take("decoder.norm.weight") : null,
            FinalNormBias = pre ? table.Take("decoder.norm.bias") : null,
            LanguageModelHead = d.TiedEmbeddings ? null : table.Take("lm_head.weight"),
        };
    }

    /// <summary>
    /// The layers under <paramref name="prefix"/> in nn.Transformer's names. With <paramref name="cross"/> (a decoder of an
    /// encoder–decoder) each layer's cross-attention is added to it, and the feed-forward norm is <c>norm3</c>.
    /// </summary>
    private static List<OnnxLayerTensors> NativeLayers(TensorTable table, string prefix, List<OnnxCrossAttentionTensors>? cross)
    {
        var layers = new List<OnnxLayerTensors>();
        string feedForwardNorm = cross is null ? "norm2" : "norm3";
        for (int i = 0; table.Has($"{prefix}{i}.self_attn.in_proj_weight"); i++)
        {
            string p = $"{prefix}{i}.";
            layers.Add(new OnnxLayerTensors(
                table.Take(p + "norm1.weight"), table.Take(p + "norm1.bias"),
                [table.Take(p + "self_attn.in_proj_weight")], [table.Take(p + "self_attn.in_proj_bias")],
                table.Take(p + "self_attn.out_proj.weight"), table.Take(p + "self_attn.out_proj.bias"),
                table.Take(p + feedForwardNorm + ".weight"), table.Take(p + feedForwardNorm + ".bias"),
                [table.Take(p + "linear1.weight")], [table.Take(p + "linear1.bias")],
                table.Take(p + "linear2.weight"), table.Take(p + "linear2.bias")));
            if (cross is null) continue;
            ParameterTensor weight = table.Take(p + "multihead_attn.in_proj_weight"), bias = table.Take(p + "multihead_attn.in_proj_bias");
            int c = weight.Shape[1];
            if (weight.Shape[0] != 3 * c || bias.Length != 3 * c)
                throw new ArgumentException($"{weight.Name} {weight.ShapeText} and {bias.Name} {bias.ShapeText} are not the query, key and value projections of width {c}");
            cross.Add(new OnnxCrossAttentionTensors(
                table.Take(p + "norm2.weight"), table.Take(p + "norm2.bias"),
                RowsOf(weight, 0, c), RowsOf(bias, 0, c),
                [RowsOf(weight, c, 2 * c)], [RowsOf(bias, c, 2 * c)],
                table.Take(p + "multihead_attn.out_proj.weight"), table.Take(p + "multihead_attn.out_proj.bias")));
        }
        return layers;
    }

    /// <summary>Rows <c>[first, first + count)</c> of a matrix (or elements of a vector) as a tensor of their own, in place.</summary>
    private static ParameterTensor RowsOf(ParameterTensor t, int first, int count)
    {
        int rowLength = t.Shape.Length == 2 ? t.Shape[1] : 1;
        int[] shape = t.Shape.Length == 2 ? [count, rowLength] : [count];
        return new ParameterTensor($"{t.Name}[{first}:{first + count}]", shape, t.Offset + first * rowLength);
    }

    // ----- Hugging Face families (the compiler's FamilyNames table, Lowerer.Families.cs) -----

    private static OnnxArchitecture Family(ModelLayout layout, TransformerModelAttribute d, TensorTable table, string configPath)
    {
        if (layout.Family is CheckpointFamily.NomicBert)
            throw new NotSupportedException($"{layout.Name}: the ONNX export of {layout.Family} models is not built");
        if (layout.Family is CheckpointFamily.Gemma3) return Gemma3(layout, d, table, configPath);
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(configPath));
        JsonElement config = document.RootElement;
        string modelType = String(config, "model_type") ?? throw new ArgumentException($"'{configPath}' has no model_type", nameof(configPath));
        string? expected = layout.Family switch
        {
            CheckpointFamily.Gpt2 => "gpt2",
            CheckpointFamily.Bert => "bert",
            CheckpointFamily.Roberta => modelType == "xlm-roberta" ? "xlm-roberta" : "roberta",
            CheckpointFamily.DistilBert => "distilbert",
            CheckpointFamily.Llama => modelType == "mistral" ? "mistral" : "llama",
            CheckpointFamily.Qwen2 => "qwen2",
            CheckpointFamily.Qwen3 => "qwen3",
            CheckpointFamily.Phi3 => "phi3",
            CheckpointFamily.Marian => "marian",
            CheckpointFamily.Bart => "bart",
            CheckpointFamily.MBart => "mbart",
            CheckpointFamily.M2M100 => "m2m_100",
            CheckpointFamily.T5 => modelType == "mt5" ? "mt5" : "t5",
            CheckpointFamily.MPNet => "mpnet",
            CheckpointFamily.Electra => "electra",
            CheckpointFamily.ModernBert => "modernbert",
            _ => null,
        };
        if (modelType != expected)
            throw new ArgumentException($"'{configPath}' is a {modelType} config; {layout.Name} was compiled from a {layout.Family} one", nameof(configPath));
        return layout.Family switch
        {
            CheckpointFamily.Gpt2 => Gpt2(layout, config, table),
            CheckpointFamily.Bert or CheckpointFamily.Roberta or CheckpointFamily.DistilBert or CheckpointFamily.MPNet or CheckpointFamily.Electra => Bert(layout, d, config, table, configPath),
            CheckpointFamily.Marian or CheckpointFamily.Bart or CheckpointFamily.MBart or CheckpointFamily.M2M100 => Seq2SeqFamily(layout, config, table),
            CheckpointFamily.T5 => T5(layout, config, table, configPath),
            CheckpointFamily.ModernBert => ModernBert(layout, d, config, table, configPath),
            _ => Llama(layout, config, table, configPath),
        };
    }

    private static OnnxArchitecture Gpt2(ModelLayout layout, JsonElement config, TensorTable table)
    {
        int heads = Require(config, "n_head");
        ParameterTensor embedding = table.Take("wte.weight");
        int dModel = embedding.Shape[0] == layout.Vocab ? embedding.Shape[1] : throw new ArgumentException($"{layout.Name}: wte.weight {embedding.ShapeText}");
        var layers = new List<OnnxLayerTensors>();
        for (int i = 0; table.Has($"h.{i}.ln_1.weight"); i++)
        {
            string p = $"h.{i}.";
            layers.Add(new OnnxLayerTensors(
                table.Take(p + "ln_1.weight"), table.Take(p + "ln_1.bias"),
                [table.Take(p + "attn.c_attn.weight")], [table.Take(p + "attn.c_attn.bias")],
                table.Take(p + "attn.c_proj.weight"), table.Take(p + "attn.c_proj.bias"),
                table.Take(p + "ln_2.weight"), table.Take(p + "ln_2.bias"),
                [table.Take(p + "mlp.c_fc.weight")], [table.Take(p + "mlp.c_fc.bias")],
                table.Take(p + "mlp.c_proj.weight"), table.Take(p + "mlp.c_proj.bias")));
        }
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = false,
            Vocab = layout.Vocab,
            DModel = dModel,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = dModel / heads,
            SeqLen = layout.SeqLen,
            RmsNorm = false,
            NormEpsilon = Number(config, "layer_norm_epsilon") ?? 1e-5f,
            PreNorm = true,
            Positions = OnnxPositions.Learned,
            FeedForward = Ungated(config, "activation_function", "gelu_new"),
            TokenEmbedding = embedding,
            PositionEmbedding = table.Take("wpe.weight"),
            Layers = layers,
            FinalNorm = table.Take("ln_f.weight"),
            FinalNormBias = table.Take("ln_f.bias"),
            LanguageModelHead = table.TakeOptional("lm_head.weight"),
        };
    }

    /// <summary>
    /// MPNet's relative-position buckets: MPNetEncoder.compute_position_bias puts distances into 32 buckets up to 128 whatever
    /// the config says (the compiler's ConfigReader.MPNet fixes the same).
    /// </summary>
    private const int MPNetBuckets = 32, MPNetMaxDistance = 128;

    /// <summary>
    /// BERT, RoBERTa (XLM-RoBERTa), DistilBERT, MPNet and ELECTRA: post-LN encoders with a LayerNorm on the embeddings.
    /// RoBERTa and MPNet count positions from the row after the padding id's; MPNet (MPNetModel's names, the compiler's
    /// FamilyNames.MPNet) has BERT's layers under <c>attention.attn.{q,k,v,o}</c> and <c>attention.LayerNorm</c>, no token
    /// types, RoBERTa's classification head, and one relative-position table for the whole encoder
    /// (<c>encoder.relative_attention_bias</c>) whose bias every layer adds to its scaled scores. ELECTRA (ElectraModel's
    /// names without <c>electra.</c>) has BERT's layers and no pooler; its embeddings are <c>embedding_size</c> wide, and where
    /// that is not hidden_size <c>embeddings_project</c> maps them to it after their LayerNorm; its sequence classifier is
    /// RoBERTa's head with the erf GELU where RoBERTa's has tanh.
    /// </summary>
    private static OnnxArchitecture Bert(ModelLayout layout, TransformerModelAttribute d, JsonElement config, TensorTable table, string configPath)
    {
        bool mpnet = layout.Family == CheckpointFamily.MPNet, distil = layout.Family == CheckpointFamily.DistilBert;
        bool roberta = mpnet || layout.Family == CheckpointFamily.Roberta, electra = layout.Family == CheckpointFamily.Electra;
        if (mpnet && Integer(config, "relative_attention_num_buckets") is int configBuckets && configBuckets != MPNetBuckets)
            throw new ArgumentException($"'{configPath}' says relative_attention_num_buckets = {configBuckets}; MPNet's encoder buckets distances into {MPNetBuckets} whatever the config says, as {layout.Name} was compiled", nameof(configPath));
        int heads = Require(config, distil ? "n_heads" : "num_attention_heads");
        // RoBERTa's classification head (MPNet's and ELECTRA's are RoBERTa's names), DistilBERT's, or BERT's pooler.
        bool robertaHead = roberta || electra;
        string classifier = robertaHead && d.Head == EncoderHead.Classification ? "classifier.out_proj" : "classifier";
        string dense = robertaHead ? "classifier.dense" : distil ? "pre_classifier" : "pooler.dense";
        ParameterTensor embedding = table.Take("embeddings.word_embeddings.weight");
        // ELECTRA's embeddings_project, where embedding_size is not hidden_size: the layers are as wide as its rows.
        ParameterTensor? projection = electra ? table.TakeOptional("embeddings_project.weight") : null;
        ParameterTensor? projectionBias = electra ? table.TakeOptional("embeddings_project.bias") : null;
        int dModel = projection?.Shape[0] ?? embedding.Shape[1];
        if (electra && Require(config, "hidden_size") != dModel)
            throw new ArgumentException($"'{configPath}' says hidden_size = {Require(config, "hidden_size")}; {layout.Name}'s layers are {dModel} wide", nameof(configPath));
        var layers = new List<OnnxLayerTensors>();
        // A layer's names: BERT's (RoBERTa's alike), or DistilBERT's or MPNet's for the same parts.
        (string Layer, string AttentionNorm, string Query, string Key, string Value, string Output, string OutputNorm, string Up, string Down) n =
            distil ? ("transformer.layer.{0}.", "sa_layer_norm", "attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "output_layer_norm", "ffn.lin1", "ffn.lin2")
            : mpnet ? ("encoder.layer.{0}.", "attention.LayerNorm", "attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "output.LayerNorm", "intermediate.dense", "output.dense")
            : ("encoder.layer.{0}.", "attention.output.LayerNorm", "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "output.LayerNorm", "intermediate.dense", "output.dense");
        for (int i = 0; table.Has(string.Format(System.Globalization.CultureInfo.InvariantCulture, n.Layer, i) + n.Query + ".weight"); i++)
        {
            string p = string.Format(System.Globalization.CultureInfo.InvariantCulture, n.Layer, i);
            layers.Add(new OnnxLayerTensors(
                table.Take(p + n.AttentionNorm + ".weight"), table.Take(p + n.AttentionNorm + ".bias"),
                [table.Take(p + n.Query + ".weight"), table.Take(p + n.Key + ".weight"), table.Take(p + n.Value + ".weight")],
                [table.Take(p + n.Query + ".bias"), table.Take(p + n.Key + ".bias"), table.Take(p + n.Value + ".bias")],
                table.Take(p + n.Output + ".weight"), table.Take(p + n.Output + ".bias"),
                table.Take(p + n.OutputNorm + ".weight"), table.Take(p + n.OutputNorm + ".bias"),
                [table.Take(p + n.Up + ".weight")], [table.Take(p + n.Up + ".bias")],
                table.Take(p + n.Down + ".weight"), table.Take(p + n.Down + ".bias")));
        }
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = true,
            Vocab = layout.Vocab,
            DModel = dModel,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = dModel / heads,
            SeqLen = layout.SeqLen,
            RmsNorm = false,
            NormEpsilon = distil ? 1e-12f : Number(config, "layer_norm_eps") ?? 1e-12f,
            PreNorm = false,
            Positions = OnnxPositions.Learned,
            FeedForward = Ungated(config, distil ? "activation" : "hidden_act", "gelu"),
            Head = d.Head,
            Pooling = layout.Pooling,
            UnnormalizedEmbeddings = layout.UnnormalizedEmbeddings,
            TokenEmbedding = embedding,
            PositionEmbedding = table.Take("embeddings.position_embeddings.weight"),
            PositionOffset = roberta ? layout.PadToken + 1 : 0,
            RelativeAttentionBias = mpnet ? table.Take("encoder.relative_attention_bias.weight") : null,
            RelativeBuckets = mpnet ? MPNetBuckets : 0,
            RelativeMaxDistance = mpnet ? MPNetMaxDistance : 0,
            TokenTypeEmbedding = distil || mpnet ? null : table.Take("embeddings.token_type_embeddings.weight"),
            EmbeddingNorm = table.Take("embeddings.LayerNorm.weight"),
            EmbeddingNormBias = table.Take("embeddings.LayerNorm.bias"),
            EmbeddingProjection = projection,
            EmbeddingProjectionBias = projectionBias,
            Layers = layers,
            // A …ForTokenClassification head, or …ForSequenceClassification's dense layer (BERT's pooler, RoBERTa's, MPNet's and
            // ELECTRA's classifier.dense, DistilBERT's pre_classifier) and classifier.
            PoolerDense = d.Head == EncoderHead.Classification ? table.Take(dense + ".weight") : null,
            PoolerDenseBias = d.Head == EncoderHead.Classification ? table.Take(dense + ".bias") : null,
            PoolerActivation = distil ? OnnxPoolerActivation.Relu : electra ? OnnxPoolerActivation.GeluErf : OnnxPoolerActivation.Tanh,
            Classifier = d.Head == EncoderHead.SentenceEmbedding ? null : table.Take(classifier + ".weight"),
            ClassifierBias = d.Head == EncoderHead.SentenceEmbedding ? null : table.Take(classifier + ".bias"),
            Dense = DenseLayers(layout, table, configPath),
        };
    }

    /// <summary>
    /// A sentence embedder's Dense layers after the pooling, in the table's order (modules.json's), each with its weight,
    /// its bias if it has one, and its activation, which only the module's config.json beside the model's says.
    /// </summary>
    private static List<OnnxDense> DenseLayers(ModelLayout layout, TensorTable table, string configPath)
    {
        var dense = new List<OnnxDense>();
        string folder = Path.GetDirectoryName(Path.GetFullPath(configPath)) ?? ".";
        foreach (ParameterTensor tensor in layout.Tensors)
        {
            if (SentenceTransformersFolder.ModuleOf(tensor.Name) is not { } module || !tensor.Name.EndsWith(".linear.weight", StringComparison.Ordinal)) continue;
            dense.Add(new OnnxDense(module, table.Take(tensor.Name), table.Has(module + ".linear.bias") ? table.Take(module + ".linear.bias") : null,
                SentenceTransformersFolder.DenseTanh(folder, module)));
        }
        return dense;
    }

    /// <summary>
    /// Gemma 3 (gemma3_text, or a gemma3 config's text_config; the compiler's FamilyNames.Gemma3): Llama's pre-norm layers
    /// with every RMSNorm × (1 + w), a norm on each sub-layer's output too, q/k norms, GEGLU with the tanh GELU, embeddings
    /// × √hidden, scores × query_pre_attn_scalar^−½, and the sliding layers' own window and rotary base beside the global
    /// layers' (linearly scaled) one; EmbeddingGemma's bidirectional encoder (two-sided windows of sliding_window // 2) with
    /// its sentence-transformers head. The hyperparameters are read as GGUF reads them (the same defaults).
    /// </summary>
    private static OnnxArchitecture Gemma3(ModelLayout layout, TransformerModelAttribute d, TensorTable table, string configPath)
    {
        using (JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(configPath)))
            if (String(document.RootElement, "model_type") is not ("gemma3_text" or "gemma3") and var other)
                throw new ArgumentException($"'{configPath}' is a {other ?? "(no model_type)"} config; {layout.Name} was compiled from a Gemma3 one", nameof(configPath));
        GgufHyperparameters h = GgufHyperparameters.FromConfig(configPath);
        bool bidirectional = layout.Architecture == Architecture.EncoderOnly;
        ParameterTensor embedding = table.Take("model.embed_tokens.weight");
        var layers = new List<OnnxLayerTensors>();
        for (int i = 0; table.Has($"model.layers.{i}.input_layernorm.weight"); i++)
        {
            string p = $"model.layers.{i}.";
            layers.Add(new OnnxLayerTensors(
                table.Take(p + "input_layernorm.weight"), null,
                [table.Take(p + "self_attn.q_proj.weight"), table.Take(p + "self_attn.k_proj.weight"), table.Take(p + "self_attn.v_proj.weight")],
                table.TakeAll(p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"),
                table.Take(p + "self_attn.o_proj.weight"), table.TakeOptional(p + "self_attn.o_proj.bias"),
                table.Take(p + "pre_feedforward_layernorm.weight"), null,
                [table.Take(p + "mlp.gate_proj.weight"), table.Take(p + "mlp.up_proj.weight")], null,
                table.Take(p + "mlp.down_proj.weight"), null,
                table.Take(p + "self_attn.q_norm.weight"), table.Take(p + "self_attn.k_norm.weight"))
            {
                PostAttentionNorm = table.Take(p + "post_attention_layernorm.weight"),
                PostFeedForwardNorm = table.Take(p + "post_feedforward_layernorm.weight"),
                Sliding = h.SlidingLayers is { } kinds && i < kinds.Count && kinds[i],
            });
        }
        int hidden = embedding.Shape[1];
        // The kernels' window: a decoder's query sees the last sliding_window keys (itself included); EmbeddingGemma's sees
        // |i − j| < sliding_window // 2 + 1 (Gemma3TextConfig halves the file's window for it).
        int window = bidirectional ? h.SlidingWindow / 2 : h.SlidingWindow - 1;
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = bidirectional,
            Vocab = layout.Vocab,
            DModel = hidden,
            Heads = h.Heads,
            KeyValueHeads = h.KeyValueHeads,
            HeadDim = h.HeadDim,
            SeqLen = layout.SeqLen,
            RmsNorm = true,
            NormEpsilon = h.NormEpsilon,
            NormUnitOffset = true,
            PreNorm = true,
            Positions = OnnxPositions.RotaryHalf,
            RopeTheta = h.RopeTheta,
            RopeScaling = h.RopeScaling,
            LocalRopeTheta = layers.Exists(l => l.Sliding) ? h.LocalRopeTheta : 0f,
            SlidingWindow = layers.Exists(l => l.Sliding) ? window : 0,
            ScoreScale = h.QueryPreAttentionScalar == h.HeadDim ? 0f : (float)(1.0 / Math.Sqrt(h.QueryPreAttentionScalar)),
            FeedForward = OnnxFeedForward.GeGluTanh,
            EmbeddingScale = (float)Math.Sqrt(hidden),
            TokenEmbedding = embedding,
            Layers = layers,
            FinalNorm = table.Take("model.norm.weight"),
            LanguageModelHead = bidirectional ? null : table.TakeOptional("lm_head.weight"),
            Head = bidirectional ? EncoderHead.SentenceEmbedding : default,
            Pooling = layout.Pooling,
            UnnormalizedEmbeddings = layout.UnnormalizedEmbeddings,
            Dense = bidirectional ? DenseLayers(layout, table, configPath) : [],
        };
    }

    /// <summary>
    /// ModernBERT (ModernBertModel's names without its <c>model.</c> prefix, the compiler's FamilyNames.ModernBert; the keys
    /// and defaults that ConfigReader.ModernBert reads): the token table and its LayerNorm <c>embeddings.norm</c>, pre-norm
    /// layers whose first reads its input without a norm (transformers makes layer 0's <c>attn_norm</c> an identity), Q | K | V
    /// in one <c>Wqkv</c>, rotate_half rotary positions, a gated feed-forward over the two halves of <c>Wi</c> (the activated
    /// input, then the gate), and <c>final_norm</c>. LayerNorms have a shift only with <c>norm_bias</c>, the projections a bias
    /// only with <c>attention_bias</c> (<c>Wqkv</c>, <c>attn.Wo</c>) and <c>mlp_bias</c> (<c>Wi</c>, <c>mlp.Wo</c>); the config
    /// and the tensors must agree on each. Every <c>global_attn_every_n_layers</c>-th layer from the first is global (base
    /// <c>global_rope_theta</c>, every real key); the others are local (base <c>local_rope_theta</c>, keys with
    /// |i − j| ≤ <c>local_attention</c> // 2). transformers 5's <c>layer_types</c> and <c>rope_parameters</c> are read as the
    /// compiler reads them. Only the sentence embedder is compiled for ModernBERT, and it is exported with its
    /// sentence-transformers head.
    /// </summary>
    private static OnnxArchitecture ModernBert(ModelLayout layout, TransformerModelAttribute d, JsonElement config, TensorTable table, string configPath)
    {
        if (d.Head != EncoderHead.SentenceEmbedding)
            throw new NotSupportedException($"{layout.Name}: a ModernBERT with a {d.Head} head is not exported; the compiler builds ModernBERT as a sentence embedder (Head = EncoderHead.SentenceEmbedding)");
        ParameterTensor embedding = table.Take("embeddings.tok_embeddings.weight");
        int hidden = embedding.Shape[1], heads = Require(config, "num_attention_heads");
        if (Integer(config, "hidden_size") is int configHidden && configHidden != hidden)
            throw new ArgumentException($"'{configPath}' says hidden_size = {configHidden}; {layout.Name}'s {embedding.Name} is {embedding.ShapeText}", nameof(configPath));
        if (heads <= 0 || hidden % heads != 0)
            throw new ArgumentException($"'{configPath}': {heads} heads do not divide hidden_size {hidden}", nameof(configPath));
        if (Integer(config, "head_dim") is int configHeadDim && configHeadDim != hidden / heads)
            throw new ArgumentException($"'{configPath}' says head_dim = {configHeadDim}; ModernBERT's heads are hidden_size / num_attention_heads = {hidden / heads} wide, as {layout.Name} was compiled", nameof(configPath));
        // The window, the layer kinds, the rotary bases and the activation, read as the GGUF export reads them (the keys and
        // defaults of ConfigReader.ModernBert, transformers 5's form, layer_types checked against the period).
        GgufHyperparameters h;
        try { h = GgufHyperparameters.FromConfig(configPath); }
        catch (InvalidDataException e) { throw new ArgumentException(e.Message, nameof(configPath), e); }
        string activation = h.FeedForwardActivation ?? "gelu";
        OnnxFeedForward feedForward = activation switch
        {
            "gelu" => OnnxFeedForward.GeGluErf,
            "gelu_new" or "gelu_pytorch_tanh" => OnnxFeedForward.GeGluTanh,
            "silu" or "swish" => OnnxFeedForward.SwiGlu,
            _ => throw new NotSupportedException($"'{configPath}': hidden_activation {activation}; ModernBERT's gated feed-forward is exported with gelu, gelu_pytorch_tanh (gelu_new) and silu, as the compiler builds it"),
        };
        bool normBias = Flag(config, "norm_bias") ?? false, attentionBias = Flag(config, "attention_bias") ?? false, mlpBias = Flag(config, "mlp_bias") ?? false;

        // local_attention // 2 = 0 leaves a local query its own key only; the compiled window, |i − j| < local_attention // 2 + 1,
        // then restricts nothing, so the graph could match either transformers or the compiled model, not both.
        int local = h.SlidingWindow;
        if (local < 2)
            throw new NotSupportedException($"'{configPath}': local_attention {local} lets a local layer's query see its own key only, a window the compiled model does not apply; not exported");
        ParameterTensor embeddingNorm = table.Take("embeddings.norm.weight");
        ParameterTensor? embeddingNormBias = Bias("embeddings.norm.bias", normBias, "norm_bias");
        var layers = new List<OnnxLayerTensors>();
        for (int i = 0; table.Has($"layers.{i}.attn.Wqkv.weight"); i++)
        {
            string p = $"layers.{i}.";
            ParameterTensor? qkvBias = Bias(p + "attn.Wqkv.bias", attentionBias, "attention_bias"), upBias = Bias(p + "mlp.Wi.bias", mlpBias, "mlp_bias");
            layers.Add(new OnnxLayerTensors(
                i == 0 ? null : table.Take(p + "attn_norm.weight"), i == 0 ? null : Bias(p + "attn_norm.bias", normBias, "norm_bias"),
                [table.Take(p + "attn.Wqkv.weight")], qkvBias is null ? null : [qkvBias],
                table.Take(p + "attn.Wo.weight"), Bias(p + "attn.Wo.bias", attentionBias, "attention_bias"),
                table.Take(p + "mlp_norm.weight"), Bias(p + "mlp_norm.bias", normBias, "norm_bias"),
                [table.Take(p + "mlp.Wi.weight")], upBias is null ? null : [upBias],
                table.Take(p + "mlp.Wo.weight"), Bias(p + "mlp.Wo.bias", mlpBias, "mlp_bias"))
            {
                // Global where the index is a multiple of global_attn_every_n_layers, which is what ModernBertAttention tests.
                Sliding = h.SlidingLayers is { } kinds && i < kinds.Count && kinds[i],
            });
        }
        if (Integer(config, "num_hidden_layers") is int configLayers && configLayers != layers.Count)
            throw new ArgumentException($"'{configPath}' says num_hidden_layers = {configLayers}; {layout.Name} has {layers.Count} layers", nameof(configPath));
        float globalTheta = h.RopeTheta, localTheta = h.LocalRopeTheta;

        bool anySliding = layers.Exists(l => l.Sliding);
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = true,
            Vocab = layout.Vocab,
            DModel = hidden,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = hidden / heads,
            SeqLen = layout.SeqLen,
            RmsNorm = false,
            NormEpsilon = h.NormEpsilon,
            PreNorm = true,
            Positions = OnnxPositions.RotaryHalf,
            RopeTheta = globalTheta,
            LocalRopeTheta = anySliding ? localTheta : 0f,
            SlidingWindow = anySliding ? local / 2 : 0,
            FeedForward = feedForward,
            TokenEmbedding = embedding,
            EmbeddingNorm = embeddingNorm,
            EmbeddingNormBias = embeddingNormBias,
            Layers = layers,
            FinalNorm = table.Take("final_norm.weight"),
            FinalNormBias = Bias("final_norm.bias", normBias, "norm_bias"),
            Head = EncoderHead.SentenceEmbedding,
            Pooling = layout.Pooling,
            UnnormalizedEmbeddings = layout.UnnormalizedEmbeddings,
            Dense = DenseLayers(layout, table, configPath),
        };

        // A bias the config's key says the model has, or has not: the tensors must say the same.
        ParameterTensor? Bias(string name, bool expected, string key)
        {
            if (table.Has(name) != expected)
                throw new ArgumentException($"'{configPath}' says {key} = {(expected ? "true" : "false")}, and {layout.Name} {(expected ? "has no" : "has")} {name}", nameof(configPath));
            return expected ? table.Take(name) : null;
        }
    }

    private static OnnxArchitecture Llama(ModelLayout layout, JsonElement config, TensorTable table, string configPath)
    {
        // The rotary scaling, read as the GGUF export reads it (the compiler's rules: ConfigReader.LlamaRopeScaling).
        GgufHyperparameters h;
        try { h = GgufHyperparameters.FromConfig(configPath); }
        catch (InvalidDataException e) { throw new ArgumentException(e.Message, nameof(configPath), e); }
        h.CheckRopeScalingFits(layout);
        int heads = Require(config, "num_attention_heads"), hidden = Require(config, "hidden_size");
        float theta = Number(config, "rope_theta")
            ?? (config.TryGetProperty("rope_parameters", out JsonElement rope) && rope.ValueKind == JsonValueKind.Object ? Number(rope, "rope_theta") : null)
            ?? 10000f;
        ParameterTensor embedding = table.Take("model.embed_tokens.weight");
        var layers = new List<OnnxLayerTensors>();
        for (int i = 0; table.Has($"model.layers.{i}.input_layernorm.weight"); i++)
        {
            string p = $"model.layers.{i}.";
            // Qwen3's per-head query and key norms: both or neither.
            ParameterTensor[]? headNorms = table.TakeAll(p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight");
            // Phi-3 holds the stacks the graph multiplies by already made: qkv_proj (rows Q | K | V) and gate_up_proj
            // (rows gate | up), split after the product as Llama's are.
            ParameterTensor[] queryKeyValue = table.TakeOptional(p + "self_attn.qkv_proj.weight") is { } qkv ? [qkv]
                : [table.Take(p + "self_attn.q_proj.weight"), table.Take(p + "self_attn.k_proj.weight"), table.Take(p + "self_attn.v_proj.weight")];
            ParameterTensor[] gateUp = table.TakeOptional(p + "mlp.gate_up_proj.weight") is { } fused ? [fused]
                : [table.Take(p + "mlp.gate_proj.weight"), table.Take(p + "mlp.up_proj.weight")];
            layers.Add(new OnnxLayerTensors(
                table.Take(p + "input_layernorm.weight"), null,
                queryKeyValue,
                table.TakeAll(p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"),
                table.Take(p + "self_attn.o_proj.weight"), table.TakeOptional(p + "self_attn.o_proj.bias"),
                table.Take(p + "post_attention_layernorm.weight"), null,
                gateUp,
                table.TakeAll(p + "mlp.gate_proj.bias", p + "mlp.up_proj.bias"),
                table.Take(p + "mlp.down_proj.weight"), table.TakeOptional(p + "mlp.down_proj.bias"),
                headNorms?[0], headNorms?[1]));
        }
        string activation = String(config, "hidden_act") ?? "silu";
        if (activation is not ("silu" or "swish")) throw new NotSupportedException($"'{configPath}': hidden_act {activation}; the gated feed-forward is exported with silu only");
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = false,
            Vocab = layout.Vocab,
            DModel = embedding.Shape[1],
            Heads = heads,
            KeyValueHeads = Integer(config, "num_key_value_heads") ?? heads,
            HeadDim = Integer(config, "head_dim") ?? hidden / heads,
            SeqLen = layout.SeqLen,
            RmsNorm = true,
            NormEpsilon = Number(config, "rms_norm_eps") ?? 1e-6f,
            PreNorm = true,
            Positions = OnnxPositions.RotaryHalf,
            RopeTheta = theta,
            RopeScaling = h.RopeScaling,
            FeedForward = OnnxFeedForward.SwiGlu,
            TokenEmbedding = embedding,
            Layers = layers,
            FinalNorm = table.Take("model.norm.weight"),
            LanguageModelHead = table.TakeOptional("lm_head.weight"),
        };
    }

    /// <summary>
    /// Marian, BART, mBART and M2M100 (BartForConditionalGeneration's names, the compiler's FamilyNames.BartEncoder and
    /// BartDecoder; ConfigReader.EncoderDecoder reads the same keys with the same defaults): one token table
    /// <c>model.shared</c> for both stacks and the tied head, scaled by √d_model when <c>scale_embedding</c> is set (M2M100's
    /// default); positions as split sinusoids (Marian), fairseq's sinusoids counted from <c>pad_token_id + 1</c> (M2M100) or a
    /// learned table per stack 2 rows in (BART, mBART, followed by <c>layernorm_embedding</c>); post-LN layers (Marian, BART)
    /// or pre-LN ones with a final <c>layer_norm</c> per stack (mBART, M2M100); <c>final_logits_bias</c> on the logits (not
    /// M2M100). The decoder's self-attention masks no padding (transformers' does not; the compiler's neither).
    /// </summary>
    private static OnnxArchitecture Seq2SeqFamily(ModelLayout layout, JsonElement config, TensorTable table)
    {
        CheckpointFamily family = layout.Family;
        bool marian = family == CheckpointFamily.Marian, m2m = family == CheckpointFamily.M2M100, learned = !marian && !m2m;
        bool pre = family is CheckpointFamily.MBart or CheckpointFamily.M2M100;
        int heads = Require(config, "encoder_attention_heads");
        ParameterTensor shared = table.Take("model.shared.weight");
        int dModel = shared.Shape[1];
        if (heads <= 0 || dModel % heads != 0) throw new ArgumentException($"{layout.Name}: {heads} heads do not divide d_model = {dModel}");
        bool scale = config.TryGetProperty("scale_embedding", out JsonElement s) && s.ValueKind is JsonValueKind.True or JsonValueKind.False ? s.GetBoolean() : m2m;
        var cross = new List<OnnxCrossAttentionTensors>();
        ParameterTensor? Part(string side, string name) => pre ? table.Take($"model.{side}.layer_norm.{name}") : null;
        ParameterTensor? Learned(string name) => learned ? table.Take(name) : null;
        var decoder = new OnnxDecoderStack
        {
            Vocab = layout.TargetVocab,
            SeqLen = layout.DecoderSeqLen,
            MasksPadding = false,
            TokenEmbedding = shared,
            PositionEmbedding = Learned("model.decoder.embed_positions.weight"),
            EmbeddingNorm = Learned("model.decoder.layernorm_embedding.weight"),
            EmbeddingNormBias = Learned("model.decoder.layernorm_embedding.bias"),
            Layers = Seq2SeqFamilyLayers(table, "model.decoder.layers.", cross),
            CrossAttention = cross,
            FinalNorm = Part("decoder", "weight"),
            FinalNormBias = Part("decoder", "bias"),
            LanguageModelHead = table.TakeOptional("lm_head.weight"),
            LogitsBias = table.TakeOptional("final_logits_bias"),
        };
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = true,
            Vocab = layout.Vocab,
            DModel = dModel,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = dModel / heads,
            SeqLen = layout.SeqLen,
            RmsNorm = false,
            NormEpsilon = 1e-5f, // nn.LayerNorm's default, which these models keep (the compiler's FamilySpec too)
            PreNorm = pre,
            Positions = marian ? OnnxPositions.SinusoidalSplit : m2m ? OnnxPositions.SinusoidalFairseq : OnnxPositions.Learned,
            SinusoidFirstPosition = m2m ? layout.PadToken + 1 : 0,
            FeedForward = Ungated(config, "activation_function", m2m ? "relu" : "gelu"),
            EmbeddingScale = scale ? (float)Math.Sqrt(dModel) : 1f,
            TokenEmbedding = shared,
            PositionEmbedding = Learned("model.encoder.embed_positions.weight"),
            PositionOffset = learned ? 2 : 0,
            EmbeddingNorm = Learned("model.encoder.layernorm_embedding.weight"),
            EmbeddingNormBias = Learned("model.encoder.layernorm_embedding.bias"),
            Layers = Seq2SeqFamilyLayers(table, "model.encoder.layers.", null),
            FinalNorm = Part("encoder", "weight"),
            FinalNormBias = Part("encoder", "bias"),
            Decoder = decoder,
        };
    }

    /// <summary>The layers under <paramref name="prefix"/> in BART's names; with <paramref name="cross"/>, each decoder layer's <c>encoder_attn</c> is added to it.</summary>
    private static List<OnnxLayerTensors> Seq2SeqFamilyLayers(TensorTable table, string prefix, List<OnnxCrossAttentionTensors>? cross)
    {
        var layers = new List<OnnxLayerTensors>();
        for (int i = 0; table.Has($"{prefix}{i}.self_attn.q_proj.weight"); i++)
        {
            string p = $"{prefix}{i}.";
            layers.Add(new OnnxLayerTensors(
                table.Take(p + "self_attn_layer_norm.weight"), table.Take(p + "self_attn_layer_norm.bias"),
                [table.Take(p + "self_attn.q_proj.weight"), table.Take(p + "self_attn.k_proj.weight"), table.Take(p + "self_attn.v_proj.weight")],
                [table.Take(p + "self_attn.q_proj.bias"), table.Take(p + "self_attn.k_proj.bias"), table.Take(p + "self_attn.v_proj.bias")],
                table.Take(p + "self_attn.out_proj.weight"), table.Take(p + "self_attn.out_proj.bias"),
                table.Take(p + "final_layer_norm.weight"), table.Take(p + "final_layer_norm.bias"),
                [table.Take(p + "fc1.weight")], [table.Take(p + "fc1.bias")],
                table.Take(p + "fc2.weight"), table.Take(p + "fc2.bias")));
            cross?.Add(new OnnxCrossAttentionTensors(
                table.Take(p + "encoder_attn_layer_norm.weight"), table.Take(p + "encoder_attn_layer_norm.bias"),
                table.Take(p + "encoder_attn.q_proj.weight"), table.Take(p + "encoder_attn.q_proj.bias"),
                [table.Take(p + "encoder_attn.k_proj.weight"), table.Take(p + "encoder_attn.v_proj.weight")],
                [table.Take(p + "encoder_attn.k_proj.bias"), table.Take(p + "encoder_attn.v_proj.bias")],
                table.Take(p + "encoder_attn.out_proj.weight"), table.Take(p + "encoder_attn.out_proj.bias")));
        }
        return layers;
    }

    /// <summary>
    /// T5, T5 v1.1, Flan-T5 and mT5 (T5ForConditionalGeneration's names, the compiler's FamilyNames.T5; ConfigReader.T5
    /// reads the same keys with the same defaults): one token table <c>shared</c> (no embedding scale, no positions), pre-norm
    /// layers with RMSNorm (<c>layer_norm_epsilon</c>) and no biases anywhere, heads of <c>d_kv</c> (num_heads·d_kv need not
    /// be d_model), unscaled scores plus each stack's relative-position bias (block 0's <c>relative_attention_bias</c>,
    /// bidirectional buckets in the encoder, causal ones in the decoder; none in cross-attention), a ReLU (<c>wi</c>) or gated
    /// (<c>wi_0</c>, <c>wi_1</c>) feed-forward, a final RMSNorm per stack, and the head: tied to <c>shared</c> and reading the
    /// decoder's output × d_model^−½, or <c>lm_head</c>.
    /// </summary>
    private static OnnxArchitecture T5(ModelLayout layout, JsonElement config, TensorTable table, string configPath)
    {
        int heads = Require(config, "num_heads"), headDim = Require(config, "d_kv");
        ParameterTensor shared = table.Take("shared.weight");
        int dModel = shared.Shape[1];
        // T5Config derives dense_act_fn and is_gated_act from feed_forward_proj ("gated-gelu" meaning gelu_new); a saved config
        // carries both, and the saved ones decide (as ConfigReader.T5 reads them).
        string projection = String(config, "feed_forward_proj") ?? "relu";
        bool gatedByName = projection.StartsWith("gated-", StringComparison.Ordinal);
        string derived = projection == "gated-gelu" ? "gelu_new" : gatedByName ? projection["gated-".Length..] : projection;
        bool gated = config.TryGetProperty("is_gated_act", out JsonElement g) && g.ValueKind is JsonValueKind.True or JsonValueKind.False ? g.GetBoolean() : gatedByName;
        string activation = String(config, "dense_act_fn") ?? derived;
        OnnxFeedForward feedForward = (activation, gated) switch
        {
            ("relu", false) => OnnxFeedForward.Relu,
            ("gelu", false) => OnnxFeedForward.GeluErf,
            ("gelu_new" or "gelu_pytorch_tanh", false) => OnnxFeedForward.GeluTanh,
            ("silu" or "swish", false) => OnnxFeedForward.Silu,
            ("gelu_new" or "gelu_pytorch_tanh", true) => OnnxFeedForward.GeGluTanh,
            ("silu" or "swish", true) => OnnxFeedForward.SwiGlu,
            _ => throw new NotSupportedException($"'{configPath}': the {(gated ? "gated " : "")}{activation} feed-forward; T5's is exported with relu, gelu, gelu_new and silu, and gated with gelu_new (gated-gelu) and silu, as the compiler builds it"),
        };
        bool tied = config.TryGetProperty("tie_word_embeddings", out JsonElement t) && t.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? t.GetBoolean() : String(config, "model_type") == "t5";
        ParameterTensor? head = table.TakeOptional("lm_head.weight");
        if (tied != (head is null))
            throw new ArgumentException($"'{configPath}' says tie_word_embeddings = {tied}, and {layout.Name} {(head is null ? "has no" : "has its own")} lm_head.weight", nameof(configPath));
        var decoderCross = new List<OnnxCrossAttentionTensors>();
        var decoder = new OnnxDecoderStack
        {
            Vocab = layout.TargetVocab,
            SeqLen = layout.DecoderSeqLen,
            MasksPadding = false, // transformers' T5 decoder masks no padding (its start token is the padding id); the compiler's neither
            TokenEmbedding = shared,
            Layers = T5Layers(table, "decoder", gated, decoderCross),
            CrossAttention = decoderCross,
            FinalNorm = table.Take("decoder.final_layer_norm.weight"),
            LanguageModelHead = head,
            HeadScale = head is null ? (float)(1.0 / Math.Sqrt(dModel)) : 1f, // as the compiler's ScaleOp computes it
            RelativeAttentionBias = table.Take("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        };
        return new OnnxArchitecture
        {
            Name = layout.Name,
            Encoder = true,
            Vocab = layout.Vocab,
            DModel = dModel,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = headDim,
            SeqLen = layout.SeqLen,
            RmsNorm = true,
            NormEpsilon = Number(config, "layer_norm_epsilon") ?? 1e-6f,
            PreNorm = true,
            Positions = OnnxPositions.Relative,
            UnscaledScores = true,
            RelativeAttentionBias = table.Take("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            RelativeBuckets = Integer(config, "relative_attention_num_buckets") ?? 32,
            RelativeMaxDistance = Integer(config, "relative_attention_max_distance") ?? 128,
            FeedForward = feedForward,
            TokenEmbedding = shared,
            Layers = T5Layers(table, "encoder", gated, null),
            FinalNorm = table.Take("encoder.final_layer_norm.weight"),
            Decoder = decoder,
        };
    }

    /// <summary>
    /// The blocks of a T5 stack (<paramref name="side"/> "encoder" or "decoder"): <c>layer.0</c> self-attention, in the decoder
    /// <c>layer.1</c> cross-attention (added to <paramref name="cross"/>), and the last the feed-forward network, each with its
    /// RMSNorm <c>layer_norm</c>.
    /// </summary>
    private static List<OnnxLayerTensors> T5Layers(TensorTable table, string side, bool gated, List<OnnxCrossAttentionTensors>? cross)
    {
        var layers = new List<OnnxLayerTensors>();
        for (int i = 0; table.Has($"{side}.block.{i}.layer.0.SelfAttention.q.weight"); i++)
        {
            string p = $"{side}.block.{i}.layer.", attention = p + "0.SelfAttention.", ffn = p + (cross is null ? "1" : "2") + ".";
            layers.Add(new OnnxLayerTensors(
                table.Take(p + "0.layer_norm.weight"), null,
                [table.Take(attention + "q.weight"), table.Take(attention + "k.weight"), table.Take(attention + "v.weight")], null,
                table.Take(attention + "o.weight"), null,
                table.Take(ffn + "layer_norm.weight"), null,
                gated ? [table.Take(ffn + "DenseReluDense.wi_0.weight"), table.Take(ffn + "DenseReluDense.wi_1.weight")] : [table.Take(ffn + "DenseReluDense.wi.weight")], null,
                table.Take(ffn + "DenseReluDense.wo.weight"), null));
            cross?.Add(new OnnxCrossAttentionTensors(
                table.Take(p + "1.layer_norm.weight"), null,
                table.Take(p + "1.EncDecAttention.q.weight"), null,
                [table.Take(p + "1.EncDecAttention.k.weight"), table.Take(p + "1.EncDecAttention.v.weight")], null,
                table.Take(p + "1.EncDecAttention.o.weight"), null));
        }
        return layers;
    }

    private static OnnxFeedForward Ungated(JsonElement config, string key, string fallback)
    {
        string value = String(config, key) ?? fallback;
        return value switch
        {
            "gelu" => OnnxFeedForward.GeluErf,
            "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => OnnxFeedForward.GeluTanh,
            "relu" => OnnxFeedForward.Relu,
            "silu" or "swish" => OnnxFeedForward.Silu,
            _ => throw new NotSupportedException($"{key} {value}: the export knows gelu, gelu_new (gelu_pytorch_tanh, gelu_fast), relu and silu (swish), as the compiler does"),
        };
    }

    /// <summary>Checks the sizes read from the declaration or config against the tensors' shapes.</summary>
    public void Check()
    {
        if (Heads <= 0 || KeyValueHeads <= 0 || Heads % KeyValueHeads != 0 || HeadDim <= 0)
            throw new ArgumentException($"{Name}: {Heads} heads on {KeyValueHeads} key/value heads of {HeadDim}: the key/value heads must divide the heads");
        if (Positions is OnnxPositions.RotaryHalf or OnnxPositions.RotaryInterleaved && HeadDim % 2 != 0)
            throw new ArgumentException($"{Name}: rotary positions need an even head size, not {HeadDim}");
        if (Layers.Count == 0) throw new ArgumentException($"{Name} has no layers");
        int qkvRows = 0;
        foreach (ParameterTensor t in Layers[0].QueryKeyValue) qkvRows += t.Shape[0];
        int expected = (Heads + 2 * KeyValueHeads) * HeadDim;
        if (qkvRows != expected || Layers[0].Output.Shape[1] != Heads * HeadDim)
            throw new ArgumentException($"{Name}: the query, key and value projections have {qkvRows} rows; {Heads} heads and {KeyValueHeads} key/value heads of {HeadDim} need {expected}");
        if (FeedForward is OnnxFeedForward.SwiGlu or OnnxFeedForward.GeGluTanh or OnnxFeedForward.GeGluErf)
        {
            // The gate and up rows are split in two equal halves after the product: twice the down projection's input.
            int upRows = 0;
            foreach (ParameterTensor t in Layers[0].Up) upRows += t.Shape[0];
            if (upRows != 2 * Layers[0].Down.Shape[1])
                throw new ArgumentException($"{Name}: the gate and up projections have {upRows} rows; a down projection from {Layers[0].Down.Shape[1]} needs {2 * Layers[0].Down.Shape[1]}");
        }
        // A layer without an attention norm reads its input as it is, which only a pre-norm layer can (a post-norm one would
        // leave its residual sum unnormalized).
        if (!PreNorm && (Layers.Any(l => l.AttentionNorm is null) || (Decoder?.Layers.Any(l => l.AttentionNorm is null) ?? false)))
            throw new ArgumentException($"{Name}: a post-norm layer without its attention norm");
        foreach (OnnxLayerTensors layer in Layers)
            foreach (ParameterTensor? norm in new[] { layer.QueryNorm, layer.KeyNorm })
                if (norm is not null && norm.Length != HeadDim)
                    throw new ArgumentException($"{Name}: {norm.Name} {norm.ShapeText} does not scale heads of {HeadDim}");
        // Only relative positions (T5): every stack needs its table. Beside absolute positions (MPNet) a table is optional.
        ParameterTensor?[] tables = Decoder is null ? [RelativeAttentionBias] : [RelativeAttentionBias, Decoder.RelativeAttentionBias];
        bool anyTable = Array.Exists(tables, t => t is not null);
        if (Positions == OnnxPositions.Relative || anyTable)
        {
            // The single stack's bias is built for an encoder (bidirectional buckets, no cache); a decoder-only model has none.
            if (!Encoder) throw new ArgumentException($"{Name}: a decoder-only model with a relative-position bias is not exported");
            // The bias [heads, queries, keys] is added to scores [batch, heads, queries, keys]: one bias row per query head.
            if (KeyValueHeads != Heads) throw new ArgumentException($"{Name}: a relative-position bias with {Heads} heads on {KeyValueHeads} key/value heads is not exported");
            foreach (ParameterTensor? bias in tables)
            {
                if (bias is null && Positions == OnnxPositions.Relative)
                    throw new ArgumentException($"{Name}: a stack has no relative-position table, and its only positions are relative ones");
                if (bias is not null && (bias.Shape.Length != 2 || bias.Shape[0] != RelativeBuckets || bias.Shape[1] != Heads))
                    throw new ArgumentException($"{Name}: {bias.Name} {bias.ShapeText}; {RelativeBuckets} buckets (relative_attention_num_buckets) and {Heads} heads need [{RelativeBuckets}, {Heads}]");
            }
            if (RelativeBuckets < 4 || RelativeMaxDistance <= RelativeBuckets / 4)
                throw new ArgumentException($"{Name}: {RelativeBuckets} buckets up to distance {RelativeMaxDistance}: the encoder's buckets need 4 or more and a max distance past the exact ones");
        }
        // The embeddings are DModel wide, or an encoder's projection (ELECTRA's) makes them so.
        int embeddingWidth = TokenEmbedding.Shape[1];
        if (EmbeddingProjection is { } projection)
        {
            if (!Encoder || Decoder is not null)
                throw new ArgumentException($"{Name}: an embedding projection is exported in an encoder-only model only");
            if (projection.Shape.Length != 2 || projection.Shape[0] != DModel || projection.Shape[1] != embeddingWidth
                || EmbeddingProjectionBias is { } b && (b.Shape.Length != 1 || b.Shape[0] != DModel))
                throw new ArgumentException($"{Name}: {projection.Name} {projection.ShapeText} does not map embeddings {embeddingWidth} wide to DModel = {DModel}");
        }
        else if (embeddingWidth != DModel)
            throw new ArgumentException($"{Name}: {TokenEmbedding.Name} {TokenEmbedding.ShapeText} is {embeddingWidth} wide, and without an embedding projection the layers need DModel = {DModel}");
        if (PositionEmbedding is { } p && p.Shape[0] < SeqLen)
            throw new ArgumentException($"{Name}: {p.Name} has {p.Shape[0]} positions, fewer than SeqLen = {SeqLen}");
        if (Decoder is not { } decoder) return;
        if (decoder.Layers.Count == 0 || decoder.CrossAttention.Count != decoder.Layers.Count)
            throw new ArgumentException($"{Name}: the decoder has {decoder.Layers.Count} layers and {decoder.CrossAttention.Count} cross-attentions; each layer needs one");
        if (decoder.TokenEmbedding.Shape[1] != DModel)
            throw new ArgumentException($"{Name}: {decoder.TokenEmbedding.Name} {decoder.TokenEmbedding.ShapeText} is not of width DModel = {DModel}");
        if (decoder.PositionEmbedding is { } q && q.Shape[0] < decoder.SeqLen)
            throw new ArgumentException($"{Name}: {q.Name} has {q.Shape[0]} positions, fewer than TargetSeqLen = {decoder.SeqLen}");
    }

    private static string? String(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static int? Integer(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;

    private static int Require(JsonElement o, string key) =>
        Integer(o, key) ?? throw new ArgumentException($"the config has no {key}");

    private static bool? Flag(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static float? Number(JsonElement o, string key) =>
        o.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? (float)v.GetDouble() : null;

    /// <summary>The model's tensors by name; each is taken once, and one left over means the export does not know it.</summary>
    private sealed class TensorTable
    {
        private readonly ModelLayout _layout;
        private readonly Dictionary<string, ParameterTensor> _byName = new(StringComparer.Ordinal);
        private readonly HashSet<string> _taken = new(StringComparer.Ordinal);

        public TensorTable(ModelLayout layout)
        {
            _layout = layout;
            foreach (ParameterTensor t in layout.Tensors) _byName[t.Name] = t;
        }

        public bool Has(string name) => _byName.ContainsKey(name);

        public ParameterTensor Take(string name) => TakeOptional(name)
            ?? throw new NotSupportedException($"{_layout.Name} has no tensor '{name}', which its architecture needs; the export does not know this model's layout");

        public ParameterTensor? TakeOptional(string name)
        {
            if (!_byName.TryGetValue(name, out ParameterTensor? t)) return null;
            _taken.Add(name);
            return t;
        }

        /// <summary>All of <paramref name="names"/>, or none of them (optional biases of stacked projections).</summary>
        public ParameterTensor[]? TakeAll(params string[] names)
        {
            int present = 0;
            foreach (string n in names) if (Has(n)) present++;
            if (present == 0) return null;
            if (present != names.Length) throw new NotSupportedException($"{_layout.Name} has some of {string.Join(", ", names)} but not all");
            var result = new ParameterTensor[names.Length];
            for (int i = 0; i < names.Length; i++) result[i] = Take(names[i]);
            return result;
        }

        public void CheckAllUsed()
        {
            foreach (ParameterTensor t in _layout.Tensors)
                if (!_taken.Contains(t.Name))
                    throw new NotSupportedException($"{_layout.Name}: tensor '{t.Name}' {t.ShapeText} has no place in the exported graph; exporting without it would compute something else");
        }
    }

    internal static string Text(float value) => value.ToString("R", CultureInfo.InvariantCulture);
}
