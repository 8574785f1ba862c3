using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>MPNetModel</c> (<c>modeling_mpnet.py</c>, eager attention) with sentence-transformers' mean pooling and Normalize on
/// top, as sentence-transformers/all-mpnet-base-v2 runs it: word + position embeddings (no token types), the position
/// ids RoBERTa's, counted from the padding id 1 that MPNetEmbeddings hard-codes, then <c>embeddings.LayerNorm</c>; BERT's
/// post-LN layers under MPNet's names (<c>attention.attn.q/k/v/o</c>, <c>attention.LayerNorm</c>, <c>intermediate.dense</c>,
/// <c>output.dense</c>, <c>output.LayerNorm</c>), whose scores get one position bias <c>[1, H, T, T]</c> that the encoder
/// computes once from <c>encoder.relative_attention_bias</c> (32 bidirectional buckets up to distance 128, over plain
/// query and key indices, not the padding-aware position ids) and every layer adds before the padding mask. Dropout is off.
/// </summary>
/// <remarks>
/// Files: MPNetModel's bare names (all-mpnet-base-v2's <c>model.safetensors</c>), the pooler only with
/// <c>IncludeUnusedHeads</c>; with <c>Prefix</c>, MPNetForMaskedLM's layout (microsoft/mpnet-base's): <c>mpnet.</c> before
/// every name, no pooler (built with add_pooling_layer=False), and with <c>IncludeUnusedHeads</c> its <c>lm_head</c>.
/// </remarks>
internal sealed class HfMPNet : HfTorchModel, IHfSentenceEncoder
{
    /// <summary>MPNetEmbeddings.padding_idx, whatever <c>pad_token_id</c> says: the row neither table's lookups train, and the position ids' origin.</summary>
    public const int PaddingIdx = 1;

    /// <summary>compute_position_bias's num_buckets (always its default, whatever the table's rows) and relative_position_bucket's max_distance.</summary>
    public const int Buckets = 32, MaxDistance = 128;

    private const string WordEmbeddings = "embeddings.word_embeddings.weight", PositionEmbeddings = "embeddings.position_embeddings.weight";
    private const string RelativeBias = "encoder.relative_attention_bias.weight";

    // MPNetForMaskedLM's MPNetLMHead (dense, gelu, layer_norm, decoder tied to the word embeddings, bias shared with
    // decoder.bias): drawn after the parameters, read by nothing here.
    private readonly Tensor _lmDenseWeight, _lmDenseBias, _lmNormWeight, _lmNormBias, _lmBias;

    public HfMPNet(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        long d = config.HiddenSize, inner = config.IntermediateSize, positions = config.MaxPositions;
        // state_dict() order: MPNetEmbeddings' own position_ids buffer (persistent in the transformers of
        // all-mpnet-base-v2's era, so older files hold it), its tables and LayerNorm; encoder.layer.*, then the encoder's
        // relative_attention_bias (registered after the ModuleList); the pooler.
        Buffer("embeddings.position_ids", () => arange(positions, ScalarType.Int64).view(1, positions));
        Parameter(WordEmbeddings, HfInit.Embedding, config.VocabSize, d);
        Parameter(PositionEmbeddings, HfInit.Embedding, positions, d);
        LayerNormParameters("embeddings.LayerNorm", d);
        for (int i = 0; i < config.Layers; i++)
        {
            foreach (string projection in new[] { "q", "k", "v", "o" }) Linear(Layer(i, "attention.attn." + projection), d, d);
            LayerNormParameters(Layer(i, "attention.LayerNorm"), d);
            Linear(Layer(i, "intermediate.dense"), d, inner);
            Linear(Layer(i, "output.dense"), inner, d);
            LayerNormParameters(Layer(i, "output.LayerNorm"), d);
        }
        // N(0, 0.5²): biases of the size of the scores, so that a wrong bucket shows.
        Parameter(RelativeBias, HfInit.Embedding, config.RelativeBuckets, config.Heads);
        // MPNetPooler (dense + tanh on token 0): in MPNetModel files, never read by mean pooling.
        Parameter("pooler.dense.weight", HfInit.Matrix, used: false, d, d);
        Parameter("pooler.dense.bias", HfInit.Bias, used: false, d);

        using DisposeScope scope = NewDisposeScope();
        _lmDenseWeight = scope.Detach(Drawn("lm_head.dense.weight", HfInit.Matrix, d, d));
        _lmDenseBias = scope.Detach(Drawn("lm_head.dense.bias", HfInit.Bias, d));
        _lmNormWeight = scope.Detach(Drawn("lm_head.layer_norm.weight", HfInit.NormWeight, d));
        _lmNormBias = scope.Detach(Drawn("lm_head.layer_norm.bias", HfInit.Bias, d));
        _lmBias = scope.Detach(Drawn("lm_head.bias", HfInit.Bias, config.VocabSize));
    }

