using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>T5ForConditionalGeneration</c> (<c>modeling_t5.py</c>, eager attention, dropout off) as <c>transformers</c> computes
/// it for T5, T5 v1.1/FLAN-T5 and mT5: one token table <c>shared.weight</c> read by both stacks without scaling and without
/// position embeddings; pre-norm blocks (x + f(LN(x))) with T5LayerNorm, an RMSNorm with a weight and no bias or mean
/// (w · x · rsqrt(mean(x²) + ε)); attention without biases and without the 1/√d scaling, scores q·kᵀ + position bias +
/// mask, inner width num_heads·d_kv (which need not be d_model); a final norm per stack; the head tied
/// (logits = (h·d_model^−½)·sharedᵀ) or an untied <c>lm_head</c> without bias.
/// </summary>
/// <remarks>
/// <para>
/// Positions are relative only: block 0 of each stack owns <c>relative_attention_bias</c> (<c>[buckets, heads]</c>), looked
/// up by <see cref="RelativePositionBucket"/> of key position − query position (both directions in the encoder, the past
/// only in the decoder) into a bias <c>[1, heads, q, k]</c> that the stack computes once and every one of its layers adds
/// (transformers passes block 0's position_bias, with the mask already added, on to the other blocks). Cross-attention
/// adds no position bias, only the source padding mask.
/// </para>
/// <para>
/// Masks are transformers' additive ones, finfo(dtype).min where a key is hidden: the source padding in the encoder's
/// self-attention and the cross-attention; the causal mask alone in the decoder's self-attention (no decoder padding mask
/// when <c>labels</c> are given). <c>shared</c> is an <c>nn.Embedding</c> without <c>padding_idx</c>: every row, the padding
/// row too, learns from its lookups, and with a tied head from the head as well.
/// </para>
/// <para>
/// The feed-forward (<c>DenseReluDense</c>) is <c>wo(act(wi·x))</c> (T5DenseActDense, "relu" for T5 v1.0) or with a gated
/// <c>feed_forward_proj</c> <c>wo(act(wi_0·x) ⊙ wi_1·x)</c> (T5DenseGatedActDense, "gated-gelu" = gelu_new for v1.1, FLAN
/// and mT5). T5LayerNorm takes the variance in float32 (<c>hidden_states.to(torch.float32)</c>); a float64 reference
/// (gradient checks only) keeps it in float64.
/// </para>
/// <para>
/// State order (a sharded file's split): <c>shared.weight</c>, then the encoder (each block: <c>layer.0.SelfAttention</c>
/// q, k, v, o and in block 0 <c>relative_attention_bias</c>, <c>layer.0.layer_norm</c>, <c>layer.1.DenseReluDense</c> wi
/// or wi_0, wi_1, then wo, <c>layer.1.layer_norm</c>) and <c>encoder.final_layer_norm</c>, then the decoder likewise with
/// <c>layer.1.EncDecAttention</c> and its <c>layer_norm</c> before the feed-forward at <c>layer.2</c>, and
/// <c>decoder.final_layer_norm</c>; <c>lm_head.weight</c> last when untied. <c>encoder.embed_tokens.weight</c> and
/// <c>decoder.embed_tokens.weight</c> are the same tensor as <c>shared.weight</c> (T5Stack's embed_tokens): safetensors'
/// save_pretrained drops them, older files carry them (<c>KeepTiedCopy</c>), and files of t5-small's era also the unread
/// <see cref="LegacyCrossAttentionBias"/> (<c>IncludeUnusedHeads</c>).
/// </para>
/// </remarks>
internal sealed class HfT5 : HfTorchModel, IHfEncoderDecoder
{
    public const string Shared = "shared.weight";
    public const string EncoderRelativeBias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    public const string DecoderRelativeBias = "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";

    /// <summary>
    /// Block 0's cross-attention table that early transformers versions created (and used) and current ones neither create
    /// nor read: T5ForConditionalGeneration lists it in <c>_keys_to_ignore_on_load_unexpected</c>.
    /// </summary>
    public const string LegacyCrossAttentionBias = "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight";

