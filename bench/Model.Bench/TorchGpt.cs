using System;
using System.Collections.Generic;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Model.Bench;

/// <summary>
/// The benchmarks' decoder-only models (pre-LN, sinusoidal positions, exact GELU, tied LM head, no dropout) written
/// as a PyTorch user would write them, with libtorch's fused attention (<c>F.scaled_dot_product_attention</c>, causal),
/// and with a copy of a generated model's parameters under the same names, so both compute the same loss.
/// </summary>
internal sealed class TorchGpt : IDisposable
{
    private readonly Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);
    private readonly Tensor _positions;
    private readonly long _batch, _seqLen, _channels, _heads, _headDim, _layers, _vocab;

    /// <summary>Copies the parameters of <paramref name="model"/>, which must use the configuration described above.</summary>
    public TorchGpt(TransformerModel model)
    {
        TransformerModelAttribute spec = model.GetType().GetCustomAttribute<TransformerModelAttribute>()
            ?? throw new ArgumentException($"{model.GetType().Name} has no [TransformerModel] attribute", nameof(model));
        if (spec.Norm != NormPlacement.Pre || spec.Positional != Positional.Sinusoidal || spec.Activation != Activation.Gelu
            || !spec.TiedEmbeddings || spec.Dropout != 0f || spec.LabelSmoothing != 0f)
            throw new ArgumentException("the benchmark's libtorch model is pre-LN, sinusoidal, GELU, tied, without dropout or smoothing", nameof(model));
        _batch = spec.Batch;
        _seqLen = spec.SeqLen;
        _channels = spec.DModel;
        _heads = spec.Heads;
        _headDim = _channels / _heads;
        _layers = spec.Layers;
        _vocab = spec.Vocab;

        foreach (ParameterTensor t in model.ParameterTensors)
        {
            long[] shape = new long[t.Shape.Length];
            for (int i = 0; i < shape.Length; i++) shape[i] = t.Shape[i];
            _parameters.Add(t.Name, nn.Parameter(tensor(model.Parameters.Slice(t.Offset, t.Length).ToArray(), shape)));
        }

        // "Attention Is All You Need", §3.5, in double and rounded once, as the generated model computes it.
        using Tensor position = arange(_seqLen, ScalarType.Float64).unsqueeze(1);
        using Tensor evenChannel = arange(0, _channels, 2, ScalarType.Float64);
        using Tensor angle = position / pow(10000.0, evenChannel / _channels);
        using Tensor table = stack(new[] { angle.sin(), angle.cos() }, -1).reshape(_seqLen, -1).narrow(1, 0, _channels);
        _positions = table.to(ScalarType.Float32).detach();
    }

    /// <summary>Every trained tensor.</summary>
    public IEnumerable<Parameter> Parameters => _parameters.Values;

    /// <summary>Mean cross-entropy of the next-token logits; <paramref name="tokens"/> <c>[Batch, SeqLen]</c>, <paramref name="targets"/> <c>[Batch·SeqLen]</c>, both int64.</summary>
    public Tensor Loss(Tensor tokens, Tensor targets)
    {
        Tensor embedding = P("token_embedding.weight");
        Tensor x = embedding.index_select(0, tokens.flatten()).view(_batch, _seqLen, _channels) + _positions;
        for (int i = 0; i < _layers; i++)
        {
            string layer = $"decoder.layers.{i}.";
            Tensor h = Norm(x, layer + "norm1");
            Tensor qkv = F.linear(h, P(layer + "self_attn.in_proj_weight"), P(layer + "self_attn.in_proj_bias"))
                .view(_batch, _seqLen, 3, _heads, _headDim).permute(2, 0, 3, 1, 4);                  // [3, B, H, T, D]
            Tensor attention = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_casual: true)
                .transpose(1, 2).reshape(_batch, _seqLen, _channels);
            x = x + F.linear(attention, P(layer + "self_attn.out_proj.weight"), P(layer + "self_attn.out_proj.bias"));
            h = Norm(x, layer + "norm2");
            Tensor hidden = F.gelu(F.linear(h, P(layer + "linear1.weight"), P(layer + "linear1.bias")));
            x = x + F.linear(hidden, P(layer + "linear2.weight"), P(layer + "linear2.bias"));
        }
        Tensor logits = F.linear(Norm(x, "norm_f"), embedding).view(_batch * _seqLen, _vocab);
        return F.cross_entropy(logits, targets);
    }

    public void Dispose()
    {
        foreach (Parameter p in _parameters.Values) p.Dispose();
        _positions.Dispose();
    }

    private Tensor Norm(Tensor x, string name) => F.layer_norm(x, new[] { _channels }, P(name + ".weight"), P(name + ".bias"), eps: 1e-5);

    private Parameter P(string name) =>
        _parameters.TryGetValue(name, out Parameter? p) ? p : throw new KeyNotFoundException($"the generated model has no parameter '{name}'");
}