    public override string TokenEmbeddingName => WordEmbeddings;

    /// <summary>MPNetModel has no head to tie: <c>KeepTiedCopy</c> is refused (the MaskedLM file's tied decoder comes with its <c>lm_head</c>).</summary>
    public override IReadOnlyList<string> TiedCopyNames => [];

    /// <summary>
    /// The MaskedLM layout only (<c>Prefix</c>): MPNetLMHead's tensors in state_dict() order, <c>lm_head.bias</c> first (its
    /// own parameter), then dense, layer_norm, and decoder, whose weight is the word embeddings and bias <c>lm_head.bias</c>
    /// (tied, as a torch.save'd file still holds them both).
    /// </summary>
    public override IEnumerable<(string Name, Tensor Value)> UnreadFileTensors(HfWriteOptions options)
    {
        if (!options.Prefix) return [];
        return new (string, Tensor)[]
        {
            ("lm_head.bias", Rounded(_lmBias)),
            ("lm_head.dense.weight", Rounded(_lmDenseWeight)), ("lm_head.dense.bias", Rounded(_lmDenseBias)),
            ("lm_head.layer_norm.weight", Rounded(_lmNormWeight)), ("lm_head.layer_norm.bias", Rounded(_lmNormBias)),
            ("lm_head.decoder.weight", this[WordEmbeddings].detach()), ("lm_head.decoder.bias", Rounded(_lmBias)),
        };

        Tensor Rounded(Tensor t) => options.Dtype switch
        {
            HfDtype.BF16 => t.to(ScalarType.BFloat16).to(ScalarType.Float32),
            HfDtype.F16 => t.to(ScalarType.Float16).to(ScalarType.Float32),
            _ => t.detach(),
        };
    }

    private static string Layer(int i, string part) => $"encoder.layer.{i}.{part}";

    private void Linear(string prefix, long inputs, long outputs)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    /// <summary>
    /// create_position_ids_from_input_ids with padding_idx 1: cumsum(ids ≠ 1)·(ids ≠ 1) + 1, so real tokens count from 2
    /// and every padding token sits at 1 <c>[B, T]</c>.
    /// </summary>
    public static Tensor PositionIds(Tensor ids)
    {
        Tensor real = ids.ne(PaddingIdx).to(ScalarType.Int64);
        return real.cumsum(1) * real + PaddingIdx;
    }

    /// <summary>
    /// MPNetEncoder.relative_position_bucket elementwise over <paramref name="relativePosition"/> (int64, key index −
    /// query index), in libtorch's operations as transformers runs them: n = −Δ; 16 buckets per direction, the keys after
    /// the query (n &lt; 0) offset by 16; |n| &lt; 8 its own bucket, else 8 + long(log(float(|n|)/8) / log(128/8) · 8), the
    /// log in float32, the divisor a Python float rounded to float32 by the division, truncated toward zero, capped at 15.
    /// </summary>
    public static Tensor RelativePositionBucket(Tensor relativePosition)
    {
        const int half = Buckets / 2, maxExact = half / 2;
        Tensor n = relativePosition.neg();
        Tensor result = n.lt(0).to(ScalarType.Int64) * half;
        n = n.abs();
        Tensor isSmall = n.lt(maxExact);
        // log(0) for the small ones is −inf, cast to whatever: where() never takes it.
        Tensor large = (log(n.to(ScalarType.Float32) / maxExact) / Math.Log((double)MaxDistance / maxExact) * (half - maxExact)).to(ScalarType.Int64) + maxExact;
        large = minimum(large, full_like(large, half - 1));
        return result + where(isSmall, n, large);
    }

