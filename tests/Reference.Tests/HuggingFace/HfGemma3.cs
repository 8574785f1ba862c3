using System;
using System.Collections.Generic;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>Gemma3ForCausalLM</c> (<c>model_type</c> <c>gemma3_text</c>, <c>modeling_gemma3.py</c>), eager attention, no dropout:
/// token embeddings scaled by √hidden; per layer an RMSNorm before and after each sub-layer (four norms), grouped-query
/// attention with RMS-normalized query and key heads, half-split rotary positions from one of two tables, scores scaled by
/// <c>query_pre_attn_scalar</c>^−½, a sliding window on the layers <c>layer_types</c> marks so; a GeGLU MLP with the tanh
/// GELU; <c>model.norm</c> and the head tied to the unscaled embedding table (or an untied <c>lm_head</c>). With
/// <c>use_bidirectional_attention</c> it is EmbeddingGemma as sentence-transformers runs it: Gemma3TextModel without a
/// head, bidirectional masks, then the modules of modules.json (mean pooling, the Dense layers, Normalize).
/// </summary>
/// <remarks>
/// <para>
/// Every norm is Gemma3RMSNorm: in float32, <c>y = x·rsqrt(mean(x²) + ε)·(1 + w)</c>, cast back; its weights start at
/// zero in transformers, so here they are drawn around zero (<see cref="HfInit.NormOffset"/>).
/// </para>
/// <para>
/// Two rotary tables: the global (<c>"full_attention"</c>) layers' from <c>rope_theta</c> with linear <c>rope_scaling</c>
/// (inverse frequencies divided by the factor), the sliding layers' from <c>rope_local_base_freq</c> with the default rope.
/// The angles are float32 as in transformers, whatever the model's dtype. transformers also takes cos and sin in float32;
/// the float64 model takes them of the same angles in float64 instead, because libtorch's float32 cos is not correctly
/// rounded (cos 1 comes out one ulp high), so no independent float64 check could reproduce those bits: the two differ
/// by at most an ulp of float32 in the tables.
/// </para>
/// <para>
/// A sliding layer hides key j from query i unless 0 ≤ i − j &lt; <c>sliding_window</c> (transformers' masking_utils:
/// causal and <c>kv_idx &gt; q_idx − sliding_window</c>); a global layer is only causal. Both also hide padding keys.
/// In the float64 model of the gradient checks the norms' statistics and the softmax stay in float64, as in HfLlama.
/// </para>
/// <para>
/// Bidirectional (EmbeddingGemma, transformers ≥ 4.56): Gemma3TextModel ORs a mask function into each layer kind's causal
/// one before the padding is ANDed in: "always" on the global layers, so every unpadded key is visible, and
/// <c>abs(q_idx − kv_idx) &lt; sliding_window</c> on the sliding ones, where the config already holds the halved window
/// (see <see cref="HfConfig.Bidirectional"/>); the causal part adds nothing to either. The sentence embedding is then
/// sentence-transformers' Pooling (mean over the mask: Σ_t h[t]·m[t] / clamp(Σ_t m[t], 1e-9), or token 0), each Dense
/// (<c>activation(linear(x))</c>, registered here as <c>N_Dense.linear.weight</c> and <c>N_Dense.linear.bias</c>, after
/// the transformer's tensors) and Normalize (<c>F.normalize(p = 2, dim = 1)</c>). No <c>lm_head</c> is registered, tied or not.
/// </para>
/// </remarks>
internal sealed class HfGemma3 : HfTorchModel, IHfSentenceEncoder
{
    public HfGemma3(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        if (config.Heads % config.KeyValueHeads != 0)
            throw new ArgumentException($"{config.Heads} heads are not a multiple of {config.KeyValueHeads} key/value heads");
        if (config.HeadDim % 2 != 0) throw new ArgumentException("rotary positions need an even head_dim");
        if (config.SlidingLayers.Length != config.Layers) throw new ArgumentException($"{config.SlidingLayers.Length} layer kinds for {config.Layers} layers");
        long hidden = config.HiddenSize, inner = config.IntermediateSize, headDim = config.HeadDim;
        long queryWidth = config.Heads * headDim, keyValueWidth = config.KeyValueHeads * headDim;
        // Registered in the order of Gemma3TextModel / Gemma3DecoderLayer / Gemma3Attention's modules (state_dict order).
        Parameter("model.embed_tokens.weight", HfInit.Embedding, config.VocabSize, hidden);
        for (int i = 0; i < config.Layers; i++)
        {
            string l = $"model.layers.{i}.";
            Linear(l + "self_attn.q_proj", hidden, queryWidth, config.QkvBias);
            Linear(l + "self_attn.k_proj", hidden, keyValueWidth, config.QkvBias);
            Linear(l + "self_attn.v_proj", hidden, keyValueWidth, config.QkvBias);
            Linear(l + "self_attn.o_proj", queryWidth, hidden, config.OutputBias);
            Parameter(l + "self_attn.q_norm.weight", HfInit.NormOffset, headDim);
            Parameter(l + "self_attn.k_norm.weight", HfInit.NormOffset, headDim);
            Linear(l + "mlp.gate_proj", hidden, inner, false);
            Linear(l + "mlp.up_proj", hidden, inner, false);
            Linear(l + "mlp.down_proj", inner, hidden, false);
            Parameter(l + "input_layernorm.weight", HfInit.NormOffset, hidden);
            Parameter(l + "post_attention_layernorm.weight", HfInit.NormOffset, hidden);
            Parameter(l + "pre_feedforward_layernorm.weight", HfInit.NormOffset, hidden);
            Parameter(l + "post_feedforward_layernorm.weight", HfInit.NormOffset, hidden);
        }
        Parameter("model.norm.weight", HfInit.NormOffset, hidden);
        // The rotary inverse frequencies are non-persistent buffers: no file holds them.
        if (config.IsDecoder && !config.TieWordEmbeddings) Parameter("lm_head.weight", HfInit.Matrix, config.VocabSize, hidden);
        DenseParameters();
    }

