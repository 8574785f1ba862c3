namespace TransformerGen;

/// <summary>The same learning rate at every step.</summary>
public sealed class ConstantSchedule : ILearningRateSchedule
{
    /// <summary>A schedule that always returns <paramref name="learningRate"/> (finite, at least 0).</summary>
    public ConstantSchedule(float learningRate)
    {
        ScheduleArguments.RequireRate(learningRate, nameof(learningRate));
        LearningRate = learningRate;
    }

    /// <summary>The constant rate.</summary>
    public float LearningRate { get; }

    /// <inheritdoc />
    public float At(long step)
    {
        ScheduleArguments.RequireStep(step);
        return LearningRate;
    }
}
