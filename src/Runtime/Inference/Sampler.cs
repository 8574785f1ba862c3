using System;
using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;

namespace TransformerGen;

/// <summary>
/// Draws the next token from a vector of logits: greedy, or softmax sampling with temperature, top-k and
/// top-p (nucleus) filtering. Deterministic for a given seed. Allocates nothing per call once its scratch
/// buffers are as large as the vocabulary.
/// </summary>
/// <remarks>
/// <para>The filters are applied in the order of Hugging Face's <c>generate()</c> logits warpers
/// (<c>TemperatureLogitsWarper</c>, <c>TopKLogitsWarper</c>, <c>TopPLogitsWarper</c>):</para>
/// <list type="number">
/// <item>Top-k keeps every token whose logit is at least the k-th largest (so ties at the boundary are all
/// kept, as <c>TopKLogitsWarper</c> does).</item>
/// <item>The kept logits are divided by the temperature and turned into probabilities (softmax).</item>
/// <item>Top-p keeps the smallest set of most probable tokens whose probabilities sum to at least p
/// (Holtzman et al., "The Curious Case of Neural Text Degeneration", ICLR 2020, §3.1); the token that
/// crosses p is kept, and at least one token always is.</item>
/// <item>A token is drawn in proportion to the remaining probabilities.</item>
/// </list>
/// <para><see cref="Temperature"/> = 0 or <see cref="TopK"/> = 1 is greedy decoding: the index of the largest
/// logit, the lowest such index on ties, with no random number drawn.</para>
/// </remarks>
public sealed class Sampler
{
    private readonly Rng _rng;
    private float _temperature = 1f;
    private int _topK;
    private float _topP = 1f;

    // Scratch, grown to the vocabulary size at most once per size increase.
    private float[] _weights = [];     // logits of candidates, then their unnormalized probabilities
    private int[] _candidates = [];    // token id of each weight
    private float[] _selection = [];   // a copy of the logits for the k-th-largest selection

    /// <summary>Creates a sampler whose draws are fixed by <paramref name="seed"/>.</summary>
    /// <param name="seed">The seed of its <see cref="Rng"/>.</param>
    /// <param name="vocabSize">When above 0, the scratch buffers are allocated now for this vocabulary size.</param>
    public Sampler(ulong seed, int vocabSize = 0) : this(new Rng(seed), vocabSize) { }

    /// <summary>Creates a sampler that draws from <paramref name="rng"/> (which it advances).</summary>
    /// <param name="rng">The random source.</param>
    /// <param name="vocabSize">When above 0, the scratch buffers are allocated now for this vocabulary size.</param>
    public Sampler(Rng rng, int vocabSize = 0)
    {
        _rng = rng ?? throw new ArgumentNullException(nameof(rng));
        if (vocabSize < 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "vocabSize must be at least 0");
        if (vocabSize > 0) EnsureScratch(vocabSize);
    }

