using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests;

/// <summary>Which of libtorch's building blocks run the layers of <see cref="TorchEncoderDecoder"/>.</summary>
public enum ReferenceLayers
{
    /// <summary>Every operation written out with libtorch tensor operations; the only choice with rotary positions.</summary>
    WrittenOut,

    /// <summary>
    /// Each attention is libtorch's <c>nn.MultiheadAttention</c> (sequence-first, with <c>key_padding_mask</c> and an
    /// additive <c>attn_mask</c>), its parameters filled by name; norms and feed-forward networks written out. Models
    /// without rotary positions (the module has no hook for rotating queries and keys).
    /// </summary>
    MultiheadAttention,

    /// <summary>
    /// Each layer is libtorch's <c>nn.TransformerEncoderLayer</c> / <c>nn.TransformerDecoderLayer</c>, parameters filled
    /// by name. Post-LN models without rotary positions only: the C++ modules have no <c>norm_first</c>.
    /// </summary>
    TransformerLayers,
}

/// <summary>
/// The same encoder–decoder or encoder-only Transformer as a generated model, in libtorch (TorchSharp, float32, one
/// thread): the architecture is read from the model's own <see cref="TransformerModelAttribute"/>, and every parameter
/// is a copy of the model's, a leaf tensor that requires grad, under the model's name.
/// </summary>
/// <remarks>
/// <para>
/// What it computes, independently of the runtime's input handling: source (or input) padding masks every attention's
/// keys over the source; the decoder reads the target shifted right behind <c>BosToken</c>, an ignored or padding
/// target becoming padding there (<c>BosToken</c> when the model has no padding id), and that padding masks the
/// decoder's self-attention keys; padding targets (and, for a tagger, targets at padded inputs) are ignored by the
/// loss. Post-LN stacks have no final norm; pre-LN ones end with <c>encoder.norm</c> and <c>decoder.norm</c>
/// (<c>norm_f</c> in an encoder-only model). Rotary positions turn queries and keys of self-attention only.
/// </para>
/// <para>
/// A query that sees no key at all has a softmax of −∞ only, NaN in libtorch (the generated kernels give 0): the
/// inputs given to this reference must leave every query at least one key (the tests check that they do).
/// </para>
/// </remarks>
internal sealed class TorchEncoderDecoder
{
    private readonly TransformerModelAttribute _spec;
    private readonly Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MultiheadAttention> _attention = new(StringComparer.Ordinal);
    private readonly Dictionary<int, TransformerEncoderLayer> _encoderLayers = new();
    private readonly Dictionary<int, TransformerDecoderLayer> _decoderLayers = new();
    private readonly int _batch, _sourceLength, _targetLength, _channels, _heads, _headDim;
    private readonly int _encoderLayerCount, _decoderLayerCount;
    private readonly bool _seq2seq;

    static TorchEncoderDecoder()
    {
        // Reference numbers should not depend on how libtorch splits work between threads.
        torch.set_num_threads(1);
    }

