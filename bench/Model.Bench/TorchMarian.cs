using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// Helsinki-NLP/opus-mt-en-de as transformers' <c>MarianMTModel</c> computes it (<c>modeling_marian.py</c>, eager
/// attention, eval mode), written with TorchSharp modules for one sentence at a time: one token table
/// <c>model.shared</c> for the encoder's and the decoder's inputs (×√d_model) and for the output head (tied, plus
/// <c>final_logits_bias</c>); split sinusoidal positions (sines in the first half of the channels, cosines in the
/// second); post-LN layers, biases on every projection, SiLU in the feed-forward. Call it under <c>no_grad</c>.
/// </summary>
/// <remarks>
/// The caches are those of transformers' <c>EncoderDecoderCache</c>: <see cref="Encode"/> runs the encoder and computes
/// every decoder layer's cross-attention keys and values once per source (transformers computes them at the first
/// decoder step and keeps them); <see cref="Append"/> writes each new position's self-attention keys and values into
/// preallocated <c>[heads, capacity, headDim]</c> tensors (as StaticCache does, rather than DynamicCache's growing
/// concatenation, which would only add copies on libtorch's side). The benchmark's source has no padding, so no
/// attention mask is built (transformers' all-ones mask adds zeros).
/// </remarks>
internal sealed class TorchMarian : nn.Module, ITorchTranslator
{
    private readonly Embedding shared;
    private readonly Tensor final_logits_bias;                                                   // [1, V]
    private readonly ModuleList<TorchMarianLayer> encoder_layers, decoder_layers;
    private readonly Tensor _positions;                                                          // [P, d]
    private readonly double _embedScale;
    private readonly long _capacity;
    private long _length;

    public TorchMarian(long vocab, long hidden, long heads, long intermediate, long encoderLayers, long decoderLayers, long positions, long capacity)
        : base(nameof(TorchMarian))
    {
        shared = nn.Embedding(vocab, hidden);
        final_logits_bias = zeros(1, vocab);
        encoder_layers = new ModuleList<TorchMarianLayer>();
        for (int i = 0; i < encoderLayers; i++) encoder_layers.Add(new TorchMarianLayer(hidden, heads, intermediate, cross: false, capacity));
        decoder_layers = new ModuleList<TorchMarianLayer>();
        for (int i = 0; i < decoderLayers; i++) decoder_layers.Add(new TorchMarianLayer(hidden, heads, intermediate, cross: true, capacity));
        _positions = SinusoidTable(positions, hidden);
        _embedScale = Math.Sqrt(hidden);
        _capacity = capacity;
        RegisterComponents();
    }

    /// <summary>Copies every parameter of <paramref name="model"/> (Hugging Face names, tied head).</summary>
    public void CopyFrom(TransformerModel model)
    {
        var weights = new OurWeights(model);
        weights.CopyTo(shared.weight!, "model.shared.weight");
        weights.CopyTo(final_logits_bias, "final_logits_bias");
        for (int i = 0; i < encoder_layers.Count; i++) encoder_layers[i].CopyFrom(weights, $"model.encoder.layers.{i}.");
        for (int i = 0; i < decoder_layers.Count; i++) decoder_layers[i].CopyFrom(weights, $"model.decoder.layers.{i}.");
        weights.CheckAllUsed();
    }

    /// <summary>
    /// MarianSinusoidalPositionalEmbedding's table <c>[positions, d]</c>: column i &lt; d/2 holds sin(p / 10000^(2i/d)),
    /// column d/2 + i the cosine of the same angle, computed in float64 (numpy) and stored as float32.
    /// </summary>
    private static Tensor SinusoidTable(long positions, long d)
    {
        var table = new double[positions * d];
        for (long p = 0; p < positions; p++)
            for (long i = 0; i < d / 2; i++)
            {
                double angle = p / Math.Pow(10000.0, 2.0 * i / d);
                table[p * d + i] = Math.Sin(angle);
                table[p * d + d / 2 + i] = Math.Cos(angle);
            }
        using Tensor doubles = tensor(table, new[] { positions, d });
        return doubles.to(ScalarType.Float32);
    }

