using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 4, the backward pass's half: where each activation's gradient lives while the backward pass runs. A gradient
    /// is live from the first operation of the pass that touches it (reads it, adds into it or stores it) to the last,
    /// and a seeded one (the caller's gradient of the output) from before the pass. A slot is free again after the
    /// operation that touches its gradient last, and is handed out first fit, in the order the pass runs. The buffer then
    /// holds about one layer's gradients and the few that cross layers (the residual stream's, an encoder output's that
    /// every cross-attention adds into), not one gradient per activation: the activations themselves all stay, since the
    /// backward pass reads them. Nothing is assumed about a slot's contents: the emitter clears each gradient, or lets its
    /// first operation store it whole, before anything adds into it.
    /// Offsets are multiples of <see cref="MemoryPlan.Alignment"/> floats.
    /// </summary>
    internal sealed class GradientPlan
    {
        private readonly Dictionary<TensorDef, long> _offsets = new();
        private readonly Dictionary<TensorDef, (int First, int Last)> _live = new();

        /// <param name="touched">
        /// For each operation of the backward pass in the order it runs, the activations (whole tensors, not views) whose
        /// gradients its backward touches.
        /// </param>
        /// <param name="seeded">Gradients written before the pass starts (live from its start).</param>
        public GradientPlan(IReadOnlyList<IReadOnlyList<TensorDef>> touched, IEnumerable<TensorDef> seeded)
        {
            var order = new List<TensorDef>();
            foreach (TensorDef t in seeded)
                if (!_live.ContainsKey(t))
                {
                    _live[t] = (-1, -1);
                    order.Add(t);
                }
            for (int i = 0; i < touched.Count; i++)
                foreach (TensorDef t in touched[i])
                {
                    if (_live.TryGetValue(t, out (int First, int Last) span)) _live[t] = (span.First, i);
                    else
                    {
                        _live[t] = (i, i);
                        order.Add(t);
                    }
                }

            // Free ranges [start, end), kept sorted and merged; Count is the high-water mark.
            var free = new List<(long Start, long End)>();
            var dying = new Dictionary<int, List<TensorDef>>();
            int next = 0;
            long top = 0;
            for (int i = -1; i < touched.Count; i++)
            {
                for (; next < order.Count && _live[order[next]].First == i; next++)
                {
                    TensorDef t = order[next];
                    _offsets[t] = Take(free, Align(t.Elements), ref top);
                    int last = _live[t].Last;
                    if (!dying.TryGetValue(last, out List<TensorDef>? list)) dying[last] = list = [];
                    list.Add(t);
                }
                if (dying.TryGetValue(i, out List<TensorDef>? dead))
                    foreach (TensorDef t in dead) Release(free, _offsets[t], _offsets[t] + Align(t.Elements));
            }
            Count = top;
        }

        /// <summary>Floats of the activation-gradient buffer: the most that is live at once, with alignment.</summary>
        public long Count { get; }

        /// <summary>Where a tensor's gradient starts (a view's: its parent's plus its own offset).</summary>
        public long OffsetOf(TensorDef t) => t.Parent is { } parent ? OffsetOf(parent) + t.ViewOffset : _offsets[t];

        /// <summary>Whether the gradient of <paramref name="t"/> (or of the tensor it is a view of) is live during backward operation <paramref name="op"/>.</summary>
        public bool IsLiveAt(TensorDef t, int op) =>
            t.Parent is { } parent ? IsLiveAt(parent, op) : _live.TryGetValue(t, out (int First, int Last) span) && span.First <= op && op <= span.Last;

        private static long Align(long n) => (n + MemoryPlan.Alignment - 1) / MemoryPlan.Alignment * MemoryPlan.Alignment;

        /// <summary>The first free range that fits, or the end of the buffer (grown by a free range that ends there).</summary>
        private static long Take(List<(long Start, long End)> free, long size, ref long top)
        {
            for (int k = 0; k < free.Count; k++)
            {
                (long start, long end) = free[k];
                if (end - start < size) continue;
                if (end - start == size) free.RemoveAt(k);
                else free[k] = (start + size, end);
                return start;
            }
            if (free.Count > 0 && free[free.Count - 1].End == top)
            {
                long start = free[free.Count - 1].Start;
                free.RemoveAt(free.Count - 1);
                top = start + size;
                return start;
            }
            long offset = top;
            top += size;
            return offset;
        }

        private static void Release(List<(long Start, long End)> free, long start, long end)
        {
            int k = 0;
            while (k < free.Count && free[k].Start < start) k++;
            free.Insert(k, (start, end));
            if (k + 1 < free.Count && free[k].End == free[k + 1].Start)
            {
                free[k] = (free[k].Start, free[k + 1].End);
                free.RemoveAt(k + 1);
            }
            if (k > 0 && free[k - 1].End == free[k].Start)
            {
                free[k - 1] = (free[k - 1].Start, free[k].End);
                free.RemoveAt(k);
            }
        }
    }
}
