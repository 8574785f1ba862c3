using System;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>GPT2LMHeadModel</c> (MODEL_FAMILIES.md §1, <c>modeling_gpt2.py</c> v4.3x, eager attention): learned absolute
/// positions, pre-LN blocks of Conv1D layers (weights <c>[in, out]</c>, <c>y = addmm(b, x, W)</c>), scores divided by
/// √D with the causal mask applied by <c>torch.where(…, finfo.min)</c>, <c>ln_f</c>, logits against <c>wte</c>.
/// </summary>
internal sealed class HfGpt2 : HfTorchModel
{
    public HfGpt2(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        long embd = config.HiddenSize, inner = config.IntermediateSize, positions = config.MaxPositions;
        Parameter("wte.weight", HfInit.Embedding, config.VocabSize, embd);
        Parameter("wpe.weight", HfInit.Embedding, positions, embd);
        for (int i = 0; i < config.Layers; i++)
        {
            string h = $"h.{i}.";
            LayerNormParameters(h + "ln_1", embd);
            // GPT2Attention registers its buffers before its Conv1D children: this is their state_dict order.
            Buffer(h + "attn.bias", () => ones(positions, positions, ScalarType.Float32).tril().view(1, 1, positions, positions));
            Buffer(h + "attn.masked_bias", () => tensor(-1e4f));
            Conv1D(h + "attn.c_attn", embd, 3 * embd);
            Conv1D(h + "attn.c_proj", embd, embd);
            LayerNormParameters(h + "ln_2", embd);
            Conv1D(h + "mlp.c_fc", embd, inner);
            Conv1D(h + "mlp.c_proj", inner, embd);
        }
        LayerNormParameters("ln_f", embd);
        if (!config.TieWordEmbeddings) Parameter("lm_head.weight", HfInit.Matrix, config.VocabSize, embd);
    }

    public override string TokenEmbeddingName => "wte.weight";

    private void Conv1D(string prefix, long inputs, long outputs)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, inputs, outputs);
        Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask)
    {
        long batch = ids.shape[0], length = ids.shape[1], embd = Config.HiddenSize;
        Tensor positions = arange(length, ScalarType.Int64);                                  // arange, whatever the padding
        Tensor x = this["wte.weight"].index_select(0, ids.flatten()).view(batch, length, embd)
                 + this["wpe.weight"].index_select(0, positions);                            // [B, T, E]

        // GPT2Model: attention_mask[:, None, None, :], (1 − mask)·finfo.min, added after the causal where.
        Tensor? extended = attentionMask is null ? null : (1.0 - attentionMask.to(Dtype).view(batch, 1, 1, length)) * MinValue;
        for (int i = 0; i < Config.Layers; i++)
        {
            string h = $"h.{i}.";
            x = Attention(LayerNorm(x, h + "ln_1"), extended, i) + x;
            x = x + Mlp(LayerNorm(x, h + "ln_2"), h);
        }
        return LayerNorm(x, "ln_f");
    }

    private Tensor Attention(Tensor x, Tensor? extendedMask, int layer)
    {
        long batch = x.shape[0], length = x.shape[1], embd = Config.HiddenSize, heads = Config.Heads, headDim = Config.HeadDim;
        string a = $"h.{layer}.attn.";
        Tensor[] qkv = Conv1DForward(x, a + "c_attn").split(embd, 2);
        Tensor q = SplitHeads(qkv[0]), k = SplitHeads(qkv[1]), v = SplitHeads(qkv[2]);           // [B, H, T, D]

        Tensor scores = q.matmul(k.transpose(-1, -2));                                           // [B, H, T, T]
        if (Config.ScaleAttnWeights) scores = scores / Scalar(Math.Sqrt(headDim));               // torch.full([], D ** 0.5)
        if (Config.ScaleAttnByInverseLayerIdx) scores = scores / (double)(layer + 1);
        // The causal mask is the layer's own buffer, as in _attn: bias[:, :, 0:T, 0:T].
        Tensor causal = this[a + "bias"].narrow(2, 0, length).narrow(3, 0, length).to(ScalarType.Bool);
        scores = where(causal, scores, Scalar(MinValue));
        if (extendedMask is not null) scores = scores + extendedMask;
        Tensor probabilities = F.softmax(scores, -1);
        Tensor merged = probabilities.matmul(v).permute(0, 2, 1, 3).contiguous().view(batch, length, embd);
        return Conv1DForward(merged, a + "c_proj");

        Tensor SplitHeads(Tensor t) => t.view(batch, length, heads, headDim).permute(0, 2, 1, 3);
    }

    private Tensor Mlp(Tensor x, string h) =>
        Conv1DForward(HfActivations.Apply(Config.Activation, Conv1DForward(x, h + "mlp.c_fc")), h + "mlp.c_proj");

    // pytorch_utils.Conv1D.forward: x.view(-1, in) → addmm(bias, x, weight) → view(…, out).
    private Tensor Conv1DForward(Tensor x, string prefix)
    {
        Tensor weight = this[prefix + ".weight"];
        long inputs = weight.shape[0], outputs = weight.shape[1];
        Tensor y = addmm(this[prefix + ".bias"], x.reshape(-1, inputs), weight, 1f, 1f);
        return y.view(x.shape[0], x.shape[1], outputs);
    }

    private Tensor LayerNorm(Tensor x, string prefix) =>
        F.layer_norm(x, new[] { (long)Config.HiddenSize }, this[prefix + ".weight"], this[prefix + ".bias"], Config.NormEps);
}