    public override string TokenEmbeddingName => "model.embed_tokens.weight";

    /// <summary>Gemma3TextModel (the bidirectional encoder) has no head whose copy a file could carry.</summary>
    public override IReadOnlyList<string> TiedCopyNames => Config.IsDecoder ? base.TiedCopyNames : [];

    private void Linear(string prefix, long inputs, long outputs, bool bias)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        if (bias) Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    /// <summary>
    /// The embedding scale √hidden as transformers holds it: a float32 tensor (<c>torch.tensor(hidden ** 0.5)</c>), cast to
    /// the table's dtype, so the float64 model multiplies by float32(√E) too.
    /// </summary>
    public double EmbedScale => (float)Math.Sqrt(Config.HiddenSize);

    /// <summary>
    /// <c>inv_freq = 1 / θ^(arange(0, D, 2).float() / D)</c> in float32 (the power taken with θ as a float32 tensor),
    /// divided by <paramref name="linearFactor"/> for linear scaling: <c>[D/2]</c>.
    /// </summary>
    public Tensor InverseFrequencies(double theta, double linearFactor)
    {
        long headDim = Config.HeadDim;
        Tensor exponents = arange(0, headDim, 2, ScalarType.Int64).to(ScalarType.Float32) / headDim;
        Tensor inverse = 1.0 / full_like(exponents, theta).pow(exponents);
        return linearFactor == 1.0 ? inverse : inverse / linearFactor;
    }

    /// <summary>
    /// The rotary table of a sliding (<paramref name="sliding"/>: <c>rope_local_base_freq</c>, unscaled) or global
    /// (<c>rope_theta</c>, linear factor) layer for positions 0 … T − 1: freqs = position·inv_freq in float32,
    /// emb = cat(freqs, freqs), then its cos and sin in the model's dtype (see the remarks), each <c>[T, D]</c>.
    /// </summary>
    public (Tensor Cos, Tensor Sin) RotaryTables(long length, bool sliding)
    {
        Tensor inverse = sliding ? InverseFrequencies(Config.RopeLocalTheta, 1.0) : InverseFrequencies(Config.RopeTheta, Config.RopeLinearFactor);
        Tensor positions = arange(length, ScalarType.Int64).to(ScalarType.Float32);
        Tensor freqs = positions.unsqueeze(1) * inverse.unsqueeze(0);                        // a K = 1 product: exact as the matmul
        Tensor emb = cat(new[] { freqs, freqs }, -1).to(Dtype);
        return (emb.cos(), emb.sin());
    }

