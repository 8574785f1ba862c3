using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>BertModel</c> (MODEL_FAMILIES.md §2, <c>modeling_bert.py</c>, eager attention) and the sentence-transformers
/// pipeline on top of it: (word + token type 0) + position, embedding LayerNorm, post-LN layers with separate
/// query/key/value Linear layers and erf GELU, mean pooling over the attention mask, L2 normalisation. Also
/// <c>RobertaModel</c>/<c>XLMRobertaModel</c> (<c>modeling_roberta.py</c>), which differ only in the position ids, and
/// <c>DistilBertModel</c> (<c>modeling_distilbert.py</c>): the same computation under other names, without token types,
/// its sequence classifier's <c>pre_classifier</c> followed by ReLU. And <c>ElectraModel</c> (<c>modeling_electra.py</c>):
/// BERT's embeddings at their own width E (<c>embedding_size</c>), then <c>embeddings_project</c> (Linear(E, H)) when
/// E ≠ H, then BERT's layers; no pooler; its sequence classifier's head is RoBERTa's with erf GELU for tanh.
/// </summary>
internal sealed class HfBert : HfTorchModel, IHfSentenceEncoder
{
    public HfBert(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        long hidden = config.HiddenSize, inner = config.IntermediateSize, positions = config.MaxPositions;
        // ELECTRA's tables and embedding LayerNorm are embedding_size wide; every other family's hidden_size wide.
        long embedding = config.InputEmbeddingSize;
        // BertEmbeddings' own buffer comes before its child modules in state_dict() (ElectraEmbeddings' too).
        Buffer("embeddings.position_ids", () => arange(positions, ScalarType.Int64).view(1, positions));
        Parameter("embeddings.word_embeddings.weight", HfInit.Embedding, config.VocabSize, embedding);
        Parameter("embeddings.position_embeddings.weight", HfInit.Embedding, positions, embedding);
        if (!Distil) Parameter("embeddings.token_type_embeddings.weight", HfInit.Embedding, config.TypeVocabSize, embedding);
        LayerNormParameters("embeddings.LayerNorm", embedding);
        // ElectraModel.__init__ builds embeddings_project between the embeddings and the encoder, only when E ≠ H.
        if (config.ProjectsEmbeddings) Linear(EmbeddingsProject, embedding, hidden);
        for (int i = 0; i < config.Layers; i++)
        {
            Linear(Layer(i, Query), hidden, hidden);
            Linear(Layer(i, Key), hidden, hidden);
            Linear(Layer(i, Value), hidden, hidden);
            Linear(Layer(i, Output), hidden, hidden);
            LayerNormParameters(Layer(i, AttentionNorm), hidden);
            Linear(Layer(i, Up), hidden, inner);
            Linear(Layer(i, Down), inner, hidden);
            LayerNormParameters(Layer(i, OutputNorm), hidden);
        }
        // BertPooler (tanh on token 0) is in every BertModel file but mean pooling never reads it; a sequence classifier
        // reads it (RobertaForSequenceClassification and the token classifiers are built without it; DistilBERT has none,
        // its sequence classifier has pre_classifier instead).
        bool roberta = config.PositionsFromPadding;
        HfEncoderHead head = config.EncoderHead;
        if (Distil && head == HfEncoderHead.SequenceClassification)
        {
            Parameter("pre_classifier.weight", HfInit.Matrix, hidden, hidden);
            Parameter("pre_classifier.bias", HfInit.Bias, hidden);
        }
        if (!roberta && !Distil && !Electra && head != HfEncoderHead.TokenClassification)
        {
            Parameter("pooler.dense.weight", HfInit.Matrix, used: head == HfEncoderHead.SequenceClassification, hidden, hidden);
            Parameter("pooler.dense.bias", HfInit.Bias, used: head == HfEncoderHead.SequenceClassification, hidden);
        }
        if (head == HfEncoderHead.SequenceClassification && (roberta || Electra))
        {
            // RobertaClassificationHead: dense, tanh, out_proj on <s>; ElectraClassificationHead: the same with GELU.
            Parameter("classifier.dense.weight", HfInit.Matrix, hidden, hidden);
            Parameter("classifier.dense.bias", HfInit.Bias, hidden);
            Parameter("classifier.out_proj.weight", HfInit.Matrix, config.Labels, hidden);
            Parameter("classifier.out_proj.bias", HfInit.Bias, config.Labels);
        }
        else if (head != HfEncoderHead.None)
        {
            Parameter("classifier.weight", HfInit.Matrix, config.Labels, hidden);
            Parameter("classifier.bias", HfInit.Bias, config.Labels);
        }
        DenseParameters(); // a sentence-transformers folder's Dense layers after the pooling (LaBSE's), if any

        // ElectraForPreTraining's discriminator head and ElectraForMaskedLM's generator head: in their files, never read
        // here (drawn after the parameters, so they change none of them).
        if (!Electra) return;
        using DisposeScope scope = NewDisposeScope();
        var unread = new List<(string, Tensor)>();
        void Unread(string name, HfInit init, params long[] shape) => unread.Add((name, scope.Detach(Drawn(name, init, shape))));
        if (config.Architecture == "ElectraForPreTraining")
        {
            // ElectraDiscriminatorPredictions: dense (H → H), hidden_act, dense_prediction (H → 1).
            Unread("discriminator_predictions.dense.weight", HfInit.Matrix, hidden, hidden);
            Unread("discriminator_predictions.dense.bias", HfInit.Bias, hidden);
            Unread("discriminator_predictions.dense_prediction.weight", HfInit.Matrix, 1, hidden);
            Unread("discriminator_predictions.dense_prediction.bias", HfInit.Bias, 1);
        }
        else if (config.Architecture == "ElectraForMaskedLM")
        {
            // ElectraGeneratorPredictions: LayerNorm(E) registered before dense (H → E); generator_lm_head (E → V) ties its
            // weight to the word embeddings (KeepTiedCopy writes it) and has a bias of its own.
            Unread("generator_predictions.LayerNorm.weight", HfInit.NormWeight, embedding);
            Unread("generator_predictions.LayerNorm.bias", HfInit.Bias, embedding);
            Unread("generator_predictions.dense.weight", HfInit.Matrix, embedding, hidden);
            Unread("generator_predictions.dense.bias", HfInit.Bias, embedding);
            Unread("generator_lm_head.bias", HfInit.Bias, config.VocabSize);
        }
        _electraHeads = unread.ToArray();
    }

