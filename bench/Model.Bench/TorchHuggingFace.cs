using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// A generated model's parameters, by Hugging Face name, as libtorch tensors to copy into the benchmarks' libtorch
/// modules; <see cref="CheckAllUsed"/> then makes sure every parameter of the generated model found its place.
/// </summary>
internal sealed class OurWeights(TransformerModel model)
{
    private readonly Dictionary<string, ParameterTensor> _tensors = Index(model);
    // PyTorch's layout, also for an inference instance that holds its matrices packed.
    private readonly float[] _values = Values(model);

    private static float[] Values(TransformerModel model)
    {
        var values = new float[model.Layout.ParameterCount];
        model.CopyParametersTo(values);
        return values;
    }
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    private static Dictionary<string, ParameterTensor> Index(TransformerModel model)
    {
        var tensors = new Dictionary<string, ParameterTensor>(StringComparer.Ordinal);
        foreach (ParameterTensor t in model.ParameterTensors) tensors.Add(t.Name, t);
        return tensors;
    }

    /// <summary>Copies the generated model's tensor <paramref name="name"/> into <paramref name="target"/>, whose shape must be the same.</summary>
    public void CopyTo(Tensor target, string name)
    {
        if (!_tensors.TryGetValue(name, out ParameterTensor? t)) throw new KeyNotFoundException($"the generated model has no parameter '{name}'");
        if (t.StoredTransposed) throw new NotSupportedException($"'{name}' is stored transposed; the benchmarks' models have no Conv1D weights");
        long[] shape = new long[t.Shape.Length];
        for (int i = 0; i < shape.Length; i++) shape[i] = t.Shape[i];
        if (!shape.AsSpan().SequenceEqual(target.shape))
            throw new ArgumentException($"'{name}' is [{string.Join(", ", shape)}] here but [{string.Join(", ", target.shape)}] in libtorch");
        using Tensor source = tensor(_values.AsSpan(t.Offset, t.Length).ToArray(), shape);
        using (no_grad()) target.copy_(source);
        _used.Add(name);
    }

    /// <summary>Throws when a parameter of the generated model was not copied.</summary>
    public void CheckAllUsed()
    {
        foreach (string name in _tensors.Keys)
            if (!_used.Contains(name)) throw new InvalidOperationException($"the libtorch model has no place for '{name}'");
    }
}

/// <summary>
/// all-MiniLM-L6-v2 as sentence-transformers runs it (transformers' <c>BertModel</c> with eager attention, then mean
/// pooling over the attention mask and L2 normalisation), written with TorchSharp modules: ids <c>[B, T]</c> (int64)
/// → sentence embeddings <c>[B, hidden]</c>. The attention mask is derived from the pad id in the forward pass, as a
/// tokenizer's would be; token type ids are zeros. Call it under <c>no_grad</c>.
/// </summary>
internal sealed class TorchBert : nn.Module<Tensor, Tensor>
{
    private readonly Embedding word_embeddings, position_embeddings, token_type_embeddings;
    private readonly LayerNorm embeddings_LayerNorm;
    private readonly ModuleList<TorchBertLayer> layer;
    private readonly long _padId;

    public TorchBert(long vocab, long hidden, long heads, long intermediate, long layers, long positions, long typeVocab, double eps, long padId)
        : base(nameof(TorchBert))
    {
        word_embeddings = nn.Embedding(vocab, hidden);
        position_embeddings = nn.Embedding(positions, hidden);
        token_type_embeddings = nn.Embedding(typeVocab, hidden);
        embeddings_LayerNorm = nn.LayerNorm(hidden, eps);
        layer = new ModuleList<TorchBertLayer>();
        for (int i = 0; i < layers; i++) layer.Add(new TorchBertLayer(hidden, heads, intermediate, eps));
        _padId = padId;
        RegisterComponents();
    }

    /// <summary>Copies every parameter of <paramref name="model"/> (Hugging Face names without the <c>bert.</c> prefix).</summary>
    public void CopyFrom(TransformerModel model)
    {
        var weights = new OurWeights(model);
        weights.CopyTo(word_embeddings.weight!, "embeddings.word_embeddings.weight");
        weights.CopyTo(position_embeddings.weight!, "embeddings.position_embeddings.weight");
        weights.CopyTo(token_type_embeddings.weight!, "embeddings.token_type_embeddings.weight");
        weights.CopyTo(embeddings_LayerNorm.weight!, "embeddings.LayerNorm.weight");
        weights.CopyTo(embeddings_LayerNorm.bias!, "embeddings.LayerNorm.bias");
        for (int i = 0; i < layer.Count; i++) layer[i].CopyFrom(weights, $"encoder.layer.{i}.");
        weights.CheckAllUsed();
    }