    // shared(ids)·√d + the positions first … first + n − 1: [n, d].
    private Tensor Embed(Tensor ids, long first) => shared.call(ids) * _embedScale + _positions.narrow(0, first, ids.shape[0]);

    /// <summary>
    /// Encodes <paramref name="source"/> (<c>[S]</c>, int64) and fills every decoder layer's cross-attention keys and
    /// values; empties the decoder's cache.
    /// </summary>
    public void Encode(Tensor source)
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor x = Embed(source, 0);
        foreach (TorchMarianLayer layer in encoder_layers) x = layer.Encoder(x);
        foreach (TorchMarianLayer layer in decoder_layers) layer.SetMemory(x);
        _length = 0;
    }

    /// <summary>Appends decoder ids (<c>[n]</c>, int64) after the cached ones; the next-token logits <c>[V]</c> after the last.</summary>
    public Tensor Append(Tensor ids)
    {
        long n = ids.shape[0], position0 = _length;
        if (position0 + n > _capacity) throw new InvalidOperationException($"the cache holds {position0} of {_capacity} positions; {n} more do not fit");
        using DisposeScope scope = NewDisposeScope();
        Tensor y = Embed(ids, position0);
        // Causal mask over the cached prefix and the new positions (one new position sees them all).
        Tensor? mask = n == 1 ? null : triu(full(n, position0 + n, float.MinValue), diagonal: position0 + 1);
        foreach (TorchMarianLayer layer in decoder_layers) y = layer.Decoder(y, mask, position0);
        _length = position0 + n;
        Tensor last = y.narrow(0, n - 1, 1);
        return (F.linear(last, shared.weight!) + final_logits_bias).view(-1).MoveToOuterDisposeScope();
    }
}

/// <summary>One <c>MarianEncoderLayer</c> or <c>MarianDecoderLayer</c> (post-LN), the decoder's with its caches.</summary>
internal sealed class TorchMarianLayer : nn.Module
{
    private readonly Linear k_proj, v_proj, q_proj, out_proj, fc1, fc2;
    private readonly Linear? cross_k_proj, cross_v_proj, cross_q_proj, cross_out_proj;
    private readonly LayerNorm self_attn_layer_norm, final_layer_norm;
    private readonly LayerNorm? encoder_attn_layer_norm;
    private readonly Tensor? _keys, _values;                                                     // [H, capacity, D]
    private Tensor? _crossKeys, _crossValues;                                                    // [H, S, D]
    private readonly long _hidden, _heads, _headDim;
    private readonly double _scale;

    public TorchMarianLayer(long hidden, long heads, long intermediate, bool cross, long capacity) : base(nameof(TorchMarianLayer))
    {
        _hidden = hidden;
        _heads = heads;
        _headDim = hidden / heads;
        _scale = Math.Pow(_headDim, -0.5);
        k_proj = nn.Linear(hidden, hidden);
        v_proj = nn.Linear(hidden, hidden);
        q_proj = nn.Linear(hidden, hidden);
        out_proj = nn.Linear(hidden, hidden);
        self_attn_layer_norm = nn.LayerNorm(hidden);
        if (cross)
        {
            cross_k_proj = nn.Linear(hidden, hidden);
            cross_v_proj = nn.Linear(hidden, hidden);
            cross_q_proj = nn.Linear(hidden, hidden);
            cross_out_proj = nn.Linear(hidden, hidden);
            encoder_attn_layer_norm = nn.LayerNorm(hidden);
            _keys = zeros(heads, capacity, _headDim);
            _values = zeros(heads, capacity, _headDim);
        }
        fc1 = nn.Linear(hidden, intermediate);
        fc2 = nn.Linear(intermediate, hidden);
        final_layer_norm = nn.LayerNorm(hidden);
        RegisterComponents();
    }

