using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace TransformerGen.Serving;

/// <summary>
/// Continuous batching for a decoder: generations from any number of concurrent callers share one model instance, whose
/// key/value cache slots (Sequences) each hold one generation. Every step is one exact-length pass over the next token of each
/// running generation and a chunk of the prompt of each starting one
/// (<see cref="LanguageModel.Append(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int})"/>), so the weights are read
/// once per step for all of them. A generation joins at the next step after a slot frees and leaves as soon as it ends.
/// </summary>
/// <remarks>
/// <para>
/// Each caller gets its tokens as they are sampled (<see cref="GenerateAsync(ReadOnlySpan{int}, int, Sampler?, CancellationToken)"/>), drawn by its own <see cref="Sampler"/>
/// from its own row of logits, which equals what the model gives that generation alone (within rounding where its prompt
/// continued from a slot's cache, see below). A generation ends after its
/// token limit, on a stop token (not returned), or when its cache is full (SeqLen positions: the batcher does not slide
/// the window as <see cref="LanguageModel.Generate(ReadOnlySpan{int}, Span{int}, Sampler)"/> does).
/// </para>
/// <para>
/// A generation whose prompt begins as a free slot's cached tokens do continues from them and runs only the rest
/// (<see cref="DecoderBatcherOptions.ReusePrefixes"/>), as a chat client's next turn does after its last reply.
/// Running generations take their one token per step first; prompts share what is left of
/// <see cref="DecoderBatcherOptions.MaxTokensPerStep"/> in arrival order, a long one over several steps. A caller that
/// cancels, or stops enumerating, frees its slot at the next step; the others are not affected. If a step throws, the
/// generations in it end with that exception. Prompts the model would refuse (empty, longer than SeqLen, an id outside
/// the vocabulary) are refused by <see cref="GenerateAsync(ReadOnlySpan{int}, int, Sampler?, CancellationToken)"/> before they are queued.
/// </para>
/// <para>
/// The batcher owns the instance while it runs: one thread of its own calls it, and any other call on the instance meanwhile
/// fails (the instance's concurrency guard). <see cref="DisposeAsync"/> stops accepting generations, runs every queued and
/// running one to its end, and returns when the thread has ended.
/// </para>
/// </remarks>
public sealed class DecoderBatcher : IAsyncDisposable, IDisposable
{
    private readonly LanguageModel _model;
    private readonly ModelLayout _layout;
    private readonly Channel<Generation> _queue;
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<int> _stopTokens;
    private readonly Action<DecoderStep>? _stepCompleted;
    private readonly Sampler _greedy = new(0) { Temperature = 0f };
    // By cache slot: the generation holding it, or null. Only the batcher's thread reads or writes these.
    private readonly Generation?[] _slots;
    private readonly List<Generation> _running = [];
    private readonly int[] _tokens;
    private readonly int[] _lengths;
    private readonly int[] _sequences;
    private readonly Generation[] _inStep;
    private readonly bool _reusePrefixes;
    // By cache slot: the ids whose keys and values it holds (the first _heldLength[slot] of them).
    private readonly int[][] _held;
    private readonly int[] _heldLength;
    private readonly long[] _admitted;          // by slot: when a generation last took it (an admission count; 0: never)
    private long _admissions;
    private int _reusedSinceStep;
    private long _reused;
    private int _active;
    private int _disposed;

