using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>ModernBertModel</c> (<c>model_type</c> <c>modernbert</c>, <c>modeling_modernbert.py</c>), eager attention in eval mode,
/// with the sentence-transformers modules on top (modernbert-embed-base's mean pooling, gte-modernbert-base's [CLS]
/// pooling, Normalize) or <c>ModernBertForSequenceClassification</c>'s head. The token rows, then <c>embeddings.norm</c>
/// (no positions, no token types); pre-LN layers h += Wo(attention(attn_norm(h))), h += mlp(mlp_norm(h)), where layer 0's
/// attn_norm is the identity (no tensor in the files); <c>final_norm</c>. Every norm is a LayerNorm of ε <c>norm_eps</c>,
/// with a bias only under <c>norm_bias</c>.
/// </summary>
/// <remarks>
/// <para>
/// Attention: one fused <c>Wqkv</c> whose output is read as <c>[B, T, 3, H, D]</c> (rows Q | K | V, each H·D), half-split
/// rotary positions (channel j turns with channel j + D/2 by position·inv_freq_j, inv_freq = 1/θ^(2j/D) in float32) on Q
/// and K, scores times D^−½, a mask added, softmax, <c>Wo</c>. A layer is global when i % global_attn_every_n_layers is 0
/// (or as <c>layer_types</c> says), local otherwise; the global layers turn by θ = <c>global_rope_theta</c>, the local ones
/// by <c>local_rope_theta</c>. A global layer's mask hides the padding keys; a local layer's also every key more than
/// <c>local_attention // 2</c> positions away, on either side. Hidden keys get finfo.min added, once, whatever hides them,
/// so a padded query whose window holds no real key spreads its attention evenly over all keys, as transformers does.
/// </para>
/// <para>
/// MLP: <c>Wi</c> gives 2·I rows, the first I the input, the last I the gate: <c>Wo(act(input)·gate)</c>.
/// </para>
/// <para>
/// The rotary angles are float32, as transformers computes them in any dtype; the float64 model takes their cos and sin in
/// float64 (as <see cref="HfGemma3"/> does, for the same reason), the float32 one in float32 as transformers. In the float64
/// model the softmax stays in float64.
/// </para>
/// <para>
/// Names are ModernBertModel's bare ones (<c>embeddings.tok_embeddings.weight</c>, <c>layers.{i}.attn.Wqkv.weight</c>, …,
/// <c>final_norm.weight</c>), the classifier's head as its own (<c>head.dense.weight</c>, <c>head.norm.weight</c>,
/// <c>classifier.weight</c>, <c>classifier.bias</c>). Files: the bare names (a sentence-transformers folder's
/// model.safetensors), or with <c>Prefix</c> <c>model.</c> before the encoder's names and none before the heads' (the
/// …ForMaskedLM / …ForSequenceClassification layout). For an encoder, <c>IncludeUnusedHeads</c> with <c>Prefix</c> adds
/// ModernBertForMaskedLM's head, drawn after the parameters and read by nothing here (<c>head.dense.weight</c>, its bias
/// under <c>classifier_bias</c>, <c>head.norm.weight</c>, its bias under <c>norm_bias</c>, <c>decoder.bias</c> under
/// <c>decoder_bias</c>); <c>KeepTiedCopy</c> adds the decoder's tied weight <c>decoder.weight</c>, a copy of the token table,
/// which save_pretrained leaves out.
/// </para>
/// </remarks>
internal sealed class HfModernBert : HfTorchModel, IHfSentenceEncoder
{
    public const string TokenEmbeddings = "embeddings.tok_embeddings.weight";

    // ModernBertForMaskedLM's head, written only in that layout: drawn from the seed, never read here.
    private readonly List<(string Name, Tensor Value)> _maskedLmHead = new();