    /// <summary>
    /// Which keys each query sees, <c>[T, T]</c> (query rows): causal, and on a sliding layer only the last
    /// <c>sliding_window</c> positions up to and including the query's own. Bidirectional: every key on a global layer, and
    /// on a sliding one the keys less than <c>sliding_window</c> (the halved one) away on either side.
    /// </summary>
    public Tensor Visible(long length, bool sliding)
    {
        Tensor distance = arange(length, ScalarType.Int64).view(length, 1) - arange(length, ScalarType.Int64).view(1, length);
        if (Config.Bidirectional) return sliding ? distance.abs().lt(Config.SlidingWindow) : ones(length, length, ScalarType.Bool);
        Tensor visible = distance.ge(0);
        return sliding ? visible.logical_and(distance.lt(Config.SlidingWindow)) : visible;
    }

    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask)
    {
        long batch = ids.shape[0], length = ids.shape[1], hidden = Config.HiddenSize;
        // Gemma3TextScaledWordEmbedding: nn.Embedding(padding_idx = pad_token_id) times embed_scale.
        Tensor x = Lookup("model.embed_tokens.weight", ids, Config.PadTokenId).view(batch, length, hidden) * Scalar(EmbedScale);

        // Additive masks [B or 1, 1, T, T] per layer kind: 0 where the key is visible, else finfo.min.
        Tensor Mask(bool sliding)
        {
            Tensor visible = Visible(length, sliding).view(1, 1, length, length);
            if (attentionMask is not null) visible = visible.logical_and(attentionMask.to(ScalarType.Bool).view(batch, 1, 1, length));
            return where(visible, Scalar(0.0), Scalar(MinValue));
        }
        var global = (Tables: RotaryTables(length, sliding: false), Mask: Mask(false));
        var local = (Tables: RotaryTables(length, sliding: true), Mask: Mask(true));

        for (int i = 0; i < Config.Layers; i++)
        {
            string l = $"model.layers.{i}.";
            var (tables, mask) = Config.SlidingLayers[i] ? local : global;
            Tensor attention = Attention(RmsNorm(x, l + "input_layernorm.weight"), tables.Cos, tables.Sin, mask, l);
            x = x + RmsNorm(attention, l + "post_attention_layernorm.weight");
            Tensor b = RmsNorm(x, l + "pre_feedforward_layernorm.weight");
            Tensor mlp = Linear(HfActivations.Apply(Config.Activation, Linear(b, l + "mlp.gate_proj")) * Linear(b, l + "mlp.up_proj"), l + "mlp.down_proj");
            x = x + RmsNorm(mlp, l + "post_feedforward_layernorm.weight");
        }
        return RmsNorm(x, "model.norm.weight");
    }

    /// <summary>
    /// The sentence-transformers pipeline of modules.json on <see cref="LastHiddenState"/>: Pooling (the mean over the
    /// mask, or token 0 with <paramref name="clsToken"/> or a cls pooling config), each Dense, Normalize; <c>[B, out]</c>.
    /// </summary>
    public Tensor SentenceEmbeddings(Tensor ids, Tensor attentionMask, bool clsToken = false)
    {
        if (Config.IsDecoder) throw new InvalidOperationException("Gemma3ForCausalLM is not a sentence encoder (use_bidirectional_attention is false)");
        return SentenceModules(LastHiddenState(ids, attentionMask), attentionMask, clsToken);
    }

    private Tensor Attention(Tensor x, Tensor cos, Tensor sin, Tensor mask, string l)
    {
        long batch = x.shape[0], length = x.shape[1], headDim = Config.HeadDim;
        long heads = Config.Heads, keyValueHeads = Config.KeyValueHeads, groups = heads / keyValueHeads;
        Tensor q = Linear(x, l + "self_attn.q_proj").view(batch, length, heads, headDim).transpose(1, 2);            // [B, H, T, D]
        Tensor k = Linear(x, l + "self_attn.k_proj").view(batch, length, keyValueHeads, headDim).transpose(1, 2);    // [B, KV, T, D]
        Tensor v = Linear(x, l + "self_attn.v_proj").view(batch, length, keyValueHeads, headDim).transpose(1, 2);
        // q_norm and k_norm over each head's D channels, before the rotation.
        q = HfLlama.ApplyRotary(RmsNorm(q, l + "self_attn.q_norm.weight"), cos, sin);
        k = HfLlama.ApplyRotary(RmsNorm(k, l + "self_attn.k_norm.weight"), cos, sin);
        k = HfLlama.RepeatKeyValue(k, groups);
        v = HfLlama.RepeatKeyValue(v, groups);

        Tensor scores = q.matmul(k.transpose(2, 3)) * Math.Pow(Config.QueryPreAttnScalar, -0.5) + mask;     // scaling = query_pre_attn_scalar ** -0.5
        Tensor probabilities = F.softmax(scores, -1, StatisticsType).to(q.dtype);
        Tensor merged = probabilities.matmul(v).transpose(1, 2).reshape(batch, length, heads * headDim);
        return Linear(merged, l + "self_attn.o_proj");
    }

    /// <summary>Gemma3RMSNorm: h = x in float32; h·rsqrt(mean(h²) + ε); times (1 + weight) in float32; cast back.</summary>
    private Tensor RmsNorm(Tensor x, string weight)
    {
        Tensor h = x.to(StatisticsType);
        h = h * rsqrt(h.pow(2).mean(new long[] { -1 }, keepdim: true) + Config.NormEps);
        h = h * (1.0 + this[weight].to(StatisticsType));
        return h.to(x.dtype);
    }

    private ScalarType StatisticsType => Dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    private Tensor Linear(Tensor x, string prefix)
    {
        string bias = prefix + ".bias";
        return F.linear(x, this[prefix + ".weight"], Contains(bias) ? this[bias] : null);
    }
}