    /// <summary>Starts the batcher's thread over <paramref name="model"/>.</summary>
    /// <param name="model">A decoder-only instance (typically <c>ForInference</c>), used by the batcher alone from now on.</param>
    /// <param name="options">Limits, stop tokens and the queue; defaults when null.</param>
    /// <exception cref="ArgumentException">A limit outside what the model allows, or a stop token outside the vocabulary.</exception>
    public DecoderBatcher(LanguageModel model, DecoderBatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new DecoderBatcherOptions();
        _model = model;
        _layout = model.Layout;
        MaxSequences = options.MaxSequences ?? _layout.Sequences;
        if (MaxSequences < 1 || MaxSequences > _layout.Sequences)
            throw new ArgumentException($"MaxSequences = {MaxSequences} is outside 1 to the model's Sequences = {_layout.Sequences}", nameof(options));
        MaxTokensPerStep = options.MaxTokensPerStep ?? Math.Max(_layout.SeqLen, MaxSequences);
        if (MaxTokensPerStep < MaxSequences || MaxTokensPerStep > _layout.InferenceTokens)
            throw new ArgumentException($"MaxTokensPerStep = {MaxTokensPerStep} is outside MaxSequences = {MaxSequences} (one token of each running generation must fit) to the {_layout.InferenceTokens} tokens one pass takes", nameof(options));
        if (options.QueueCapacity < 1)
            throw new ArgumentException($"QueueCapacity = {options.QueueCapacity} must be at least 1", nameof(options));
        _stopTokens = options.StopTokens is { } stop ? [.. stop] : _layout.EndTokens.Count > 0 ? [.. _layout.EndTokens] : _layout.EosToken >= 0 ? [_layout.EosToken] : [];
        foreach (int id in _stopTokens)
            if ((uint)id >= (uint)_layout.Vocab)
                throw new ArgumentException($"stop token {id} is outside the vocabulary of {_layout.Name} (0 to {_layout.Vocab - 1})", nameof(options));
        _stepCompleted = options.StepCompleted;
        _reusePrefixes = options.ReusePrefixes;

        _queue = Channel.CreateBounded<Generation>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _slots = new Generation?[_layout.Sequences];
        _tokens = new int[MaxTokensPerStep];
        _lengths = new int[MaxSequences];
        _sequences = new int[MaxSequences];
        _inStep = new Generation[MaxSequences];
        _held = new int[_layout.Sequences][];
        for (int s = 0; s < _held.Length; s++) _held[s] = new int[_layout.SeqLen];
        _heldLength = new int[_layout.Sequences];
        _admitted = new long[_layout.Sequences];
        var thread = new Thread(Run) { IsBackground = true, Name = $"{_layout.Name} decoder batcher" };
        thread.Start();
    }

    /// <summary>Generations running at once at most.</summary>
    public int MaxSequences { get; }

    /// <summary>Prompt tokens that generations took from a free slot's cache instead of running them, since the start (<see cref="DecoderBatcherOptions.ReusePrefixes"/>).</summary>
    public long ReusedPromptTokens => Interlocked.Read(ref _reused);

    /// <summary>Tokens per step at most.</summary>
    public int MaxTokensPerStep { get; }

    /// <summary>Generations holding a cache slot now.</summary>
    public int Active => Volatile.Read(ref _active);

    /// <summary>Generations waiting for a slot (cancelled ones included until the batcher drops them).</summary>
    public int Queued => _queue.Reader.Count;

    /// <summary>
    /// Continues <paramref name="prompt"/> by up to <paramref name="maxNewTokens"/> tokens, sampled in steps shared with the
    /// other callers' generations, and yields each as soon as its step ends. Enumerate it once; stopping early (or
    /// cancelling) ends the generation and frees its slot.
    /// </summary>
    /// <param name="prompt">1 to SeqLen ids of the vocabulary (copied before this returns).</param>
    /// <param name="maxNewTokens">Tokens to generate at most, at least 1.</param>
    /// <param name="sampler">Draws this generation's tokens (greedy when null), its penalties reading the prompt and the tokens generated so far. The batcher's thread calls it; give each generation its own, so its draws depend on its seed alone.</param>
    /// <param name="cancellationToken">Ends this generation only.</param>
    /// <exception cref="ArgumentException">No prompt tokens, or more than SeqLen.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id outside the vocabulary (the message names the position), or <paramref name="maxNewTokens"/> below 1.</exception>
    /// <exception cref="ObjectDisposedException">The batcher is disposed (also from the enumeration if it was disposed while the caller waited for room in the queue).</exception>
    public IAsyncEnumerable<int> GenerateAsync(ReadOnlySpan<int> prompt, int maxNewTokens, Sampler? sampler = null, CancellationToken cancellationToken = default) =>
        GenerateAsync(prompt, maxNewTokens, sampler, admitted: null, cancellationToken);

    /// <summary>
    /// As <see cref="GenerateAsync(ReadOnlySpan{int}, int, Sampler?, CancellationToken)"/>, and tells
    /// <paramref name="admitted"/> how many of the prompt's tokens the generation took from its slot's cache when it takes
    /// a slot (<see cref="DecoderBatcherOptions.ReusePrefixes"/>; 0 when none).
    /// </summary>
    /// <param name="prompt">1 to SeqLen ids of the vocabulary (copied before this returns).</param>
    /// <param name="maxNewTokens">Tokens to generate at most, at least 1.</param>
    /// <param name="sampler">Draws this generation's tokens (greedy when null).</param>
    /// <param name="admitted">Called once, on the batcher's thread, before the generation's first step; it must be quick and must not throw. Null for none.</param>
    /// <param name="cancellationToken">Ends this generation only.</param>
    public IAsyncEnumerable<int> GenerateAsync(ReadOnlySpan<int> prompt, int maxNewTokens, Sampler? sampler, Action<int>? admitted, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        SequenceChecks.Ids(prompt, _layout, "a prompt", nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);

        // No generation outlives the cache: it holds SeqLen positions, the prompt's included.
        var generation = new Generation(prompt.ToArray(), Math.Min(maxNewTokens, _layout.SeqLen - prompt.Length + 1), sampler ?? _greedy) { Admitted = admitted };
        bool queued = !cancellationToken.IsCancellationRequested && _queue.Writer.TryWrite(generation);
        return Stream(generation, queued, cancellationToken);
    }

