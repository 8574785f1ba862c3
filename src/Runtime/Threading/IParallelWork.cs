namespace TransformerGen.Threading;

/// <summary>
/// A parallel loop body: a struct of pointers and sizes, filled on the caller's stack and run by
/// <see cref="WorkerPool.For{TWork}(ref TWork, int, int)"/> one item at a time on whichever thread claims the item.
/// </summary>
/// <remarks>
/// An item must write only outputs that no other item writes, and compute them the same way whichever thread runs
/// it and however many threads there are, so that results do not depend on <see cref="Parallelism.ThreadCount"/>.
/// </remarks>
internal interface IParallelWork
{
    /// <summary>Runs item <paramref name="item"/>, 0 ≤ item &lt; the item count given to the pool.</summary>
    void Execute(int item);
}
