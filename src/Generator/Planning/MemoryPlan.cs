using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 4: where every tensor lives. Parameters get offsets in one flat buffer (gradients and optimizer
    /// moments reuse them), activations in the training workspace (their gradients reuse those), fixed tables in
    /// a constant buffer, and, for inference (cached decoding of one sequence, or an encoder's exact-length pass), a
    /// smaller workspace whose slots are shared by every other layer, since a layer's values are dead once the next
    /// layer has read them.
    /// Offsets are multiples of 16 floats (64 bytes).
    /// </summary>
    internal sealed class MemoryPlan
    {
        public const int Alignment = 16;

        private readonly Dictionary<TensorDef, long> _offsets = new();
        private readonly Dictionary<TensorDef, long> _inferenceOffsets = new();

        private MemoryPlan(ModelGraph graph)
        {
            Graph = graph;
        }

        public ModelGraph Graph { get; }
        public long ParameterCount { get; private set; }
        public long ConstantCount { get; private set; }
        public long ActivationCount { get; private set; }
        public long InferenceCount { get; private set; }
        /// <summary>Keys and values of every layer, <c>[SeqLen, DModel]</c> each.</summary>
        public long KeyValueCount { get; private set; }

        /// <summary>Tokens one inference pass takes at most: an encoder's or a decoder's exact-length pass, an encoder–decoder's source.</summary>
        public long InferenceTokens { get; private set; }
        /// <summary>Multiply-adds ×2 of one token's forward pass (attention counted at full context).</summary>
        public long FlopsPerToken { get; private set; }

        /// <summary>Offset in the buffer of the tensor's kind (training layout); a view's is its parent's plus its own.</summary>
        public long OffsetOf(TensorDef t) => t.Parent is { } parent ? OffsetOf(parent) + t.ViewOffset : _offsets[t];

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

        public static MemoryPlan Create(ModelGraph graph)
        {
            var plan = new MemoryPlan(graph);
            plan.Lay();
            return plan;
        }

        private static long Align(long n) => n >= Saturating.Limit ? Saturating.Limit : (n + Alignment - 1) / Alignment * Alignment;

        private void Lay()
        {
            ModelDims d = Graph.Dims;
            long parameters = 0, constants = 0, activations = 0;
            foreach (TensorDef t in Graph.Tensors)
            {
                switch (t.Kind)
                {
                    case TensorKind.Parameter:
                        _offsets[t] = parameters;
                        parameters = Saturating.Add(parameters, t.Elements);
                        if (!t.PackedWithNext) parameters = Align(parameters);
                        break;
                    case TensorKind.Constant: _offsets[t] = constants; constants = Align(Saturating.Add(constants, t.Elements)); break;
                    case TensorKind.Activation: _offsets[t] = activations; activations = Align(Saturating.Add(activations, t.Elements)); break;
                }
            }
            ParameterCount = parameters;
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

        private static TensorDef Resolve(Dictionary<TensorDef, TensorDef> aliases, TensorDef t) =>
            aliases.TryGetValue(t, out TensorDef? target) ? target : t;

        /// <summary>The buffers that must fit 32-bit indexing, with their sizes in floats.</summary>
        public IEnumerable<(string What, long Floats)> Buffers()
        {
            yield return ("the parameter buffer", ParameterCount);
            yield return ("the training workspace", ActivationCount);
            yield return ("the inference workspace", InferenceCount);
            yield return ("the key/value cache", KeyValueCount);
            foreach (TensorDef t in Graph.Tensors)
                if (t.Kind == TensorKind.Activation && t.Elements > int.MaxValue) yield return (t.Name, t.Elements);
        }
    }
}
