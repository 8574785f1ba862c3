using System;
using System.Threading;
using TransformerGen.Serving;

namespace TransformerGen.Samples.Tests.ChatServer;

/// <summary>
/// Holds the batcher's thread after each step until the test permits the next, so that a test knows exactly how far
/// every generation has got when its client does something (the batcher calls its step observers on its own thread).
/// A step held 5 s opens the gate for good, so that a failed test's server can still stop.
/// </summary>
public sealed class StepGate : IObserver<DecoderStep>, IDisposable
{
    private readonly SemaphoreSlim _permits = new(0);
    private volatile bool _open;

    /// <summary>Steps completed so far.</summary>
    public int Steps => Volatile.Read(ref _steps);

    private int _steps;

    /// <summary>Lets <paramref name="steps"/> more steps follow.</summary>
    public void Permit(int steps)
    {
        if (steps > 0) _permits.Release(steps);
    }

    /// <summary>Lets every step follow from now on.</summary>
    public void Open()
    {
        _open = true;
        _permits.Release();
    }

    public void OnNext(DecoderStep value)
    {
        Interlocked.Increment(ref _steps);
        if (_open || _permits.Wait(TimeSpan.FromSeconds(5))) return;
        _open = true;
        throw new TimeoutException("the test permitted no further step within 5 s");
    }

    public void OnCompleted() { }

    public void OnError(Exception error) { }

    public void Dispose() => _permits.Dispose();
}