    private readonly (string Name, Tensor Value)[] _electraHeads = [];

    /// <summary>
    /// ELECTRA in the layout of its task model (<c>Prefix</c>) only: ElectraForPreTraining's <c>discriminator_predictions.*</c>
    /// or ElectraForMaskedLM's <c>generator_predictions.*</c> and <c>generator_lm_head.bias</c>, as <c>architectures</c> says,
    /// rounded to the file's dtype.
    /// </summary>
    public override IEnumerable<(string Name, Tensor Value)> UnreadFileTensors(HfWriteOptions options)
    {
        if (!options.Prefix) return [];
        ScalarType? rounded = options.Dtype switch { HfDtype.BF16 => ScalarType.BFloat16, HfDtype.F16 => ScalarType.Float16, _ => null };
        return Array.ConvertAll(_electraHeads, h => (h.Name, rounded is ScalarType r ? h.Value.to(r).to(ScalarType.Float32) : h.Value.detach()));
    }

    /// <summary>
    /// ElectraForMaskedLM's <c>generator_lm_head.weight</c>, the word embeddings' tied copy; no other ELECTRA file has a tied
    /// head. BERT, RoBERTa and DistilBERT keep the default.
    /// </summary>
    public override IReadOnlyList<string> TiedCopyNames =>
        !Electra ? base.TiedCopyNames : Config.Architecture == "ElectraForMaskedLM" ? ["generator_lm_head.weight"] : [];

