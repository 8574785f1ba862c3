using System;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>LlamaForCausalLM</c>, <c>Qwen2ForCausalLM</c> and <c>Qwen3ForCausalLM</c> (MODEL_FAMILIES.md §3, <c>modeling_llama.py</c> /
/// <c>modeling_qwen2.py</c> / <c>modeling_qwen3.py</c>, whose queries and keys are RMS-normalized per head), eager attention: pre-norm RMSNorm blocks, grouped-query attention with half-split
/// (<c>rotate_half</c>) rotary positions, a SwiGLU MLP, <c>model.norm</c>, and <c>lm_head</c> or the tied embedding.
/// </summary>
/// <remarks>
/// transformers upcasts RMSNorm statistics and the attention softmax to float32; in the float64 model of the gradient
/// checks both stay in float64 (an upcast that would be a downcast there). cos/sin are float32, as in transformers.
/// </remarks>
internal sealed class HfLlama : HfTorchModel
{
    public HfLlama(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        if (config.Heads % config.KeyValueHeads != 0)
            throw new ArgumentException($"{config.Heads} heads are not a multiple of {config.KeyValueHeads} key/value heads");
        if (config.HeadDim % 2 != 0) throw new ArgumentException("rotary positions need an even head_dim");
        long hidden = config.HiddenSize, inner = config.IntermediateSize, headDim = config.HeadDim;
        long queryWidth = config.Heads * headDim, keyValueWidth = config.KeyValueHeads * headDim;
        Parameter("model.embed_tokens.weight", HfInit.Embedding, config.VocabSize, hidden);
        for (int i = 0; i < config.Layers; i++)
        {
            string l = $"model.layers.{i}.";
            if (Fused) Linear(l + "self_attn.qkv_proj", hidden, queryWidth + 2 * keyValueWidth, false); // Phi3Attention
            else
            {
                Linear(l + "self_attn.q_proj", hidden, queryWidth, config.QkvBias);
                Linear(l + "self_attn.k_proj", hidden, keyValueWidth, config.QkvBias);
                Linear(l + "self_attn.v_proj", hidden, keyValueWidth, config.QkvBias);
            }
            Linear(l + "self_attn.o_proj", queryWidth, hidden, config.OutputBias);
            if (config.QueryKeyNorm)
            {
                // Qwen3Attention: q_norm and k_norm (Qwen3RMSNorm over head_dim) after o_proj; no rotary child.
                Parameter(l + "self_attn.q_norm.weight", HfInit.NormWeight, headDim);
                Parameter(l + "self_attn.k_norm.weight", HfInit.NormWeight, headDim);
            }
            // Llama-2-era LlamaAttention had a LlamaRotaryEmbedding child after o_proj, with a persistent inv_freq.
            else if (!Fused) Buffer(l + "self_attn.rotary_emb.inv_freq", InverseFrequencies);
            if (Fused) Linear(l + "mlp.gate_up_proj", hidden, 2 * inner, false); // Phi3MLP: gate rows, then up rows
            else
            {
                Linear(l + "mlp.gate_proj", hidden, inner, config.MlpBias);
                Linear(l + "mlp.up_proj", hidden, inner, config.MlpBias);
            }
            Linear(l + "mlp.down_proj", inner, hidden, config.MlpBias);
            Parameter(l + "input_layernorm.weight", HfInit.NormWeight, hidden);
            Parameter(l + "post_attention_layernorm.weight", HfInit.NormWeight, hidden);
        }
        Parameter("model.norm.weight", HfInit.NormWeight, hidden);
        if (!config.TieWordEmbeddings) Parameter("lm_head.weight", HfInit.Matrix, config.VocabSize, hidden);
    }

    public override string TokenEmbeddingName => "model.embed_tokens.weight";

    private void Linear(string prefix, long inputs, long outputs, bool bias)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        if (bias) Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    /// <summary>
    /// <c>inv_freq</c> <c>[D/2]</c> in float32 as the rotary embedding holds it after its init: the default
    /// <c>1 / θ^(arange(0, D, 2).float() / D)</c> (the power taken with the base as a float32 tensor, as for
    /// <c>base ** tensor</c>), or what the config's <c>rope_scaling</c> makes of it (<see cref="HfRope"/>; longrope's
    /// short factors).
    /// </summary>
    public Tensor InverseFrequencies() => HfRope.InverseFrequencies(Config, 1);

    /// <summary>The factor on cos and sin (transformers' <c>attention_scaling</c>): 1 but for yarn and longrope.</summary>
    public double AttentionScaling => HfRope.AttentionScaling(Config);

    /// <summary>
    /// LlamaRotaryEmbedding.forward for positions 0 … T − 1: freqs = position·inv_freq (float32; longrope's long factors
    /// past the original context), emb = cat(freqs, freqs), then cos and sin times the attention factor (float32) and
    /// cast to the model's dtype: each <c>[T, D]</c>.
    /// </summary>
    public (Tensor Cos, Tensor Sin) RotaryTables(long length)
    {
        Tensor positions = arange(length, ScalarType.Int64).to(ScalarType.Float32);
        Tensor freqs = positions.unsqueeze(1) * HfRope.InverseFrequencies(Config, length).unsqueeze(0); // K = 1 product: exact as the matmul
        Tensor emb = cat(new[] { freqs, freqs }, -1);
        double attention = AttentionScaling;
        return ((emb.cos() * attention).to(Dtype), (emb.sin() * attention).to(Dtype));
    }

    /// <summary><c>x·cos + rotate_half(x)·sin</c> for x <c>[B, heads, T, D]</c> and tables <c>[T, D]</c>.</summary>
    public static Tensor ApplyRotary(Tensor x, Tensor cos, Tensor sin) => x * cos + RotateHalf(x) * sin;

    /// <summary><c>rotate_half(x) = cat(−x[D/2:], x[:D/2])</c>: pairs are (j, j + D/2), not (2j, 2j + 1).</summary>
    public static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        return cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
    }

    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask)
    {
        long batch = ids.shape[0], length = ids.shape[1], hidden = Config.HiddenSize;
        // nn.Embedding(vocab, hidden, padding_idx = pad_token_id), whether or not the pad is also the end of a turn; no √E scaling.
        Tensor x = Lookup("model.embed_tokens.weight", ids, Config.PadTokenId).view(batch, length, hidden);
        (Tensor cos, Tensor sin) = RotaryTables(length);

        // Additive mask [B or 1, 1, T, T]: 0 where the key is visible (causal and, with a mask, not padding), else finfo.min.
        Tensor visible = ones(length, length, ScalarType.Bool).tril().view(1, 1, length, length);
        if (attentionMask is not null) visible = visible.logical_and(attentionMask.to(ScalarType.Bool).view(batch, 1, 1, length));
        Tensor mask = where(visible, Scalar(0.0), Scalar(MinValue));

        for (int i = 0; i < Config.Layers; i++)
        {
            string l = $"model.layers.{i}.";
            x = x + Attention(RmsNorm(x, l + "input_layernorm.weight"), cos, sin, mask, l);
            Tensor b = RmsNorm(x, l + "post_attention_layernorm.weight");
            x = x + Linear(Fused ? Phi3Mlp(b, l) : F.silu(Linear(b, l + "mlp.gate_proj")) * Linear(b, l + "mlp.up_proj"), l + "mlp.down_proj");
        }
        return RmsNorm(x, "model.norm.weight");
    }

    private Tensor Attention(Tensor x, Tensor cos, Tensor sin, Tensor mask, string l)
    {
        long batch = x.shape[0], length = x.shape[1], headDim = Config.HeadDim;
        long heads = Config.Heads, keyValueHeads = Config.KeyValueHeads, groups = heads / keyValueHeads;
        Tensor q, k, v;
        if (Fused)
        {
            // Phi3Attention: qkv[..., :H·D], qkv[..., H·D : H·D + KV·D], the rest.
            Tensor qkv = Linear(x, l + "self_attn.qkv_proj");
            long queryWidth = heads * headDim, keyValueWidth = keyValueHeads * headDim;
            q = qkv.narrow(-1, 0, queryWidth).view(batch, length, heads, headDim);
            k = qkv.narrow(-1, queryWidth, keyValueWidth).view(batch, length, keyValueHeads, headDim);
            v = qkv.narrow(-1, queryWidth + keyValueWidth, keyValueWidth).reshape(batch, length, keyValueHeads, headDim).transpose(1, 2);
        }
        else
        {
            q = Linear(x, l + "self_attn.q_proj").view(batch, length, heads, headDim);
            k = Linear(x, l + "self_attn.k_proj").view(batch, length, keyValueHeads, headDim);
            v = Linear(x, l + "self_attn.v_proj").view(batch, length, keyValueHeads, headDim).transpose(1, 2);
        }
        if (Config.QueryKeyNorm) // Qwen3: q_norm(q_proj(x).view(…, -1, D)), likewise k, before the transpose and the rotation
        {
            q = RmsNorm(q, l + "self_attn.q_norm.weight");
            k = RmsNorm(k, l + "self_attn.k_norm.weight");
        }
        q = q.transpose(1, 2);                                                                                        // [B, H, T, D]
        k = k.transpose(1, 2);                                                                                        // [B, KV, T, D]
        q = ApplyRotary(q, cos, sin);
        k = ApplyRotary(k, cos, sin);
        k = RepeatKeyValue(k, groups);
        v = RepeatKeyValue(v, groups);

        Tensor scores = q.matmul(k.transpose(2, 3)) * Math.Pow(headDim, -0.5) + mask;            // scaling = D ** -0.5
        Tensor probabilities = F.softmax(scores, -1, SoftmaxType).to(q.dtype);
        Tensor merged = probabilities.matmul(v).transpose(1, 2).reshape(batch, length, heads * headDim);
        return Linear(merged, l + "self_attn.o_proj");
    }

    /// <summary>repeat_kv: <c>[B, KV, T, D]</c> → <c>[B, KV·n, T, D]</c>; query head h reads key/value head ⌊h / n⌋.</summary>
    public static Tensor RepeatKeyValue(Tensor x, long groups)
    {
        if (groups == 1) return x;
        long batch = x.shape[0], keyValueHeads = x.shape[1], length = x.shape[2], headDim = x.shape[3];
        return x.unsqueeze(2).expand(batch, keyValueHeads, groups, length, headDim).reshape(batch, keyValueHeads * groups, length, headDim);
    }

    /// <summary>
    /// LlamaRMSNorm: h = x in float32; h·rsqrt(mean(h²) + ε); cast back to the input dtype, then <c>weight *</c>
    /// (no mean, no bias, no 1 + weight).
    /// </summary>
    private Tensor RmsNorm(Tensor x, string weight)
    {
        Tensor h = x.to(StatisticsType);
        Tensor variance = h.pow(2).mean(new long[] { -1 }, keepdim: true);
        h = h * rsqrt(variance + Config.NormEps);
        return this[weight] * h.to(x.dtype);
    }

    private ScalarType StatisticsType => Dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    private ScalarType SoftmaxType => StatisticsType;

    /// <summary>Phi-3's model_type: its projections fused (<c>qkv_proj</c>, <c>gate_up_proj</c>).</summary>
    private bool Fused => Config.ModelType == "phi3";

    /// <summary>Phi3MLP before down_proj: gate, up = gate_up_proj(x).chunk(2); up · silu(gate).</summary>
    private Tensor Phi3Mlp(Tensor x, string l)
    {
        Tensor gateUp = Linear(x, l + "mlp.gate_up_proj");
        long inner = Config.IntermediateSize;
        return gateUp.narrow(-1, inner, inner) * F.silu(gateUp.narrow(-1, 0, inner));
    }

    private Tensor Linear(Tensor x, string prefix)
    {
        string bias = prefix + ".bias";
        return F.linear(x, this[prefix + ".weight"], Contains(bias) ? this[bias] : null);
    }
}
