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
            InferenceStage = stage;
            Title = title;
        }

        public Stage Stage { get; }
        /// <summary>
        /// The stage whose inference method runs this operation: its own, except for work that depends only on the
        /// source (cross-attention keys and values), which runs once per source with the encoder.
        /// </summary>
        public Stage InferenceStage { get; init; }
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
    internal sealed class EmbeddingOp(Stage stage, TokenStream stream, TensorDef table, TensorDef output, float scale) : Op(stage, scale == 1f ? "token embedding" : "token embedding × √DModel")
    {
        public TokenStream Stream { get; } = stream;
        public TensorDef Table { get; } = table;
        public TensorDef Output { get; } = output;
        /// <summary>The factor on the embeddings: 1, or √DModel as in the paper.</summary>
        public float Scale { get; } = scale;
        /// <summary>A table row whose lookups pass no gradient back (PyTorch's <c>padding_idx</c>), or −1.</summary>
        public int PaddingRow { get; init; } = -1;
        public override IEnumerable<TensorDef> Reads => [Table];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Output, Output.Shape[0], Table.Shape[1]);
    }

    /// <summary>Adds a position table (sinusoidal constant or learned parameter) in place.</summary>
    internal sealed class PositionalAddOp(Stage stage, TokenStream stream, TensorDef table, TensorDef x, int firstRow = 0)
        : Op(stage, table.Kind != TensorKind.Parameter ? "sinusoidal positions"
            : firstRow > 0 ? $"learned positions (position 0 is row {firstRow} of the table)" : "learned positions")
    {
        public TokenStream Stream { get; } = stream;
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
    internal sealed class LayerNormOp(Stage stage, string title, TensorDef input, TensorDef gamma, TensorDef? beta, TensorDef output, TensorDef mean, TensorDef rstd) : Op(stage, title)
    {
        public TensorDef Input { get; } = input;
        public TensorDef Gamma { get; } = gamma;
        /// <summary>The shift, or null for a LayerNorm without one (<c>bias=False</c>: ModernBERT's).</summary>
        public TensorDef? Beta { get; } = beta;
        public TensorDef Output { get; } = output;
        public TensorDef Mean { get; } = mean;
        public TensorDef Rstd { get; } = rstd;
        /// <summary>Added to the variance: PyTorch's 1e-5 unless a config says otherwise (BERT's is 1e-12).</summary>
        public float Eps { get; init; } = 1e-5f;
        public override IEnumerable<TensorDef> Reads => Beta is null ? [Input, Gamma] : [Input, Gamma, Beta];
        public override IEnumerable<TensorDef> Writes => [Output, Mean, Rstd];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Gamma, Input.Width)) yield return e;
            if (Beta is not null)
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
    internal sealed class RotaryOp(Stage stage, TokenStream stream, TensorDef qkv, TensorDef cos, TensorDef sin, int heads, int headDim) : Op(stage, "rotary positions on Q and K")
    {
        public TokenStream Stream { get; } = stream;
        public TensorDef Qkv { get; } = qkv;
        public TensorDef Cos { get; } = cos;
        public TensorDef Sin { get; } = sin;
        public int Heads { get; } = heads;
        public int HeadDim { get; } = headDim;
        /// <summary>Hugging Face's <c>rotate_half</c> pairs (j, j + HeadDim/2) instead of RoFormer's interleaved (2j, 2j+1).</summary>
        public bool HalfSplit { get; init; }
        /// <summary>Key/value heads (grouped-query attention): the K part of the row is KvHeads·HeadDim wide.</summary>
        public int KvHeads { get; init; }
        /// <summary>Q heads then K heads, adjacent at the start of each packed row: the blocks the rotation touches.</summary>
        public int RotatedHeads => Heads + (KvHeads > 0 ? KvHeads : Heads);
        public override IEnumerable<TensorDef> Reads => [Qkv, Cos, Sin];
        public override IEnumerable<TensorDef> Writes => [Qkv];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Qkv, Qkv.Shape[0], (long)(RotatedHeads + (KvHeads > 0 ? KvHeads : Heads)) * HeadDim)) yield return e;
            foreach (string e in Expect(Cos, Cos.Shape[0], HeadDim / 2)) yield return e;
            foreach (string e in Expect(Sin, Cos.Shape)) yield return e;
        }
    }

    /// <summary>
    /// Multi-head scaled dot-product attention; heads concatenated. Queries come from columns
    /// <see cref="QueryColumn"/>… of <see cref="Query"/>, keys and values from columns <see cref="KeyColumn"/>… and
    /// <see cref="ValueColumn"/>… of <see cref="KeysValues"/>: one packed Q|K|V tensor for self-attention, a query
    /// tensor and a packed K|V tensor for cross-attention.
    /// </summary>
    internal sealed class AttentionOp(
        Stage stage, string title, TensorDef query, long queryColumn, TensorDef keysValues, long keyColumn, long valueColumn,
        TensorDef output, TensorDef? probabilities, int heads, int headDim, TokenStream queryStream, TokenStream keyStream,
        bool causal, int window, bool keyPadding) : Op(stage, title)
    {
        public TensorDef Query { get; } = query;
        public long QueryColumn { get; } = queryColumn;
        public TensorDef KeysValues { get; } = keysValues;
        public long KeyColumn { get; } = keyColumn;
        public long ValueColumn { get; } = valueColumn;
        public TensorDef Output { get; } = output;
        /// <summary>
        /// The probabilities <c>[Batch, Heads, queries, keys]</c> the stored-probabilities kernel keeps for backward (and an
        /// encoder's inference uses as scratch); null when the attention is tiled.
        /// </summary>
        public TensorDef? Probabilities { get; } = probabilities;
        /// <summary>Tiled attention: each query row's softmax max and sum <c>[Batch, Heads, queries, 2]</c>, kept for backward; null for the stored-probabilities kernel.</summary>
        public TensorDef? Statistics { get; init; }
        /// <summary>Training and inference run the tiled kernels (FlashForward/FlashBackward, FlashForwardSequences) instead of storing the probabilities.</summary>
        public bool Tiled => Statistics is not null;
        public int Heads { get; } = heads;
        public int HeadDim { get; } = headDim;
        public TokenStream QueryStream { get; } = queryStream;
        public TokenStream KeyStream { get; } = keyStream;
        public bool Causal { get; } = causal;
        /// <summary>Restricted attention: keys within this distance of the query only; 0 for none.</summary>
        public int Window { get; } = window;
        /// <summary>Whether padded keys (of <see cref="KeyStream"/>) are masked.</summary>
        public bool KeyPadding { get; } = keyPadding;
        /// <summary>Key/value heads shared by groups of query heads (grouped-query attention); 0 for one per query head.</summary>
        public int KvHeads { get; init; }
        /// <summary>T5: the scores are not divided by √HeadDim (the kernels' scale 1 instead of their default).</summary>
        public bool Unscaled { get; init; }
        /// <summary>Gemma 3: the scores' factor query_pre_attn_scalar^−½ when it is not HeadDim^−½; 0 for the kernels' default.</summary>
        public float Scale { get; init; }
        /// <summary>The kernels' <c>scale</c> argument: 1 for <see cref="Unscaled"/>, <see cref="Scale"/>, or 0 for 1/√HeadDim.</summary>
        public float ScoreScale => Unscaled ? 1f : Scale;
        /// <summary>T5: the relative-position bias rows <c>[Batch·Heads, 2·BiasSpan − 1]</c> added to the scores, or null.</summary>
        public TensorDef? PositionBias { get; init; }
        /// <summary>The positions the <see cref="PositionBias"/> rows cover: the stream's length.</summary>
        public int BiasSpan { get; init; }
        /// <summary>Width of the keys (and of the values): KvHeads·HeadDim.</summary>
        public long KeyValueWidth => (long)(KvHeads > 0 ? KvHeads : Heads) * HeadDim;

        /// <summary>Self-attention on one packed Q|K|V tensor, with no padding or window: the kernel's fastest form.</summary>
        public bool IsPlainPackedSelfAttention =>
            ReferenceEquals(Query, KeysValues) && QueryColumn == 0 && KeyColumn == (long)Heads * HeadDim && ValueColumn == 2L * Heads * HeadDim
            && !KeyPadding && Window == 0 && KvHeads == 0 && ScoreScale == 0f && PositionBias is null;

        public override IEnumerable<TensorDef> Reads
        {
            get
            {
                yield return Query;
                if (!ReferenceEquals(Query, KeysValues)) yield return KeysValues;
                if (PositionBias is not null) yield return PositionBias;
            }
        }
        public override IEnumerable<TensorDef> Writes
        {
            get
            {
                yield return Output;
                if (Probabilities is not null) yield return Probabilities;
                if (Statistics is not null) yield return Statistics;
            }
        }
        public override IEnumerable<string> CheckShapes()
        {
            long c = (long)Heads * HeadDim;
            if (QueryColumn + c > Query.Width) yield return $"{Query.Name} has {Query.Width} columns, queries need {QueryColumn + c}";
            long kv = KeyValueWidth;
            if (System.Math.Max(KeyColumn, ValueColumn) + kv > KeysValues.Width) yield return $"{KeysValues.Name} has {KeysValues.Width} columns, keys and values need {System.Math.Max(KeyColumn, ValueColumn) + kv}";
            foreach (string e in Expect(Output, Query.Shape[0], c)) yield return e;
        }
    }

    /// <summary>
    /// T5's relative-position bias of one stack: the rows <c>[Batch·Heads, 2·Span − 1]</c> the stack's self-attention adds to
    /// its scores, gathered from the bucketed table <c>[Buckets, Heads]</c> (its first layer's <c>relative_attention_bias</c>).
    /// </summary>
    internal sealed class RelativeBiasOp(Stage stage, TensorDef table, TensorDef output, int heads, int span, bool bidirectional, int buckets, int maxDistance, int copies)
        : Op(stage, bidirectional ? "relative-position bias (buckets by distance either way)" : "relative-position bias (buckets by distance back)")
    {
        public TensorDef Table { get; } = table;
        public TensorDef Output { get; } = output;
        public int Heads { get; } = heads;
        public int Span { get; } = span;
        public bool Bidirectional { get; } = bidirectional;
        public int Buckets { get; } = buckets;
        public int MaxDistance { get; } = maxDistance;
        /// <summary>Sequences in a training step, each with rows of its own (and so a gradient of its own).</summary>
        public int Copies { get; } = copies;
        public override IEnumerable<TensorDef> Reads => [Table];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Table, Buckets, Heads)) yield return e;
            foreach (string e in Expect(Output, (long)Copies * Heads, 2L * Span - 1)) yield return e;
        }
    }

    /// <summary>Multiplication by a constant: T5's tied head reads the decoder's output × d_model^−½.</summary>
    internal sealed class ScaleOp(Stage stage, string title, TensorDef input, TensorDef output, float factor) : Op(stage, title)
    {
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public float Factor { get; } = factor;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Output, Input.Shape);
    }

    /// <summary>Pools each sequence of an encoder's output into one vector: its first token, or the mean of its non-pad tokens.</summary>
    internal sealed class PoolOp(Stage stage, bool mean, TensorDef input, TensorDef output, int batch, int seqLen) : Op(stage, mean ? "mean pooling over non-pad tokens" : "first-token pooling")
    {
        public bool Mean { get; } = mean;
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public int Batch { get; } = batch;
        public int SeqLen { get; } = seqLen;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Input, (long)Batch * SeqLen, Input.Width)) yield return e;
            foreach (string e in Expect(Output, Batch, Input.Width)) yield return e;
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

    /// <summary>The feed-forward network's activation: ReLU, GELU, or SiLU (Marian's <c>swish</c>).</summary>
    internal sealed class ActivationOp(Stage stage, bool gelu, TensorDef input, TensorDef output, bool tanh = false, bool silu = false)
        : Op(stage, silu ? "SiLU" : !gelu ? "ReLU" : tanh ? "GELU (tanh approximation)" : "GELU")
    {
        public bool Gelu { get; } = gelu && !silu;
        /// <summary>GPT-2's <c>gelu_new</c>: the tanh approximation instead of the erf form.</summary>
        public bool Tanh { get; } = gelu && tanh && !silu;
        /// <summary><c>x·σ(x)</c>.</summary>
        public bool Silu { get; } = silu;
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Output, Input.Shape);
    }

    /// <summary><c>tanh</c>, elementwise: BERT's pooler and RoBERTa's classification head, after their dense layer.</summary>
    internal sealed class TanhOp(Stage stage, TensorDef input, TensorDef output) : Op(stage, "tanh")
    {
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Output, Input.Shape);
    }

    /// <summary>Softmax of the logits and the (label-smoothed) cross-entropy against the targets.</summary>
    /// <remarks>Its softmax, which the backward pass needs, is written into the logits' gradient (no activation of its own).</remarks>
    internal sealed class CrossEntropyOp(Stage stage, TensorDef logits, float labelSmoothing) : Op(stage, "softmax and cross-entropy")
    {
        public TensorDef Logits { get; } = logits;
        public float LabelSmoothing { get; } = labelSmoothing;
        public override IEnumerable<TensorDef> Reads => [Logits];
        public override IEnumerable<TensorDef> Writes => [];
        public override IEnumerable<string> CheckShapes() => [];
    }

    /// <summary>RMSNorm as Llama computes it: <c>y = weight · x / √(mean(x²) + eps)</c>, keeping 1/rms for backward.</summary>
    internal sealed class RmsNormOp(Stage stage, string title, TensorDef input, TensorDef weight, TensorDef output, TensorDef rstd, float eps) : Op(stage, title)
    {
        public TensorDef Input { get; } = input;
        public TensorDef Weight { get; } = weight;
        public TensorDef Output { get; } = output;
        public TensorDef Rstd { get; } = rstd;
        public float Eps { get; } = eps;
        /// <summary>Gemma: the rows are scaled by 1 + weight.</summary>
        public bool UnitOffset { get; init; }
        public override IEnumerable<TensorDef> Reads => [Input, Weight];
        public override IEnumerable<TensorDef> Writes => [Output, Rstd];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Weight, Input.Width)) yield return e;
            foreach (string e in Expect(Output, Input.Shape)) yield return e;
            foreach (string e in Expect(Rstd, Input.Shape[0])) yield return e;
        }
    }

    /// <summary>
    /// Qwen3's query and key norms: each query head of a packed <c>[rows, Q | K | V]</c> projection RMS-normalized over its
    /// channels and scaled by <c>q_norm</c>, each key head by <c>k_norm</c>, the values copied; 1/rms kept per head.
    /// </summary>
    internal sealed class HeadRmsNormOp(Stage stage, TensorDef input, TensorDef queryWeight, TensorDef keyWeight, TensorDef output, TensorDef rstd,
        int heads, int kvHeads, int headDim, float eps) : Op(stage, "query and key RMSNorm per head (q_norm, k_norm)")
    {
        public TensorDef Input { get; } = input;
        public TensorDef QueryWeight { get; } = queryWeight;
        public TensorDef KeyWeight { get; } = keyWeight;
        public TensorDef Output { get; } = output;
        public TensorDef Rstd { get; } = rstd;
        public int Heads { get; } = heads;
        public int KvHeads { get; } = kvHeads;
        public int HeadDim { get; } = headDim;
        public float Eps { get; } = eps;
        /// <summary>Gemma 3: the heads are scaled by 1 + weight.</summary>
        public bool UnitOffset { get; init; }
        public override IEnumerable<TensorDef> Reads => [Input, QueryWeight, KeyWeight];
        public override IEnumerable<TensorDef> Writes => [Output, Rstd];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Input, Input.Shape[0], (long)(Heads + 2 * KvHeads) * HeadDim)) yield return e;
            foreach (string e in Expect(QueryWeight, HeadDim)) yield return e;
            foreach (string e in Expect(KeyWeight, HeadDim)) yield return e;
            foreach (string e in Expect(Output, Input.Shape)) yield return e;
            foreach (string e in Expect(Rstd, Input.Shape[0], Heads + KvHeads)) yield return e;
        }
    }

    /// <summary>
    /// The gated feed-forward activation of a packed <c>[rows, gate | up]</c> projection: <c>silu(gate) ⊙ up</c> (SwiGLU), or
    /// with <paramref name="geluTanh"/> <c>gelu_tanh(gate) ⊙ up</c> (T5 v1.1's GEGLU).
    /// </summary>
    /// <summary>The activation of a gated feed-forward's first half.</summary>
    internal enum GateActivation { Silu, GeluTanh, GeluErf }

    internal sealed class SwiGluOp(Stage stage, TensorDef input, TensorDef output, GateActivation gate = GateActivation.Silu)
        : Op(stage, gate switch
        {
            GateActivation.GeluTanh => "GEGLU: gelu_tanh(gate) ⊙ up",
            GateActivation.GeluErf => "GEGLU: gelu(input) ⊙ gate",
            _ => "SwiGLU: silu(gate) ⊙ up",
        })
    {
        /// <summary>SiLU (SwiGLU), the tanh GELU (T5's gated-gelu, Gemma's) or the erf GELU (ModernBERT's).</summary>
        public GateActivation Gate { get; } = gate;
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public long Hidden => Output.Width;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output];
        public override IEnumerable<string> CheckShapes() => Expect(Input, Output.Shape[0], 2 * Output.Width);
    }

    /// <summary>
    /// BERT's token-type embedding, in place: each token's segment row of the table added to it (sentence pairs), or row 0
    /// to every token when the call gives no types (one segment).
    /// </summary>
    internal sealed class TokenTypeOp(Stage stage, TensorDef table, TensorDef x) : Op(stage, "token-type embedding")
    {
        /// <summary>The token-type table <c>[type_vocab_size, DModel]</c>.</summary>
        public TensorDef Table { get; } = table;
        /// <summary>Row 0 of <see cref="Table"/>: the one segment of a call that gives no token types.</summary>
        public TensorDef Row { get; } = TensorDef.View(table, 0, x.Width);
        public TensorDef X { get; } = x;
        public override IEnumerable<TensorDef> Reads => [Table, X];
        public override IEnumerable<TensorDef> Writes => [X];
        public override IEnumerable<string> CheckShapes() => Expect(Table, Table.Shape[0], X.Width);
    }

    /// <summary>Rows scaled to unit L2 norm (torch's <c>F.normalize</c>), keeping each row's norm for backward.</summary>
    internal sealed class L2NormalizeOp(Stage stage, TensorDef input, TensorDef output, TensorDef norms) : Op(stage, "L2 normalization")
    {
        public TensorDef Input { get; } = input;
        public TensorDef Output { get; } = output;
        public TensorDef Norms { get; } = norms;
        public override IEnumerable<TensorDef> Reads => [Input];
        public override IEnumerable<TensorDef> Writes => [Output, Norms];
        public override IEnumerable<string> CheckShapes()
        {
            foreach (string e in Expect(Output, Input.Shape)) yield return e;
            foreach (string e in Expect(Norms, Input.Shape[0])) yield return e;
        }
    }
}
