using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>Which buffer a tensor lives in.</summary>
    internal enum TensorKind
    {
        /// <summary>A trained weight, in the parameter buffer (its gradient at the same offset in the gradient buffer).</summary>
        Parameter,
        /// <summary>A fixed table computed once when the model is built (sinusoids, rotary angles).</summary>
        Constant,
        /// <summary>A value computed by the forward pass (its gradient at the same offset in the activation-gradient buffer).</summary>
        Activation,
    }

    /// <summary>How a parameter starts out; mirrors the runtime's <c>WeightInit</c>.</summary>
    internal enum InitKind { Zeros, Ones, Normal }

    /// <summary>
    /// A tensor with a static shape. Activations are matrices of rows by <see cref="Width"/>; when
    /// <see cref="PerToken"/> the rows are the tokens of the step (<c>Batch·SeqLen</c> in training, the new
    /// positions in cached inference).
    /// </summary>
    internal sealed class TensorDef
    {
        public TensorDef(string name, TensorKind kind, long[] shape, int layer = -1, string? role = null)
        {
            Name = name;
            Kind = kind;
            Shape = shape;
            Layer = layer;
            Role = role ?? name;
        }

        /// <summary>A part of a parameter tensor (rows of a stacked weight, say), sharing its memory: not a tensor of its own in the table.</summary>
        public static TensorDef View(TensorDef parent, long elementOffset, params long[] shape) =>
            new(parent.Name + $"[{elementOffset}..{elementOffset + Product(shape)})", parent.Kind, shape) { Parent = parent, ViewOffset = elementOffset };

        private static long Product(long[] shape)
        {
            long n = 1;
            foreach (long d in shape) n = Saturating.Multiply(n, d);
            return n;
        }

        /// <summary>The tensor this one is a view into, or null.</summary>
        public TensorDef? Parent { get; private init; }
        /// <summary>Where a view starts inside its parent, in elements.</summary>
        public long ViewOffset { get; private init; }
        /// <summary>For per-token activations: which token stream its rows follow.</summary>
        public TokenStream Stream { get; init; }
        /// <summary>At inference, the tensor lives in the key/value cache (cross-attention keys and values, computed once per source).</summary>
        public bool InCache { get; init; }
        /// <summary>
        /// A parameter the plan places right before the next one, without alignment padding, so that a view can span both:
        /// Hugging Face's separate q/k/v (or gate/up) projections read as one packed weight, one matrix product.
        /// </summary>
        public bool PackedWithNext { get; init; }
        /// <summary>Checkpoint files hold this 2-D parameter as <c>[in, out]</c> (GPT-2's Conv1D); the model computes with <c>[out, in]</c>.</summary>
        public bool StoredTransposed { get; init; }
        /// <summary>An output whose gradient the caller supplies (a sentence embedding's): the backward pass never clears it.</summary>
        public bool SeededGradient { get; init; }
        /// <summary>Attention probabilities <c>[batch, heads, queries, keys]</c>: at inference sized by the current length squared.</summary>
        public bool IsAttentionProbabilities { get; init; }
        /// <summary>T5's relative-position bias rows <c>[Batch·Heads, 2·span − 1]</c>: at inference one sequence's, Heads rows.</summary>
        public bool IsPositionBias { get; init; }

        public string Name { get; }
        public TensorKind Kind { get; }
        /// <summary>The shape in training, outermost first.</summary>
        public long[] Shape { get; }
        /// <summary>The layer the tensor belongs to, or -1.</summary>
        public int Layer { get; }
        /// <summary>The name without its layer prefix: tensors of the same role in different layers can share inference memory.</summary>
        public string Role { get; }
        public bool PerToken { get; init; }
        /// <summary>Only the backward pass reads it (attention probabilities, dropout masks): inference does not allocate it.</summary>
        public bool TrainingOnly { get; init; }
        public InitKind Init { get; init; }
        public float InitScale { get; init; }

        public long Elements
        {
            get
            {
                long n = 1;
                foreach (long d in Shape) n = Saturating.Multiply(n, d);
                return n;
            }
        }

        /// <summary>Elements per row: the product of every dimension but the first.</summary>
        public long Width => Shape.Length == 1 ? 1 : Elements / Shape[0];

        public string ShapeText => "[" + string.Join(", ", Shape) + "]";

        public override string ToString() => Name + ShapeText;
    }

    /// <summary>
    /// Arithmetic on sizes that stops at <see cref="Limit"/> instead of wrapping, so that absurd declarations
    /// (every size int.MaxValue) still lower and plan, and are then reported as too large for 32-bit indexing.
    /// </summary>
    internal static class Saturating
    {
        public const long Limit = 1L << 62;

        public static long Multiply(long a, long b) => a == 0 || b == 0 ? 0 : a > Limit / b ? Limit : System.Math.Min(a * b, Limit);

        public static long Add(long a, long b) => a > Limit - b ? Limit : a + b;
    }

    /// <summary>The part of the model an operation belongs to; each part becomes one generated method.</summary>
    internal readonly record struct Stage(StageKind Kind, int Layer)
    {
        public static readonly Stage Embed = new(StageKind.Embed, -1);
        public static readonly Stage EncoderOutput = new(StageKind.EncoderOutput, -1);
        public static readonly Stage TargetEmbed = new(StageKind.TargetEmbed, -1);
        public static readonly Stage Head = new(StageKind.Head, -1);
        public static Stage OfLayer(int layer) => new(StageKind.Layer, layer);
        public static Stage OfEncoderLayer(int layer) => new(StageKind.EncoderLayer, layer);
        public static Stage OfDecoderLayer(int layer) => new(StageKind.DecoderLayer, layer);

        /// <summary>Whether cached inference runs this stage once per source (the encoder side) rather than per decoded token.</summary>
        public bool IsEncoderSide => Kind is StageKind.Embed or StageKind.EncoderLayer or StageKind.EncoderOutput;
    }

    /// <summary>
    /// The parts of a model, in forward order: the input embedding, decoder-only layers or encoder layers, the
    /// encoder's output (its final norm), the target embedding and decoder layers, and the head.
    /// </summary>
    internal enum StageKind { Embed, Layer, EncoderLayer, EncoderOutput, TargetEmbed, DecoderLayer, Head }

    /// <summary>The token sequences a model reads: its input (the source of an encoder–decoder), and the decoder's input.</summary>
    internal enum TokenStream { Input, Decoder }

    /// <summary>The model as an ordered list of operations over tensors with static shapes.</summary>
    internal sealed class ModelGraph
    {
        public ModelGraph(ModelSpec spec, ModelDims dims, List<TensorDef> tensors, List<Op> ops)
        {
            Spec = spec;
            Dims = dims;
            Tensors = tensors;
            Ops = ops;
        }

        public ModelSpec Spec { get; }
        public ModelDims Dims { get; }
        /// <summary>Every tensor, parameters in state_dict order first.</summary>
        public List<TensorDef> Tensors { get; }
        /// <summary>The forward pass in execution order; the backward pass is the reverse.</summary>
        public List<Op> Ops { get; }
        /// <summary>The last hidden state <c>[rows, DModel]</c>, the head's input (after the final norm where there is one); null where not exposed.</summary>
        public TensorDef? HiddenState { get; init; }
        /// <summary>An encoder–decoder's encoder output <c>[Batch·SeqLen, DModel]</c>, what the cross-attention reads; null otherwise.</summary>
        public TensorDef? EncoderState { get; init; }
    }

    /// <summary>The derived sizes, computed once (as llm.c's fill_in_parameter_sizes does), printed by the emitter.</summary>
    internal sealed record ModelDims(int Vocab, int DModel, int Heads, int HeadDim, int Layers, int DFF, int SeqLen, int Batch,
        int EncoderLayers, int DecoderLayers, int TargetVocab, int TargetSeqLen, int Classes, int KvHeads = 0)
    {
        /// <summary>Key/value cache slots of a decoder-only model at inference (the Sequences option, else Batch); 1 otherwise.</summary>
        public int CacheSlots { get; init; } = 1;

        /// <summary>Key/value heads: <see cref="Heads"/> unless grouped-query attention shares them.</summary>
        public int KeyValueHeads => KvHeads > 0 ? KvHeads : Heads;

        /// <summary>Width of one position's keys (or values) in the cache.</summary>
        public long KeyValueWidth => (long)KeyValueHeads * HeadDim;

        /// <summary>Input tokens per training step.</summary>
        public long Tokens => (long)Batch * SeqLen;

        /// <summary>Decoder tokens per training step (encoder–decoder).</summary>
        public long TargetTokens => (long)Batch * TargetSeqLen;

        public long Rows(TokenStream stream) => stream == TokenStream.Input ? Tokens : TargetTokens;

        public int Length(TokenStream stream) => stream == TokenStream.Input ? SeqLen : TargetSeqLen;

        /// <summary>The longest sequence of either stream: the size of position tables.</summary>
        public int MaxLength => System.Math.Max(SeqLen, TargetSeqLen);
    }
}