    public HfT5(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        long d = config.HiddenSize;
        Parameter(Shared, HfInit.Embedding, config.VocabSize, d);
        for (int i = 0; i < config.Layers; i++)
        {
            string block = $"encoder.block.{i}.layer.";
            AttentionParameters(block + "0.SelfAttention", relativeBias: i == 0);
            NormParameter(block + "0.layer_norm");
            FeedForwardParameters(block + "1.DenseReluDense");
            NormParameter(block + "1.layer_norm");
        }
        NormParameter("encoder.final_layer_norm");
        for (int i = 0; i < config.DecoderLayers; i++)
        {
            string block = $"decoder.block.{i}.layer.";
            AttentionParameters(block + "0.SelfAttention", relativeBias: i == 0);
            NormParameter(block + "0.layer_norm");
            AttentionParameters(block + "1.EncDecAttention", relativeBias: false);
            NormParameter(block + "1.layer_norm");
            FeedForwardParameters(block + "2.DenseReluDense");
            NormParameter(block + "2.layer_norm");
        }
        NormParameter("decoder.final_layer_norm");
        if (!config.TieWordEmbeddings) Parameter("lm_head.weight", HfInit.Matrix, config.VocabSize, d);
    }

    public override string TokenEmbeddingName => Shared;

    /// <summary>The tied names older files carry, each a copy of <c>shared.weight</c>: T5Stack's embed_tokens, and a tied head.</summary>
    public override IReadOnlyList<string> TiedCopyNames =>
        Config.TieWordEmbeddings
            ? ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"]
            : ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"];

    /// <summary>
    /// The old cross-attention table, as the negated decoder self-attention table (a new tensor each call): a loader that
    /// read it in place of either table would change the logits.
    /// </summary>
    public override IEnumerable<(string Name, Tensor Value)> UnreadFileTensors(HfWriteOptions options) => [(LegacyCrossAttentionBias, -this[DecoderRelativeBias].detach())];