    public void CopyFrom(OurWeights weights, string prefix)
    {
        void Copy(Linear? linear, string name)
        {
            weights.CopyTo(linear!.weight!, prefix + name + ".weight");
            weights.CopyTo(linear.bias!, prefix + name + ".bias");
        }
        void Norm(LayerNorm? norm, string name)
        {
            weights.CopyTo(norm!.weight!, prefix + name + ".weight");
            weights.CopyTo(norm.bias!, prefix + name + ".bias");
        }
        Copy(k_proj, "self_attn.k_proj");
        Copy(v_proj, "self_attn.v_proj");
        Copy(q_proj, "self_attn.q_proj");
        Copy(out_proj, "self_attn.out_proj");
        Norm(self_attn_layer_norm, "self_attn_layer_norm");
        if (encoder_attn_layer_norm is not null)
        {
            Copy(cross_k_proj, "encoder_attn.k_proj");
            Copy(cross_v_proj, "encoder_attn.v_proj");
            Copy(cross_q_proj, "encoder_attn.q_proj");
            Copy(cross_out_proj, "encoder_attn.out_proj");
            Norm(encoder_attn_layer_norm, "encoder_attn_layer_norm");
        }
        Copy(fc1, "fc1");
        Copy(fc2, "fc2");
        Norm(final_layer_norm, "final_layer_norm");
    }

    /// <summary>The encoder layer: x <c>[S, d]</c> → <c>[S, d]</c>, every position seeing every other.</summary>
    public Tensor Encoder(Tensor x)
    {
        x = self_attn_layer_norm.call(x + Attention(q_proj, out_proj, x, Heads(k_proj, x), Heads(v_proj, x), null));
        return final_layer_norm.call(x + fc2.call(F.silu(fc1.call(x))));
    }

    /// <summary>The cross-attention's keys and values over the encoder's output <c>[S, d]</c>, kept until the next source.</summary>
    public void SetMemory(Tensor memory)
    {
        _crossKeys?.Dispose();
        _crossValues?.Dispose();
        _crossKeys = Heads(cross_k_proj!, memory).contiguous().DetachFromDisposeScope();
        _crossValues = Heads(cross_v_proj!, memory).contiguous().DetachFromDisposeScope();
    }

    /// <summary>The decoder layer: y <c>[n, d]</c> at positions position0 … position0 + n − 1 → <c>[n, d]</c>.</summary>
    public Tensor Decoder(Tensor y, Tensor? mask, long position0)
    {
        long n = y.shape[0], length = position0 + n;
        _keys!.narrow(1, position0, n).copy_(Heads(k_proj, y));
        _values!.narrow(1, position0, n).copy_(Heads(v_proj, y));
        Tensor keys = _keys.narrow(1, 0, length), values = _values.narrow(1, 0, length);
        y = self_attn_layer_norm.call(y + Attention(q_proj, out_proj, y, keys, values, mask));
        y = encoder_attn_layer_norm!.call(y + Attention(cross_q_proj!, cross_out_proj!, y, _crossKeys!, _crossValues!, null));
        return final_layer_norm.call(y + fc2.call(F.silu(fc1.call(y))));
    }

    // A projection split into heads: [T, d] → [H, T, D].
    private Tensor Heads(Linear projection, Tensor x) => projection.call(x).view(x.shape[0], _heads, _headDim).transpose(0, 1);

    // eager_attention_forward, then out_proj: softmax(q·kᵀ·D^−½ + mask)·v.
    private Tensor Attention(Linear query, Linear output, Tensor x, Tensor keys, Tensor values, Tensor? mask)
    {
        long n = x.shape[0];
        Tensor scores = Heads(query, x).matmul(keys.transpose(1, 2)) * _scale;                   // [H, n, L]
        if (mask is not null) scores = scores + mask;
        Tensor context = F.softmax(scores, -1).matmul(values).transpose(0, 1).reshape(n, _hidden);
        return output.call(context);
    }
}
