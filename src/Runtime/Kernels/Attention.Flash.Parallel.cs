using System;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// The multi-threaded split of the tiled attention (see Parallelism). Forward items are runs of query tiles, numbered
// (sequence, query head, tile): a tile writes only its own rows of one head's output columns and their statistics. The
// runs are handed out from the last tile backwards, so that under a causal mask the longest tiles (those that see the
// most keys) start first and the short ones fill in at the end. Backward items are runs of (sequence, key/value head)
// groups, as in the stored-probabilities backward: a group's query heads all add into the same dK and dV columns, so a
// group is never split. Either way each output element is computed by one thread with the same code and in the same
// order as on one thread, so results are bit-identical for any thread count.
public static unsafe partial class Attention
{
    private static bool FlashForwardSplit(in FlashShape shape, float* output, float* statistics)
    {
        int tiles = shape.ForwardTiles;
        long tileFlops = Math.Max(1, PairFlops(shape.QueryRows, shape.KeyLen, shape.HeadDim));
        int perItem = PairsPerItem(tileFlops), items = (tiles + perItem - 1) / perItem;
        int threads = Parallelism.ThreadsFor(tileFlops * tiles, items);
        if (threads == 1) return false;
        var work = new FlashForwardWork { Shape = shape, Output = output, Statistics = statistics, Tiles = tiles, TilesPerItem = perItem };
        WorkerPool.For(ref work, items, threads);
        return true;
    }

    private struct FlashForwardWork : IParallelWork
    {
        public FlashShape Shape;
        public float* Output, Statistics;
        public int Tiles, TilesPerItem;

        public readonly void Execute(int item)
        {
            int end = Tiles - item * TilesPerItem, first = Math.Max(0, end - TilesPerItem);
            FlashForwardTiles(in Shape, Output, Statistics, first, end);
        }
    }

    private static bool FlashBackwardSplit(in FlashShape shape, in FlashGradients grads)
    {
        int groups = shape.Batch * shape.KvHeads;
        long groupFlops = 2 * PairFlops(shape.QueryLen, shape.KeyLen, shape.HeadDim) * (shape.Heads / shape.KvHeads);
        int perItem = PairsPerItem(groupFlops), items = (groups + perItem - 1) / perItem;
        int threads = Parallelism.ThreadsFor(groupFlops * groups, items);
        if (threads == 1) return false;
        var work = new FlashBackwardWork { Shape = shape, Gradients = grads, Groups = groups, GroupsPerItem = perItem };
        WorkerPool.For(ref work, items, threads);
        return true;
    }

    private struct FlashBackwardWork : IParallelWork
    {
        public FlashShape Shape;
        public FlashGradients Gradients;
        public int Groups, GroupsPerItem;

        public readonly void Execute(int item)
        {
            int first = item * GroupsPerItem, end = Math.Min(Groups, first + GroupsPerItem);
            FlashBackwardGroups(in Shape, in Gradients, first, end);
        }
    }
}
