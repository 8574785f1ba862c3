namespace TransformerGen;

/// <summary>What a model instance is built for, which decides the buffers it allocates.</summary>
public enum ModelUse
{
    /// <summary>
    /// Training and inference: parameters and their gradients, the activations and activation gradients of a
    /// training step, and the inference workspace with its key/value cache.
    /// </summary>
    Training,

    /// <summary>
    /// Inference only: parameters, the inference workspace and the key/value cache (an encoder-only model, whose
    /// <c>Predict</c> runs the batched forward pass, keeps the forward activations); nothing kept for backward.
    /// <c>Forward</c> (except in encoder-only models), <c>Backward</c> and optimizers refuse such an instance.
    /// </summary>
    Inference,
}