    public override Tensor forward(Tensor ids)
    {
        long batch = ids.shape[0], length = ids.shape[1];
        using DisposeScope scope = NewDisposeScope();
        Tensor mask = ids.ne(_padId).to(ScalarType.Float32);                                      // the tokenizer's attention_mask
        // BertEmbeddings: token_type_ids and position_ids are buffers (zeros, arange) sliced to the length.
        Tensor typeIds = zeros(new[] { batch, length }, ScalarType.Int64);
        Tensor positionIds = arange(length, ScalarType.Int64).unsqueeze(0);
        Tensor x = word_embeddings.call(ids) + token_type_embeddings.call(typeIds) + position_embeddings.call(positionIds);
        x = embeddings_LayerNorm.call(x);
        // get_extended_attention_mask: (1 − mask)[:, None, None, :]·finfo.min.
        Tensor extended = (1.0 - mask.view(batch, 1, 1, length)) * float.MinValue;
        foreach (TorchBertLayer l in layer) x = l.call(x, extended);
        // sentence-transformers Pooling(mean) and Normalize().
        Tensor m = mask.unsqueeze(-1).expand(x.shape);
        Tensor pooled = (x * m).sum(1) / clamp(m.sum(1), min: 1e-9);
        return F.normalize(pooled, p: 2, dim: 1).MoveToOuterDisposeScope();
    }
}

/// <summary>One <c>BertLayer</c>: eager self-attention with separate query/key/value projections, post-LN, erf GELU.</summary>
internal sealed class TorchBertLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear query, key, value, attention_dense, intermediate_dense, output_dense;
    private readonly LayerNorm attention_LayerNorm, output_LayerNorm;
    private readonly long _hidden, _heads, _headDim;

    public TorchBertLayer(long hidden, long heads, long intermediate, double eps) : base(nameof(TorchBertLayer))
    {
        query = nn.Linear(hidden, hidden);
        key = nn.Linear(hidden, hidden);
        value = nn.Linear(hidden, hidden);
        attention_dense = nn.Linear(hidden, hidden);
        attention_LayerNorm = nn.LayerNorm(hidden, eps);
        intermediate_dense = nn.Linear(hidden, intermediate);
        output_dense = nn.Linear(intermediate, hidden);
        output_LayerNorm = nn.LayerNorm(hidden, eps);
        _hidden = hidden;
        _heads = heads;
        _headDim = hidden / heads;
        RegisterComponents();
    }

    public void CopyFrom(OurWeights weights, string prefix)
    {
        foreach ((Linear linear, string name) in new[] {
            (query, "attention.self.query"), (key, "attention.self.key"), (value, "attention.self.value"),
            (attention_dense, "attention.output.dense"), (intermediate_dense, "intermediate.dense"), (output_dense, "output.dense") })
        {
            weights.CopyTo(linear.weight!, prefix + name + ".weight");
            weights.CopyTo(linear.bias!, prefix + name + ".bias");
        }
        foreach ((LayerNorm norm, string name) in new[] { (attention_LayerNorm, "attention.output.LayerNorm"), (output_LayerNorm, "output.LayerNorm") })
        {
            weights.CopyTo(norm.weight!, prefix + name + ".weight");
            weights.CopyTo(norm.bias!, prefix + name + ".bias");
        }
    }

    public override Tensor forward(Tensor x, Tensor extendedMask)
    {
        long batch = x.shape[0], length = x.shape[1];
        Tensor q = Heads(query.call(x)), k = Heads(key.call(x)), v = Heads(value.call(x));       // [B, H, T, D]
        Tensor scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(_headDim) + extendedMask;
        Tensor context = F.softmax(scores, -1).matmul(v).permute(0, 2, 1, 3).contiguous().view(batch, length, _hidden);
        Tensor attention = attention_LayerNorm.call(attention_dense.call(context) + x);
        Tensor hidden = F.gelu(intermediate_dense.call(attention));
        return output_LayerNorm.call(output_dense.call(hidden) + attention);

        Tensor Heads(Tensor t) => t.view(batch, length, _heads, _headDim).permute(0, 2, 1, 3);
    }
}

