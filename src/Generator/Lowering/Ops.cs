using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>
    /// One operation of the forward pass. It names the tensors it reads and writes (a tensor it updates in
    /// place is both), and checks its own shapes against what it needs.
    /// </summary>
    internal abstract class Op
    {
        protected Op(Stage stage, string title)
        {
            Stage = stage;
            Title = title;
        }

        public Stage Stage { get; }
        /// <summary>Which part of the Transformer this is, for the comment above its generated code.</summary>
        public string Title { get; }
        public abstract IEnumerable<TensorDef> Reads { get; }
        public abstract IEnumerable<TensorDef> Writes { get; }

        /// <summary>Shape mismatches, described; empty when the operation is well formed.</summary>
        public abstract IEnumerable<string> CheckShapes();

        protected static IEnumerable<string> Expect(TensorDef t, params long[] shape)
        {
            bool same = t.Shape.Length == shape.Length;
            for (int i = 0; same && i < shape.Length; i++) same = t.Shape[i] == shape[i];
            if (!same) yield return $"{t.Name} is {t.ShapeText}, expected [{string.Join(", ", shape)}]";
        }
    }

    /// <summary>Token ids → rows of the embedding table.</summary>
    internal sealed class EmbeddingOp(Stage stage, TensorDef table, TensorDef output) : Op(stage, "token embedding")
    {
        public TensorDef Table { get; } = table;
        public TensorDef Output { get; } = output;
        public override IEnumerable<TensorDef> Reads => [Table];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Output, Output.Shape[0], Table.Shape[1]);
    }

    /// <summary>Adds a position table (sinusoidal constant or learned parameter) in place.</summary>
    internal sealed class PositionalAddOp(Stage stage, TensorDef table, TensorDef x) : Op(stage, table.Kind == TensorKind.Parameter ? "learned positions" : "sinusoidal positions")
    {
        public TensorDef Table { get; } = table;
        public TensorDef X { get; } = x;
        public override IEnumerable<TensorDef> Reads => [Table, X];
        public override IEnumerable<TensorDef> Writes => [X];
        public override IEnumerable<string> CheckShapes() => Expect(Table, Table.Shape[0], X.Width);
    }

    /// <summary>Inverted dropout with a mask kept for backward; the identity at inference.</summary>
    internal sealed class DropoutOp(Stage stage, string title, TensorDef input, TensorDef output, TensorDef mask, float probability) : Op(stage, title)
    {
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public TensorDef Mask { get; } = mask;
        public float Probability { get; } = probability;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output, Mask];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Output, Input.Shape)) yield return e;
            foreach (string e in Expect(Mask, Input.Shape)) yield return e;
        }
    }

    /// <summary>LayerNorm over the channels of each row, keeping mean and 1/σ for backward.</summary>
    internal sealed class LayerNormOp(Stage stage, string title, TensorDef input, TensorDef gamma, TensorDef beta, TensorDef output, TensorDef mean, TensorDef rstd) : Op(stage, title)
    {
        public TensorDef Input { get; } = input;
        public TensorDef Gamma { get; } = gamma;
        public TensorDef Beta { get; } = beta;
        public TensorDef Output { get; } = output;
        public TensorDef Mean { get; } = mean;
        public TensorDef Rstd { get; } = rstd;
        public override IEnumerable<TensorDef> Reads => [Input, Gamma, Beta];
        public override IEnumerable<TensorDef> Writes => [Output, Mean, Rstd];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Gamma, Input.Width)) yield return e;
            foreach (string e in Expect(Beta, Input.Width)) yield return e;
            foreach (string e in Expect(Output, Input.Shape)) yield return e;
            foreach (string e in Expect(Mean, Input.Shape[0])) yield return e;
            foreach (string e in Expect(Rstd, Input.Shape[0])) yield return e;
        }
    }

    /// <summary>A linear layer: <c>y = x·Wᵀ + b</c>, W stored <c>[out, in]</c> as in PyTorch.</summary>
    internal sealed class LinearOp(Stage stage, string title, TensorDef input, TensorDef weight, TensorDef? bias, TensorDef output) : Op(stage, title)
    {
        public TensorDef Input { get; } = input;
        public TensorDef Weight { get; } = weight;
        public TensorDef? Bias { get; } = bias;
        public TensorDef Output { get; } = output;
        public long InFeatures => Weight.Shape[1];
        public long OutFeatures => Weight.Shape[0];
        public override IEnumerable<TensorDef> Reads => Bias is null ? [Input, Weight] : [Input, Weight, Bias];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Input, Input.Shape[0], InFeatures)) yield return e;
            if (Bias is not null)
                foreach (string e in Expect(Bias, OutFeatures)) yield return e;
            foreach (string e in Expect(Output, Input.Shape[0], OutFeatures)) yield return e;
        }
    }

    /// <summary>Rotary position embedding applied in place to the Q and K parts of a packed Q|K|V tensor.</summary>
    internal sealed class RotaryOp(Stage stage, TensorDef qkv, TensorDef cos, TensorDef sin, int heads, int headDim) : Op(stage, "rotary positions on Q and K")
    {
        public TensorDef Qkv { get; } = qkv;
        public TensorDef Cos { get; } = cos;
        public TensorDef Sin { get; } = sin;
        public int Heads { get; } = heads;
        public int HeadDim { get; } = headDim;
        public override IEnumerable<TensorDef> Reads => [Qkv, Cos, Sin];
        public override IEnumerable<TensorDef> Writes => [Qkv];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Qkv, Qkv.Shape[0], 3L * Heads * HeadDim)) yield return e;
            foreach (string e in Expect(Cos, Cos.Shape[0], HeadDim / 2)) yield return e;
            foreach (string e in Expect(Sin, Cos.Shape)) yield return e;
        }
    }

    /// <summary>Multi-head scaled dot-product self-attention on a packed Q|K|V tensor; heads concatenated.</summary>
    internal sealed class AttentionOp(Stage stage, TensorDef qkv, TensorDef output, TensorDef probabilities, int heads, int headDim, bool causal) : Op(stage, causal ? "causal self-attention" : "self-attention")
    {
        public TensorDef Qkv { get; } = qkv;
        public TensorDef Output { get; } = output;
        public TensorDef Probabilities { get; } = probabilities;
        public int Heads { get; } = heads;
        public int HeadDim { get; } = headDim;
        public bool Causal { get; } = causal;
        public override IEnumerable<TensorDef> Reads => [Qkv];
        public override IEnumerable<TensorDef> Writes => [Output, Probabilities];
        public override IEnumerable<string> CheckShapes()
        {
            long c = (long)Heads * HeadDim;
            foreach (string e in Expect(Qkv, Qkv.Shape[0], 3 * c)) yield return e;
            foreach (string e in Expect(Output, Qkv.Shape[0], c)) yield return e;
        }
    }

    /// <summary>The residual connection: <c>out = a + b</c>.</summary>
    internal sealed class AddOp(Stage stage, string title, TensorDef a, TensorDef b, TensorDef output) : Op(stage, title)
    {
        public TensorDef A { get; } = a;
        public TensorDef B { get; } = b;
        public TensorDef Output { get; } = output;
        public override IEnumerable<TensorDef> Reads => [A, B];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(B, A.Shape)) yield return e;
            foreach (string e in Expect(Output, A.Shape)) yield return e;
        }
    }

    /// <summary>The feed-forward network's activation, ReLU or GELU.</summary>
    internal sealed class ActivationOp(Stage stage, bool gelu, TensorDef input, TensorDef output) : Op(stage, gelu ? "GELU" : "ReLU")
    {
        public bool Gelu { get; } = gelu;
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Output, Input.Shape);
    }

    /// <summary>Softmax of the logits and the (label-smoothed) cross-entropy against the targets.</summary>
    internal sealed class CrossEntropyOp(Stage stage, TensorDef logits, TensorDef probabilities, float labelSmoothing) : Op(stage, "softmax and cross-entropy")
    {
        public TensorDef Logits { get; } = logits;
        public TensorDef Probabilities { get; } = probabilities;
        public float LabelSmoothing { get; } = labelSmoothing;
        public override IEnumerable<TensorDef> Reads => [Logits];
        public override IEnumerable<TensorDef> Writes => [Probabilities];
        public override IEnumerable<string> CheckShapes() => Expect(Probabilities, Logits.Shape);
    }
}
