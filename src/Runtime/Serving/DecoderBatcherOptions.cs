using System;
using System.Collections.Generic;

namespace TransformerGen.Serving;

/// <summary>How a <see cref="DecoderBatcher"/> shares its model's steps between generations (every limit is checked against the model's layout).</summary>
public sealed class DecoderBatcherOptions
{
    /// <summary>Generations running at once at most: 1 to the model's Sequences (its key/value cache slots). Null (the default) takes them all.</summary>
    public int? MaxSequences { get; init; }

    /// <summary>
    /// Tokens one step runs at most: MaxSequences (every running generation's next token must fit) to the model's
    /// <see cref="ModelLayout.InferenceTokens"/> (SeqLen, or Sequences if more), which the workspace is sized for. A prompt longer than what is left of the budget is fed over several steps
    /// (chunked prefill), so one long prompt delays the others' next tokens by at most one such step. Null (the default)
    /// takes SeqLen.
    /// </summary>
    public int? MaxTokensPerStep { get; init; }

    /// <summary>
    /// Ids that end a generation when sampled; the id itself is not returned. Null (the default) takes the model's
    /// EndTokens (every id of a config's eos_token_id list), else its EosToken when it has one, and none otherwise.
    /// </summary>
    public IReadOnlyCollection<int>? StopTokens { get; init; }

    /// <summary>
    /// Whether a generation may continue from what a free cache slot holds (true, the default): it takes the free slot
    /// whose cached tokens share the longest beginning with its prompt, keeps those positions
    /// (<see cref="LanguageModel.TruncateCache(int, int)"/>) and runs only the rest. A chat client that sends the whole
    /// conversation each turn then runs only the new turn, if its last reply's slot is still free and unused. The
    /// result equals a fresh run of the whole prompt within rounding (1e-5); false runs every prompt from an empty slot.
    /// </summary>
    public bool ReusePrefixes { get; init; } = true;

    /// <summary>Generations that may wait for a free slot; a caller beyond it waits (asynchronously) for room. Default 1024.</summary>
    public int QueueCapacity { get; init; } = 1024;

    /// <summary>
    /// Called on the batcher's thread after each step, with what it held; for metrics. It must be quick and must not
    /// throw (an exception from it is ignored).
    /// </summary>
    public Action<DecoderStep>? StepCompleted { get; init; }
}

/// <summary>One step a <see cref="DecoderBatcher"/> ran: one call of the model over the new tokens of several generations.</summary>
/// <param name="Sequences">Generations in the step.</param>
/// <param name="Tokens">Their new tokens, laid end to end: one per generation that is decoding, a chunk of the prompt per one that is starting.</param>
/// <param name="Sampled">Tokens sampled in the step (generations whose prompt was fed whole).</param>
/// <param name="Elapsed">The model's time for the step.</param>
/// <param name="ReusedPromptTokens">Prompt tokens that the generations admitted since the last step took from their slots' caches instead of running them (<see cref="DecoderBatcherOptions.ReusePrefixes"/>).</param>
public readonly record struct DecoderStep(int Sequences, int Tokens, int Sampled, TimeSpan Elapsed, int ReusedPromptTokens = 0);
