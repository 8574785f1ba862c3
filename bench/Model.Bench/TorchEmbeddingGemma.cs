using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// google/embeddinggemma-300m as sentence-transformers runs it (transformers' <c>Gemma3TextModel</c> with
/// <c>use_bidirectional_attention</c>, then mean pooling, the two Dense layers and L2 normalisation), written with
/// TorchSharp modules: ids <c>[B, T]</c> (int64, no padding) → sentence embeddings <c>[B, out]</c>. Per layer
/// x + norm(attention(norm(x))), then + norm(mlp(norm(·))), every norm Gemma's RMSNorm × (1 + w) in float32; queries
/// and keys RMS-normalized per head, then rotated (half-split) with the sliding layers' base or the global one; scores
/// × query_pre_attn_scalar^−½ through libtorch's <c>scaled_dot_product_attention</c> (its fastest CPU attention), the
/// sliding layers seeing |i − j| &lt; sliding_window // 2 + 1; GEGLU with the tanh GELU. Call it under <c>no_grad</c>.
/// </summary>
internal sealed class TorchEmbeddingGemma : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<TorchGemmaLayer> layers;
    private readonly Parameter norm;
    private readonly Linear dense2, dense3;
    private readonly long _hidden, _headDim, _window;
    private readonly double _localTheta, _globalTheta, _eps;
    private readonly bool[] _sliding;

    public TorchEmbeddingGemma(long vocab, long hidden, long heads, long kvHeads, long headDim, long intermediate, bool[] sliding,
        long slidingWindow, double globalTheta, double localTheta, double queryPreAttnScalar, double eps, long projected)
        : base(nameof(TorchEmbeddingGemma))
    {
        embed_tokens = nn.Embedding(vocab, hidden);
        layers = new ModuleList<TorchGemmaLayer>();
        for (int i = 0; i < sliding.Length; i++) layers.Add(new TorchGemmaLayer(hidden, heads, kvHeads, headDim, intermediate, queryPreAttnScalar, eps));
        norm = nn.Parameter(zeros(hidden));
        dense2 = nn.Linear(hidden, projected, hasBias: false);
        dense3 = nn.Linear(projected, hidden, hasBias: false);
        (_hidden, _headDim, _window, _eps) = (hidden, headDim, slidingWindow / 2 + 1, eps);
        (_globalTheta, _localTheta, _sliding) = (globalTheta, localTheta, sliding);
        RegisterComponents();
    }

    /// <summary>Copies every parameter of <paramref name="model"/> (Gemma3TextModel's names under <c>model.</c>, and the Dense layers').</summary>
    public void CopyFrom(TransformerModel model)
    {
        var weights = new OurWeights(model);
        weights.CopyTo(embed_tokens.weight!, "model.embed_tokens.weight");
        for (int i = 0; i < layers.Count; i++) layers[i].CopyFrom(weights, $"model.layers.{i}.");
        weights.CopyTo(norm, "model.norm.weight");
        weights.CopyTo(dense2.weight!, "2_Dense.linear.weight");
        weights.CopyTo(dense3.weight!, "3_Dense.linear.weight");
        weights.CheckAllUsed();
    }

    public override Tensor forward(Tensor ids)
    {
        long length = ids.shape[1];
        using DisposeScope scope = NewDisposeScope();
        // Gemma3TextScaledWordEmbedding: × √hidden as a float32 scalar.
        Tensor x = embed_tokens.call(ids) * (float)Math.Sqrt(_hidden);
        (Tensor Cos, Tensor Sin) local = Rotary(length, _localTheta), global = Rotary(length, _globalTheta);
        // The sliding layers' two-sided window, or nothing where it spans the sequence.
        Tensor? window = null;
        if (length > _window)
        {
            Tensor distance = (arange(length).view(length, 1) - arange(length).view(1, length)).abs();
            window = distance.lt(_window);
        }
        for (int i = 0; i < layers.Count; i++)
            x = layers[i].call(x, _sliding[i] ? local : global, _sliding[i] ? window : null);
        x = TorchGemmaLayer.RmsNorm(x, norm, _eps);
        Tensor pooled = x.mean(new long[] { 1 });                                                  // Pooling(mean), no padding
        return F.normalize(dense3.call(dense2.call(pooled)), p: 2, dim: 1).MoveToOuterDisposeScope();
    }

    // cos and sin of position·θ^(−2j/D) for positions 0 … T − 1, each half repeated: [T, D].
    private (Tensor Cos, Tensor Sin) Rotary(long length, double theta)
    {
        Tensor inverse = 1.0 / pow(theta, arange(0, _headDim, 2, ScalarType.Float32) / _headDim);
        Tensor angles = arange(length, ScalarType.Float32).unsqueeze(1) * inverse.unsqueeze(0);
        Tensor both = cat(new[] { angles, angles }, -1);
        return (both.cos(), both.sin());
    }
}

