using System;

namespace TransformerGen.Model.Tests;

internal static class TestData
{
    /// <summary>Random token ids in [0, vocab).</summary>
    public static int[] Tokens(int count, int vocab, ulong seed)
    {
        var rng = new Rng(seed);
        var ids = new int[count];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(vocab);
        return ids;
    }

    /// <summary>
    /// Replaces the initial parameters by larger random values, so that every gradient is well above the noise
    /// of a float32 finite difference (GPT-2's 0.02 initialization gives gradients too small to check).
    /// </summary>
    public static void Perturb(TransformerModel model, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (ParameterTensor t in model.ParameterTensors)
        {
            Span<float> values = model.Parameters.Slice(t.Offset, t.Length);
            for (int i = 0; i < values.Length; i++)
            {
                float noise = rng.NextNormal();
                values[i] = t.Init switch
                {
                    WeightInit.Ones => 1f + 0.2f * noise,
                    WeightInit.Zeros => 0.2f * noise,
                    _ => 0.4f * noise,
                };
            }
        }
    }
}
