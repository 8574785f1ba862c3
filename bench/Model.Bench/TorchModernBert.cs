using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// A ModernBERT sentence embedder (transformers' <c>ModernBertModel</c> with its sdpa attention, then the
/// sentence-transformers Pooling and Normalize modules, as gte-modernbert-base runs it), written with TorchSharp modules:
/// ids <c>[B, T]</c> (int64, no padding) → unit-length sentence embeddings <c>[B, hidden]</c>. The token rows go through
/// <c>embeddings.norm</c>; each layer adds Wo(attention(attn_norm(x))) and then Wo(gelu(a)·g) of mlp_norm(x), where
/// <c>Wi</c>'s output is a | g and layer 0 has no attn_norm; <c>final_norm</c> closes the stack. Every norm is a LayerNorm
/// without bias. Call it under <c>no_grad</c>.
/// </summary>
/// <remarks>
/// Attention as transformers 4.48's sdpa path runs it: <c>Wqkv</c>'s output read as <c>[B, T, 3, H, D]</c>, half-split
/// rotary positions on Q and K (base <c>global_rope_theta</c> on the layers whose index is a multiple of
/// <c>global_attn_every_n_layers</c>, <c>local_rope_theta</c> on the others), then libtorch's
/// <c>scaled_dot_product_attention</c> with an additive float mask per layer kind: the padding mask expanded to
/// <c>[B, 1, T, T]</c> (all zeros here) on the global layers, and on the local ones the same with float32's lowest value
/// wherever |i − j| &gt; local_attention // 2. libtorch computes every score and lets the mask discard the far ones.
/// </remarks>
internal sealed class TorchModernBert : nn.Module<Tensor, Tensor>
{
    private readonly Embedding tok_embeddings;
    private readonly Parameter embeddings_norm, final_norm;
    private readonly ModuleList<TorchModernBertLayer> layers;
    private readonly long _headDim, _reach;
    private readonly double _globalTheta, _localTheta, _eps;
    private readonly int _globalEvery;
    private readonly bool _clsPooling;

    public TorchModernBert(long vocab, long hidden, long heads, long intermediate, int layerCount, int globalEvery, long localAttention,
        double globalTheta, double localTheta, double eps, bool clsPooling)
        : base(nameof(TorchModernBert))
    {
        tok_embeddings = nn.Embedding(vocab, hidden);
        embeddings_norm = nn.Parameter(ones(hidden));
        layers = new ModuleList<TorchModernBertLayer>();
        for (int i = 0; i < layerCount; i++) layers.Add(new TorchModernBertLayer(hidden, heads, intermediate, eps, attentionNorm: i > 0));
        final_norm = nn.Parameter(ones(hidden));
        (_headDim, _reach, _eps) = (hidden / heads, localAttention / 2, eps);
        (_globalTheta, _localTheta, _globalEvery, _clsPooling) = (globalTheta, localTheta, globalEvery, clsPooling);
        RegisterComponents();
    }

    /// <summary>Copies every parameter of <paramref name="model"/>, by ModernBertModel's bare names (a sentence-transformers folder's).</summary>
    public void CopyFrom(TransformerModel model)
    {
        var weights = new OurWeights(model);
        weights.CopyTo(tok_embeddings.weight!, "embeddings.tok_embeddings.weight");
        weights.CopyTo(embeddings_norm, "embeddings.norm.weight");
        for (int i = 0; i < layers.Count; i++) layers[i].CopyFrom(weights, $"layers.{i}.");
        weights.CopyTo(final_norm, "final_norm.weight");
        weights.CheckAllUsed();
    }

    public override Tensor forward(Tensor ids)
    {
        long batch = ids.shape[0], length = ids.shape[1];
        using DisposeScope scope = NewDisposeScope();
        Tensor x = TorchModernBertLayer.LayerNorm(tok_embeddings.call(ids), embeddings_norm, _eps);

        // The two masks transformers builds once per forward for sdpa: the global one from the attention mask (no padding
        // here: zeros), and the local one: the same with float32's lowest value added beyond the window's reach on either side.
        Tensor globalMask = zeros(batch, 1, length, length);
        Tensor distance = (arange(length).view(length, 1) - arange(length).view(1, length)).abs();
        Tensor localMask = globalMask.masked_fill(distance.gt(_reach).view(1, 1, length, length), float.MinValue);
        (Tensor Cos, Tensor Sin) global = Rotary(length, _globalTheta), local = Rotary(length, _localTheta);

        for (int i = 0; i < layers.Count; i++)
        {
            bool isGlobal = i % _globalEvery == 0;
            x = layers[i].call(x, isGlobal ? global : local, isGlobal ? globalMask : localMask);
        }
        x = TorchModernBertLayer.LayerNorm(x, final_norm, _eps);
        Tensor pooled = _clsPooling ? x.select(1, 0) : x.mean(new long[] { 1 });      // Pooling: [CLS] row, or the mean (no padding)
        return F.normalize(pooled, p: 2, dim: 1).MoveToOuterDisposeScope();
    }