    private async IAsyncEnumerable<int> Stream(Generation generation, bool queued, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using CancellationTokenRegistration registration = cancellationToken.Register(static state => ((Generation)state!).Stop(), generation);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!queued)
            {
                try
                {
                    await _queue.Writer.WriteAsync(generation, cancellationToken).ConfigureAwait(false);
                }
                catch (ChannelClosedException)
                {
                    throw new ObjectDisposedException(nameof(DecoderBatcher));
                }
            }
            ChannelReader<int> tokens = generation.Tokens.Reader;
            while (await tokens.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (tokens.TryRead(out int token))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    yield return token;
                }
            }
        }
        finally
        {
            // Cancelled, stopped early or done: the batcher frees the slot at its next step if it still holds one.
            generation.Stop();
        }
    }

    /// <summary>The batcher's thread: admit waiting generations into free slots, run a step, until disposed and drained.</summary>
    private void Run()
    {
        try
        {
            ChannelReader<Generation> queue = _queue.Reader;
            while (true)
            {
                Admit(queue);
                if (_running.Count == 0)
                {
                    if (!queue.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) break; // completed and empty
                    continue;
                }
                Step();
            }
        }
        catch (Exception e)
        {
            // Not expected: end every generation rather than leave callers waiting forever.
            foreach (Generation g in _running) g.Fail(e);
            _queue.Writer.TryComplete(e);
            while (_queue.Reader.TryRead(out Generation? g)) g.Fail(e);
        }
        finally
        {
            _finished.TrySetResult();
        }
    }

    /// <summary>Moves queued generations into free cache slots, dropping those already stopped.</summary>
    private void Admit(ChannelReader<Generation> queue)
    {
        while (_running.Count < MaxSequences && queue.TryRead(out Generation? generation))
        {
            if (generation.Stopped)
            {
                generation.Complete();
                continue;
            }
            // The free slot whose cache shares the longest beginning with the prompt, cut to that beginning (at least the
            // prompt's last token is run, for its logits); among equals the one taken longest ago, so that a slot whose
            // cache shares nothing overwrites the oldest conversation's.
            int slot = -1, reused = -1;
            for (int s = 0; s < _slots.Length; s++)
            {
                if (_slots[s] is not null) continue;
                int common = _reusePrefixes ? _held[s].AsSpan(0, _heldLength[s]).CommonPrefixLength(generation.Prompt.AsSpan(0, generation.Prompt.Length - 1)) : 0;
                if (common > reused || common == reused && _admitted[s] < _admitted[slot]) (slot, reused) = (s, common);
            }
            _admitted[slot] = ++_admissions;
            reused = Math.Min(reused, _model.CacheLengthOf(slot)); // the slot's record and the model agree; this keeps a cut in range regardless
            _model.TruncateCache(slot, reused);
            _heldLength[slot] = reused;
            generation.Fed = reused;
            _reusedSinceStep += reused;
            Interlocked.Add(ref _reused, reused);
            try
            {
                generation.Admitted?.Invoke(reused);
            }
            catch (Exception)
            {
                // A caller's callback must not stop the batcher.
            }
            _slots[slot] = generation;
            generation.Slot = slot;
            _running.Add(generation);
            Interlocked.Increment(ref _active);
        }
    }

    /// <summary>One call of the model: the next token of each decoding generation, then prompt chunks within the budget.</summary>
    private void Step()
    {
        // Generations whose callers left are dropped first.
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].Stopped) Release(i);
        if (_running.Count == 0) return;

        int count = 0, used = 0;
        foreach (Generation g in _running)
        {
            if (!g.Decoding) continue;
            _tokens[used++] = g.Next;
            Add(g, 1);
        }
        foreach (Generation g in _running)
        {
            if (g.Decoding || used == MaxTokensPerStep) continue;
            int chunk = Math.Min(g.Prompt.Length - g.Fed, MaxTokensPerStep - used);
            g.Prompt.AsSpan(g.Fed, chunk).CopyTo(_tokens.AsSpan(used));
            used += chunk;
            Add(g, chunk);
        }

        void Add(Generation g, int length)
        {
            _inStep[count] = g;
            _lengths[count] = length;
            _sequences[count++] = g.Slot;
        }

        long started = Stopwatch.GetTimestamp();
        int sampled = 0;
        try
        {
            ReadOnlySpan<float> logits = _model.Append(_tokens.AsSpan(0, used), _lengths.AsSpan(0, count), _sequences.AsSpan(0, count));
            for (int i = 0, offset = 0; i < count; offset += _lengths[i++])
            {
                int s = _sequences[i];
                _tokens.AsSpan(offset, _lengths[i]).CopyTo(_held[s].AsSpan(_heldLength[s]));
                _heldLength[s] += _lengths[i];
            }
            int vocab = _layout.Vocab;
            for (int i = 0; i < count; i++)
            {
                Generation g = _inStep[i];
                if (!g.Decoding)
                {
                    g.Fed += _lengths[i];
                    if (g.Fed < g.Prompt.Length) continue; // more of the prompt next step
                }
                sampled++;
                SampleNext(g, logits.Slice(i * vocab, vocab));
            }
        }
        catch (Exception e)
        {
            for (int i = 0; i < count; i++)
            {
                _inStep[i].Fail(e);
                _heldLength[_sequences[i]] = 0; // what the slot holds is no longer known: the next generation there starts it over
            }
        }
        finally
        {
            Array.Clear(_inStep, 0, count);
        }
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].Finished) Release(i);

        try
        {
            _stepCompleted?.Invoke(new DecoderStep(count, used, sampled, Stopwatch.GetElapsedTime(started), _reusedSinceStep));
        }
        catch (Exception)
        {
            // Metrics must not stop the batcher.
        }
        _reusedSinceStep = 0;
    }

    /// <summary>Draws a generation's next token and hands it over, or ends the generation.</summary>
    private void SampleNext(Generation g, ReadOnlySpan<float> logits)
    {
        int next;
        try
        {
            next = g.Sampler.Sample(logits, g.Prompt, g.Generated.AsSpan(0, g.Produced));
        }
        catch (Exception e)
        {
            g.Fail(e);
            return;
        }
        if (_stopTokens.Contains(next))
        {
            g.Complete();
            return;
        }
        g.Tokens.Writer.TryWrite(next);
        g.Generated[g.Produced++] = next;
        g.Next = next;
        g.Decoding = true;
        // The next step would append this token: it needs a free position in the cache.
        if (g.Produced == g.MaxNewTokens || _model.CacheLengthOf(g.Slot) == _layout.SeqLen) g.Complete();
    }

    private void Release(int index)
    {
        Generation g = _running[index];
        g.Complete();
        _slots[g.Slot] = null;
        _running.RemoveAt(index);
        Interlocked.Decrement(ref _active);
    }

    /// <summary>Stops accepting generations, runs every queued and running one to its end, and waits for the thread to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _queue.Writer.TryComplete();
        await _finished.Task.ConfigureAwait(false);
    }

    /// <summary>As <see cref="DisposeAsync"/>, blocking.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>One caller's generation: its prompt, how far it is, and the channel its tokens go out by.</summary>
    private sealed class Generation(int[] prompt, int maxNewTokens, Sampler sampler)
    {
        private int _stopped;

        public int[] Prompt { get; } = prompt;
        public int MaxNewTokens { get; } = maxNewTokens;
        public Sampler Sampler { get; } = sampler;
        public int[] Generated { get; } = new int[maxNewTokens];   // the tokens handed over so far, for the sampler's penalties
        public Action<int>? Admitted { get; init; }
        public Channel<int> Tokens { get; } = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        // The batcher's thread alone reads and writes these.
        public int Slot;
        public int Fed;
        public int Produced;
        public int Next;
        public bool Decoding;
        public bool Finished;

        /// <summary>Whether the caller cancelled or stopped enumerating.</summary>
        public bool Stopped => Volatile.Read(ref _stopped) != 0;

        public void Stop() => Volatile.Write(ref _stopped, 1);

        public void Complete()
        {
            Finished = true;
            Tokens.Writer.TryComplete();
        }

        public void Fail(Exception e)
        {
            Finished = true;
            Tokens.Writer.TryComplete(e);
        }
    }
}