    /// <summary>The encoder's output <c>[B, S, E]</c> (after <c>encoder.final_layer_norm</c>).</summary>
    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask) => Encode(ids, attentionMask);

    /// <summary>
    /// T5Stack as the encoder: the <c>shared</c> rows, then each block's x + SelfAttention(LN(x)) and x + FF(LN(x)) with the
    /// bidirectional position bias of block 0 plus the source mask, then <c>encoder.final_layer_norm</c>.
    /// </summary>
    public Tensor Encode(Tensor ids, Tensor? sourceMask)
    {
        long batch = ids.shape[0], length = ids.shape[1];
        Tensor x = Lookup(Shared, ids, paddingIdx: -1).view(batch, length, Config.HiddenSize);
        Tensor bias = PositionBias(EncoderRelativeBias, firstQuery: 0, length, length, bidirectional: true);
        if (KeyMask(sourceMask, batch, length) is Tensor mask) bias = bias + mask;
        for (int i = 0; i < Config.Layers; i++)
        {
            string block = $"encoder.block.{i}.layer.";
            Tensor normed = Norm(x, block + "0.layer_norm");
            x = x + Attention(block + "0.SelfAttention", normed, Heads(block + "0.SelfAttention.k", normed), Heads(block + "0.SelfAttention.v", normed), bias);
            x = x + FeedForward(block + "1.DenseReluDense", Norm(x, block + "1.layer_norm"));
        }
        return Norm(x, "encoder.final_layer_norm");
    }

    /// <summary>
    /// T5Stack as the decoder: ids <c>[B, T]</c> at positions past…past+T−1 (past = what <paramref name="cache"/> holds),
    /// self-attention with block 0's one-directional position bias for those queries over keys 0…past+T−1 plus the causal
    /// mask, cross-attention over <paramref name="memory"/> (its keys and values from the encoder output as it is, not
    /// normed again) with the source mask and no position bias, the feed-forward, then <c>decoder.final_layer_norm</c>.
    /// </summary>
    public Tensor Decode(Tensor ids, Tensor memory, Tensor? sourceMask, EncoderDecoderCache? cache = null)
    {
        long batch = ids.shape[0], length = ids.shape[1];
        int past = cache?.Length ?? 0;
        Tensor y = Lookup(Shared, ids, paddingIdx: -1).view(batch, length, Config.HiddenSize);
        // Query at past + q sees keys 0 … past + q.
        Tensor causal = triu(full(length, past + length, MinValue, Dtype), diagonal: past + 1).view(1, 1, length, past + length);
        Tensor selfBias = PositionBias(DecoderRelativeBias, past, length, past + length, bidirectional: false) + causal;
        Tensor? crossMask = KeyMask(sourceMask, batch, memory.shape[1]);
        for (int i = 0; i < Config.DecoderLayers; i++)
        {
            string block = $"decoder.block.{i}.layer.";
            Tensor normed = Norm(y, block + "0.layer_norm");
            Tensor keys = Heads(block + "0.SelfAttention.k", normed), values = Heads(block + "0.SelfAttention.v", normed);
            Tensor crossKeys, crossValues;
            if (cache is null)
            {
                crossKeys = Heads(block + "1.EncDecAttention.k", memory);
                crossValues = Heads(block + "1.EncDecAttention.v", memory);
            }
            else
            {
                (keys, values) = cache.AppendSelf(i, keys, values);
                (crossKeys, crossValues) = cache.Cross(i, () => (Heads(block + "1.EncDecAttention.k", memory), Heads(block + "1.EncDecAttention.v", memory)));
            }
            y = y + Attention(block + "0.SelfAttention", normed, keys, values, selfBias);
            y = y + Attention(block + "1.EncDecAttention", Norm(y, block + "1.layer_norm"), crossKeys, crossValues, crossMask);
            y = y + FeedForward(block + "2.DenseReluDense", Norm(y, block + "2.layer_norm"));
        }
        if (cache is not null) cache.Length += (int)length;
        return Norm(y, "decoder.final_layer_norm");
    }

    /// <summary>
    /// The head <c>[…, V]</c>: tied, (h · d_model^−½)·sharedᵀ (T5ForConditionalGeneration rescales before projecting on the
    /// shared table, the scale a Python float); untied, <c>lm_head(h)</c>.
    /// </summary>
    public Tensor TranslationLogits(Tensor hidden) =>
        Config.TieWordEmbeddings ? F.linear(hidden * Math.Pow(Config.HiddenSize, -0.5), this[Shared]) : F.linear(hidden, this["lm_head.weight"]);

    /// <summary>
    /// _shift_right: the decoder reads <c>decoder_start_token_id</c> then the labels but the last, an ignored label (−100,
    /// here &lt; 0) read as the padding id. <paramref name="labels"/> <c>[B·T]</c>.
    /// </summary>
    public long[] ShiftRight(int[] labels, int batch, int length)
    {
        var input = new long[batch * length];
        for (int b = 0; b < batch; b++)
        {
            input[b * length] = Config.DecoderStartTokenId;
            for (int t = 1; t < length; t++)
            {
                int label = labels[b * length + t - 1];
                input[b * length + t] = label < 0 ? Config.PadTokenId : label;
            }
        }
        return input;
    }

    /// <summary>
    /// T5Attention._relative_position_bucket in libtorch's operations, elementwise over <paramref name="relativePosition"/>
    /// (int64, key position − query position): bidirectional, half the buckets for keys after the query (offset by
    /// buckets/2) and the distance |Δ|; one-directional, the distance max(−Δ, 0) (keys after the query share bucket 0).
    /// Distances below max_exact = (half the) buckets/2 are their own bucket; larger ones max_exact +
    /// long(log(float(n)/max_exact) / log(max_distance/max_exact) · (buckets − max_exact)), the log in float32, the
    /// divisor a Python float rounded to float32 by the division, truncated toward zero, capped at buckets − 1.
    /// </summary>
    public static Tensor RelativePositionBucket(Tensor relativePosition, bool bidirectional, int buckets, int maxDistance)
    {
        Tensor result = zeros_like(relativePosition);
        Tensor distance;
        if (bidirectional)
        {
            buckets /= 2;
            result = result + relativePosition.gt(0).to(ScalarType.Int64) * buckets;
            distance = relativePosition.abs();
        }
        else distance = -minimum(relativePosition, zeros_like(relativePosition));
        int maxExact = buckets / 2;
        Tensor isSmall = distance.lt(maxExact);
        Tensor large = (log(distance.to(ScalarType.Float32) / maxExact) / Math.Log((double)maxDistance / maxExact) * (buckets - maxExact)).to(ScalarType.Int64) + maxExact;
        large = minimum(large, full_like(large, buckets - 1));
        return result + where(isSmall, distance, large);
    }

    /// <summary>The decoder's (one-directional) or the encoder's (bidirectional) position bias <c>[1, H, queries, keys]</c>.</summary>
    public Tensor PositionBias(bool decoder, int firstQuery, long queries, long keys) =>
        PositionBias(decoder ? DecoderRelativeBias : EncoderRelativeBias, firstQuery, queries, keys, bidirectional: !decoder);

    // compute_bias: [1, H, queries, keys] for query positions firstQuery… over key positions 0…keys−1, the table's rows
    // looked up as nn.Embedding does (every row learns).
    private Tensor PositionBias(string table, int firstQuery, long queries, long keys, bool bidirectional)
    {
        Tensor context = arange(firstQuery, firstQuery + queries, ScalarType.Int64).unsqueeze(1);
        Tensor memory = arange(keys, ScalarType.Int64).unsqueeze(0);
        Tensor buckets = RelativePositionBucket(memory - context, bidirectional, Config.RelativeBuckets, Config.RelativeMaxDistance);
        return Lookup(table, buckets, paddingIdx: -1).view(queries, keys, Config.Heads).permute(2, 0, 1).unsqueeze(0);
    }

    // invert_attention_mask / T5Stack's encoder mask: [B, 1, 1, S], finfo.min where the mask is 0.
    private Tensor? KeyMask(Tensor? mask, long batch, long length) =>
        mask is null ? null : (1.0 - mask.to(Dtype).view(batch, 1, 1, length)) * MinValue;

    // A projection split into heads: [B, T, E] → [B, H, T, d_kv].
    private Tensor Heads(string projection, Tensor x)
    {
        long batch = x.shape[0], length = x.shape[1];
        return F.linear(x, this[projection + ".weight"]).view(batch, length, Config.Heads, Config.HeadDim).transpose(1, 2);
    }

    // T5Attention: scores = q·kᵀ (no scaling) + position bias and mask, softmax, ·v, heads joined to H·d_kv, then o.
    private Tensor Attention(string prefix, Tensor x, Tensor keys, Tensor values, Tensor? biasAndMask)
    {
        long batch = x.shape[0], length = x.shape[1];
        Tensor scores = Heads(prefix + ".q", x).matmul(keys.transpose(2, 3));
        if (biasAndMask is not null) scores = scores + biasAndMask;
        Tensor output = F.softmax(scores, -1).matmul(values).transpose(1, 2).contiguous().reshape(batch, length, Config.Heads * Config.HeadDim);
        return F.linear(output, this[prefix + ".o.weight"]);
    }

    // T5DenseActDense or T5DenseGatedActDense (the activation applied to wi_0's output, which multiplies wi_1's).
    private Tensor FeedForward(string prefix, Tensor x)
    {
        Tensor inner = Config.GatedFeedForward
            ? HfActivations.Apply(Config.Activation, F.linear(x, this[prefix + ".wi_0.weight"])) * F.linear(x, this[prefix + ".wi_1.weight"])
            : HfActivations.Apply(Config.Activation, F.linear(x, this[prefix + ".wi.weight"]));
        return F.linear(inner, this[prefix + ".wo.weight"]);
    }

    // T5LayerNorm: weight · (x · rsqrt(mean(x²) + ε)), in that order.
    private Tensor Norm(Tensor x, string prefix)
    {
        Tensor variance = x.pow(2).mean(new long[] { -1 }, keepdim: true);
        return this[prefix + ".weight"] * (x * rsqrt(variance + Config.NormEps));
    }

    // modeling_t5 registers q, k, v, o, then (block 0 only) relative_attention_bias. The query weight is drawn 1/√d_kv
    // smaller, as T5's own initialization draws it: with no scaling in the attention, the scores stay of order one.
    private void AttentionParameters(string prefix, bool relativeBias)
    {
        long d = Config.HiddenSize, inner = (long)Config.Heads * Config.HeadDim;
        Tensor query = Parameter(prefix + ".q.weight", HfInit.Matrix, inner, d);
        using (no_grad()) query.mul_(1.0 / Math.Sqrt(Config.HeadDim));
        Parameter(prefix + ".k.weight", HfInit.Matrix, inner, d);
        Parameter(prefix + ".v.weight", HfInit.Matrix, inner, d);
        Parameter(prefix + ".o.weight", HfInit.Matrix, d, inner);
        // N(0, 0.5²): position biases of the size of the scores, so that a wrong bucket shows.
        if (relativeBias) Parameter(prefix + ".relative_attention_bias.weight", HfInit.Embedding, Config.RelativeBuckets, Config.Heads);
    }

    private void FeedForwardParameters(string prefix)
    {
        long d = Config.HiddenSize, inner = Config.IntermediateSize;
        if (Config.GatedFeedForward)
        {
            Parameter(prefix + ".wi_0.weight", HfInit.Matrix, inner, d);
            Parameter(prefix + ".wi_1.weight", HfInit.Matrix, inner, d);
        }
        else Parameter(prefix + ".wi.weight", HfInit.Matrix, inner, d);
        Parameter(prefix + ".wo.weight", HfInit.Matrix, d, inner);
    }

    // T5LayerNorm has a weight only, drawn 1 + 0.1·N(0, 1) so that a missing or misplaced one shows.
    private void NormParameter(string prefix) => Parameter(prefix + ".weight", HfInit.NormWeight, Config.HiddenSize);
}
