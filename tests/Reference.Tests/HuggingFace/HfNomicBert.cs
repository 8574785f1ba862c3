using System;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>A reference that gives sentence-transformers embeddings: <c>[B, E]</c> from ids <c>[B, T]</c> and a 0/1 mask <c>[B, T]</c>.</summary>
internal interface IHfSentenceEncoder
{
    Tensor SentenceEmbeddings(Tensor ids, Tensor attentionMask, bool clsToken = false);
}

/// <summary>
/// <c>NomicBertModel</c> as nomic-ai's hub code (<c>modeling_hf_nomic_bert.py</c>) computes it for nomic-embed-text-v1.5,
/// with sentence-transformers' mean pooling and Normalize on top: word + token-type embeddings (no position table),
/// <c>emb_ln</c>; post-LN blocks of a fused <c>Wqkv</c> (rows Q | K | V) with rotary positions on Q and K (half-split,
/// base <c>rotary_emb_base</c>, tables in float32 as NomicBertRotaryEmbedding builds them), eager softmax attention over
/// the unpadded keys, <c>out_proj</c>, <c>norm1</c>; then the gated MLP <c>fc2(fc11(h)·act(fc12(h)))</c> and <c>norm2</c>.
/// Biases only where the config asks for them (nomic-embed-text-v1.5 has none). Dropout is off.
/// </summary>
internal sealed class HfNomicBert : HfTorchModel, IHfSentenceEncoder
{
    private const string WordEmbeddings = "embeddings.word_embeddings.weight", TokenTypes = "embeddings.token_type_embeddings.weight";

    public HfNomicBert(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        long d = config.HiddenSize, inner = config.IntermediateSize;
        // state_dict() order: embeddings, emb_ln, encoder.layers (attn: Wqkv, out_proj; mlp: fc11, fc12, fc2; norm1, norm2),
        // pooler. The rotary inv_freq and norm_factor buffers are not persistent: no file holds them.
        Parameter(WordEmbeddings, HfInit.Embedding, config.VocabSize, d);
        if (config.TypeVocabSize > 0) Parameter(TokenTypes, HfInit.Embedding, config.TypeVocabSize, d);
        LayerNormParameters("emb_ln", d);
        for (int i = 0; i < config.Layers; i++)
        {
            Linear(Layer(i, "attn.Wqkv"), d, 3 * d, config.QkvBias);
            Linear(Layer(i, "attn.out_proj"), d, d, config.OutputBias);
            Linear(Layer(i, "mlp.fc11"), d, inner, config.MlpBias);
            Linear(Layer(i, "mlp.fc12"), d, inner, config.MlpBias);
            Linear(Layer(i, "mlp.fc2"), inner, d, config.MlpOutputBias);
            LayerNormParameters(Layer(i, "norm1"), d);
            LayerNormParameters(Layer(i, "norm2"), d);
        }
        // NomicBertPooler (dense + tanh on token 0): in files saved with add_pooling_layer, never read by mean pooling
        // (NomicBertModel.from_pretrained builds the model without it).
        Parameter("pooler.dense.weight", HfInit.Matrix, used: false, d, d);
        Parameter("pooler.dense.bias", HfInit.Bias, used: false, d);
    }

    public override string TokenEmbeddingName => WordEmbeddings;

    private static string Layer(int i, string part) => $"encoder.layers.{i}.{part}";

