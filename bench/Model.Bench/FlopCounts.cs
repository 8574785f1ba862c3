using System;
using System.Reflection;

namespace TransformerGen.Model.Bench;

/// <summary>
/// Floating-point operations per benchmarked operation, so that a time reads as GFLOP/s and as a fraction of the peak.
/// Only the useful work is counted: the matrix products (2 per multiply-add) and, in attention, the products with the
/// keys a causal query sees; elementwise work (norms, GELU, softmax, the optimizer) is not.
/// </summary>
internal static class FlopCounts
{
    /// <summary>
    /// Forward operations per token, averaged over the positions of a sequence: the linear layers
    /// (2·(4C² + 2C·DFF) per layer, 2C·Vocab for the LM head) and attention (2C per visible key for Q·Kᵀ and as much for
    /// P·V; a query at position t sees t + 1 keys, (T + 1)/2 on average).
    /// </summary>
    public static double ForwardPerToken(Type model)
    {
        TransformerModelAttribute a = model.GetCustomAttribute<TransformerModelAttribute>()
            ?? throw new ArgumentException($"{model.Name} has no [TransformerModel] attribute", nameof(model));
        double c = a.DModel, dff = a.DFF;
        double linear = a.Layers * 2 * (4 * c * c + 2 * c * dff) + 2 * c * a.Vocab;
        double attention = a.Layers * 4 * c * (a.SeqLen + 1) / 2.0;
        return linear + attention;
    }

    /// <summary>A forward pass over one step's tokens.</summary>
    public static double Forward(Type model) => ForwardPerToken(model) * TokensPerStep(model);

    /// <summary>A training step: forward, and backward at twice the forward's products (dx and dW).</summary>
    public static double TrainingStep(Type model) => 3 * Forward(model);

    /// <summary>One decoded token, averaged over the positions of the sequence.</summary>
    public static double DecodeToken(Type model) => ForwardPerToken(model);

    private static int TokensPerStep(Type model)
    {
        TransformerModelAttribute a = model.GetCustomAttribute<TransformerModelAttribute>()!;
        return a.Batch * a.SeqLen;
    }
}
