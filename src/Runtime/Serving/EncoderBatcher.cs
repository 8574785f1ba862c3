using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace TransformerGen.Serving;

/// <summary>
/// Dynamic batching for an encoder: sequences from any number of concurrent callers are grouped into batches of up to
/// Batch sequences and a token budget, laid end to end with no padding, and run by a pool of model instances (one thread
/// each; typically all over one shared <see cref="ModelWeights"/>). Each caller awaits only its own output row.
/// </summary>
/// <remarks>
/// <para>
/// One queue (a bounded <see cref="Channel{T}"/>) holds the callers' sequences in arrival order. A dispatcher waits for a
/// free instance, takes the oldest sequence, then keeps taking sequences while the batch has room in both limits, waiting
/// at most <see cref="EncoderBatcherOptions.MaxWait"/> for more to arrive when the batch before held more than one
/// sequence (a lone caller is not held back for company that does not come). A sequence that does not fit stays first in the
/// queue for the next batch, so nothing is overtaken. The instance runs the batch with
/// <see cref="EncoderModel.Predict(ReadOnlySpan{int}, ReadOnlySpan{int})"/> on its own thread and hands each caller a copy
/// of its rows; batching changes no result (every sequence attends only to itself).
/// </para>
/// <para>
/// Sentence pairs (a cross-encoder's query and passage) come with each token's type through
/// <see cref="PredictAsync(ReadOnlySpan{int}, ReadOnlySpan{int}, CancellationToken)"/>. A batch holding any of them runs
/// with <see cref="EncoderModel.Predict(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int})"/>, the sequences given
/// without types taking type 0 for every token, which is what the call without types computes; a batch without any runs
/// as before.
/// </para>
/// <para>
/// A caller whose cancellation token fires gets a cancelled task at once; its sequence is dropped if no batch has taken it
/// yet, and otherwise its rows are discarded: the other sequences of the batch are not affected. If a batch throws, each
/// of its sequences runs again alone, so an exception reaches only the caller whose sequence caused it. Sequences that the
/// model would refuse (empty, longer than SeqLen, an id outside the vocabulary, a token type outside its table) are
/// refused in <c>PredictAsync</c> before they are queued.
/// </para>
/// <para>
/// <see cref="DisposeAsync"/> stops accepting sequences, runs every one already queued, and returns when the instances'
/// threads have ended. The batcher does not dispose or otherwise touch the instances afterwards.
/// </para>
/// </remarks>
public sealed class EncoderBatcher : IAsyncDisposable, IDisposable
{
    private readonly Channel<Request> _queue;
    private readonly Channel<int> _idle;
    private readonly Worker[] _workers;
    private readonly Task _dispatcher;
    private readonly ModelLayout _layout;
    private readonly bool _rowPerToken;
    private readonly TimeSpan _maxWait;
    private readonly Action<EncoderBatch>? _batchCompleted;
    private int _disposed;

    /// <summary>Starts one thread per instance and the dispatcher.</summary>
    /// <param name="instances">The instances to run batches on, one thread each: distinct, all of one model.</param>
    /// <param name="options">Limits and the wait; the model's Batch and <c>Batch·SeqLen</c> tokens when null.</param>
    /// <exception cref="ArgumentException">No instances, the same instance twice, instances of different models, or a limit outside what the model allows.</exception>
    public EncoderBatcher(IReadOnlyList<EncoderModel> instances, EncoderBatcherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(instances);
        options ??= new EncoderBatcherOptions();
        if (instances.Count == 0) throw new ArgumentException("the batcher needs at least one model instance", nameof(instances));
        _layout = instances[0].Layout;
        var seen = new HashSet<EncoderModel>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < instances.Count; i++)
        {
            EncoderModel model = instances[i] ?? throw new ArgumentException($"instances[{i}] is null", nameof(instances));
            if (!seen.Add(model))
                throw new ArgumentException($"instances[{i}] is given twice: an instance runs one call at a time, so each worker needs its own", nameof(instances));
            if (model.Layout != _layout)
                throw new ArgumentException($"instances[{i}] is a {model.Layout.Name}, instances[0] a {_layout.Name}: one batcher serves one model", nameof(instances));
        }