    private void Linear(string prefix, long inputs, long outputs, bool bias)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        if (bias) Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask) => LastHiddenState(ids, attentionMask, null);

    /// <summary>The encoder's output <c>[B, T, E]</c>; token types zeros when null (NomicBertModel.forward's default).</summary>
    public Tensor LastHiddenState(Tensor ids, Tensor? attentionMask, Tensor? tokenTypes)
    {
        long batch = ids.shape[0], length = ids.shape[1], d = Config.HiddenSize;
        if (length > Config.RotaryUnscaledPositions)
            throw new NotSupportedException($"{length} positions: beyond max_trained_positions {Config.RotaryUnscaledPositions} the dynamic NTK rescaling applies, which is not implemented");
        // word_embeddings is nn.Embedding(padding_idx = pad_token_id): that row's lookups pass no gradient back.
        Tensor x = Lookup(WordEmbeddings, ids, Config.PadTokenId).view(batch, length, d);
        if (Config.TypeVocabSize > 0)
        {
            Tensor types = tokenTypes?.flatten() ?? zeros(batch * length, ScalarType.Int64);
            x = x + this[TokenTypes].index_select(0, types).view(batch, length, d);
        }
        Tensor h = LayerNorm(x, "emb_ln");

        // get_extended_attention_mask: (1 − mask)[:, None, None, :]·finfo(dtype).min added to the scores.
        Tensor? extended = attentionMask is null ? null : (1.0 - attentionMask.to(Dtype).view(batch, 1, 1, length)) * MinValue;
        (Tensor cos, Tensor sin) = RotaryTables(length);
        for (int i = 0; i < Config.Layers; i++)
        {
            h = LayerNorm(SelfAttention(h, extended, cos, sin, i) + h, Layer(i, "norm1"));
            h = LayerNorm(Mlp(h, i) + h, Layer(i, "norm2"));
        }
        return h;
    }

    /// <summary>
    /// NomicBertRotaryEmbedding's tables <c>[T, D/2]</c> in the model's dtype: inv_freq = 1 / base^(arange(0, D, 2)/D) and
    /// the positions arange(T) in float32 (pos_idx_in_fp32), their outer product, cos and sin in float32, then converted.
    /// </summary>
    public (Tensor Cos, Tensor Sin) RotaryTables(long length)
    {
        double dim = Config.HeadDim * 1.0;                                            // head_dim · rotary_emb_fraction (1.0)
        Tensor exponents = arange(0.0, dim, 2.0, ScalarType.Float32) / dim;
        Tensor invFreq = tensor((float)Config.RopeTheta).pow(exponents).reciprocal();  // 1.0 / (base ** …): Tensor.__rtruediv__ is reciprocal()·1
        Tensor freqs = outer(arange(length, ScalarType.Float32), invFreq);
        return (cos(freqs).to(Dtype), sin(freqs).to(Dtype));
    }

    /// <summary>
    /// apply_rotary_emb (not interleaved) on <c>[B, T, H, D]</c>: x·cos + rotate_half(x)·sin, the tables repeated as
    /// "… d → … 1 (2 d)" and rotate_half(x) = cat(−x₂, x₁).
    /// </summary>
    public static Tensor ApplyRotary(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        Tensor c = cat(new[] { cos, cos }, -1).unsqueeze(1), s = cat(new[] { sin, sin }, -1).unsqueeze(1); // [T, 1, D]
        Tensor rotated = cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
        return x * c + rotated * s;
    }

    private Tensor SelfAttention(Tensor h, Tensor? extendedMask, Tensor cos, Tensor sin, int layer)
    {
        long batch = h.shape[0], length = h.shape[1], heads = Config.Heads, headDim = Config.HeadDim;
        // rearrange "... (three h d) -> ... three h d": [B, T, 3, H, D].
        Tensor qkv = Linear(h, Layer(layer, "attn.Wqkv")).view(batch, length, 3, heads, headDim);
        Tensor q = ApplyRotary(qkv.select(2, 0), cos, sin).permute(0, 2, 1, 3);
        Tensor k = ApplyRotary(qkv.select(2, 1), cos, sin).permute(0, 2, 1, 3);
        Tensor v = qkv.select(2, 2).permute(0, 2, 1, 3);                                    // [B, H, T, D]
        // norm_factor: sqrt of a float32 tensor, a buffer that converts with the model.
        Tensor normFactor = sqrt(tensor((float)headDim, ScalarType.Float32)).to(Dtype);
        Tensor scores = q.matmul(k.transpose(-1, -2)) / normFactor;
        if (extendedMask is not null) scores = scores + extendedMask;
        Tensor probabilities = F.softmax(scores, -1);
        Tensor context = probabilities.matmul(v).permute(0, 2, 1, 3).contiguous().view(batch, length, Config.HiddenSize);
        return Linear(context, Layer(layer, "attn.out_proj"));
    }

    /// <summary>NomciBertGatedMLP: y = fc11(h), gate = fc12(h); swiglu y·silu(gate), geglu y·gelu(gate), glu F.glu(cat(y, gate)); fc2.</summary>
    private Tensor Mlp(Tensor h, int layer)
    {
        Tensor y = Linear(h, Layer(layer, "mlp.fc11")), gate = Linear(h, Layer(layer, "mlp.fc12"));
        Tensor gated = Config.Activation switch
        {
            "swiglu" => y * F.silu(gate),
            "geglu" => y * F.gelu(gate),
            "glu" => F.glu(cat(new[] { y, gate }, -1), -1),
            _ => throw new NotSupportedException(Config.Activation),
        };
        return Linear(gated, Layer(layer, "mlp.fc2"));
    }

    /// <summary>
    /// sentence-transformers <c>Pooling(mean)</c> then <c>Normalize()</c>: Σ_t h[t]·m[t] / clamp(Σ_t m[t], 1e-9), then
    /// <c>F.normalize(p=2, dim=1)</c>; <paramref name="clsToken"/>: token 0's state instead of the mean.
    /// </summary>
    public Tensor SentenceEmbeddings(Tensor ids, Tensor attentionMask, bool clsToken = false)
    {
        Tensor tokens = LastHiddenState(ids, attentionMask);
        if (clsToken) return F.normalize(tokens.select(1, 0), p: 2, dim: 1);
        Tensor mask = attentionMask.to(Dtype).unsqueeze(-1).expand(tokens.shape);
        return F.normalize((tokens * mask).sum(1) / clamp(mask.sum(1), min: 1e-9), p: 2, dim: 1);
    }

    private Tensor Linear(Tensor x, string prefix) =>
        F.linear(x, this[prefix + ".weight"], Contains(prefix + ".bias") ? this[prefix + ".bias"] : null);

    private Tensor LayerNorm(Tensor x, string prefix) =>
        F.layer_norm(x, new[] { (long)Config.HiddenSize }, this[prefix + ".weight"], this[prefix + ".bias"], Config.NormEps);
}
