using System;
using System.Runtime.CompilerServices;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// The multi-threaded split of attention in training (see Parallelism). Forward items are runs of (sequence, query
// head) pairs: a pair writes only its own columns of the output and its own block of probabilities (pairs that share
// a key/value head only read it). Backward items are runs of (sequence, key/value head) groups: the query heads of a
// group all add into the one head's columns of dK and dV, so a group is never split between threads, and runs its
// heads in order. Either way each output element is computed by one thread with the same code and in the same order
// as the single-threaded loop, so results are bit-identical for any thread count.
public static unsafe partial class Attention
{
    /// <summary>Multiply-adds of Q·Kᵀ and P·V of one pair, counted in full (causal and windowed masks need less).</summary>
    private static long PairFlops(int queryLen, int keyLen, int headDim) => 4L * queryLen * keyLen * headDim;

    /// <summary>
    /// Pairs (or, in backward, groups) per item: grouped up to about a quarter of a thread's minimum work, so that tiny
    /// heads do not cost a claim each while every thread still gets several items to balance.
    /// </summary>
    private static int PairsPerItem(long pairFlops) =>
        (int)Math.Max(1, Math.Min(int.MaxValue, Parallelism.MinimumFlopsPerThread / 4 / Math.Max(1, pairFlops)));

    private static bool ForwardSplit(float* q, int qStride, float* k, float* v, int kvStride, byte* keyPadding, float* output, float* probabilities,
        int batch, int queryLen, int keyLen, int heads, int headDim, int kvHeads, bool causal, int window, ScoreTerms terms)
    {
        int pairs = batch * heads;
        long pairFlops = PairFlops(queryLen, keyLen, headDim);
        int perItem = PairsPerItem(pairFlops), items = (pairs + perItem - 1) / perItem;
        int threads = Parallelism.ThreadsFor(pairFlops * pairs, items);
        if (threads == 1) return false;
        var work = new ForwardWork
        {
            Q = q, QStride = qStride, K = k, V = v, KvStride = kvStride, KeyPadding = keyPadding, Output = output, Probabilities = probabilities,
            Batch = batch, QueryLen = queryLen, KeyLen = keyLen, Heads = heads, HeadDim = headDim, KvHeads = kvHeads, Causal = causal, Window = window,
            PairsPerItem = perItem, Terms = terms,
        };
        WorkerPool.For(ref work, items, threads);
        return true;
    }

    private struct ForwardWork : IParallelWork
    {
        public float* Q, K, V, Output, Probabilities;
        public byte* KeyPadding;
        public int QStride, KvStride, Batch, QueryLen, KeyLen, Heads, HeadDim, KvHeads, Window, PairsPerItem;
        public bool Causal;
        public ScoreTerms Terms;

        public readonly void Execute(int item)
        {
            int first = item * PairsPerItem, end = Math.Min(Batch * Heads, first + PairsPerItem);
            ForwardPairs(Q, QStride, K, V, KvStride, KeyPadding, Output, Probabilities, saveProbabilities: true, Batch, QueryLen, KeyLen, Heads, HeadDim, KvHeads,
                position0: 0, Causal, Window, Terms, first, end);
        }
    }

    private static bool BackwardSplit(float* dOutput, float* q, int qStride, float* k, float* v, int kvStride, float* probabilities,
        float* dq, float* dk, float* dv, int batch, int queryLen, int keyLen, int heads, int headDim, int kvHeads, int scratchLength, bool clearDq, bool clearDkv,
        ScoreTerms terms)
    {
        // Each item takes its dP/dS scratch from the stack of the thread that runs it, as long as the single-threaded
        // call's (the caller's length decides the chunking, so both compute the same).
        if (scratchLength > BackwardScratchFloats) return false;
        int groups = batch * kvHeads;
        long groupFlops = 2 * PairFlops(queryLen, keyLen, headDim) * (heads / kvHeads);
        int perItem = PairsPerItem(groupFlops), items = (groups + perItem - 1) / perItem;
        int threads = Parallelism.ThreadsFor(groupFlops * groups, items);
        if (threads == 1) return false;
        var work = new BackwardWork
        {
            DOutput = dOutput, Q = q, QStride = qStride, K = k, V = v, KvStride = kvStride, Probabilities = probabilities, DQ = dq, DK = dk, DV = dv,
            Groups = groups, QueryLen = queryLen, KeyLen = keyLen, Heads = heads, HeadDim = headDim, KvHeads = kvHeads, ScratchLength = scratchLength,
            GroupsPerItem = perItem, ClearDq = clearDq, ClearDkv = clearDkv, Terms = terms,
        };
        WorkerPool.For(ref work, items, threads);
        return true;
    }

    private struct BackwardWork : IParallelWork
    {
        public float* DOutput, Q, K, V, Probabilities, DQ, DK, DV;
        public int QStride, KvStride, Groups, QueryLen, KeyLen, Heads, HeadDim, KvHeads, ScratchLength, GroupsPerItem;
        public bool ClearDq, ClearDkv;
        public ScoreTerms Terms;

        [SkipLocalsInit] // the scratch is written before it is read
        public readonly void Execute(int item)
        {
            float* scratch = stackalloc float[BackwardScratchFloats];
            int first = item * GroupsPerItem, end = Math.Min(Groups, first + GroupsPerItem);
            BackwardGroups(DOutput, Q, QStride, K, V, KvStride, Probabilities, DQ, DK, DV, QueryLen, KeyLen, Heads, HeadDim, KvHeads, scratch, ScratchLength, first, end,
                ClearDq, ClearDkv, Terms);
        }
    }
}