    /// <summary>ELECTRA's head tensors that a file may hold beside the model's (<see cref="UnreadFileTensors"/>): none unless its architecture has one.</summary>
    public bool HasUnreadHeads => _electraHeads.Length > 0;

    /// <summary>ELECTRA's <c>embeddings_project</c> (Linear(E, H)), present only when <c>embedding_size</c> ≠ <c>hidden_size</c>.</summary>
    public const string EmbeddingsProject = "embeddings_project";

    /// <summary>
    /// The classifier's logits: <c>[B, labels]</c> from the [CLS] token through BERT's pooler (dense, tanh) and
    /// <c>classifier</c>, or RoBERTa's <c>classifier.dense</c>, tanh, <c>classifier.out_proj</c> (dropout off), or
    /// ELECTRA's the same with erf GELU; for a token classifier <c>classifier</c> on every position, <c>[B, T, labels]</c>.
    /// </summary>
    public Tensor ClassifierLogits(Tensor ids, Tensor attentionMask, Tensor? tokenTypes = null)
    {
        Tensor h = LastHiddenState(ids, attentionMask, tokenTypes);
        if (Config.EncoderHead == HfEncoderHead.TokenClassification) return F.linear(h, this["classifier.weight"], this["classifier.bias"]);
        if (Config.EncoderHead != HfEncoderHead.SequenceClassification) throw new InvalidOperationException("the checkpoint has no classifier");
        Tensor first = h.select(1, 0);
        if (Distil)
            return F.linear(F.relu(F.linear(first, this["pre_classifier.weight"], this["pre_classifier.bias"])), this["classifier.weight"], this["classifier.bias"]);
        if (Electra)
            return F.linear(HfActivations.Apply("gelu", F.linear(first, this["classifier.dense.weight"], this["classifier.dense.bias"])), this["classifier.out_proj.weight"], this["classifier.out_proj.bias"]);
        if (Config.PositionsFromPadding)
            return F.linear(tanh(F.linear(first, this["classifier.dense.weight"], this["classifier.dense.bias"])), this["classifier.out_proj.weight"], this["classifier.out_proj.bias"]);
        Tensor pooled = tanh(F.linear(first, this["pooler.dense.weight"], this["pooler.dense.bias"]));
        return F.linear(pooled, this["classifier.weight"], this["classifier.bias"]);
    }

    public override string TokenEmbeddingName => "embeddings.word_embeddings.weight";

    private bool Distil => Config.ModelType == "distilbert";

    private bool Electra => Config.ModelType == "electra";

    // A layer's parts: BERT's names (RoBERTa's alike) or DistilBERT's.
    private const int Query = 0, Key = 1, Value = 2, Output = 3, AttentionNorm = 4, Up = 5, Down = 6, OutputNorm = 7;
    private static readonly string[] BertParts =
        ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"];
    private static readonly string[] DistilParts =
        ["attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"];

    private string Layer(int i, int part) => Distil ? $"transformer.layer.{i}.{DistilParts[part]}" : $"encoder.layer.{i}.{BertParts[part]}";