    public HfModernBert(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        if (config.HeadDim % 2 != 0) throw new ArgumentException("rotary positions need an even head_dim");
        if (config.SlidingLayers.Length != config.Layers) throw new ArgumentException($"{config.SlidingLayers.Length} layer kinds for {config.Layers} layers");
        if (config.EncoderHead is not (HfEncoderHead.None or HfEncoderHead.SequenceClassification or HfEncoderHead.TokenClassification))
            throw new NotSupportedException($"ModernBERT's {config.EncoderHead} head is not implemented");
        long e = config.HiddenSize, inner = config.IntermediateSize;
        // state_dict() order: embeddings (tok_embeddings, norm); per layer attn_norm (not on layer 0), attn.Wqkv, attn.Wo,
        // mlp_norm, mlp.Wi, mlp.Wo; final_norm; the classifier's head, dense then norm, and classifier. The rotary inverse
        // frequencies are non-persistent buffers: no file holds them.
        Parameter(TokenEmbeddings, HfInit.Embedding, config.VocabSize, e);
        Norm("embeddings.norm");
        for (int i = 0; i < config.Layers; i++)
        {
            if (i > 0) Norm(Layer(i, "attn_norm"));
            Linear(Layer(i, "attn.Wqkv"), e, 3 * e, config.QkvBias);
            Linear(Layer(i, "attn.Wo"), e, e, config.OutputBias);
            Norm(Layer(i, "mlp_norm"));
            Linear(Layer(i, "mlp.Wi"), e, 2 * inner, config.MlpBias);
            Linear(Layer(i, "mlp.Wo"), inner, e, config.MlpBias);
        }
        Norm("final_norm");
        if (config.EncoderHead is HfEncoderHead.SequenceClassification or HfEncoderHead.TokenClassification)
        {
            Linear("head.dense", e, e, config.ClassifierBias);
            Norm("head.norm");
            Linear("classifier", e, config.Labels, bias: true);
        }
        DenseParameters();

        if (config.EncoderHead != HfEncoderHead.None) return;
        using DisposeScope scope = NewDisposeScope();
        void Draw(string name, HfInit init, params long[] shape) => _maskedLmHead.Add((name, scope.Detach(Drawn(name, init, shape))));
        Draw("head.dense.weight", HfInit.Matrix, e, e);
        if (config.ClassifierBias) Draw("head.dense.bias", HfInit.Bias, e);
        Draw("head.norm.weight", HfInit.NormWeight, e);
        if (config.NormBias) Draw("head.norm.bias", HfInit.Bias, e);
        if (config.DecoderBias) Draw("decoder.bias", HfInit.Bias, config.VocabSize);
    }

    public override string TokenEmbeddingName => TokenEmbeddings;

    /// <summary>An encoder's file may carry ModernBertForMaskedLM's tied decoder weight; a classifier has no decoder.</summary>
    public override IReadOnlyList<string> TiedCopyNames => Config.EncoderHead == HfEncoderHead.None ? ["decoder.weight"] : [];

    /// <summary>ModernBertForMaskedLM's head (the MaskedLM layout, <c>Prefix</c>, of an encoder only), rounded to the file's dtype.</summary>
    public override IEnumerable<(string Name, Tensor Value)> UnreadFileTensors(HfWriteOptions options)
    {
        if (!options.Prefix) return [];
        return _maskedLmHead.Select(t => (t.Name, options.Dtype switch
        {
            HfDtype.BF16 => t.Value.to(ScalarType.BFloat16).to(ScalarType.Float32),
            HfDtype.F16 => t.Value.to(ScalarType.Float16).to(ScalarType.Float32),
            _ => t.Value.detach(),
        })).ToArray();
    }

    /// <summary>The file name of a canonical name: <c>model.</c> before the encoder's names with <c>Prefix</c>, never before a head's.</summary>
    public static string FileName(string canonical, HfWriteOptions options) =>
        options.Prefix && !IsHeadName(canonical) ? "model." + canonical : canonical;

    private static bool IsHeadName(string name) =>
        name.StartsWith("head.", StringComparison.Ordinal) || name.StartsWith("decoder.", StringComparison.Ordinal) || name.StartsWith("classifier.", StringComparison.Ordinal);

    public static string Layer(int i, string part) => $"layers.{i}.{part}";

