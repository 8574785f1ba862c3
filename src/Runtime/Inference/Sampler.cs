using System;
using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;

namespace TransformerGen;

/// <summary>
/// Draws the next token from a vector of logits: greedy, or softmax sampling with temperature, top-k, top-p (nucleus)
/// and min-p filtering, after the repetition, presence and frequency penalties. Deterministic for a given seed.
/// Allocates nothing per call once its scratch buffers are as large as the vocabulary.
/// </summary>
/// <remarks>
/// <para>The steps follow Hugging Face's <c>generate()</c>: its logits processor first, then its warpers in their
/// order (<c>RepetitionPenaltyLogitsProcessor</c>, <c>TemperatureLogitsWarper</c>, <c>TopKLogitsWarper</c>,
/// <c>TopPLogitsWarper</c>, <c>MinPLogitsWarper</c>), with OpenAI's presence and frequency penalties after the
/// repetition penalty, as vLLM applies them:</para>
/// <list type="number">
/// <item><see cref="RepetitionPenalty"/> r: the logit l of every distinct token of the prompt and the generated
/// tokens becomes l·r where l &lt; 0 and l/r otherwise (Keskar et al., "CTRL", 2019, §4.1).</item>
/// <item><see cref="FrequencyPenalty"/> f and <see cref="PresencePenalty"/> p: the logit of a token generated c &gt; 0
/// times loses c·f + p. Only generated tokens count, not the prompt's.</item>
/// <item>Top-k keeps every token whose logit is at least the k-th largest (so ties at the boundary are all
/// kept, as <c>TopKLogitsWarper</c> does).</item>
/// <item>The kept logits are divided by the temperature and turned into probabilities (softmax).</item>
/// <item>Top-p keeps the smallest set of most probable tokens whose probabilities sum to at least p
/// (Holtzman et al., "The Curious Case of Neural Text Degeneration", ICLR 2020, §3.1); the token that
/// crosses p is kept, and at least one token always is.</item>
/// <item>Min-p keeps the tokens whose probability is at least <see cref="MinP"/> times the largest one (Nguyen et
/// al., "Turning Up the Heat: Min-p Sampling", 2024).</item>
/// <item>A token is drawn in proportion to the remaining probabilities.</item>
/// </list>
/// <para><see cref="Temperature"/> = 0 or <see cref="TopK"/> = 1 is greedy decoding: the index of the largest
/// logit after the penalties, the lowest such index on ties, with no random number drawn.</para>
/// </remarks>
public sealed class Sampler
{
    private readonly Rng _rng;
    private float _temperature = 1f;
    private int _topK;
    private float _topP = 1f;
    private float _minP;
    private float _repetitionPenalty = 1f;
    private float _presencePenalty;
    private float _frequencyPenalty;

    // Scratch, grown to the vocabulary size at most once per size increase.
    private float[] _weights = [];     // logits of candidates, then their unnormalized probabilities
    private int[] _candidates = [];    // token id of each weight
    private float[] _selection = [];   // a copy of the logits for the k-th-largest selection
    private float[] _penalized = [];   // the logits after the penalties
    private int[] _counts = [];        // per token: marks (repetition) or occurrences (frequency); all zero between calls

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

    /// <summary>The smallest probability kept, as a fraction of the most probable token's, in [0, 1]; 0 turns the filter off. Default 0.</summary>
    public float MinP
    {
        get => _minP;
        set
        {
            if (!(value >= 0f && value <= 1f)) throw new ArgumentOutOfRangeException(nameof(value), value, "MinP must be in [0, 1] (0 = off)");
            _minP = value;
        }
    }

