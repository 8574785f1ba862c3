using System;

namespace TransformerGen;

/// <summary>
/// An encoder-only model (BERT): trained with <see cref="TransformerModel.Forward"/> on one class per sequence or
/// per token; <see cref="Predict"/> gives the logits of a batch without targets.
/// </summary>
public abstract class EncoderModel : TransformerModel
{
    private readonly int[] _noTargets;

    /// <summary>Allocates every buffer and initializes the parameters from <paramref name="seed"/>.</summary>
    protected EncoderModel(ModelLayout layout, ulong seed) : this(layout, seed, ModelUse.Training, initialize: true) { }

    /// <summary>Allocates the buffers <paramref name="use"/> needs; initializes the parameters from <paramref name="seed"/> when <paramref name="initialize"/> is true.</summary>
    protected EncoderModel(ModelLayout layout, ulong seed, ModelUse use, bool initialize) : base(layout, seed, use, initialize)
    {
        _noTargets = new int[layout.TargetLength];
        _noTargets.AsSpan().Fill(-1);
    }

    /// <summary>
    /// The logits of a batch of <c>Batch·SeqLen</c> ids, with dropout off: <c>[Batch, Classes]</c> for a
    /// classifier, <c>[Batch·SeqLen, Classes]</c> for a tagger. Allocates nothing.
    /// </summary>
    public ReadOnlySpan<float> Predict(ReadOnlySpan<int> tokens)
    {
        using CallScope scope = Enter("Predict");
        bool training = Training;
        Training = false;
        try
        {
            Forward(tokens, _noTargets);
        }
        finally
        {
            Training = training;
        }
        return Logits;
    }

    /// <summary>The most likely class of each row of <paramref name="logits"/>, written to <paramref name="classes"/>.</summary>
    public static void ArgMax(ReadOnlySpan<float> logits, int classCount, Span<int> classes)
    {
        if (classCount <= 0 || logits.Length != classes.Length * classCount)
            throw new ArgumentException($"{logits.Length} logits do not split into {classes.Length} rows of {classCount}", nameof(logits));
        for (int row = 0; row < classes.Length; row++)
        {
            ReadOnlySpan<float> r = logits.Slice(row * classCount, classCount);
            int best = 0;
            for (int k = 1; k < r.Length; k++) if (r[k] > r[best]) best = k;
            classes[row] = best;
        }
    }
}
