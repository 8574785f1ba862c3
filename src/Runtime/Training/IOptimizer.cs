namespace TransformerGen;

/// <summary>
/// Updates a model's flat parameter buffer from its gradient buffer, one step per call.
/// </summary>
/// <remarks>
/// A step reads <see cref="ITrainableParameters.Gradients"/> and never clears it: zeroing the gradients
/// before the next backward pass is the training loop's job, as with PyTorch's <c>zero_grad()</c>.
/// To follow a schedule, set <see cref="LearningRate"/> before each step:
/// <c>optimizer.LearningRate = schedule.At(optimizer.StepCount + 1); optimizer.Step();</c>.
/// </remarks>
public interface IOptimizer
{
    /// <summary>The learning rate the next <see cref="Step"/> uses.</summary>
    float LearningRate { get; set; }

    /// <summary>How many steps have been taken (0 before the first <see cref="Step"/>).</summary>
    long StepCount { get; }

    /// <summary>Applies one update to the parameters from the current gradients. Allocates nothing.</summary>
    void Step();
}