    /// <summary>Copies the parameters of <paramref name="model"/>; call inside a dispose scope.</summary>
    public TorchEncoderDecoder(TransformerModel model, ReferenceLayers layers)
    {
        _spec = model.GetType().GetCustomAttribute<TransformerModelAttribute>()
            ?? throw new ArgumentException($"{model.GetType().Name} has no [TransformerModel] attribute", nameof(model));
        if (_spec.Architecture == Architecture.DecoderOnly) throw new ArgumentException("decoder-only models have TorchTransformer", nameof(model));
        if (_spec.Dropout != 0f) throw new ArgumentException("the reference has no dropout: libtorch's masks cannot be replayed", nameof(model));
        if (!Supports(_spec, layers)) throw new ArgumentException($"{model.GetType().Name} cannot run on libtorch's {layers}", nameof(layers));
        _seq2seq = _spec.Architecture == Architecture.EncoderDecoder;
        _batch = _spec.Batch;
        _sourceLength = _spec.SeqLen;
        _targetLength = _spec.TargetSeqLen > 0 ? _spec.TargetSeqLen : _spec.SeqLen;
        _channels = _spec.DModel;
        _heads = _spec.Heads;
        _headDim = _channels / _heads;
        _encoderLayerCount = _spec.EncoderLayers > 0 ? _spec.EncoderLayers : _spec.Layers;
        _decoderLayerCount = _seq2seq ? (_spec.DecoderLayers > 0 ? _spec.DecoderLayers : _spec.Layers) : 0;

        foreach (ParameterTensor t in model.ParameterTensors)
        {
            float[] values = model.Parameters.Slice(t.Offset, t.Length).ToArray();
            long[] shape = t.Shape.ToArray().Select(d => (long)d).ToArray();
            _parameters.Add(t.Name, nn.Parameter(tensor(values, shape)));
        }

        nn.Activations activation = TorchOps.ModuleActivation(_spec.Activation);
        for (int i = 0; i < _encoderLayerCount; i++)
        {
            string prefix = $"encoder.layers.{i}.";
            if (layers == ReferenceLayers.TransformerLayers)
                _encoderLayers.Add(i, Adopt(nn.TransformerEncoderLayer(_channels, _heads, _spec.DFF, dropout: 0.0, activation), prefix));
            else if (layers == ReferenceLayers.MultiheadAttention)
                _attention.Add(prefix + "self_attn", Adopt(nn.MultiheadAttention(_channels, _heads, dropout: 0.0), prefix + "self_attn."));
        }
        for (int i = 0; i < _decoderLayerCount; i++)
        {
            string prefix = $"decoder.layers.{i}.";
            if (layers == ReferenceLayers.TransformerLayers)
                _decoderLayers.Add(i, Adopt(nn.TransformerDecoderLayer(_channels, _heads, _spec.DFF, dropout: 0.0, activation), prefix));
            else if (layers == ReferenceLayers.MultiheadAttention)
            {
                _attention.Add(prefix + "self_attn", Adopt(nn.MultiheadAttention(_channels, _heads, dropout: 0.0), prefix + "self_attn."));
                _attention.Add(prefix + "multihead_attn", Adopt(nn.MultiheadAttention(_channels, _heads, dropout: 0.0), prefix + "multihead_attn."));
            }
        }
    }

    /// <summary>Whether libtorch's modules of <paramref name="layers"/> can run the model <paramref name="spec"/> declares.</summary>
    public static bool Supports(TransformerModelAttribute spec, ReferenceLayers layers) => layers switch
    {
        ReferenceLayers.WrittenOut => true,
        ReferenceLayers.MultiheadAttention => spec.Positional != Positional.Rotary,
        ReferenceLayers.TransformerLayers => spec.Positional != Positional.Rotary && spec.Norm == NormPlacement.Post,
        _ => false,
    };

    /// <summary>The parameters by the generated model's names (a module's own parameter where a module runs).</summary>
    public IReadOnlyDictionary<string, Parameter> Parameters => _parameters;