/// <summary>
/// SmolLM2-135M (transformers' <c>LlamaForCausalLM</c>: RMSNorm, grouped-query attention with half-split rotary
/// positions, SwiGLU, tied LM head) written with TorchSharp modules, with a key/value cache of its own: each layer
/// holds preallocated <c>[kvHeads, capacity, headDim]</c> key and value tensors; a call writes the new positions'
/// keys and values into them (as transformers' StaticCache does) and attends the new queries against the cached
/// prefix, each group of query heads with one matmul against its key/value head (no repeat_kv copy). Returns the
/// next-token logits of the last position, <c>[vocab]</c>. Call it under <c>no_grad</c>.
/// </summary>
internal sealed class TorchLlama : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<TorchLlamaLayer> layers;
    private readonly Parameter norm;
    private readonly Tensor _cos, _sin;
    private readonly long _capacity;
    private readonly double _eps;
    private long _length;

    public TorchLlama(long vocab, long hidden, long heads, long kvHeads, long intermediate, long layerCount, double theta, double eps, long capacity)
        : base(nameof(TorchLlama))
    {
        long headDim = hidden / heads;
        embed_tokens = nn.Embedding(vocab, hidden);
        layers = new ModuleList<TorchLlamaLayer>();
        for (int i = 0; i < layerCount; i++) layers.Add(new TorchLlamaLayer(hidden, heads, kvHeads, intermediate, eps, capacity));
        norm = nn.Parameter(ones(hidden));
        _capacity = capacity;
        _eps = eps;

        // LlamaRotaryEmbedding (default rope): inv_freq = 1 / θ^(arange(0, D, 2) / D) in float32, emb = cat(freqs, freqs).
        using Tensor exponents = arange(0, headDim, 2, ScalarType.Int64).to(ScalarType.Float32) / headDim;
        using Tensor inverse = 1.0 / full_like(exponents, theta).pow(exponents);
        using Tensor freqs = arange(capacity, ScalarType.Int64).to(ScalarType.Float32).unsqueeze(1) * inverse.unsqueeze(0);
        using Tensor emb = cat(new[] { freqs, freqs }, -1);
        _cos = emb.cos().detach();
        _sin = emb.sin().detach();
        RegisterComponents();
    }

    /// <summary>Positions held in the key/value cache.</summary>
    public long CacheLength => _length;

    /// <summary>Empties the key/value cache.</summary>
    public void ResetCache() => _length = 0;

    /// <summary>Copies every parameter of <paramref name="model"/> (Hugging Face names, tied LM head).</summary>
    public void CopyFrom(TransformerModel model)
    {
        var weights = new OurWeights(model);
        weights.CopyTo(embed_tokens.weight!, "model.embed_tokens.weight");
        for (int i = 0; i < layers.Count; i++) layers[i].CopyFrom(weights, $"model.layers.{i}.");
        weights.CopyTo(norm, "model.norm.weight");
        weights.CheckAllUsed();
    }

    /// <summary>Appends <paramref name="ids"/> (<c>[n]</c>, int64) to the cached sequence; the logits after the last one.</summary>
    public override Tensor forward(Tensor ids)
    {
        long n = ids.shape[0], position0 = _length;
        if (position0 + n > _capacity) throw new InvalidOperationException($"the cache holds {position0} of {_capacity} positions; {n} more do not fit");
        using DisposeScope scope = NewDisposeScope();
        Tensor x = embed_tokens.call(ids);                                                        // [n, E]
        Tensor cos = _cos.narrow(0, position0, n).unsqueeze(1), sin = _sin.narrow(0, position0, n).unsqueeze(1); // [n, 1, D]
        // Causal mask over the cached prefix and the new positions: query i (position position0 + i) sees keys ≤ it.
        Tensor? mask = null;
        if (n > 1)
        {
            Tensor visible = arange(position0 + n, ScalarType.Int64).unsqueeze(0) <= (arange(n, ScalarType.Int64) + position0).unsqueeze(1);
            mask = zeros(n, position0 + n).masked_fill(visible.logical_not(), float.MinValue);        // [n, L]
        }
        foreach (TorchLlamaLayer layer in layers) x = layer.Forward(x, cos, sin, mask, position0);
        _length = position0 + n;
        Tensor last = TorchLlamaLayer.RmsNorm(x.narrow(0, n - 1, 1), norm, _eps);
        return F.linear(last, embed_tokens.weight!).view(-1).MoveToOuterDisposeScope();         // tied lm_head
    }
}

