using System;

namespace TransformerGen.Serving;

/// <summary>How an <see cref="EncoderBatcher"/> groups sequences into batches (every limit is checked against the model's layout).</summary>
public sealed class EncoderBatcherOptions
{
    /// <summary>Sequences per batch at most: 1 to the model's Batch. Null (the default) takes the model's Batch.</summary>
    public int? MaxSequences { get; init; }

    /// <summary>
    /// Tokens per batch at most, every sequence counted at its own length: SeqLen to <c>Batch·SeqLen</c> (a sequence of
    /// SeqLen must fit). Null (the default) takes <c>Batch·SeqLen</c>, which the workspace is sized for. A smaller
    /// budget bounds the latency one batch adds to the sequences in it.
    /// </summary>
    public int? MaxTokens { get; init; }

    /// <summary>
    /// How long a free instance waits for more sequences after the first before it runs a batch that is not full, when the
    /// batch before held more than one sequence (after a batch of one, what is queued runs at once: a lone caller would wait
    /// for nobody). Zero runs whatever is queued at once; under load the queue fills batches by itself while every instance
    /// is busy. Default 1 ms.
    /// </summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Sequences that may wait in the queue; a caller beyond it waits (asynchronously) for room. Default 4096.</summary>
    public int QueueCapacity { get; init; } = 4096;

    /// <summary>
    /// Called on the instance's thread after each batch, with what it held; for metrics. It must be quick and must not
    /// throw (an exception from it is ignored).
    /// </summary>
    public Action<EncoderBatch>? BatchCompleted { get; init; }
}

/// <summary>One batch an <see cref="EncoderBatcher"/> ran: what it held, and how long the model took.</summary>
/// <param name="Sequences">Sequences in the batch.</param>
/// <param name="Tokens">Their tokens, laid end to end (no padding).</param>
/// <param name="Elapsed">The model's time for the batch.</param>
/// <param name="Worker">Which instance ran it (0 to <see cref="EncoderBatcher.Workers"/> − 1).</param>
public readonly record struct EncoderBatch(int Sequences, int Tokens, TimeSpan Elapsed, int Worker);