    private void Linear(string prefix, long inputs, long outputs, bool bias)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        if (bias) Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    private void Norm(string prefix)
    {
        Parameter(prefix + ".weight", HfInit.NormWeight, Config.HiddenSize);
        if (Config.NormBias) Parameter(prefix + ".bias", HfInit.Bias, Config.HiddenSize);
    }

    /// <summary>Whether layer <paramref name="i"/> is local (windowed, θ = local_rope_theta) rather than global.</summary>
    public bool IsLocal(int i) => Config.SlidingLayers[i];

    /// <summary>
    /// <c>inv_freq = 1 / θ^(arange(0, D, 2).float() / D)</c> in float32, the power taken with θ as a float32 tensor: <c>[D/2]</c>.
    /// </summary>
    public Tensor InverseFrequencies(double theta)
    {
        long headDim = Config.HeadDim;
        Tensor exponents = arange(0, headDim, 2, ScalarType.Int64).to(ScalarType.Float32) / headDim;
        return 1.0 / full_like(exponents, theta).pow(exponents);
    }

    /// <summary>
    /// The rotary table of a local (<paramref name="local"/>) or global layer for positions 0 … T − 1: the angles
    /// position·inv_freq in float32, cat(angles, angles), their cos and sin in the model's dtype, each <c>[T, D]</c>.
    /// </summary>
    public (Tensor Cos, Tensor Sin) RotaryTables(long length, bool local)
    {
        Tensor inverse = InverseFrequencies(local ? Config.RopeLocalTheta : Config.RopeTheta);
        Tensor angles = arange(length, ScalarType.Int64).to(ScalarType.Float32).unsqueeze(1) * inverse.unsqueeze(0); // a K = 1 product, as the matmul
        Tensor both = cat(new[] { angles, angles }, -1).to(Dtype);
        return (both.cos(), both.sin());
    }

    /// <summary>Which keys each query sees, padding aside, <c>[T, T]</c> (query rows): all on a global layer, |i − j| ≤ local_attention // 2 on a local one.</summary>
    public Tensor Visible(long length, bool local)
    {
        if (!local) return ones(length, length, ScalarType.Bool);
        Tensor distance = arange(length, ScalarType.Int64).view(length, 1) - arange(length, ScalarType.Int64).view(1, length);
        return distance.abs().le(Config.LocalAttention / 2);
    }

    /// <summary>The additive mask of a layer kind, <c>[B or 1, 1, T, T]</c>: 0 where the key is visible and unpadded, else finfo.min.</summary>
    public Tensor AdditiveMask(Tensor? attentionMask, long batch, long length, bool local)
    {
        Tensor visible = Visible(length, local).view(1, 1, length, length);
        if (attentionMask is not null) visible = visible.logical_and(attentionMask.to(ScalarType.Bool).view(batch, 1, 1, length));
        return where(visible, Scalar(0.0), Scalar(MinValue));
    }

