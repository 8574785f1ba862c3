using System.Collections.Generic;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>Tensor tables and values for the checkpoint tests.</summary>
internal static class TensorTables
{
    /// <summary>A table of tensors packed from offset 0, named as given.</summary>
    public static List<ParameterTensor> Table(params (string Name, int[] Shape)[] tensors)
    {
        var table = new List<ParameterTensor>();
        int offset = 0;
        foreach ((string name, int[] shape) in tensors)
        {
            table.Add(new ParameterTensor(name, shape, offset));
            offset += table[^1].Length;
        }
        return table;
    }

    /// <summary>Standard normal values drawn from <paramref name="seed"/>.</summary>
    public static float[] RandomBuffer(int length, ulong seed)
    {
        var rng = new Rng(seed);
        var buffer = new float[length];
        for (int i = 0; i < length; i++) buffer[i] = rng.NextNormal();
        return buffer;
    }
}