    /// <summary>
    /// Logits and the loss, PyTorch's <c>cross_entropy(ignore_index = -1, label_smoothing = ε)</c>, mean over the targets
    /// that are not ignored. Logits are <c>[Batch·TargetSeqLen, TargetVocab]</c> (encoder–decoder),
    /// <c>[Batch, Classes]</c> (classifier) or <c>[Batch·SeqLen, Classes]</c> (tagger).
    /// </summary>
    /// <param name="tokens">The source (encoder input) ids <c>[Batch, SeqLen]</c>.</param>
    /// <param name="targets">As the generated model's <c>Forward</c> takes them; negative = ignored.</param>
    public (Tensor Logits, Tensor Loss) Forward(int[] tokens, int[] targets)
    {
        int pad = _spec.PadToken;
        bool[]? sourcePadding = pad >= 0 ? tokens.Select(t => t == pad).ToArray() : null;
        string embedding = _seq2seq ? "source_embedding.weight" : "token_embedding.weight";
        string positions = _seq2seq ? "source_pos_embedding.weight" : "pos_embedding.weight";
        Tensor x = Embed(TorchOps.Ids(tokens, _batch, _sourceLength), _sourceLength, embedding, positions);
        for (int i = 0; i < _encoderLayerCount; i++) x = EncoderLayer(i, x, sourcePadding);

        if (!_seq2seq) return ClassifierHead(x, targets, sourcePadding);

        if (_spec.Norm == NormPlacement.Pre) x = Norm(x, "encoder.norm");
        (int[] decoderInput, int[] lossTargets) = TeacherForcing(targets);
        bool[]? targetPadding = pad >= 0 ? decoderInput.Select(t => t == pad).ToArray() : null;
        Tensor y = Embed(TorchOps.Ids(decoderInput, _batch, _targetLength), _targetLength, "target_embedding.weight", "target_pos_embedding.weight");
        for (int i = 0; i < _decoderLayerCount; i++) y = DecoderLayer(i, y, x, targetPadding, sourcePadding);
        if (_spec.Norm == NormPlacement.Pre) y = Norm(y, "decoder.norm");

        Tensor head = P(_spec.TiedEmbeddings ? "target_embedding.weight" : "lm_head.weight");
        int vocab = _spec.TargetVocab > 0 ? _spec.TargetVocab : _spec.Vocab;
        Tensor logits = F.linear(y, head).reshape(_batch * _targetLength, vocab);
        return (logits, Loss(logits, lossTargets));
    }

    /// <summary>
    /// Teacher forcing: the decoder reads [BOS, y0, y1, …]; an ignored or padding target becomes padding in that input
    /// (BOS without a padding id), and a padding target is ignored by the loss.
    /// </summary>
    public (int[] DecoderInput, int[] LossTargets) TeacherForcing(int[] targets)
    {
        int pad = _spec.PadToken, bos = _spec.BosToken, filler = pad >= 0 ? pad : bos;
        int[] lossTargets = targets.Select(t => pad >= 0 && t == pad ? -1 : t).ToArray();
        var input = new int[targets.Length];
        for (int b = 0; b < _batch; b++)
        {
            int row = b * _targetLength;
            input[row] = bos;
            for (int t = 1; t < _targetLength; t++)
                input[row + t] = lossTargets[row + t - 1] >= 0 ? lossTargets[row + t - 1] : filler;
        }
        return (input, lossTargets);
    }

    private (Tensor, Tensor) ClassifierHead(Tensor x, int[] targets, bool[]? padding)
    {
        if (_spec.Norm == NormPlacement.Pre) x = Norm(x, "norm_f");
        Tensor weight = P("classifier.weight"), bias = P("classifier.bias");
        if (_spec.Head == EncoderHead.Tagging)
        {
            // One class per token; a padded token's target is ignored.
            int[] lossTargets = targets.Select((t, i) => padding is not null && padding[i] ? -1 : t).ToArray();
            Tensor tagLogits = F.linear(x, weight, bias).reshape(_batch * _sourceLength, _spec.Classes);
            return (tagLogits, Loss(tagLogits, lossTargets));
        }

        Tensor pooled;
        if (_spec.Pooling == Pooling.Mean)
        {
            // Mean over the tokens that are not padding (the inputs never make a sequence all padding).
            float[] keep = padding is null ? Enumerable.Repeat(1f, _batch * _sourceLength).ToArray() : padding.Select(p => p ? 0f : 1f).ToArray();
            Tensor weights = tensor(keep, new long[] { _batch, _sourceLength, 1 });
            pooled = (x * weights).sum(1) / weights.sum(1);
        }
        else
        {
            pooled = x.select(1, 0);                                                              // BERT's [CLS]
        }
        Tensor logits = F.linear(pooled, weight, bias);                                           // [B, Classes]
        return (logits, Loss(logits, targets));
    }

