using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// An optimizer whose whole state a <see cref="TrainingCheckpoint"/> can save and restore, so that training continues
/// bit for bit as if it had never stopped: its buffers with the parameters' layout, its step count and its settings.
/// </summary>
public interface ICheckpointableOptimizer : IOptimizer
{
    /// <summary>What the checkpoint calls the algorithm (<c>AdamW</c>, <c>SGD</c>); a checkpoint restores only into the same one.</summary>
    string Algorithm { get; }

    /// <summary>
    /// The settings that change the update (β1, β2, ε, weight decay, …), as invariant text that round-trips. A checkpoint
    /// records them and restores only into an optimizer whose settings are equal: with others the run would not continue
    /// as it began. The learning rate is not among them (a schedule changes it every step).
    /// </summary>
    IReadOnlyList<KeyValuePair<string, string>> Settings { get; }

    /// <summary>
    /// The names of the buffers that have the parameter buffer's layout, as PyTorch's optimizers name their state
    /// (<c>exp_avg</c>, <c>exp_avg_sq</c>; <c>momentum_buffer</c>); empty when the optimizer keeps none.
    /// </summary>
    IReadOnlyList<string> StateNames { get; }

    /// <summary>The buffer <see cref="StateNames"/>[<paramref name="index"/>], as long as the parameter buffer.</summary>
    Span<float> State(int index);

    /// <summary>Sets <see cref="IOptimizer.StepCount"/>, as a checkpoint read back restores it (with the buffers of that step).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="stepCount"/> is negative.</exception>
    void RestoreStepCount(long stepCount);
}
