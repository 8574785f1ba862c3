using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 4 for the training buffers whose tensors need memory only while live: where each tensor lies in its buffer,
    /// given the order a pass runs its operations and which tensors each touches (reads, adds into or stores). A tensor
    /// is live from the first operation that touches it to the last; a tensor given as <c>before</c> is live from before
    /// the first operation, and one given as <c>kept</c> until after the last. A slot is free again after the operation
    /// that touches its tensor last, and slots are handed out first fit in the order the operations run.
    /// </summary>
    /// <remarks>
    /// Two plans use it. The activations of the forward pass (kept: those the backward pass reads or the runtime shows,
    /// such as the logits): a sub-layer's output that only its residual sum reads is dead once the sum is made, and the
    /// next layer's takes its slot. The activations' gradients in the backward pass (before: a gradient the caller seeds):
    /// each layer's reuse the slots of the layer after it. Nothing is assumed about a slot's contents: every activation is
    /// written by the forward operation that makes it before anything reads it, and the emitter clears each gradient, or
    /// lets its first operation store it whole, before anything adds into it.
    /// Offsets are multiples of <see cref="MemoryPlan.Alignment"/> floats.
    /// </remarks>
    internal sealed class SlotPlan
    {
        private const int End = int.MaxValue;

        private readonly Dictionary<TensorDef, long> _offsets = new();
        private readonly Dictionary<TensorDef, (int First, int Last)> _live = new();

        /// <param name="touched">
        /// For each operation of the pass in the order it runs, the tensors (whole tensors, not views) it touches.
        /// </param>
        /// <param name="before">Tensors written before the pass starts (live from its start).</param>
        /// <param name="kept">Tensors read after the pass (live to its end, once touched).</param>
        public SlotPlan(IReadOnlyList<IReadOnlyList<TensorDef>> touched, IEnumerable<TensorDef> before, IEnumerable<TensorDef> kept)
        {
            var order = new List<TensorDef>();
            foreach (TensorDef t in before)
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
            foreach (TensorDef t in kept)
                if (_live.TryGetValue(t, out (int First, int Last) span)) _live[t] = (span.First, End);

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
                    if (last == End) continue;
                    if (!dying.TryGetValue(last, out List<TensorDef>? list)) dying[last] = list = [];
                    list.Add(t);
                }
                if (dying.TryGetValue(i, out List<TensorDef>? dead))
                    foreach (TensorDef t in dead) Release(free, _offsets[t], _offsets[t] + Align(t.Elements));
            }
            Count = top;
        }

        /// <summary>Floats of the buffer: the most that is live at once, with alignment.</summary>
        public long Count { get; }

        /// <summary>Whether the plan places <paramref name="t"/> (or the tensor it is a view of): the pass touches it, or it is live before it.</summary>
        public bool Places(TensorDef t) => t.Parent is { } parent ? Places(parent) : _offsets.ContainsKey(t);

        /// <summary>Where a tensor starts (a view's: its parent's plus its own offset).</summary>
        public long OffsetOf(TensorDef t) => t.Parent is { } parent ? OffsetOf(parent) + t.ViewOffset : _offsets[t];

        /// <summary>Whether <paramref name="t"/> (or the tensor it is a view of) is live during operation <paramref name="op"/>.</summary>
        public bool IsLiveAt(TensorDef t, int op) =>
            t.Parent is { } parent ? IsLiveAt(parent, op) : _live.TryGetValue(t, out (int First, int Last) span) && span.First <= op && op <= span.Last;

        /// <summary>Whether <paramref name="t"/> (or the tensor it is a view of) stays live to the end of the pass.</summary>
        public bool IsKept(TensorDef t) => IsLiveAt(t, End);

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