/// <summary>One <c>LlamaDecoderLayer</c> with its key/value cache.</summary>
internal sealed class TorchLlamaLayer : nn.Module
{
    private readonly Linear q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
    private readonly Parameter input_layernorm, post_attention_layernorm;
    private readonly Tensor _keys, _values;                                                      // [KV, capacity, D]
    private readonly long _heads, _kvHeads, _headDim;
    private readonly double _eps, _scale;

    public TorchLlamaLayer(long hidden, long heads, long kvHeads, long intermediate, double eps, long capacity) : base(nameof(TorchLlamaLayer))
    {
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = hidden / heads;
        _eps = eps;
        _scale = Math.Pow(_headDim, -0.5);
        q_proj = nn.Linear(hidden, heads * _headDim, hasBias: false);
        k_proj = nn.Linear(hidden, kvHeads * _headDim, hasBias: false);
        v_proj = nn.Linear(hidden, kvHeads * _headDim, hasBias: false);
        o_proj = nn.Linear(heads * _headDim, hidden, hasBias: false);
        gate_proj = nn.Linear(hidden, intermediate, hasBias: false);
        up_proj = nn.Linear(hidden, intermediate, hasBias: false);
        down_proj = nn.Linear(intermediate, hidden, hasBias: false);
        input_layernorm = nn.Parameter(ones(hidden));
        post_attention_layernorm = nn.Parameter(ones(hidden));
        _keys = zeros(kvHeads, capacity, _headDim);
        _values = zeros(kvHeads, capacity, _headDim);
        RegisterComponents();
    }

    public void CopyFrom(OurWeights weights, string prefix)
    {
        foreach ((Linear linear, string name) in new[] {
            (q_proj, "self_attn.q_proj"), (k_proj, "self_attn.k_proj"), (v_proj, "self_attn.v_proj"), (o_proj, "self_attn.o_proj"),
            (gate_proj, "mlp.gate_proj"), (up_proj, "mlp.up_proj"), (down_proj, "mlp.down_proj") })
            weights.CopyTo(linear.weight!, prefix + name + ".weight");
        weights.CopyTo(input_layernorm, prefix + "input_layernorm.weight");
        weights.CopyTo(post_attention_layernorm, prefix + "post_attention_layernorm.weight");
    }

    /// <summary>x <c>[n, E]</c> at positions position0 … position0 + n − 1 → the layer's output <c>[n, E]</c>.</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, long position0)
    {
        long n = x.shape[0], groups = _heads / _kvHeads, length = position0 + n;
        Tensor h = RmsNorm(x, input_layernorm, _eps);
        Tensor q = Rotary(q_proj.call(h).view(n, _heads, _headDim), cos, sin);
        Tensor k = Rotary(k_proj.call(h).view(n, _kvHeads, _headDim), cos, sin);
        Tensor v = v_proj.call(h).view(n, _kvHeads, _headDim);
        _keys.narrow(1, position0, n).copy_(k.transpose(0, 1));
        _values.narrow(1, position0, n).copy_(v.transpose(0, 1));
        Tensor keys = _keys.narrow(1, 0, length), values = _values.narrow(1, 0, length);         // [KV, L, D]

        // Query head h reads key/value head ⌊h / groups⌋ (repeat_kv): the group's queries as rows of one product.
        Tensor grouped = q.transpose(0, 1).reshape(_kvHeads, groups * n, _headDim);               // [KV, G·n, D]
        Tensor scores = grouped.matmul(keys.transpose(1, 2)) * _scale;                             // [KV, G·n, L]
        if (mask is not null) scores = (scores.view(_kvHeads, groups, n, length) + mask).view(_kvHeads, groups * n, length);
        Tensor attention = F.softmax(scores, -1).matmul(values)                                    // [KV, G·n, D]
            .view(_heads, n, _headDim).transpose(0, 1).reshape(n, _heads * _headDim);
        x = x + o_proj.call(attention);
        h = RmsNorm(x, post_attention_layernorm, _eps);
        return x + down_proj.call(F.silu(gate_proj.call(h)) * up_proj.call(h));
    }

    /// <summary>LlamaRMSNorm: weight · x·rsqrt(mean(x²) + ε).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps) => weight * (x * rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + eps));

    /// <summary>apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x[D/2:], x[:D/2]).</summary>
    private Tensor Rotary(Tensor x, Tensor cos, Tensor sin)
    {
        long half = _headDim / 2;
        Tensor rotated = cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
        return x * cos + rotated * sin;
    }
}