    /// <summary>The softmax temperature, finite and at least 0; 0 means greedy. Default 1.</summary>
    public float Temperature
    {
        get => _temperature;
        set
        {
            if (!(value >= 0f) || float.IsPositiveInfinity(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "Temperature must be finite and at least 0 (0 = greedy)");
            _temperature = value;
        }
    }

    /// <summary>How many of the largest logits are kept, at least 0; 0 turns the filter off. Default 0.</summary>
    public int TopK
    {
        get => _topK;
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "TopK must be at least 0 (0 = off)");
            _topK = value;
        }
    }

    /// <summary>The nucleus probability mass, in [0, 1]; 1 turns the filter off. Default 1.</summary>
    public float TopP
    {
        get => _topP;
        set
        {
            if (!(value >= 0f && value <= 1f)) throw new ArgumentOutOfRangeException(nameof(value), value, "TopP must be in [0, 1] (1 = off)");
            _topP = value;
        }
    }

    /// <summary>Chooses a token index from <paramref name="logits"/> (one per vocabulary entry).</summary>
    /// <exception cref="ArgumentException">The logits are empty, contain NaN, or have no finite maximum.</exception>
    public int Sample(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("there are no logits to sample from", nameof(logits));
        if (_temperature == 0f || _topK == 1) return Greedy(logits);

        EnsureScratch(logits.Length);
        int count = SelectCandidates(logits);
        Span<float> weights = _weights.AsSpan(0, count);
        Span<int> candidates = _candidates.AsSpan(0, count);

        // softmax(logits / T) up to its normalization: exp((l − max) / T), the maximum subtracted for range.
        float max = TensorPrimitives.Max(weights);
        if (!float.IsFinite(max)) ThrowNoFiniteMaximum(max);
        TensorPrimitives.Subtract(weights, max, weights);
        TensorPrimitives.Divide(weights, _temperature, weights);
        TensorPrimitives.Exp(weights, weights);
        double total = Sum(weights);

        if (_topP < 1f)
        {
            // Most probable first: sort ascending on the negated weights (the span sort allocates nothing).
            TensorPrimitives.Negate(weights, weights);
            weights.Sort(candidates);
            TensorPrimitives.Negate(weights, weights);
            double nucleus = _topP * total, cumulative = 0;
            int kept = 0;
            while (kept < count)
            {
                cumulative += weights[kept++];
                if (cumulative >= nucleus) break;
            }
            count = kept;
            total = cumulative;
        }

        double target = _rng.NextFloat() * total, running = 0;
        for (int i = 0; i < count - 1; i++)
        {
            running += weights[i];
            if (target < running) return candidates[i];
        }
        return candidates[count - 1]; // the last one also absorbs rounding in the running sum
    }

    /// <summary>Fills the scratch with the tokens that survive top-k, in index order, and returns their count.</summary>
    private int SelectCandidates(ReadOnlySpan<float> logits)
    {
        int n = logits.Length;
        if (_topK == 0 || _topK >= n)
        {
            logits.CopyTo(_weights); // a NaN here makes the maximum NaN, which Sample rejects
            for (int i = 0; i < n; i++) _candidates[i] = i;
            return n;
        }

        Span<float> selection = _selection.AsSpan(0, n);
        logits.CopyTo(selection);
        float threshold = KthLargest(selection, _topK);
        if (float.IsNaN(threshold)) ThrowNaN(logits.IndexOf(float.NaN));
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            float value = logits[i];
            if (float.IsNaN(value)) ThrowNaN(i);
            if (value >= threshold)
            {
                _weights[count] = value;
                _candidates[count++] = i;
            }
        }
        return count;
    }

    /// <summary>
    /// The k-th largest value (k ≥ 1) of <paramref name="values"/>, which it reorders: Hoare's quickselect
    /// with a three-way partition (Dijkstra's Dutch flag), so runs of equal logits cannot make it quadratic.
    /// The pivot is the median of the first, middle and last values, so the result is deterministic.
    /// </summary>
    internal static float KthLargest(Span<float> values, int k)
    {
        int target = k - 1; // index in descending order
        int low = 0, high = values.Length - 1;
        while (low < high)
        {
            float a = values[low], b = values[low + (high - low) / 2], c = values[high];
            float pivot = Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
            if (float.IsNaN(pivot)) return float.NaN;
            // Descending three-way partition: [low, lt) > pivot, [lt, i) == pivot, (gt, high] < pivot.
            int lt = low, i = low, gt = high;
            while (i <= gt)
            {
                float value = values[i];
                if (value > pivot) { (values[lt], values[i]) = (values[i], values[lt]); lt++; i++; }
                else if (value < pivot) { (values[gt], values[i]) = (values[i], values[gt]); gt--; }
                else if (value == pivot) i++;
                else return float.NaN;
            }
            if (target < lt) high = lt - 1;
            else if (target > gt) low = gt + 1;
            else return pivot;
        }
        return values[target];
    }

    private static int Greedy(ReadOnlySpan<float> logits)
    {
        // IndexOfMax returns the first index of the maximum, or the first NaN if there is one.
        int best = TensorPrimitives.IndexOfMax(logits);
        if (float.IsNaN(logits[best])) ThrowNaN(best);
        return best;
    }

    private static double Sum(ReadOnlySpan<float> weights)
    {
        double total = 0;
        foreach (float w in weights) total += w;
        return total;
    }

    private void EnsureScratch(int vocabSize)
    {
        if (_weights.Length >= vocabSize) return;
        _weights = new float[vocabSize];
        _candidates = new int[vocabSize];
        _selection = new float[vocabSize];
    }

    [DoesNotReturn]
    private static void ThrowNaN(int index) =>
        throw new ArgumentException($"logit {index} is NaN", "logits");

    [DoesNotReturn]
    private static void ThrowNoFiniteMaximum(float max) =>
        throw new ArgumentException(float.IsNaN(max) ? "the logits contain NaN" : $"the largest logit is {max}; sampling needs a finite maximum", "logits");
}
