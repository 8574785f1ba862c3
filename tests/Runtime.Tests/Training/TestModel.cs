using System;
using System.Collections.Generic;

namespace TransformerGen.Tests.Training;

/// <summary>A bare <see cref="ITrainableParameters"/>: two arrays and a tensor table.</summary>
internal sealed class TestModel : ITrainableParameters
{
    public TestModel(params int[][] shapes)
    {
        var tensors = new List<ParameterTensor>();
        int offset = 0;
        for (int i = 0; i < shapes.Length; i++)
        {
            var tensor = new ParameterTensor($"t{i}", shapes[i], offset);
            tensors.Add(tensor);
            offset += tensor.Length;
        }
        Tensors = tensors;
        ParameterArray = new float[offset];
        GradientArray = new float[offset];
    }

    public float[] ParameterArray { get; }
    public float[] GradientArray { get; }
    public List<ParameterTensor> Tensors { get; }

    public Span<float> Parameters => ParameterArray;
    public Span<float> Gradients => GradientArray;
    public IReadOnlyList<ParameterTensor> ParameterTensors => Tensors;

    /// <summary>Fills the parameters with N(0, 1) draws.</summary>
    public void Randomize(Rng rng)
    {
        for (int i = 0; i < ParameterArray.Length; i++) ParameterArray[i] = rng.NextNormal();
    }

    /// <summary>Fills the gradients with N(0, scale²) draws, and returns them in double.</summary>
    public double[] NewGradients(Rng rng, float scale = 1f)
    {
        var copy = new double[GradientArray.Length];
        for (int i = 0; i < GradientArray.Length; i++) copy[i] = GradientArray[i] = scale * rng.NextNormal();
        return copy;
    }
}

/// <summary>Counts bytes allocated on the current thread.</summary>
internal static class Allocations
{
    /// <summary>Runs <paramref name="action"/> once to warm up, then <paramref name="iterations"/> times, and returns the bytes those allocated.</summary>
    public static long Measure(Action action, int iterations = 200)
    {
        action();
        action();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < iterations; i++) action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