/// <summary>One Gemma3DecoderLayer with Gemma 3's four norms, q/k norms, grouped-query attention and GEGLU.</summary>
internal sealed class TorchGemmaLayer : nn.Module<Tensor, (Tensor Cos, Tensor Sin), Tensor?, Tensor>
{
    private readonly Linear q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
    private readonly Parameter q_norm, k_norm, input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm;
    private readonly long _heads, _kvHeads, _headDim;
    private readonly double _scale, _eps;

    public TorchGemmaLayer(long hidden, long heads, long kvHeads, long headDim, long intermediate, double queryPreAttnScalar, double eps)
        : base(nameof(TorchGemmaLayer))
    {
        q_proj = nn.Linear(hidden, heads * headDim, hasBias: false);
        k_proj = nn.Linear(hidden, kvHeads * headDim, hasBias: false);
        v_proj = nn.Linear(hidden, kvHeads * headDim, hasBias: false);
        o_proj = nn.Linear(heads * headDim, hidden, hasBias: false);
        gate_proj = nn.Linear(hidden, intermediate, hasBias: false);
        up_proj = nn.Linear(hidden, intermediate, hasBias: false);
        down_proj = nn.Linear(intermediate, hidden, hasBias: false);
        q_norm = nn.Parameter(zeros(headDim));
        k_norm = nn.Parameter(zeros(headDim));
        input_layernorm = nn.Parameter(zeros(hidden));
        post_attention_layernorm = nn.Parameter(zeros(hidden));
        pre_feedforward_layernorm = nn.Parameter(zeros(hidden));
        post_feedforward_layernorm = nn.Parameter(zeros(hidden));
        (_heads, _kvHeads, _headDim, _scale, _eps) = (heads, kvHeads, headDim, 1 / Math.Sqrt(queryPreAttnScalar), eps);
        RegisterComponents();
    }

    public void CopyFrom(OurWeights weights, string prefix)
    {
        foreach ((Linear linear, string name) in new[] { (q_proj, "self_attn.q_proj"), (k_proj, "self_attn.k_proj"), (v_proj, "self_attn.v_proj"), (o_proj, "self_attn.o_proj"),
                     (gate_proj, "mlp.gate_proj"), (up_proj, "mlp.up_proj"), (down_proj, "mlp.down_proj") })
            weights.CopyTo(linear.weight!, prefix + name + ".weight");
        weights.CopyTo(q_norm, prefix + "self_attn.q_norm.weight");
        weights.CopyTo(k_norm, prefix + "self_attn.k_norm.weight");
        weights.CopyTo(input_layernorm, prefix + "input_layernorm.weight");
        weights.CopyTo(post_attention_layernorm, prefix + "post_attention_layernorm.weight");
        weights.CopyTo(pre_feedforward_layernorm, prefix + "pre_feedforward_layernorm.weight");
        weights.CopyTo(post_feedforward_layernorm, prefix + "post_feedforward_layernorm.weight");
    }

    /// <summary>Gemma3RMSNorm: x·rsqrt(mean(x²) + ε)·(1 + w).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps) =>
        x * rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + eps) * (1.0 + weight);

    public override Tensor forward(Tensor x, (Tensor Cos, Tensor Sin) rotary, Tensor? window)
    {
        long batch = x.shape[0], length = x.shape[1];
        Tensor h = RmsNorm(x, input_layernorm, _eps);
        Tensor q = q_proj.call(h).view(batch, length, _heads, _headDim).transpose(1, 2);
        Tensor k = k_proj.call(h).view(batch, length, _kvHeads, _headDim).transpose(1, 2);
        Tensor v = v_proj.call(h).view(batch, length, _kvHeads, _headDim).transpose(1, 2);
        q = Rotate(RmsNorm(q, q_norm, _eps), rotary);
        k = Rotate(RmsNorm(k, k_norm, _eps), rotary);
        // Grouped-query heads: each key/value head serves heads / kvHeads query heads.
        k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
        v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        // scaled_dot_product_attention divides by √head_dim: the queries carry the rest of query_pre_attn_scalar^−½ (1 for
        // embeddinggemma-300m, whose scalar is its head_dim).
        double rest = _scale * Math.Sqrt(_headDim);
        Tensor attended = F.scaled_dot_product_attention(rest == 1 ? q : q * rest, k, v, attn_mask: window);
        Tensor attention = o_proj.call(attended.transpose(1, 2).reshape(batch, length, _heads * _headDim));
        x = x + RmsNorm(attention, post_attention_layernorm, _eps);
        h = RmsNorm(x, pre_feedforward_layernorm, _eps);
        Tensor mlp = down_proj.call(F.gelu(gate_proj.call(h), GELU.Approximate.tanh) * up_proj.call(h));
        return x + RmsNorm(mlp, post_feedforward_layernorm, _eps);
    }

    // rotate_half: [x1, x2] → x·cos + [−x2, x1]·sin.
    private Tensor Rotate(Tensor x, (Tensor Cos, Tensor Sin) rotary)
    {
        long half = _headDim / 2;
        Tensor rotated = cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
        return x * rotary.Cos + rotated * rotary.Sin;
    }
}
