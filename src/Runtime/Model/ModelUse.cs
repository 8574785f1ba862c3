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
    /// Inference only: parameters, the inference workspace and the key/value cache (an encoder-only model's exact-length
    /// <c>Predict</c> runs in that workspace); nothing kept for backward. <c>Forward</c>, <c>Backward</c> and optimizers
    /// refuse such an instance.
    /// </summary>
    Inference,
}