    /// <summary>
    /// Hugging Face's <c>repetition_penalty</c>: positive and finite, 1 turns it off, above 1 discourages repeating a
    /// token of the prompt or of the reply. Default 1.
    /// </summary>
    public float RepetitionPenalty
    {
        get => _repetitionPenalty;
        set
        {
            if (!(value > 0f) || float.IsPositiveInfinity(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "RepetitionPenalty must be positive and finite (1 = off)");
            _repetitionPenalty = value;
        }
    }

    /// <summary>OpenAI's <c>presence_penalty</c>: subtracted once from the logit of every token the reply already holds; finite, 0 turns it off. Default 0.</summary>
    public float PresencePenalty
    {
        get => _presencePenalty;
        set
        {
            if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "PresencePenalty must be finite (0 = off)");
            _presencePenalty = value;
        }
    }

    /// <summary>OpenAI's <c>frequency_penalty</c>: subtracted from a token's logit as many times as the reply holds the token; finite, 0 turns it off. Default 0.</summary>
    public float FrequencyPenalty
    {
        get => _frequencyPenalty;
        set
        {
            if (!float.IsFinite(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "FrequencyPenalty must be finite (0 = off)");
            _frequencyPenalty = value;
        }
    }

    /// <summary>True when a penalty is set, so the tokens given to <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int}, ReadOnlySpan{int})"/> change the draw.</summary>
    public bool UsesHistory => _repetitionPenalty != 1f || _presencePenalty != 0f || _frequencyPenalty != 0f;

    private bool Greedy => _temperature == 0f || _topK == 1;

    /// <summary>Chooses a token index from <paramref name="logits"/> (one per vocabulary entry), with no tokens before it for the penalties.</summary>
    /// <exception cref="ArgumentException">The logits are empty, contain NaN, or have no finite maximum.</exception>
    public int Sample(ReadOnlySpan<float> logits) => Sample(logits, [], []);

    /// <summary>
    /// Chooses a token index from <paramref name="logits"/> (one per vocabulary entry), the penalties counting the
    /// tokens the sequence already holds.
    /// </summary>
    /// <param name="logits">The model's logits for the next token.</param>
    /// <param name="prompt">The tokens before the reply (the repetition penalty reads them).</param>
    /// <param name="generated">The reply's tokens so far (every penalty reads them).</param>
    /// <exception cref="ArgumentException">The logits are empty, contain NaN, or have no finite maximum.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token is not an index of <paramref name="logits"/>.</exception>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> prompt, ReadOnlySpan<int> generated)
    {
        if (logits.IsEmpty) throw new ArgumentException("there are no logits to sample from", nameof(logits));
        logits = Penalize(logits, prompt, generated);
        if (Greedy) return ArgMax(logits);

        int count = Distribution(logits, out double total);
        double target = _rng.NextFloat() * total, running = 0;
        for (int i = 0; i < count - 1; i++)
        {
            running += _weights[i];
            if (target < running) return _candidates[i];
        }
        return _candidates[count - 1]; // the last one also absorbs rounding in the running sum
    }

    /// <summary>
    /// The probabilities that <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int}, ReadOnlySpan{int})"/> would draw
    /// the next token from, with the same arguments: after the penalties and filters, zero for every token they remove
    /// (greedy decoding: 1 for its token). Draws no random number.
    /// </summary>
    /// <param name="logits">The model's logits for the next token.</param>
    /// <param name="prompt">The tokens before the reply.</param>
    /// <param name="generated">The reply's tokens so far.</param>
    /// <param name="probabilities">One per logit, overwritten.</param>
    /// <exception cref="ArgumentException">As for sampling, or <paramref name="probabilities"/> is not as long as <paramref name="logits"/>.</exception>
    public void Probabilities(ReadOnlySpan<float> logits, ReadOnlySpan<int> prompt, ReadOnlySpan<int> generated, Span<float> probabilities)
    {
        if (logits.IsEmpty) throw new ArgumentException("there are no logits to sample from", nameof(logits));
        if (probabilities.Length != logits.Length) throw new ArgumentException($"probabilities has {probabilities.Length} entries for {logits.Length} logits", nameof(probabilities));
        logits = Penalize(logits, prompt, generated);
        probabilities.Clear();
        if (Greedy)
        {
            probabilities[ArgMax(logits)] = 1f;
            return;
        }

        int count = Distribution(logits, out double total);
        for (int i = 0; i < count; i++) probabilities[_candidates[i]] = (float)(_weights[i] / total);
    }

    /// <summary>
    /// The logits after the repetition, frequency and presence penalties: <paramref name="logits"/> itself when none is
    /// set, else a scratch copy. The marks and counts go back to zero before it returns.
    /// </summary>
    private ReadOnlySpan<float> Penalize(ReadOnlySpan<float> logits, ReadOnlySpan<int> prompt, ReadOnlySpan<int> generated)
    {
        int n = logits.Length;
        CheckTokens(prompt, n, nameof(prompt));
        CheckTokens(generated, n, nameof(generated));
        if (!UsesHistory) return logits;
        EnsureScratch(n);
        Span<float> penalized = _penalized.AsSpan(0, n);
        logits.CopyTo(penalized);
        Span<int> counts = _counts.AsSpan(0, n);

        float r = _repetitionPenalty;
        if (r != 1f)
        {
            // Each distinct token once, however often it occurs (Hugging Face gathers, penalizes and scatters back).
            Repeat(prompt, penalized, counts, r);
            Repeat(generated, penalized, counts, r);
            foreach (int t in prompt) counts[t] = 0;
            foreach (int t in generated) counts[t] = 0;
        }

        if (_frequencyPenalty != 0f || _presencePenalty != 0f)
        {
            foreach (int t in generated) counts[t]++;
            foreach (int t in generated)
                if (counts[t] > 0)
                {
                    penalized[t] -= counts[t] * _frequencyPenalty + _presencePenalty;
                    counts[t] = 0;
                }
        }
        return penalized;
    }

    // The repetition penalty on each token of tokens not marked yet, which it marks.
    private static void Repeat(ReadOnlySpan<int> tokens, Span<float> logits, Span<int> marks, float penalty)
    {
        foreach (int t in tokens)
            if (marks[t] == 0)
            {
                marks[t] = 1;
                logits[t] = logits[t] < 0f ? logits[t] * penalty : logits[t] / penalty;
            }
    }

    private static void CheckTokens(ReadOnlySpan<int> tokens, int vocabulary, string name)
    {
        for (int i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)vocabulary)
                throw new ArgumentOutOfRangeException(name, tokens[i], $"{name}[{i}] = {tokens[i]} is not a token of the {vocabulary} logits");
    }