    /// <summary>
    /// compute_position_bias without position ids: the bucket of key − query over arange(T) for both, the table's rows
    /// looked up (every row learns) as <c>[1, H, T, T]</c>, the same for every sequence of the batch and every layer.
    /// </summary>
    public Tensor PositionBias(long length)
    {
        Tensor context = arange(length, ScalarType.Int64).unsqueeze(1), memory = arange(length, ScalarType.Int64).unsqueeze(0);
        Tensor buckets = RelativePositionBucket(memory - context);
        return Lookup(RelativeBias, buckets, paddingIdx: -1).view(length, length, Config.Heads).permute(2, 0, 1).unsqueeze(0);
    }

    /// <summary>The encoder's output <c>[B, T, E]</c> (<c>last_hidden_state</c>).</summary>
    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask)
    {
        long batch = ids.shape[0], length = ids.shape[1], d = Config.HiddenSize;
        // Position ids reach length + 1: the table's last row serves length max_position_embeddings − 2.
        if (length + PaddingIdx >= Config.MaxPositions)
            throw new ArgumentException($"{length} positions: MPNet's position ids run from 2 to {length + PaddingIdx}, the table has {Config.MaxPositions} rows");
        // Both tables are nn.Embedding(padding_idx = 1): row 1's lookups pass no gradient back.
        Tensor words = Lookup(WordEmbeddings, ids, PaddingIdx).view(batch, length, d);
        Tensor positions = Lookup(PositionEmbeddings, PositionIds(ids), PaddingIdx).view(batch, length, d);
        Tensor h = LayerNorm(words + positions, "embeddings.LayerNorm");

        // get_extended_attention_mask: (1 − mask)[:, None, None, :]·finfo(dtype).min, added after the position bias.
        Tensor? extended = attentionMask is null ? null : (1.0 - attentionMask.to(Dtype).view(batch, 1, 1, length)) * MinValue;
        Tensor bias = PositionBias(length);
        for (int i = 0; i < Config.Layers; i++)
        {
            Tensor attention = LayerNorm(Linear(SelfAttention(h, bias, extended, i), Layer(i, "attention.attn.o")) + h, Layer(i, "attention.LayerNorm"));
            Tensor intermediate = HfActivations.Apply(Config.Activation, Linear(attention, Layer(i, "intermediate.dense")));
            h = LayerNorm(Linear(intermediate, Layer(i, "output.dense")) + attention, Layer(i, "output.LayerNorm"));
        }
        return h;
    }

    /// <summary>MPNetSelfAttention before <c>o</c>: softmax(q·kᵀ/√D + bias + mask)·v, heads joined <c>[B, T, E]</c>.</summary>
    private Tensor SelfAttention(Tensor h, Tensor bias, Tensor? extendedMask, int layer)
    {
        long batch = h.shape[0], length = h.shape[1], heads = Config.Heads, headDim = Config.HeadDim;
        Tensor q = Heads(Linear(h, Layer(layer, "attention.attn.q")));
        Tensor k = Heads(Linear(h, Layer(layer, "attention.attn.k")));
        Tensor v = Heads(Linear(h, Layer(layer, "attention.attn.v")));                            // [B, H, T, D]
        Tensor scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(headDim) + bias;
        if (extendedMask is not null) scores = scores + extendedMask;
        Tensor probabilities = F.softmax(scores, -1);
        return probabilities.matmul(v).permute(0, 2, 1, 3).contiguous().view(batch, length, Config.HiddenSize);

        Tensor Heads(Tensor t) => t.view(batch, length, heads, headDim).permute(0, 2, 1, 3);
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

    private Tensor Linear(Tensor x, string prefix) => F.linear(x, this[prefix + ".weight"], this[prefix + ".bias"]);

    private Tensor LayerNorm(Tensor x, string prefix) =>
        F.layer_norm(x, new[] { (long)Config.HiddenSize }, this[prefix + ".weight"], this[prefix + ".bias"], Config.NormEps);
}
