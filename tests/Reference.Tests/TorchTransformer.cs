using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests;

/// <summary>
/// The same decoder-only Transformer as a generated model, written out with libtorch operations (TorchSharp,
/// float32, one thread): the architecture is read from the model's own <see cref="TransformerModelAttribute"/>,
/// and every parameter is a copy of the model's, a leaf tensor that requires grad, under the model's name.
/// </summary>
/// <remarks>
/// Every parameter of the generated model must be used here (a parameter that this forward pass never touches
/// has no gradient, and the tests fail on it), and every name looked up here must exist in the generated model.
/// </remarks>
internal sealed class TorchTransformer
{
    private readonly TransformerModelAttribute _spec;
    private readonly Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);
    private readonly Dictionary<int, TransformerEncoderLayer> _encoderLayers = new();
    private readonly long _batch, _seqLen, _channels, _heads, _headDim;

    static TorchTransformer()
    {
        // Reference numbers should not depend on how libtorch splits work between threads.
        torch.set_num_threads(1);
    }

    /// <summary>Copies the parameters of <paramref name="model"/>; call inside a dispose scope.</summary>
    /// <param name="model">A generated model.</param>
    /// <param name="encoderLayers">
    /// Run each layer as libtorch's own <c>nn.TransformerEncoderLayer</c> (post-LN, non-rotary models only), its
    /// parameters filled by their <c>named_parameters()</c> names under <c>decoder.layers.{i}.</c>, instead of the
    /// operations written out here.
    /// </param>
    public TorchTransformer(TransformerModel model, bool encoderLayers = false)
    {
        _spec = model.GetType().GetCustomAttribute<TransformerModelAttribute>()
            ?? throw new ArgumentException($"{model.GetType().Name} has no [TransformerModel] attribute", nameof(model));
        _batch = _spec.Batch;
        _seqLen = _spec.SeqLen;
        _channels = _spec.DModel;
        _heads = _spec.Heads;
        _headDim = _channels / _heads;
        if (_spec.Dropout != 0f) throw new ArgumentException("the reference has no dropout: libtorch's masks cannot be replayed", nameof(model));

        foreach (ParameterTensor t in model.ParameterTensors)
        {
            float[] values = model.Parameters.Slice(t.Offset, t.Length).ToArray();
            long[] shape = t.Shape.ToArray().Select(d => (long)d).ToArray();
            _parameters.Add(t.Name, nn.Parameter(tensor(values, shape)));
        }

        if (encoderLayers)
        {
            if (_spec.Norm != NormPlacement.Post || _spec.Positional == Positional.Rotary)
                throw new ArgumentException("libtorch's TransformerEncoderLayer (C++ API) is post-LN only and has no rotary positions", nameof(encoderLayers));
            for (int i = 0; i < _spec.Layers; i++)
            {
                TransformerEncoderLayer layer = nn.TransformerEncoderLayer(_channels, _heads, _spec.DFF, dropout: 0.0,
                    activation: TorchOps.ModuleActivation(_spec.Activation));
                foreach ((string name, Parameter parameter) in layer.named_parameters())
                {
                    // The module's own parameter takes the place of the copy, so its gradient is the one compared.
                    string ours = $"decoder.layers.{i}.{name}";
                    if (!_parameters.TryGetValue(ours, out Parameter? copy))
                        throw new KeyNotFoundException($"nn.TransformerEncoderLayer has '{name}', but the model has no '{ours}'");
                    using (no_grad()) parameter.copy_(copy);
                    _parameters[ours] = parameter;
                }
                _encoderLayers.Add(i, layer);
            }
        }
    }

    /// <summary>The parameters by the generated model's names.</summary>
    public IReadOnlyDictionary<string, Parameter> Parameters => _parameters;

    /// <summary>
    /// Logits <c>[Batch·SeqLen, Vocab]</c> and the loss: PyTorch's <c>cross_entropy(ignore_index = -1,
    /// label_smoothing = ε)</c>, mean over the targets that are not ignored.
    /// </summary>
    public (Tensor Logits, Tensor Loss) Forward(int[] tokens, int[] targets)
    {
        Tensor ids = TorchOps.Ids(tokens, _batch, _seqLen);
        Tensor x = P("token_embedding.weight").index_select(0, ids.flatten()).view(_batch, _seqLen, _channels); // [B, T, C]
        x = _spec.Positional switch
        {
            Positional.Sinusoidal => x + TorchOps.SinusoidalTable(_seqLen, _channels),
            Positional.Learned => x + P("pos_embedding.weight").narrow(0, 0, _seqLen),
            _ => x,
        };

        for (int i = 0; i < _spec.Layers; i++)
        {
            string prefix = $"decoder.layers.{i}.";
            if (_encoderLayers.TryGetValue(i, out TransformerEncoderLayer? layer))
            {
                // The C++ module is sequence-first: [T, B, C]; the mask adds −inf above the diagonal.
                Tensor mask = full(_seqLen, _seqLen, float.NegativeInfinity).triu(1);
                x = layer.call(x.transpose(0, 1), mask).transpose(0, 1);
            }
            else if (_spec.Norm == NormPlacement.Pre)
            {
                x = x + SelfAttention(Norm(x, prefix + "norm1"), prefix);
                x = x + FeedForward(Norm(x, prefix + "norm2"), prefix);
            }
            else
            {
                x = Norm(x + SelfAttention(x, prefix), prefix + "norm1");
                x = Norm(x + FeedForward(x, prefix), prefix + "norm2");
            }
        }
        if (_spec.Norm == NormPlacement.Pre) x = Norm(x, "norm_f");

        Tensor head = P(_spec.TiedEmbeddings ? "token_embedding.weight" : "lm_head.weight");
        Tensor logits = F.linear(x, head).reshape(_batch * _seqLen, _spec.Vocab);
        Tensor loss = F.cross_entropy(logits, tensor(targets.Select(t => (long)t).ToArray()), ignore_index: -1, label_smoothing: _spec.LabelSmoothing);
        return (logits, loss);
    }

    // Causal multi-head self-attention on x [B, T, C], nn.MultiheadAttention's layout: in_proj_weight [3C, C] is
    // Q, K, V stacked; head h uses channels [h·headDim, (h+1)·headDim) of each.
    private Tensor SelfAttention(Tensor x, string prefix)
    {
        Tensor qkv = F.linear(x, P(prefix + "self_attn.in_proj_weight"), P(prefix + "self_attn.in_proj_bias"));
        Tensor[] parts = qkv.chunk(3, -1);
        Tensor q = Heads(parts[0]), k = Heads(parts[1]), v = Heads(parts[2]);                    // [B, H, T, D]
        if (_spec.Positional == Positional.Rotary)
        {
            q = TorchOps.Rotate(q);
            k = TorchOps.Rotate(k);
        }
        Tensor scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(_headDim);                      // [B, H, T, T]
        Tensor future = ones(_seqLen, _seqLen, ScalarType.Bool).triu(1);
        Tensor probabilities = F.softmax(scores.masked_fill(future, float.NegativeInfinity), -1);
        Tensor heads = probabilities.matmul(v).transpose(1, 2).reshape(_batch, _seqLen, _channels);
        return F.linear(heads, P(prefix + "self_attn.out_proj.weight"), P(prefix + "self_attn.out_proj.bias"));
    }

    private Tensor Heads(Tensor x) => x.view(_batch, _seqLen, _heads, _headDim).transpose(1, 2);

    private Tensor FeedForward(Tensor x, string prefix)
    {
        Tensor hidden = TorchOps.Activate(F.linear(x, P(prefix + "linear1.weight"), P(prefix + "linear1.bias")), _spec.Activation);
        return F.linear(hidden, P(prefix + "linear2.weight"), P(prefix + "linear2.bias"));
    }

    private Tensor Norm(Tensor x, string name) => TorchOps.LayerNorm(x, P(name + ".weight"), P(name + ".bias"));

    private Tensor P(string name) =>
        _parameters.TryGetValue(name, out Parameter? p) ? p : throw new KeyNotFoundException($"the generated model has no parameter '{name}'");
}