    /// <summary>
    /// Top-k, the tempered softmax, top-p and min-p: leaves the surviving tokens in the scratch (ids in
    /// <c>_candidates</c>, unnormalized probabilities in <c>_weights</c>), returns their count and their sum.
    /// </summary>
    private int Distribution(ReadOnlySpan<float> logits, out double total)
    {
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
        total = Sum(weights);

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

        if (_minP > 0f)
        {
            // The most probable token's weight is exp(0) = 1, so the bound on a weight is MinP itself; the kept tokens
            // stay in their order.
            int kept = 0;
            total = 0;
            for (int i = 0; i < count; i++)
                if (_weights[i] >= _minP)
                {
                    _weights[kept] = _weights[i];
                    _candidates[kept++] = _candidates[i];
                    total += _weights[i];
                }
            count = kept;
        }
        return count;
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

    private static int ArgMax(ReadOnlySpan<float> logits)
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
        _penalized = new float[vocabSize];
        _counts = new int[vocabSize];
    }

    [DoesNotReturn]
    private static void ThrowNaN(int index) =>
        throw new ArgumentException($"logit {index} is NaN", "logits");

    [DoesNotReturn]
    private static void ThrowNoFiniteMaximum(float max) =>
        throw new ArgumentException(float.IsNaN(max) ? "the logits contain NaN" : $"the largest logit is {max}; sampling needs a finite maximum", "logits");
}