    private Tensor Loss(Tensor logits, int[] targets) =>
        F.cross_entropy(logits, tensor(targets.Select(t => (long)t).ToArray()), ignore_index: -1, label_smoothing: _spec.LabelSmoothing);

    /// <summary>Token embedding (× √DModel when the model scales it), plus sinusoidal or learned positions.</summary>
    private Tensor Embed(Tensor ids, int length, string table, string learnedPositions)
    {
        Tensor x = P(table).index_select(0, ids.flatten()).view(_batch, length, _channels);
        if (_spec.ScaleEmbeddings) x = x * (float)Math.Sqrt(_channels);
        return _spec.Positional switch
        {
            Positional.Sinusoidal => x + TorchOps.SinusoidalTable(length, _channels),
            Positional.Learned => x + P(learnedPositions).narrow(0, 0, length),
            _ => x,                                                                                // rotary: in the attention
        };
    }

    private Tensor EncoderLayer(int i, Tensor x, bool[]? padding)
    {
        string prefix = $"encoder.layers.{i}.";
        if (_encoderLayers.TryGetValue(i, out TransformerEncoderLayer? layer))
        {
            // The C++ module is sequence-first: [T, B, C].
            Tensor? mask = TorchOps.AdditiveMask(_sourceLength, _sourceLength, causal: false, _spec.AttentionWindow);
            return layer.call(x.transpose(0, 1), mask!, KeyPadding(padding, _sourceLength)!).transpose(0, 1);
        }
        Tensor SelfAttention(Tensor input) => Attention(prefix + "self_attn", input, input, padding, causal: false, _spec.AttentionWindow, rotary: true);
        if (_spec.Norm == NormPlacement.Pre)
        {
            x = x + SelfAttention(Norm(x, prefix + "norm1"));
            return x + FeedForward(Norm(x, prefix + "norm2"), prefix);
        }
        x = Norm(x + SelfAttention(x), prefix + "norm1");
        return Norm(x + FeedForward(x, prefix), prefix + "norm2");
    }

    private Tensor DecoderLayer(int i, Tensor y, Tensor memory, bool[]? targetPadding, bool[]? sourcePadding)
    {
        string prefix = $"decoder.layers.{i}.";
        if (_decoderLayers.TryGetValue(i, out TransformerDecoderLayer? layer))
        {
            Tensor? mask = TorchOps.AdditiveMask(_targetLength, _targetLength, causal: true, _spec.AttentionWindow);
            return layer.call(y.transpose(0, 1), memory.transpose(0, 1), mask!, memory_mask: null!,
                tgt_key_padding_mask: KeyPadding(targetPadding, _targetLength)!, memory_key_padding_mask: KeyPadding(sourcePadding, _sourceLength)!).transpose(0, 1);
        }
        Tensor SelfAttention(Tensor input) => Attention(prefix + "self_attn", input, input, targetPadding, causal: true, _spec.AttentionWindow, rotary: true);
        Tensor CrossAttention(Tensor input) => Attention(prefix + "multihead_attn", input, memory, sourcePadding, causal: false, window: 0, rotary: false);
        if (_spec.Norm == NormPlacement.Pre)
        {
            y = y + SelfAttention(Norm(y, prefix + "norm1"));
            y = y + CrossAttention(Norm(y, prefix + "norm2"));
            return y + FeedForward(Norm(y, prefix + "norm3"), prefix);
        }
        y = Norm(y + SelfAttention(y), prefix + "norm1");
        y = Norm(y + CrossAttention(y), prefix + "norm2");
        return Norm(y + FeedForward(y, prefix), prefix + "norm3");
    }

