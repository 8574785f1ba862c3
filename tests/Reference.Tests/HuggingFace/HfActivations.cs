using System;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>transformers/activations.py</c> <c>ACT2FN</c> by name, each written as that file computes it (the same maths
/// rounds differently in each form, so the form matters at 1e-7).
/// </summary>
internal static class HfActivations
{
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "gelu_new" => NewGelu(x),
        // GELUActivation: nn.functional.gelu, the exact erf form.
        "gelu" => F.gelu(x),
        // PytorchGELUTanh.
        "gelu_pytorch_tanh" => F.gelu(x, GELU.Approximate.tanh),
        // FastGELUActivation.
        "gelu_fast" => 0.5 * x * (1.0 + tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
        "relu" => F.relu(x),
        "silu" or "swish" => F.silu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not implemented"),
    };

    /// <summary>
    /// NewGELUActivation (GPT-2's <c>gelu_new</c>): <c>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</c>, x³ as
    /// <c>torch.pow(x, 3.0)</c>, the operations in the order <c>activations.py</c> writes them.
    /// </summary>
    public static Tensor NewGelu(Tensor x) =>
        0.5 * x * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * pow(x, 3.0))));
}
