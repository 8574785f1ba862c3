using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 4: where every tensor lives. Parameters get offsets in one flat buffer (gradients and optimizer
    /// moments reuse them), or, past what one array holds, in segments of at most <see cref="SegmentLimit"/> floats that
    /// each hold whole tensors (and whole groups of tensors read as one matrix); fixed tables in
    /// a constant buffer, and, for inference (cached decoding of one sequence, or an encoder's exact-length pass), a
    /// smaller workspace whose slots are shared by every other layer, since a layer's values are dead once the next
    /// layer has read them. Training's activations and their gradients get slots while live (<see cref="SlotPlan"/>),
    /// laid out by the emitter from its walks of the two passes.
    /// Offsets are multiples of 16 floats (64 bytes).
    /// </summary>
    internal sealed class MemoryPlan
    {
        public const int Alignment = 16;

        /// <summary>
        /// The most floats of one parameter segment: the longest aligned buffer the runtime allocates (a float array of at
        /// most <c>Array.MaxLength</c> = 2,147,483,591 elements, 15 of them kept to align its start), rounded down to the
        /// alignment. A model of fewer parameter floats has one segment, the parameter buffer.
        /// </summary>
        public const long SegmentLimit = (2_147_483_591L - (Alignment - 1)) / Alignment * Alignment;

        private readonly Dictionary<TensorDef, int> _segments = new();
        private readonly List<long> _parameterSegments = new();
        private readonly long _segmentLimit;

        private readonly Dictionary<TensorDef, long> _offsets = new();
        private readonly Dictionary<TensorDef, long> _inferenceOffsets = new();

        private MemoryPlan(ModelGraph graph, long segmentLimit)
        {
            Graph = graph;
            _segmentLimit = segmentLimit;
        }

        public ModelGraph Graph { get; }
        /// <summary>Parameter floats of every segment together, alignment padding included.</summary>
        public long ParameterCount { get; private set; }
        /// <summary>Floats of each parameter segment: one unless the parameters exceed <see cref="SegmentLimit"/> (or the project's lower limit).</summary>
        public IReadOnlyList<long> ParameterSegments => _parameterSegments;
        public long ConstantCount { get; private set; }
        /// <summary>
        /// Floats of every activation side by side: the most the training workspace can need. The emitter lays the
        /// workspace out (<see cref="SlotPlan"/>, from what its walks of the passes find), in at most this.
        /// </summary>
        public long ActivationCount { get; private set; }
        public long InferenceCount { get; private set; }
        /// <summary>Keys and values of every layer, <c>[SeqLen, DModel]</c> each.</summary>
        public long KeyValueCount { get; private set; }

        /// <summary>Tokens one inference pass takes at most: an encoder's or a decoder's exact-length pass, an encoder–decoder's source.</summary>
        public long InferenceTokens { get; private set; }
        /// <summary>Multiply-adds ×2 of one token's forward pass (attention counted at full context).</summary>
        public long FlopsPerToken { get; private set; }

        /// <summary>Offset of a parameter (in its segment) or a constant; a view's is its parent's plus its own. (Activations and their gradients in training are laid out by <see cref="SlotPlan"/>.)</summary>
        public long OffsetOf(TensorDef t) => t.Parent is { } parent ? OffsetOf(parent) + t.ViewOffset : _offsets[t];

        /// <summary>The parameter segment a parameter (or a view of one) lies in; 0 for any other tensor.</summary>
        public int SegmentOf(TensorDef t) => t.Parent is { } parent ? SegmentOf(parent) : _segments.TryGetValue(t, out int segment) ? segment : 0;

        /// <summary>
        /// Offset at inference of an activation that inference uses: in the inference workspace, or, for
        /// <see cref="TensorDef.InCache"/> tensors, in the key/value cache.
        /// </summary>
        public long InferenceOffsetOf(TensorDef t) => _inferenceOffsets[t];

        /// <summary>Where decoder layer <paramref name="layer"/>'s self-attention keys start in the key/value cache; its values follow.</summary>
        public long KeyCacheOffset(int layer) => 2L * layer * SelfCacheRows;

        public long ValueCacheOffset(int layer) => KeyCacheOffset(layer) + SelfCacheRows;

        /// <summary>Floats of one self-attention key (or value) cache: the decoder's positions by the key/value width.</summary>
        private long SelfCacheRows => Graph.Dims.TargetSeqLen * Graph.Dims.KeyValueWidth;

        /// <param name="graph">The lowered model.</param>
        /// <param name="segmentLimit">The most floats of one parameter segment: <see cref="SegmentLimit"/>, or less where the
        /// project asks (<c>TransformerGenParameterSegmentFloats</c>, which tests use to split small models).</param>
        public static MemoryPlan Create(ModelGraph graph, long segmentLimit = SegmentLimit)
        {
            var plan = new MemoryPlan(graph, segmentLimit);
            plan.Lay();
            return plan;
        }

        private static long Align(long n) => n >= Saturating.Limit ? Saturating.Limit : (n + Alignment - 1) / Alignment * Alignment;

        private void Lay()
        {
            ModelDims d = Graph.Dims;
            long parameters = 0, constants = 0, activations = 0;
            int segment = 0;
            bool continued = false;
            List<TensorDef> parameterList = Graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).ToList();
            int next = 0;
            foreach (TensorDef t in Graph.Tensors)
            {
                switch (t.Kind)
                {
                    case TensorKind.Parameter:
                        // A tensor that starts a group (those read as one matrix are laid back to back) opens a new segment
                        // when the group would not fit in what is left of this one.
                        long group = continued ? 0 : GroupElements(parameterList, next);
                        if (!continued && parameters > 0 && Saturating.Add(parameters, group) > _segmentLimit)
                        {
                            _parameterSegments.Add(parameters);
                            segment++;
                            parameters = 0;
                        }
                        _offsets[t] = parameters;
                        _segments[t] = segment;
                        parameters = Saturating.Add(parameters, t.Elements);
                        if (!t.PackedWithNext) parameters = Align(parameters);
                        continued = t.PackedWithNext;
                        next++;
                        break;
                    case TensorKind.Constant: _offsets[t] = constants; constants = Align(Saturating.Add(constants, t.Elements)); break;
                    case TensorKind.Activation: activations = Align(Saturating.Add(activations, t.Elements)); break;
                }
            }
            _parameterSegments.Add(parameters);
            ParameterCount = _parameterSegments.Aggregate(0L, Saturating.Add);
            ConstantCount = constants;
            ActivationCount = activations;

            // Inference: dropout is the identity, so its output shares its input's slot; tensors of the same role in
            // layers of the same parity share one slot, sized for the longest stream using it. An encoder–decoder runs
            // one sequence at a time. An encoder-only model's exact-length pass takes up to Batch sequences laid end to
            // end, so its per-token slots hold Batch·SeqLen rows and its per-sequence ones Batch. A decoder-only model's
            // cached pass takes the new tokens of up to CacheSlots sequences (the Sequences option, else Batch), each with
            // a key/value cache of its own (one slot after another), and its head one row per sequence; its per-token
            // slots hold SeqLen rows (CacheSlots if more), which a whole prompt or a decoding step of every sequence fits:
            // longer prompts of several sequences go in over several passes.
            bool encoderOnly = Graph.Spec.IsEncoderOnly, decoderOnly = Graph.Spec.IsDecoderOnly;
            KeyValueCount = Saturating.Multiply(Saturating.Multiply(2L * d.DecoderLayers, SelfCacheRows), d.CacheSlots);
            InferenceTokens = encoderOnly ? d.Tokens : decoderOnly ? System.Math.Max(d.SeqLen, d.CacheSlots) : d.SeqLen;
            long inference = 0;
            var aliases = new Dictionary<TensorDef, TensorDef>();
            foreach (Op op in Graph.Ops)
                if (op is DropoutOp drop) aliases[drop.Output] = Resolve(aliases, drop.Input);
            // A decoder's head runs on the last position only at inference, so what its operations write is one row.
            var headOutputs = new HashSet<TensorDef>();
            foreach (Op op in Graph.Ops)
                if (op.Stage.Kind == StageKind.Head && !encoderOnly) headOutputs.UnionWith(op.Writes);
            var slotOf = new Dictionary<TensorDef, string>();
            var slotSize = new Dictionary<string, long>();
            var slotOrder = new List<string>();
            foreach (TensorDef t in Graph.Tensors)
            {
                if (t.Kind != TensorKind.Activation || t.TrainingOnly || aliases.ContainsKey(t)) continue;
                if (t.InCache)
                {
                    _inferenceOffsets[t] = Align(KeyValueCount);
                    KeyValueCount = Saturating.Add(Align(KeyValueCount), Saturating.Multiply(d.SeqLen, t.Width));
                    continue;
                }
                string key = t.Layer < 0 ? t.Name : t.Role + "@" + (t.Layer % 2);
                long rows = headOutputs.Contains(t) ? d.CacheSlots : !t.PerToken ? t.Shape[0] : encoderOnly || decoderOnly ? InferenceTokens : d.Length(t.Stream);
                long size = t.IsAttentionProbabilities
                    ? Saturating.Multiply(Saturating.Multiply(d.Heads, t.Shape[2]), t.Shape[3])
                    : Saturating.Multiply(rows, t.Width);
                if (!slotSize.TryGetValue(key, out long existing)) slotOrder.Add(key);
                slotSize[key] = System.Math.Max(existing, size);
                slotOf[t] = key;
            }
            var slotOffset = new Dictionary<string, long>();
            foreach (string key in slotOrder)
            {
                slotOffset[key] = inference;
                inference = Align(Saturating.Add(inference, slotSize[key]));
            }
            foreach (KeyValuePair<TensorDef, string> entry in slotOf) _inferenceOffsets[entry.Key] = slotOffset[entry.Value];
            foreach (KeyValuePair<TensorDef, TensorDef> alias in aliases)
                if (_inferenceOffsets.TryGetValue(alias.Value, out long offset)) _inferenceOffsets[alias.Key] = offset;
            InferenceCount = inference;

            long flops = 0;
            foreach (Op op in Graph.Ops)
            {
                if (op is LinearOp linear) flops = Saturating.Add(flops, Saturating.Multiply(2 * linear.InFeatures, linear.OutFeatures));
                else if (op is AttentionOp attention) flops = Saturating.Add(flops, Saturating.Multiply(4L * d.Length(attention.KeyStream), (long)d.Heads * d.HeadDim));
            }
            FlopsPerToken = flops;
        }

        /// <summary>Floats of the group of parameters starting at <paramref name="first"/>: it and those laid back to back after it.</summary>
        private static long GroupElements(List<TensorDef> parameters, int first)
        {
            long elements = 0;
            for (int i = first; i < parameters.Count; i++)
            {
                elements = Saturating.Add(elements, parameters[i].Elements);
                if (!parameters[i].PackedWithNext) break;
            }
            return Align(elements);
        }

        private static TensorDef Resolve(Dictionary<TensorDef, TensorDef> aliases, TensorDef t) =>
            aliases.TryGetValue(t, out TensorDef? target) ? target : t;

        /// <summary>The buffers that must fit 32-bit indexing, with their sizes in floats.</summary>
        public IEnumerable<(string What, long Floats)> Buffers()
        {
            // A segment is longer than the limit only where one group of tensors is: that tensor is named when it is too
            // large itself, the segment otherwise (projections read as one matrix that are together).
            var oversized = new HashSet<int>();
            foreach (TensorDef t in Graph.Tensors)
                if (t.Kind == TensorKind.Parameter && t.Parent is null && t.Elements > int.MaxValue)
                {
                    oversized.Add(SegmentOf(t));
                    yield return (t.Name, t.Elements);
                }
            for (int k = 0; k < _parameterSegments.Count; k++)
                if (!oversized.Contains(k))
                    yield return (_parameterSegments.Count == 1 ? "the parameter buffer" : "parameter segment " + k.ToString(System.Globalization.CultureInfo.InvariantCulture), _parameterSegments[k]);
            // A model of several segments runs for inference only: it has no training workspace.
            bool trains = _parameterSegments.Count == 1;
            if (trains) yield return ("the training workspace", ActivationCount);
            yield return ("the inference workspace", InferenceCount);
            yield return ("the key/value cache", KeyValueCount);
            foreach (TensorDef t in Graph.Tensors)
                if (t.Kind == TensorKind.Activation && t.Elements > int.MaxValue && (trains || !t.TrainingOnly)) yield return (t.Name, t.Elements);
        }
    }
}
