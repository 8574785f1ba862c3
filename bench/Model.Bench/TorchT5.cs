using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// google/flan-t5-small as transformers' <c>T5ForConditionalGeneration</c> computes it (<c>modeling_t5.py</c>, T5 v1.1:
/// eager attention, eval mode), written with TorchSharp modules for one sentence at a time: one token table
/// <c>shared</c> read by both stacks without scaling and without positions; pre-norm blocks x + f(T5LayerNorm(x)), the
/// norm an RMSNorm (weight · x·rsqrt(mean(x²) + ε), no mean, no bias); projections without biases, <c>num_heads</c>
/// heads of <c>d_kv</c>; scores q·kᵀ without the 1/√d_kv scaling plus a relative-position bias; the feed-forward
/// <c>wo(gelu_new(wi_0·x) · wi_1·x)</c>; a final norm per stack; an untied <c>lm_head</c> without the d_model^−½ that
/// a tied head would take. Call it under <c>no_grad</c>.
/// </summary>
/// <remarks>
/// <para>
/// Block 0 of each stack owns the table <c>relative_attention_bias</c> <c>[buckets, heads]</c>. Each pass computes the
/// stack's bias <c>[heads, queries, keys]</c> once, from the bucket of every key-minus-query distance (both directions in
/// the encoder, only the past in the decoder), and every self-attention layer of the stack adds it, as transformers
/// passes block 0's <c>position_bias</c> on to the other blocks. Cross-attention adds none.
/// </para>
/// <para>
/// The caches are those of transformers' <c>EncoderDecoderCache</c>: <see cref="Encode"/> runs the encoder and computes
/// every decoder layer's cross-attention keys and values once per source; <see cref="Append"/> writes each new position's
/// self-attention keys and values into preallocated <c>[heads, capacity, d_kv]</c> tensors (as StaticCache does). The
/// benchmark's source has no padding, so no attention mask is built (transformers' all-ones mask adds zeros), and one new
/// position at a time needs no causal mask either.
/// </para>
/// </remarks>
internal sealed class TorchT5 : nn.Module, ITorchTranslator
{
    private readonly Embedding shared, encoder_relative_attention_bias, decoder_relative_attention_bias;
    private readonly ModuleList<TorchT5Block> encoder_block, decoder_block;
    private readonly Parameter encoder_final_layer_norm, decoder_final_layer_norm;
    private readonly Linear lm_head;
    private readonly long _buckets, _maxDistance, _capacity;
    private readonly double _eps;
    private long _length;

    public TorchT5(long vocab, long hidden, long heads, long headDim, long intermediate, long encoderLayers, long decoderLayers,
        long buckets, long maxDistance, double eps, long capacity)
        : base(nameof(TorchT5))
    {
        shared = nn.Embedding(vocab, hidden);
        encoder_relative_attention_bias = nn.Embedding(buckets, heads);
        decoder_relative_attention_bias = nn.Embedding(buckets, heads);
        encoder_block = new ModuleList<TorchT5Block>();
        for (int i = 0; i < encoderLayers; i++) encoder_block.Add(new TorchT5Block(hidden, heads, headDim, intermediate, eps, cross: false, capacity));
        decoder_block = new ModuleList<TorchT5Block>();
        for (int i = 0; i < decoderLayers; i++) decoder_block.Add(new TorchT5Block(hidden, heads, headDim, intermediate, eps, cross: true, capacity));
        encoder_final_layer_norm = nn.Parameter(ones(hidden));
        decoder_final_layer_norm = nn.Parameter(ones(hidden));
        lm_head = nn.Linear(hidden, vocab, hasBias: false);
        (_buckets, _maxDistance, _eps, _capacity) = (buckets, maxDistance, eps, capacity);
        RegisterComponents();
    }