    // ModernBertRotaryEmbedding: angles position·θ^(−2j/D) in float32, the half repeated, as cos and sin [T, D].
    private (Tensor Cos, Tensor Sin) Rotary(long length, double theta)
    {
        Tensor inverse = 1.0 / pow(theta, arange(0, _headDim, 2, ScalarType.Float32) / _headDim);
        Tensor angles = arange(length, ScalarType.Float32).unsqueeze(1) * inverse.unsqueeze(0);
        Tensor both = cat(new[] { angles, angles }, -1);
        return (both.cos(), both.sin());
    }
}

/// <summary>One ModernBertEncoderLayer: pre-norm attention over a fused Wqkv with rotary positions, then the GeGLU MLP.</summary>
internal sealed class TorchModernBertLayer : nn.Module<Tensor, (Tensor Cos, Tensor Sin), Tensor, Tensor>
{
    private readonly Linear Wqkv, Wo, Wi, mlp_Wo;
    private readonly Parameter? attn_norm;
    private readonly Parameter mlp_norm;
    private readonly long _heads, _headDim, _intermediate;
    private readonly double _eps;

    public TorchModernBertLayer(long hidden, long heads, long intermediate, double eps, bool attentionNorm)
        : base(nameof(TorchModernBertLayer))
    {
        Wqkv = nn.Linear(hidden, 3 * hidden, hasBias: false);
        Wo = nn.Linear(hidden, hidden, hasBias: false);
        Wi = nn.Linear(hidden, 2 * intermediate, hasBias: false);
        mlp_Wo = nn.Linear(intermediate, hidden, hasBias: false);
        attn_norm = attentionNorm ? nn.Parameter(ones(hidden)) : null;       // layer 0's is nn.Identity
        mlp_norm = nn.Parameter(ones(hidden));
        (_heads, _headDim, _intermediate, _eps) = (heads, hidden / heads, intermediate, eps);
        RegisterComponents();
    }

    public void CopyFrom(OurWeights weights, string prefix)
    {
        if (attn_norm is not null) weights.CopyTo(attn_norm, prefix + "attn_norm.weight");
        weights.CopyTo(Wqkv.weight!, prefix + "attn.Wqkv.weight");
        weights.CopyTo(Wo.weight!, prefix + "attn.Wo.weight");
        weights.CopyTo(mlp_norm, prefix + "mlp_norm.weight");
        weights.CopyTo(Wi.weight!, prefix + "mlp.Wi.weight");
        weights.CopyTo(mlp_Wo.weight!, prefix + "mlp.Wo.weight");
    }

    /// <summary>A LayerNorm over the last dimension with a gain and no bias (ModernBERT's <c>norm_bias</c> false).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, double eps) => F.layer_norm(x, new[] { x.shape[^1] }, weight, null, eps);

    public override Tensor forward(Tensor x, (Tensor Cos, Tensor Sin) rotary, Tensor mask)
    {
        long batch = x.shape[0], length = x.shape[1];
        Tensor h = attn_norm is null ? x : LayerNorm(x, attn_norm, _eps);
        // [B, T, 3, H, D] → Q, K, V each [B, H, T, D] (transformers: transpose(3, 1).unbind(dim=2)).
        Tensor qkv = Wqkv.call(h).view(batch, length, 3, _heads, _headDim).transpose(3, 1);
        Tensor q = Rotate(qkv.select(2, 0), rotary), k = Rotate(qkv.select(2, 1), rotary), v = qkv.select(2, 2);
        // sdpa's default scale is D^−½, what ModernBERT passes.
        Tensor attended = F.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        x = x + Wo.call(attended.transpose(1, 2).reshape(batch, length, _heads * _headDim));

        Tensor both = Wi.call(LayerNorm(x, mlp_norm, _eps));
        Tensor input = both.narrow(-1, 0, _intermediate), gate = both.narrow(-1, _intermediate, _intermediate);
        return x + mlp_Wo.call(F.gelu(input) * gate);
    }

    // rotate_half: [x1, x2] → x·cos + [−x2, x1]·sin.
    private Tensor Rotate(Tensor x, (Tensor Cos, Tensor Sin) rotary)
    {
        long half = _headDim / 2;
        Tensor rotated = cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
        return x * rotary.Cos + rotated * rotary.Sin;
    }
}