    private void Linear(string prefix, long inputs, long outputs)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask) => LastHiddenState(ids, attentionMask, null);

    /// <summary>The encoder's output with each token's type (<c>token_type_ids</c>; zeros when null, as transformers defaults them).</summary>
    public Tensor LastHiddenState(Tensor ids, Tensor? attentionMask, Tensor? tokenTypes)
    {
        long batch = ids.shape[0], length = ids.shape[1], width = Config.InputEmbeddingSize;
        // BertEmbeddings: token_type_ids default to zeros, position ids to arange (padding does not move them).
        // RobertaEmbeddings (create_position_ids_from_input_ids): cumsum(ids ≠ pad)·(ids ≠ pad) + pad, so real tokens
        // count from pad + 1 and pads sit at row pad.
        Tensor typeIds = tokenTypes?.flatten() ?? zeros(batch * length, ScalarType.Int64);
        Tensor positions = arange(length, ScalarType.Int64);
        if (Config.PositionsFromPadding)
        {
            Tensor real = ids.ne(Config.PadTokenId).to(ScalarType.Int64);
            positions = real.cumsum(1) * real + Config.PadTokenId;
        }
        Tensor embeddings = Lookup("embeddings.word_embeddings.weight", ids, Config.PadTokenId).view(batch, length, width);
        if (!Distil) embeddings = embeddings + this["embeddings.token_type_embeddings.weight"].index_select(0, typeIds).view(batch, length, width);
        embeddings = embeddings + this["embeddings.position_embeddings.weight"].index_select(0, positions.flatten()).view(-1, length, width);
        Tensor h = LayerNorm(embeddings, "embeddings.LayerNorm", width);
        // ElectraModel.forward: hidden_states = self.embeddings_project(hidden_states) when the module exists.
        if (Config.ProjectsEmbeddings) h = Linear(h, EmbeddingsProject);

        // get_extended_attention_mask: (1 − mask)[:, None, None, :]·finfo.min. Without a mask transformers uses ones,
        // which adds −0 to every score: nothing.
        Tensor? extended = attentionMask is null ? null : (1.0 - attentionMask.to(Dtype).view(batch, 1, 1, length)) * MinValue;
        for (int i = 0; i < Config.Layers; i++)
        {
            Tensor attention = LayerNorm(Linear(SelfAttention(h, extended, i), Layer(i, Output)) + h, Layer(i, AttentionNorm));
            Tensor intermediate = HfActivations.Apply(Config.Activation, Linear(attention, Layer(i, Up)));
            h = LayerNorm(Linear(intermediate, Layer(i, Down)) + attention, Layer(i, OutputNorm));
        }
        return h;
    }

    /// <summary>
    /// sentence-transformers' modules on the last hidden states (<see cref="HfTorchModel.SentenceModules"/>): <c>Pooling(mean)</c>,
    /// or <c>Pooling(cls)</c> (h[:, 0]) with <paramref name="clsToken"/> or a folder that says so, the folder's Dense layers,
    /// then <c>Normalize()</c>.
    /// </summary>
    public Tensor SentenceEmbeddings(Tensor ids, Tensor attentionMask, bool clsToken = false) =>
        SentenceModules(LastHiddenState(ids, attentionMask), attentionMask, clsToken);

    private Tensor SelfAttention(Tensor h, Tensor? extendedMask, int layer)
    {
        long batch = h.shape[0], length = h.shape[1], heads = Config.Heads, headDim = Config.HeadDim;
        Tensor q = Heads(Linear(h, Layer(layer, Query)));
        Tensor k = Heads(Linear(h, Layer(layer, Key)));
        Tensor v = Heads(Linear(h, Layer(layer, Value)));                                        // [B, H, T, D]
        Tensor scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(headDim);                      // v4.9: / math.sqrt(D)
        if (extendedMask is not null) scores = scores + extendedMask;
        Tensor probabilities = F.softmax(scores, -1);
        return probabilities.matmul(v).permute(0, 2, 1, 3).contiguous().view(batch, length, Config.HiddenSize);

        Tensor Heads(Tensor t) => t.view(batch, length, heads, headDim).permute(0, 2, 1, 3);
    }

    private Tensor Linear(Tensor x, string prefix) => F.linear(x, this[prefix + ".weight"], this[prefix + ".bias"]);

    private Tensor LayerNorm(Tensor x, string prefix) => LayerNorm(x, prefix, Config.HiddenSize);

    private Tensor LayerNorm(Tensor x, string prefix, long width) =>
        F.layer_norm(x, new[] { width }, this[prefix + ".weight"], this[prefix + ".bias"], Config.NormEps);
}
