using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 4: where every tensor lives. Parameters get offsets in one flat buffer (gradients and optimizer
    /// moments reuse them), activations in the training workspace (their gradients reuse those), fixed tables in
    /// a constant buffer, and, for cached inference of one sequence, a smaller workspace whose slots are shared
    /// by every other layer, since a layer's values are dead once the next layer has read them.
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
        /// <summary>Multiply-adds ×2 of one token's forward pass (attention counted at full context).</summary>
        public long FlopsPerToken { get; private set; }

        /// <summary>Offset in the buffer of the tensor's kind (training layout).</summary>
        public long OffsetOf(TensorDef t) => _offsets[t];

        /// <summary>Offset in the inference workspace of an activation that inference uses.</summary>
        public long InferenceOffsetOf(TensorDef t) => _inferenceOffsets[t];

        /// <summary>Where layer <paramref name="layer"/>'s keys start in the key/value cache; its values follow.</summary>
        public long KeyCacheOffset(int layer) => 2L * layer * Graph.Dims.SeqLen * Graph.Dims.DModel;

        public long ValueCacheOffset(int layer) => KeyCacheOffset(layer) + (long)Graph.Dims.SeqLen * Graph.Dims.DModel;

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
                    case TensorKind.Parameter: _offsets[t] = parameters; parameters = Align(Saturating.Add(parameters, t.Elements)); break;
                    case TensorKind.Constant: _offsets[t] = constants; constants = Align(Saturating.Add(constants, t.Elements)); break;
                    case TensorKind.Activation: _offsets[t] = activations; activations = Align(Saturating.Add(activations, t.Elements)); break;
                }
            }
            ParameterCount = parameters;
            ConstantCount = constants;
            ActivationCount = activations;

            // Inference: dropout is the identity, so its output shares its input's slot; tensors of the same role
            // in layers of the same parity share one slot of SeqLen rows.
            var aliases = new Dictionary<TensorDef, TensorDef>();
            foreach (Op op in Graph.Ops)
                if (op is DropoutOp drop) aliases[drop.Output] = Resolve(aliases, drop.Input);
            var slots = new Dictionary<string, long>();
            long inference = 0;
            foreach (TensorDef t in Graph.Tensors)
            {
                if (t.Kind != TensorKind.Activation || t.TrainingOnly || aliases.ContainsKey(t)) continue;
                string key = t.Layer < 0 ? t.Name : t.Role + "@" + (t.Layer % 2);
                if (!slots.TryGetValue(key, out long offset))
                {
                    offset = inference;
                    slots[key] = offset;
                    inference = Align(Saturating.Add(inference, Saturating.Multiply(d.SeqLen, t.Width)));
                }
                _inferenceOffsets[t] = offset;
            }
            foreach (KeyValuePair<TensorDef, TensorDef> alias in aliases)
                _inferenceOffsets[alias.Key] = _inferenceOffsets[alias.Value];
            InferenceCount = inference;
            KeyValueCount = Saturating.Multiply(Saturating.Multiply(2L * d.Layers, d.SeqLen), d.DModel);

            long flops = 0;
            foreach (Op op in Graph.Ops)
            {
                if (op is LinearOp linear) flops = Saturating.Add(flops, Saturating.Multiply(2 * linear.InFeatures, linear.OutFeatures));
                else if (op is AttentionOp) flops = Saturating.Add(flops, Saturating.Multiply(4L * d.SeqLen, d.DModel));
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
            yield return ("the logits", Saturating.Multiply(Graph.Dims.Tokens, Graph.Dims.Vocab));
        }
    }
}