    /// <summary><c>last_hidden_state</c> <c>[B, T, E]</c>, after <c>final_norm</c>.</summary>
    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask)
    {
        long batch = ids.shape[0], length = ids.shape[1], e = Config.HiddenSize;
        // tok_embeddings is nn.Embedding(padding_idx = pad_token_id): the padding row's lookups pass no gradient back.
        Tensor h = LayerNorm(Lookup(TokenEmbeddings, ids, Config.PadTokenId).view(batch, length, e), "embeddings.norm");
        var global = (Tables: RotaryTables(length, local: false), Mask: AdditiveMask(attentionMask, batch, length, local: false));
        var local = (Tables: RotaryTables(length, local: true), Mask: AdditiveMask(attentionMask, batch, length, local: true));
        for (int i = 0; i < Config.Layers; i++)
        {
            var (tables, mask) = IsLocal(i) ? local : global;
            Tensor normed = i == 0 ? h : LayerNorm(h, Layer(i, "attn_norm"));
            h = h + Attention(normed, tables.Cos, tables.Sin, mask, i);
            h = h + Mlp(LayerNorm(h, Layer(i, "mlp_norm")), i);
        }
        return LayerNorm(h, "final_norm");
    }

    private Tensor Attention(Tensor x, Tensor cos, Tensor sin, Tensor mask, int layer)
    {
        long batch = x.shape[0], length = x.shape[1], heads = Config.Heads, headDim = Config.HeadDim;
        Tensor qkv = Linear(x, Layer(layer, "attn.Wqkv")).view(batch, length, 3, heads, headDim);
        Tensor q = HfLlama.ApplyRotary(qkv.select(2, 0).transpose(1, 2), cos, sin);            // [B, H, T, D]
        Tensor k = HfLlama.ApplyRotary(qkv.select(2, 1).transpose(1, 2), cos, sin);
        Tensor v = qkv.select(2, 2).transpose(1, 2);
        Tensor scores = q.matmul(k.transpose(2, 3)) * Math.Pow(headDim, -0.5) + mask;
        Tensor probabilities = F.softmax(scores, -1, StatisticsType).to(q.dtype);
        Tensor merged = probabilities.matmul(v).transpose(1, 2).reshape(batch, length, Config.HiddenSize);
        return Linear(merged, Layer(layer, "attn.Wo"));
    }

    /// <summary>ModernBertMLP: the first I rows of Wi's output through the activation, times the last I, then Wo.</summary>
    private Tensor Mlp(Tensor x, int layer)
    {
        long inner = Config.IntermediateSize;
        Tensor both = Linear(x, Layer(layer, "mlp.Wi"));
        Tensor input = both.narrow(-1, 0, inner), gate = both.narrow(-1, inner, inner);
        return Linear(HfActivations.Apply(Config.Activation, input) * gate, Layer(layer, "mlp.Wo"));
    }

    /// <summary>
    /// The sentence-transformers modules of the folder on <see cref="LastHiddenState"/>: Pooling (the mean over the mask,
    /// or token 0 with <paramref name="clsToken"/> or a cls pooling config), then Normalize; <c>[B, E]</c>.
    /// </summary>
    public Tensor SentenceEmbeddings(Tensor ids, Tensor attentionMask, bool clsToken = false) =>
        SentenceModules(LastHiddenState(ids, attentionMask), attentionMask, clsToken);

    /// <summary>
    /// ModernBertForSequenceClassification's logits <c>[B, labels]</c>: last_hidden_state pooled (token 0 for
    /// <c>"cls"</c>; Σ_t h[t]·m[t] / Σ_t m[t] for <c>"mean"</c>, no clamp), then the head, norm(act(dense(x))), then
    /// <c>classifier</c> (dropout off). ModernBertForTokenClassification's <c>[B, T, labels]</c>: the head and the
    /// classifier on every position's last hidden state, no pooling.
    /// </summary>
    public Tensor ClassifierLogits(Tensor ids, Tensor attentionMask)
    {
        if (Config.EncoderHead is not (HfEncoderHead.SequenceClassification or HfEncoderHead.TokenClassification))
            throw new InvalidOperationException("the checkpoint has no classifier");
        Tensor h = LastHiddenState(ids, attentionMask);
        Tensor features;
        if (Config.EncoderHead == HfEncoderHead.TokenClassification) features = h;
        else if (Config.ClassifierPooling == HfPooling.Cls) features = h.select(1, 0);
        else
        {
            Tensor m = attentionMask.to(Dtype);
            features = (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim: true);
        }
        Tensor headed = LayerNorm(HfActivations.Apply(Config.ClassifierActivation, Linear(features, "head.dense")), "head.norm");
        return Linear(headed, "classifier");
    }

    private ScalarType StatisticsType => Dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    private Tensor Linear(Tensor x, string prefix)
    {
        string bias = prefix + ".bias";
        return F.linear(x, this[prefix + ".weight"], Contains(bias) ? this[bias] : null);
    }

    private Tensor LayerNorm(Tensor x, string prefix)
    {
        string bias = prefix + ".bias";
        return F.layer_norm(x, new[] { (long)Config.HiddenSize }, this[prefix + ".weight"], Contains(bias) ? this[bias] : null, Config.NormEps);
    }
}