        MaxSequences = options.MaxSequences ?? _layout.Batch;
        if (MaxSequences < 1 || MaxSequences > _layout.Batch)
            throw new ArgumentException($"MaxSequences = {MaxSequences} is outside 1 to the model's Batch = {_layout.Batch}", nameof(options));
        MaxTokens = options.MaxTokens ?? _layout.TokensPerStep;
        if (MaxTokens < _layout.SeqLen || MaxTokens > _layout.TokensPerStep)
            throw new ArgumentException($"MaxTokens = {MaxTokens} is outside SeqLen = {_layout.SeqLen} (one whole sequence must fit) to Batch·SeqLen = {_layout.TokensPerStep}", nameof(options));
        if (options.MaxWait < TimeSpan.Zero)
            throw new ArgumentException($"MaxWait = {options.MaxWait} is negative", nameof(options));
        if (options.QueueCapacity < 1)
            throw new ArgumentException($"QueueCapacity = {options.QueueCapacity} must be at least 1", nameof(options));
        _maxWait = options.MaxWait;
        _batchCompleted = options.BatchCompleted;
        // A tagger answers one row per token; classifiers and embedders one row per sequence.
        _rowPerToken = _layout.TargetLength != _layout.Batch;

        _queue = Channel.CreateBounded<Request>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _idle = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
        _workers = new Worker[instances.Count];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Worker(this, instances[i], i);
            _idle.Writer.TryWrite(i);
        }
        _dispatcher = Task.Run(DispatchAsync);
    }

    /// <summary>Sequences per batch at most.</summary>
    public int MaxSequences { get; }

    /// <summary>Tokens per batch at most.</summary>
    public int MaxTokens { get; }

    /// <summary>Instances, each with its own thread.</summary>
    public int Workers => _workers.Length;

    /// <summary>Sequences queued and not yet taken into a batch (cancelled ones included until the dispatcher drops them).</summary>
    public int Queued => _queue.Reader.Count;

    /// <summary>
    /// The output of one sequence, computed in a batch with other callers' sequences: a copy of its row (an embedding or
    /// class logits, <c>[width]</c>), or of its rows for a tagger (<c>[tokens.Length, Classes]</c>). The result equals that
    /// of the sequence run alone.
    /// </summary>
    /// <param name="tokens">1 to SeqLen ids of the vocabulary (copied before this returns).</param>
    /// <param name="cancellationToken">Cancels this caller's wait only.</param>
    /// <exception cref="ArgumentException">No tokens, or more than SeqLen.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id outside the vocabulary; the message names the position.</exception>
    /// <exception cref="ObjectDisposedException">The batcher is disposed (also as the task's exception if it was disposed while the caller waited for room in the queue).</exception>
    public Task<float[]> PredictAsync(ReadOnlySpan<int> tokens, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        SequenceChecks.Ids(tokens, _layout, "a sequence", nameof(tokens));
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<float[]>(cancellationToken);
        return Enqueue(new Request(tokens.ToArray(), null, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// As <see cref="PredictAsync(ReadOnlySpan{int}, CancellationToken)"/> for a sequence whose tokens each have a type
    /// (segment): a sentence pair <c>[CLS] a [SEP] b [SEP]</c> with type 0 up to the first <c>[SEP]</c> and 1 after it, as
    /// Hugging Face's <c>token_type_ids</c>. The result equals
    /// <see cref="EncoderModel.Predict(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int})"/> of the sequence alone.
    /// </summary>
    /// <param name="tokens">1 to SeqLen ids of the vocabulary (copied before this returns).</param>
    /// <param name="tokenTypes">Each token's type, as many as <paramref name="tokens"/>, each below the model's <see cref="ModelLayout.TokenTypes"/> (copied before this returns).</param>
    /// <param name="cancellationToken">Cancels this caller's wait only.</param>
    /// <exception cref="InvalidOperationException">The model has no token types.</exception>
    /// <exception cref="ArgumentException">No tokens, more than SeqLen, or not as many types as tokens.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id outside the vocabulary or a type outside the model's table; the message names the position.</exception>
    /// <exception cref="ObjectDisposedException">The batcher is disposed (also as the task's exception if it was disposed while the caller waited for room in the queue).</exception>
    public Task<float[]> PredictAsync(ReadOnlySpan<int> tokens, ReadOnlySpan<int> tokenTypes, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        SequenceChecks.Ids(tokens, _layout, "a sequence", nameof(tokens));
        SequenceChecks.Types(tokens, tokenTypes, _layout, nameof(tokenTypes));
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<float[]>(cancellationToken);
        return Enqueue(new Request(tokens.ToArray(), tokenTypes.ToArray(), cancellationToken), cancellationToken);
    }

    private Task<float[]> Enqueue(Request request, CancellationToken cancellationToken)
    {
        if (!_queue.Writer.TryWrite(request)) return EnqueueAsync(request, cancellationToken);
        return request.Task;
    }

    private async Task<float[]> EnqueueAsync(Request request, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            request.Dispose();
            throw new ObjectDisposedException(nameof(EncoderBatcher));
        }
        catch (OperationCanceledException)
        {
            request.Dispose();
            throw;
        }
        return await request.Task.ConfigureAwait(false);
    }

    private async Task DispatchAsync()
    {
        ChannelReader<Request> queue = _queue.Reader;
        var batch = new List<Request>(MaxSequences);
        // Whether a batch waits for more sequences after the queue runs dry: only while batches hold more than one. A lone
        // caller (one client awaiting each answer before it asks again) has nobody to wait for, and would otherwise pay the
        // wait on every sequence (1 ms of a 14 ms MiniLM pass); once sequences queue up together again, so does the wait.
        bool waitForMore = true;
        try
        {
            while (true)
            {
                int worker = await _idle.Reader.ReadAsync().ConfigureAwait(false);
                Request? first = await NextLiveAsync(queue).ConfigureAwait(false);
                if (first is null) break; // completed and empty: every queued sequence has been handed out
                batch.Add(first);
                int tokens = first.Tokens.Length;
                long deadline = Stopwatch.GetTimestamp() + (waitForMore ? (long)(_maxWait.TotalSeconds * Stopwatch.Frequency) : 0);
                while (batch.Count < MaxSequences)
                {
                    if (queue.TryPeek(out Request? next))
                    {
                        if (next.Task.IsCompleted) // cancelled while queued
                        {
                            queue.TryRead(out _);
                            next.Dispose();
                            continue;
                        }
                        if (tokens + next.Tokens.Length > MaxTokens) break; // stays first for the next batch
                        queue.TryRead(out _);
                        batch.Add(next);
                        tokens += next.Tokens.Length;
                        continue;
                    }
                    long remaining = deadline - Stopwatch.GetTimestamp();
                    if (remaining <= 0 || !await MoreWithinAsync(queue, remaining).ConfigureAwait(false)) break;
                }
                waitForMore = batch.Count > 1;
                _workers[worker].Post([.. batch]);
                batch.Clear();
            }
        }
        catch (Exception e)
        {
            // Not expected: fail what is queued rather than leave callers waiting forever.
            foreach (Request r in batch) r.Fail(e);
            _queue.Writer.TryComplete(e);
            while (queue.TryRead(out Request? r)) r.Fail(e);
        }
        finally
        {
            foreach (Worker w in _workers) w.Complete();
        }
    }

    /// <summary>The oldest request not yet cancelled, waiting as long as it takes; null once the queue is completed and empty.</summary>
    private static async ValueTask<Request?> NextLiveAsync(ChannelReader<Request> queue)
    {
        while (await queue.WaitToReadAsync().ConfigureAwait(false))
        {
            while (queue.TryRead(out Request? request))
            {
                if (!request.Task.IsCompleted) return request;
                request.Dispose();
            }
        }
        return null;
    }

    /// <summary>True when a request arrives within <paramref name="ticks"/> Stopwatch ticks.</summary>
    private static async ValueTask<bool> MoreWithinAsync(ChannelReader<Request> queue, long ticks)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds((double)ticks / Stopwatch.Frequency));
        try
        {
            return await queue.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Stops accepting sequences, runs every queued one, and waits for the instances' threads to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _queue.Writer.TryComplete();
        await _dispatcher.ConfigureAwait(false);
        foreach (Worker w in _workers) await w.Finished.ConfigureAwait(false);
    }

    /// <summary>As <see cref="DisposeAsync"/>, blocking.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>One caller's sequence and the task it awaits.</summary>
    private sealed class Request : TaskCompletionSource<float[]>, IDisposable
    {
        private readonly CancellationTokenRegistration _cancellation;

        public Request(int[] tokens, int[]? tokenTypes, CancellationToken cancellationToken) : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
            Tokens = tokens;
            TokenTypes = tokenTypes;
            if (cancellationToken.CanBeCanceled)
                _cancellation = cancellationToken.Register(static (state, token) => ((Request)state!).TrySetCanceled(token), this);
        }

        public int[] Tokens { get; }

        /// <summary>Each token's type, or null when the caller gave none (every token of type 0).</summary>
        public int[]? TokenTypes { get; }

        public void Succeed(float[] rows)
        {
            TrySetResult(rows);
            Dispose();
        }

        public void Fail(Exception e)
        {
            TrySetException(e);
            Dispose();
        }

        public void Dispose() => _cancellation.Dispose();
    }

    /// <summary>An instance and the thread that runs its batches.</summary>
    private sealed class Worker
    {
        private readonly EncoderBatcher _owner;
        private readonly EncoderModel _model;
        private readonly int _index;
        private readonly Channel<Request[]> _batches = Channel.CreateUnbounded<Request[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly int[] _tokens;
        private readonly int[] _lengths;
        // The batch's token types, laid out as _tokens (empty when the model has no token types).
        private readonly int[] _types;
        private readonly Request[] _live;

        public Worker(EncoderBatcher owner, EncoderModel model, int index)
        {
            _owner = owner;
            _model = model;
            _index = index;
            _tokens = new int[owner.MaxTokens];
            _lengths = new int[owner.MaxSequences];
            _types = new int[owner._layout.TokenTypes > 0 ? owner.MaxTokens : 0];
            _live = new Request[owner.MaxSequences];
            var thread = new Thread(Run) { IsBackground = true, Name = $"{model.Layout.Name} batcher {index}" };
            thread.Start();
        }

        public Task Finished => _finished.Task;

        public void Post(Request[] batch) => _batches.Writer.TryWrite(batch);

        public void Complete() => _batches.Writer.TryComplete();

        private void Run()
        {
            try
            {
                ChannelReader<Request[]> reader = _batches.Reader;
                while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                {
                    while (reader.TryRead(out Request[]? batch))
                    {
                        RunBatch(batch);
                        _owner._idle.Writer.TryWrite(_index);
                    }
                }
            }
            finally
            {
                _finished.TrySetResult();
            }
        }

        private void RunBatch(Request[] batch)
        {
            // Callers that cancelled since the batch was formed are left out.
            int count = 0, used = 0;
            bool typed = false;
            foreach (Request r in batch)
            {
                if (r.Task.IsCompleted)
                {
                    r.Dispose();
                    continue;
                }
                r.Tokens.CopyTo(_tokens.AsSpan(used));
                if (_types.Length > 0)
                {
                    // A sequence given without types is of type 0 throughout, as the call without types takes it.
                    if (r.TokenTypes is null) _types.AsSpan(used, r.Tokens.Length).Clear();
                    else r.TokenTypes.CopyTo(_types.AsSpan(used));
                    typed |= r.TokenTypes is not null;
                }
                _lengths[count] = r.Tokens.Length;
                _live[count++] = r;
                used += r.Tokens.Length;
            }
            if (count == 0) return;

            long started = Stopwatch.GetTimestamp();
            try
            {
                ReadOnlySpan<float> output = typed
                    ? _model.Predict(_tokens.AsSpan(0, used), _lengths.AsSpan(0, count), _types.AsSpan(0, used))
                    : _model.Predict(_tokens.AsSpan(0, used), _lengths.AsSpan(0, count));
                int rows = _owner._rowPerToken ? used : count;
                int width = output.Length / rows;
                int row = 0;
                for (int s = 0; s < count; s++)
                {
                    int n = _owner._rowPerToken ? _lengths[s] : 1;
                    _live[s].Succeed(output.Slice(row * width, n * width).ToArray());
                    row += n;
                }
            }
            catch (Exception) when (count > 1)
            {
                // One sequence spoiled the batch: run each alone so the exception reaches only its caller.
                for (int s = 0; s < count; s++) RunAlone(_live[s]);
            }
            catch (Exception e)
            {
                _live[0].Fail(e);
            }
            finally
            {
                Array.Clear(_live, 0, count);
            }

            try
            {
                _owner._batchCompleted?.Invoke(new EncoderBatch(count, used, Stopwatch.GetElapsedTime(started), _index));
            }
            catch (Exception)
            {
                // Metrics must not stop the batcher.
            }
        }

        private void RunAlone(Request request)
        {
            try
            {
                _lengths[0] = request.Tokens.Length;
                ReadOnlySpan<float> output = request.TokenTypes is null
                    ? _model.Predict(request.Tokens, _lengths.AsSpan(0, 1))
                    : _model.Predict(request.Tokens, _lengths.AsSpan(0, 1), request.TokenTypes);
                request.Succeed(output.ToArray());
            }
            catch (Exception e)
            {
                request.Fail(e);
            }
        }
    }
}
