using System;
using System.Threading;

namespace TransformerGen;

/// <summary>
/// Detects a second thread entering a model instance while another is inside one of its public members, as .NET's
/// <c>Dictionary</c> detects concurrent writers: the second call throws <see cref="InvalidOperationException"/>
/// naming the model and both members, where it would otherwise race on the shared buffers and return wrong numbers
/// without a sign. Calls nested on the same thread (<c>Generate</c> calling <c>Append</c>) pass.
/// </summary>
/// <remarks>
/// One compare-and-swap on entry and one store on exit; nothing is allocated. Disposing the outermost scope frees
/// the instance.
/// </remarks>
public readonly ref struct CallScope
{
    private readonly CallGate? _gate;

    internal CallScope(CallGate? gate) => _gate = gate;

    /// <summary>Leaves the member: the instance is free again once its outermost member returns.</summary>
    public void Dispose() => _gate?.Leave();
}

/// <summary>The owner of a model instance: which thread is inside it, and through which member (see <see cref="CallScope"/>).</summary>
internal sealed class CallGate(string modelName)
{
    // The managed id of the thread inside, or 0.
    private int _owner;
    private string _member = "";

    /// <summary>
    /// Enters <paramref name="member"/>: the returned scope, when disposed, frees the instance; nested calls on the
    /// thread already inside get a scope that frees nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another thread is inside the instance.</exception>
    public CallScope Enter(string member)
    {
        int me = Environment.CurrentManagedThreadId;
        int owner = Interlocked.CompareExchange(ref _owner, me, 0);
        if (owner == 0)
        {
            _member = member;
            return new CallScope(this);
        }
        if (owner == me) return new CallScope(null);
        throw new InvalidOperationException(
            $"{modelName}.{member} was called on thread {me} while thread {owner} is inside {modelName}.{Volatile.Read(ref _member)}: " +
            $"an instance runs one call at a time (its buffers hold that call's activations and cache); give each thread its own instance");
    }

    public void Leave()
    {
        _member = "";
        Volatile.Write(ref _owner, 0);
    }
}