    /// <summary>Copies every parameter of <paramref name="model"/> (Hugging Face names, untied head).</summary>
    public void CopyFrom(TransformerModel model)
    {
        var weights = new OurWeights(model);
        weights.CopyTo(shared.weight!, "shared.weight");
        weights.CopyTo(encoder_relative_attention_bias.weight!, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
        weights.CopyTo(decoder_relative_attention_bias.weight!, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
        for (int i = 0; i < encoder_block.Count; i++) encoder_block[i].CopyFrom(weights, $"encoder.block.{i}.layer.");
        for (int i = 0; i < decoder_block.Count; i++) decoder_block[i].CopyFrom(weights, $"decoder.block.{i}.layer.");
        weights.CopyTo(encoder_final_layer_norm, "encoder.final_layer_norm.weight");
        weights.CopyTo(decoder_final_layer_norm, "decoder.final_layer_norm.weight");
        weights.CopyTo(lm_head.weight!, "lm_head.weight");
        weights.CheckAllUsed();
    }

    /// <summary>
    /// Encodes <paramref name="source"/> (<c>[S]</c>, int64) and fills every decoder layer's cross-attention keys and
    /// values; empties the decoder's cache.
    /// </summary>
    public void Encode(Tensor source)
    {
        using DisposeScope scope = NewDisposeScope();
        long length = source.shape[0];
        Tensor x = shared.call(source);
        Tensor bias = PositionBias(encoder_relative_attention_bias, firstQuery: 0, length, length, bidirectional: true);
        foreach (TorchT5Block block in encoder_block) x = block.Encoder(x, bias);
        Tensor memory = TorchLlamaLayer.RmsNorm(x, encoder_final_layer_norm, _eps);
        foreach (TorchT5Block block in decoder_block) block.SetMemory(memory);
        _length = 0;
    }

    /// <summary>Appends decoder ids (<c>[n]</c>, int64) after the cached ones; the next-token logits <c>[V]</c> after the last.</summary>
    public Tensor Append(Tensor ids)
    {
        long n = ids.shape[0], position0 = _length, length = position0 + n;
        if (length > _capacity) throw new InvalidOperationException($"the cache holds {position0} of {_capacity} positions; {n} more do not fit");
        using DisposeScope scope = NewDisposeScope();
        Tensor y = shared.call(ids);
        // The bias rows of the new queries over every key so far, then (several new positions) the causal mask.
        Tensor bias = PositionBias(decoder_relative_attention_bias, position0, n, length, bidirectional: false);
        if (n > 1) bias = bias + triu(full(n, length, float.MinValue), diagonal: position0 + 1);
        foreach (TorchT5Block block in decoder_block) y = block.Decoder(y, bias, position0);
        _length = length;
        Tensor last = TorchLlamaLayer.RmsNorm(y.narrow(0, n - 1, 1), decoder_final_layer_norm, _eps);
        return lm_head.call(last).view(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// T5Attention.compute_bias: <c>[H, queries, keys]</c> for query positions firstQuery … firstQuery + queries − 1 over
    /// key positions 0 … keys − 1, the table's row of each distance's bucket.
    /// </summary>
    private Tensor PositionBias(Embedding table, long firstQuery, long queries, long keys, bool bidirectional)
    {
        Tensor distance = arange(keys, ScalarType.Int64).unsqueeze(0) - arange(firstQuery, firstQuery + queries, ScalarType.Int64).unsqueeze(1);
        return table.call(Bucket(distance, bidirectional)).permute(2, 0, 1);
    }

    /// <summary>
    /// T5Attention._relative_position_bucket for key − query distances (int64). Bidirectional, half the buckets are for
    /// keys after the query (offset by buckets/2) and the distance is |Δ|; one-directional, keys after the query fall in
    /// bucket 0 and the distance is −Δ. A distance below half the (remaining) buckets is its own bucket; a larger one goes
    /// logarithmically up to max_distance, the last bucket taking everything beyond: exact + ⌊log(d/exact) /
    /// log(max_distance/exact) · (buckets − exact)⌋, computed in float32 as transformers computes it.
    /// </summary>
    private Tensor Bucket(Tensor distance, bool bidirectional)
    {
        long buckets = _buckets;
        Tensor? after = null;
        if (bidirectional)
        {
            buckets /= 2;
            after = distance.gt(0).to(ScalarType.Int64) * buckets;
            distance = distance.abs();
        }
        else distance = distance.neg().clamp_min(0);
        long exact = buckets / 2;
        Tensor far = (distance.to(ScalarType.Float32).div(exact).log() / Math.Log((double)_maxDistance / exact) * (buckets - exact)).to(ScalarType.Int64) + exact;
        Tensor bucket = where(distance.lt(exact), distance, far.clamp_max(buckets - 1));
        return after is null ? bucket : bucket + after;
    }
}

/// <summary>One <c>T5Block</c> of the encoder or (with cross-attention and caches) of the decoder.</summary>
internal sealed class TorchT5Block : nn.Module
{
    private readonly Linear q, k, v, o, wi_0, wi_1, wo;
    private readonly Linear? cross_q, cross_k, cross_v, cross_o;
    private readonly Parameter self_layer_norm, ff_layer_norm;
    private readonly Parameter? cross_layer_norm;
    private readonly Tensor? _keys, _values;                                                     // [H, capacity, D]
    private Tensor? _crossKeys, _crossValues;                                                    // [H, S, D]
    private readonly long _heads, _headDim;
    private readonly double _eps;

    public TorchT5Block(long hidden, long heads, long headDim, long intermediate, double eps, bool cross, long capacity) : base(nameof(TorchT5Block))
    {
        (_heads, _headDim, _eps) = (heads, headDim, eps);
        long inner = heads * headDim;
        q = nn.Linear(hidden, inner, hasBias: false);
        k = nn.Linear(hidden, inner, hasBias: false);
        v = nn.Linear(hidden, inner, hasBias: false);
        o = nn.Linear(inner, hidden, hasBias: false);
        self_layer_norm = nn.Parameter(ones(hidden));
        if (cross)
        {
            cross_q = nn.Linear(hidden, inner, hasBias: false);
            cross_k = nn.Linear(hidden, inner, hasBias: false);
            cross_v = nn.Linear(hidden, inner, hasBias: false);
            cross_o = nn.Linear(inner, hidden, hasBias: false);
            cross_layer_norm = nn.Parameter(ones(hidden));
            _keys = zeros(heads, capacity, headDim);
            _values = zeros(heads, capacity, headDim);
        }
        wi_0 = nn.Linear(hidden, intermediate, hasBias: false);
        wi_1 = nn.Linear(hidden, intermediate, hasBias: false);
        wo = nn.Linear(intermediate, hidden, hasBias: false);
        ff_layer_norm = nn.Parameter(ones(hidden));
        RegisterComponents();
    }

    /// <summary>Copies the block's weights; <paramref name="prefix"/> is <c>encoder.block.N.layer.</c> or <c>decoder.block.N.layer.</c>.</summary>
    public void CopyFrom(OurWeights weights, string prefix)
    {
        void Attention(string name, Linear? query, Linear? key, Linear? value, Linear? output)
        {
            weights.CopyTo(query!.weight!, prefix + name + ".q.weight");
            weights.CopyTo(key!.weight!, prefix + name + ".k.weight");
            weights.CopyTo(value!.weight!, prefix + name + ".v.weight");
            weights.CopyTo(output!.weight!, prefix + name + ".o.weight");
        }
        Attention("0.SelfAttention", q, k, v, o);
        weights.CopyTo(self_layer_norm, prefix + "0.layer_norm.weight");
        string ff = "1.";
        if (cross_layer_norm is not null)
        {
            Attention("1.EncDecAttention", cross_q, cross_k, cross_v, cross_o);
            weights.CopyTo(cross_layer_norm, prefix + "1.layer_norm.weight");
            ff = "2.";
        }
        weights.CopyTo(wi_0.weight!, prefix + ff + "DenseReluDense.wi_0.weight");
        weights.CopyTo(wi_1.weight!, prefix + ff + "DenseReluDense.wi_1.weight");
        weights.CopyTo(wo.weight!, prefix + ff + "DenseReluDense.wo.weight");
        weights.CopyTo(ff_layer_norm, prefix + ff + "layer_norm.weight");
    }

    /// <summary>The encoder block: x <c>[S, d]</c> → <c>[S, d]</c>, every position seeing every other, with the stack's position bias <c>[H, S, S]</c>.</summary>
    public Tensor Encoder(Tensor x, Tensor bias)
    {
        Tensor h = Norm(x, self_layer_norm);
        x = x + Attention(q, o, h, Heads(k, h), Heads(v, h), bias);
        return x + FeedForward(Norm(x, ff_layer_norm));
    }

    /// <summary>The cross-attention's keys and values over the encoder's output <c>[S, d]</c> (as it is, not normed again), kept until the next source.</summary>
    public void SetMemory(Tensor memory)
    {
        _crossKeys?.Dispose();
        _crossValues?.Dispose();
        _crossKeys = Heads(cross_k!, memory).contiguous().DetachFromDisposeScope();
        _crossValues = Heads(cross_v!, memory).contiguous().DetachFromDisposeScope();
    }

    /// <summary>
    /// The decoder block: y <c>[n, d]</c> at positions position0 … position0 + n − 1 → <c>[n, d]</c>, with the stack's
    /// position bias (and causal mask) <c>[H, n, position0 + n]</c>.
    /// </summary>
    public Tensor Decoder(Tensor y, Tensor bias, long position0)
    {
        long n = y.shape[0], length = position0 + n;
        Tensor h = Norm(y, self_layer_norm);
        _keys!.narrow(1, position0, n).copy_(Heads(k, h));
        _values!.narrow(1, position0, n).copy_(Heads(v, h));
        y = y + Attention(q, o, h, _keys.narrow(1, 0, length), _values.narrow(1, 0, length), bias);
        y = y + Attention(cross_q!, cross_o!, Norm(y, cross_layer_norm!), _crossKeys!, _crossValues!, null);
        return y + FeedForward(Norm(y, ff_layer_norm));
    }

    // T5LayerNorm is LlamaRMSNorm's computation: weight · x·rsqrt(mean(x²) + ε), no mean subtracted, no bias.
    private Tensor Norm(Tensor x, Tensor weight) => TorchLlamaLayer.RmsNorm(x, weight, _eps);

    // A projection split into heads: [T, d] → [H, T, d_kv].
    private Tensor Heads(Linear projection, Tensor x) => projection.call(x).view(x.shape[0], _heads, _headDim).transpose(0, 1);

    // T5Attention: softmax(q·kᵀ + bias)·v (no 1/√d_kv: T5 folds it into the query's initialization), heads joined, then o.
    private Tensor Attention(Linear query, Linear output, Tensor x, Tensor keys, Tensor values, Tensor? bias)
    {
        long n = x.shape[0];
        Tensor scores = Heads(query, x).matmul(keys.transpose(1, 2));                           // [H, n, L]
        if (bias is not null) scores = scores + bias;
        Tensor context = F.softmax(scores, -1).matmul(values).transpose(0, 1).reshape(n, _heads * _headDim);
        return output.call(context);
    }

    // T5DenseGatedActDense: wo(gelu_new(wi_0·x) · wi_1·x).
    private Tensor FeedForward(Tensor x) => wo.call(NewGelu(wi_0.call(x)) * wi_1.call(x));

    // transformers' NewGELUActivation (gelu_new, the tanh approximation) as it writes it:
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    private static Tensor NewGelu(Tensor x) => 0.5 * x * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3.0))));
}
