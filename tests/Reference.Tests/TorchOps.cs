using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests;

/// <summary>
/// The pieces both libtorch references (<see cref="TorchTransformer"/>, <see cref="TorchEncoderDecoder"/>) write out
/// the same way: position tables, rotary positions, layer norm, the feed-forward activation, and masks.
/// </summary>
internal static class TorchOps
{
    /// <summary>Token ids as a <c>[rows, columns]</c> int64 tensor.</summary>
    public static Tensor Ids(int[] ids, long rows, long columns) =>
        tensor(ids.Select(t => (long)t).ToArray(), new[] { rows, columns });

    /// <summary>
    /// "Attention Is All You Need", §3.5: PE(pos, 2i) = sin(pos / 10000^(2i/C)), PE(pos, 2i+1) = cos(…), for positions
    /// 0 … length − 1, computed in double and rounded once: <c>[length, channels]</c>.
    /// </summary>
    public static Tensor SinusoidalTable(long length, long channels)
    {
        Tensor position = arange(length, ScalarType.Float64).unsqueeze(1);                      // [T, 1]
        Tensor evenChannel = arange(0, channels, 2, ScalarType.Float64);                        // 2i
        Tensor angle = position / pow(10000.0, evenChannel / channels);                         // [T, ⌈C/2⌉]
        return stack(new[] { angle.sin(), angle.cos() }, -1).reshape(length, -1).narrow(1, 0, channels).to(ScalarType.Float32);
    }

    /// <summary>
    /// RoFormer (Su et al. 2021), interleaved pairs: (x[2i], x[2i+1]) at position p turns by p·θ_i,
    /// θ_i = 10000^(−2i/headDim). <paramref name="x"/> is <c>[B, H, T, D]</c>; positions are 0 … T − 1.
    /// </summary>
    public static Tensor Rotate(Tensor x)
    {
        long batch = x.shape[0], heads = x.shape[1], length = x.shape[2], headDim = x.shape[3];
        Tensor position = arange(length, ScalarType.Float64).unsqueeze(1);                      // [T, 1]
        Tensor theta = pow(10000.0, -arange(0, headDim, 2, ScalarType.Float64) / headDim);      // [D/2]
        Tensor angle = position * theta;                                                        // [T, D/2]
        Tensor cos = angle.cos().to(ScalarType.Float32), sin = angle.sin().to(ScalarType.Float32);
        Tensor pairs = x.reshape(batch, heads, length, headDim / 2, 2);
        Tensor a = pairs.select(-1, 0), b = pairs.select(-1, 1);
        return stack(new[] { a * cos - b * sin, a * sin + b * cos }, -1).reshape(batch, heads, length, headDim);
    }

    /// <summary>LayerNorm over the last dimension with PyTorch's default ε = 1e-5.</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias) =>
        F.layer_norm(x, new[] { x.shape[^1] }, weight, bias, eps: 1e-5);

    /// <summary>ReLU, or GELU in its exact erf form (PyTorch's default).</summary>
    public static Tensor Activate(Tensor x, Activation activation) =>
        activation == Activation.Gelu ? F.gelu(x) : F.relu(x);

    /// <summary>libtorch's name for the activation of its C++ Transformer layer modules.</summary>
    public static nn.Activations ModuleActivation(Activation activation) =>
        activation == Activation.Gelu ? nn.Activations.GELU : nn.Activations.ReLU;

    /// <summary>
    /// Whether query i may not see key j because of the structure of the attention (not padding): the future when
    /// <paramref name="causal"/>, and keys farther than <paramref name="window"/> when it is positive.
    /// </summary>
    public static bool Blocked(int i, int j, bool causal, int window) =>
        (causal && j > i) || (window > 0 && Math.Abs(i - j) > window);

    /// <summary>
    /// The structural mask as <c>nn.MultiheadAttention</c>'s additive <c>attn_mask</c> <c>[queries, keys]</c>: −∞ where
    /// <see cref="Blocked"/>, else 0; null when nothing is blocked.
    /// </summary>
    public static Tensor? AdditiveMask(int queries, int keys, bool causal, int window)
    {
        if (!causal && window == 0) return null;
        var mask = new float[queries * keys];
        for (int i = 0; i < queries; i++)
            for (int j = 0; j < keys; j++)
                mask[i * keys + j] = Blocked(i, j, causal, window) ? float.NegativeInfinity : 0f;
        return tensor(mask, new long[] { queries, keys });
    }

    /// <summary>
    /// Everything a query may not see, <c>[batch, 1, queries, keys]</c> (true = masked), for attention written out with
    /// <c>masked_fill</c>: the structure (<see cref="Blocked"/>) and, when given, key padding <c>[batch·keys]</c>.
    /// </summary>
    public static Tensor BlockedMask(bool[]? keyPadding, int batch, int queries, int keys, bool causal, int window)
    {
        var mask = new bool[batch * queries * keys];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < queries; i++)
                for (int j = 0; j < keys; j++)
                    mask[(b * queries + i) * keys + j] = Blocked(i, j, causal, window) || (keyPadding is not null && keyPadding[b * keys + j]);
        return tensor(mask, new long[] { batch, 1, queries, keys });
    }
}