    /// <summary>
    /// Multi-head attention of <paramref name="query"/> <c>[B, Tq, C]</c> over <paramref name="keyValue"/>
    /// <c>[B, Tk, C]</c>, nn.MultiheadAttention's layout: <c>in_proj_weight</c> <c>[3C, C]</c> is the Q, K and V
    /// projections stacked; head h uses channels <c>[h·headDim, (h+1)·headDim)</c> of each.
    /// </summary>
    private Tensor Attention(string name, Tensor query, Tensor keyValue, bool[]? keyPadding, bool causal, int window, bool rotary)
    {
        int queries = (int)query.shape[1], keys = (int)keyValue.shape[1];
        if (_attention.TryGetValue(name, out MultiheadAttention? module))
        {
            Tensor kv = keyValue.transpose(0, 1);
            (Tensor output, _) = module.call(query.transpose(0, 1), kv, kv, KeyPadding(keyPadding, keys)!, need_weights: false,
                TorchOps.AdditiveMask(queries, keys, causal, window)!);
            return output.transpose(0, 1);
        }

        Tensor weight = P(name + ".in_proj_weight"), bias = P(name + ".in_proj_bias");
        Tensor Project(Tensor x, int part) => F.linear(x, weight.narrow(0, part * _channels, _channels), bias.narrow(0, part * _channels, _channels));
        Tensor q = Heads(Project(query, 0)), k = Heads(Project(keyValue, 1)), v = Heads(Project(keyValue, 2)); // [B, H, T, D]
        if (rotary && _spec.Positional == Positional.Rotary)
        {
            q = TorchOps.Rotate(q);
            k = TorchOps.Rotate(k);
        }
        Tensor scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(_headDim);                     // [B, H, Tq, Tk]
        Tensor blocked = TorchOps.BlockedMask(keyPadding, _batch, queries, keys, causal, window);
        Tensor probabilities = F.softmax(scores.masked_fill(blocked, float.NegativeInfinity), -1);
        Tensor heads = probabilities.matmul(v).transpose(1, 2).reshape(_batch, queries, _channels);
        return F.linear(heads, P(name + ".out_proj.weight"), P(name + ".out_proj.bias"));
    }

    private Tensor Heads(Tensor x) => x.view(_batch, -1, _heads, _headDim).transpose(1, 2);

    private Tensor FeedForward(Tensor x, string prefix)
    {
        Tensor hidden = TorchOps.Activate(F.linear(x, P(prefix + "linear1.weight"), P(prefix + "linear1.bias")), _spec.Activation);
        return F.linear(hidden, P(prefix + "linear2.weight"), P(prefix + "linear2.bias"));
    }

    private Tensor Norm(Tensor x, string name) => TorchOps.LayerNorm(x, P(name + ".weight"), P(name + ".bias"));

    /// <summary>nn.MultiheadAttention's <c>key_padding_mask</c> <c>[B, keys]</c> (true = padding), or null without padding.</summary>
    private Tensor? KeyPadding(bool[]? padding, int keys) => padding is null ? null : tensor(padding, new long[] { _batch, keys });

    /// <summary>
    /// Makes <paramref name="module"/>'s parameters those compared: each is filled from the copy of the generated
    /// model's tensor named <paramref name="prefix"/> + its <c>named_parameters()</c> name, then takes its place.
    /// </summary>
    private T Adopt<T>(T module, string prefix) where T : nn.Module
    {
        foreach ((string name, Parameter parameter) in module.named_parameters())
        {
            string ours = prefix + name;
            if (!_parameters.TryGetValue(ours, out Parameter? copy))
                throw new KeyNotFoundException($"{module.GetType().Name} has '{name}', but the model has no '{ours}'");
            using (no_grad()) parameter.copy_(copy);
            _parameters[ours] = parameter;
        }
        return module;
    }

    private Tensor P(string name) =>
        _parameters.TryGetValue(name, out Parameter? p) ? p : throw new KeyNotFoundException($"the generated model has no parameter '{name}'");
}
