using System;

namespace TransformerGen
{
    /// <summary>
    /// Declares a Transformer on a <c>partial</c> class. At build time the Transformer.Gen source generator checks
    /// the declaration, then writes the model's forward pass, backward pass and training entry points into the
    /// class, with every size and offset fixed at compile time.
    /// </summary>
    /// <example>
    /// <code>
    /// [TransformerModel(Vocab = 65, DModel = 128, Heads = 4, Layers = 4, DFF = 512, SeqLen = 64, Batch = 16)]
    /// public partial class TinyLm { }
    /// </code>
    /// </example>
    [AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
    public sealed class TransformerModelAttribute : Attribute
    {
        /// <summary>Which stacks of layers the model has: decoder-only (causal) is the default.</summary>
        public Architecture Architecture { get; set; } = Architecture.DecoderOnly;

        /// <summary>Number of token ids; ids are in <c>[0, Vocab)</c>.</summary>
        public int Vocab { get; set; }

        /// <summary>Width of the residual stream (the paper's d_model).</summary>
        public int DModel { get; set; }

        /// <summary>Number of attention heads; must divide <see cref="DModel"/>.</summary>
        public int Heads { get; set; }

        /// <summary>Number of Transformer layers.</summary>
        public int Layers { get; set; }

        /// <summary>Width of the feed-forward network's hidden layer (the paper's d_ff).</summary>
        public int DFF { get; set; }

        /// <summary>Sequence length: the number of positions the model sees at once.</summary>
        public int SeqLen { get; set; }

        /// <summary>Number of sequences per training step. Defaults to 1.</summary>
        public int Batch { get; set; } = 1;

        /// <summary>How positions are encoded. Defaults to the paper's sinusoids.</summary>
        public Positional Positional { get; set; } = Positional.Sinusoidal;

        /// <summary>Where LayerNorm sits around each sub-layer. Defaults to pre-LN (GPT-2), which trains stably without warm-up.</summary>
        public NormPlacement Norm { get; set; } = NormPlacement.Pre;

        /// <summary>The feed-forward network's activation. Defaults to GELU (exact erf form, PyTorch's default).</summary>
        public Activation Activation { get; set; } = Activation.Gelu;

        /// <summary>Dropout probability in <c>[0, 1)</c>, applied where the paper applies it: to the sum of embeddings and positions and to each sub-layer's output before the residual add. 0 (the default) removes dropout from the generated code.</summary>
        public float Dropout { get; set; }

        /// <summary>Label smoothing ε in <c>[0, 1)</c> for the cross-entropy loss, as PyTorch defines it. Defaults to 0.</summary>
        public float LabelSmoothing { get; set; }

        /// <summary>Whether the output projection reuses the (target) token embedding matrix. Defaults to true.</summary>
        public bool TiedEmbeddings { get; set; } = true;

        /// <summary>Encoder layers of an encoder–decoder or encoder-only model; 0 (the default) means <see cref="Layers"/>.</summary>
        public int EncoderLayers { get; set; }

        /// <summary>Decoder layers of an encoder–decoder model; 0 (the default) means <see cref="Layers"/>.</summary>
        public int DecoderLayers { get; set; }

        /// <summary>The decoder's vocabulary of an encoder–decoder model; 0 (the default) means the same as <see cref="Vocab"/>.</summary>
        public int TargetVocab { get; set; }

        /// <summary>Target positions of an encoder–decoder model; 0 (the default) means the same as <see cref="SeqLen"/>.</summary>
        public int TargetSeqLen { get; set; }

        /// <summary>
        /// The padding id, or -1 (the default) for no padding. Padded positions are masked as keys in every
        /// attention, ignored as targets, and skipped by mean pooling: they contribute nothing to outputs, losses or gradients.
        /// </summary>
        public int PadToken { get; set; } = -1;

        /// <summary>The begin-of-sequence id that starts the decoder's input (teacher forcing shifts the target right behind it). Encoder–decoder only.</summary>
        public int BosToken { get; set; } = -1;

        /// <summary>The end-of-sequence id that stops decoding, or -1 to always decode to the full length. Encoder–decoder only.</summary>
        public int EosToken { get; set; } = -1;

        /// <summary>Multiply token embeddings by √DModel before adding positions, as the paper does (§3.4). Defaults to false.</summary>
        public bool ScaleEmbeddings { get; set; }

        /// <summary>
        /// A decoder-only model's key/value cache slots at inference: how many sequences (conversations) one instance holds
        /// and one <c>Append(tokens, lengths, sequences)</c> runs together. 0 (the default) takes Batch. Independent of
        /// Batch, so many slots of a long SeqLen need no training batch of that size.
        /// </summary>
        public int Sequences { get; set; }

        /// <summary>Restricted self-attention: each query sees only keys within this distance of its position (the paper's r, §4). 0 (the default) is unrestricted.</summary>
        public int AttentionWindow { get; set; }

        /// <summary>Number of classes of an encoder-only model's head.</summary>
        public int Classes { get; set; }

        /// <summary>What an encoder-only model predicts: one class per sequence (the default) or one per token.</summary>
        public EncoderHead Head { get; set; } = EncoderHead.Classification;

        /// <summary>
        /// A safetensors checkpoint to build into the model: the file name of a <c>&lt;TransformerWeights Include="…" /&gt;</c>
        /// item of the project. Every tensor's name, dtype and shape is checked against the model at compile time
        /// (a mismatch is an error at this argument), the file is embedded in the assembly, and the generated
        /// <c>FromBuiltInWeights()</c> builds the model from it, with no file needed at run time.
        /// </summary>
        public string? Weights { get; set; }

        /// <summary>
        /// A Hugging Face <c>config.json</c> (listed in the project as <c>&lt;TransformerConfig Include="…" /&gt;</c>) that gives the
        /// architecture and every size: <c>model_type</c> gpt2, bert, roberta, xlm-roberta, distilbert, llama, mistral, phi3, qwen2 or qwen3. The attribute then says only
        /// what the config does not: <c>SeqLen</c> (at most the config's positions), <c>Batch</c>, the encoder's <c>Head</c>.
        /// The model's parameters take the family's checkpoint names, so <c>Load</c> reads the family's own files.
        /// </summary>
        public string? Config { get; set; }

        /// <summary>
        /// How an encoder-only head pools the sequence: the first token (BERT's [CLS]) or the mean of non-pad tokens. A
        /// classification head takes the first token unless told otherwise; a sentence embedding (<see cref="EncoderHead.SentenceEmbedding"/>)
        /// takes the mean unless told otherwise: declare <c>Pooling.FirstToken</c> for models whose sentence-transformers
        /// folder says <c>"pooling_mode_cls_token": true</c> in <c>1_Pooling/config.json</c> (bge, arctic-embed).
        /// </summary>
        public Pooling Pooling { get; set; } = Pooling.FirstToken;

        /// <summary>
        /// How inference instances (<c>ForInference</c>, <c>FromBuiltInWeights</c>) hold the weight matrices of the linear
        /// layers: fp32 (the default), bf16, or 8-bit blocks. Their factories take another type as an argument; training
        /// instances always hold fp32.
        /// </summary>
        public WeightType WeightType { get; set; } = WeightType.Float32;

        /// <summary>
        /// What training attention keeps for its backward pass: <see cref="AttentionKernel.Auto"/> (the default) stores the
        /// probabilities below 512 positions and tiles from 512 on, where they measured no slower; <see cref="AttentionKernel.Tiled"/>
        /// keeps memory linear in the sequence length; <see cref="AttentionKernel.StoredProbabilities"/> keeps the
        /// probabilities that <c>AttentionMap</c> reads.
        /// </summary>
        public AttentionKernel AttentionKernel { get; set; } = AttentionKernel.Auto;

        /// <summary>
        /// When true, training does not keep the feed-forward network's activation output (ReLU, GELU, SiLU, or SwiGLU's
        /// gated product) between the passes: the backward pass computes it again from the input it keeps anyway, just
        /// before the layers that read it. The gradients are the same bits; the training workspace holds one
        /// <c>[tokens, DFF]</c> tensor less per layer (about a quarter of a GPT layer's activations) for one more
        /// elementwise pass per layer over an input long out of the caches (measured at +1% of a training step on one
        /// thread and +4–5% on two; README, "Long sequences"). Off by default.
        /// </summary>
        public bool RecomputeActivations { get; set; }
    }

    /// <summary>How training attention computes its backward pass, and so what memory it holds between the passes.</summary>
    public enum AttentionKernel
    {
        /// <summary>
        /// <see cref="StoredProbabilities"/> when every attention's query and key sequences are shorter than 512 positions,
        /// else <see cref="Tiled"/> (the crossover measured on the training step, README's "Long sequences").
        /// </summary>
        Auto = 0,
        /// <summary>
        /// Forward keeps the probabilities <c>[Batch, Heads, queries, keys]</c> of every attention for backward, memory that
        /// grows with the square of the sequence length; <c>AttentionMap</c> reads them after a forward pass.
        /// </summary>
        StoredProbabilities = 1,
        /// <summary>
        /// FlashAttention-style tiles: forward keeps only each query row's softmax maximum and sum, and backward recomputes
        /// the probabilities tile by tile, so memory grows linearly with the sequence length (an encoder's inference
        /// attends tile by tile too). No attention maps are kept.
        /// </summary>
        Tiled = 2,
    }

    /// <summary>
    /// How an inference instance holds the weight matrices of its linear layers (a tied output head's table included).
    /// Norms, biases and position tables stay fp32; every product still sums in fp32.
    /// </summary>
    public enum WeightType
    {
        /// <summary>The fp32 weights as trained or loaded.</summary>
        Float32 = 0,
        /// <summary>Each weight rounded to bf16 (to nearest, ties to even): half the bytes of fp32.</summary>
        BFloat16 = 1,
        /// <summary>
        /// Symmetric blocks of 32 weights along the input, each stored as signed bytes with one fp16 scale (the arithmetic
        /// of GGUF's Q8_0): 34 bytes per 32 weights, about 27% of fp32.
        /// </summary>
        Int8 = 2,
    }

    /// <summary>What an encoder-only model's head predicts.</summary>
    public enum EncoderHead
    {
        /// <summary>One of <c>Classes</c> labels per sequence, from a pooled vector.</summary>
        Classification = 0,
        /// <summary>One of <c>Classes</c> labels per token (tagging).</summary>
        Tagging = 1,
        /// <summary>
        /// One vector per sequence as sentence-transformers computes it: the mean of the encoder outputs over non-padding
        /// positions (or the first token's output, with <c>Pooling = Pooling.FirstToken</c>), then L2-normalized
        /// (<c>Predict</c> returns <c>[Batch, DModel]</c>). Needs a padding id.
        /// </summary>
        SentenceEmbedding = 2,
    }

    /// <summary>How a classification head turns a sequence into one vector.</summary>
    public enum Pooling
    {
        /// <summary>The encoder output at the first position.</summary>
        FirstToken = 0,
        /// <summary>The mean of the encoder outputs at positions that are not padding.</summary>
        Mean = 1,
    }

    /// <summary>The stack of layers a model is made of.</summary>
    public enum Architecture
    {
        /// <summary>A stack of causal self-attention layers predicting the next token (GPT).</summary>
        DecoderOnly = 0,
        /// <summary>The paper's Transformer: a bidirectional encoder over the source and a causal decoder with cross-attention to it.</summary>
        EncoderDecoder = 1,
        /// <summary>A bidirectional encoder with a classification or tagging head (BERT).</summary>
        EncoderOnly = 2,
    }

    /// <summary>How the position of each token enters the model.</summary>
    public enum Positional
    {
        /// <summary>Fixed sines and cosines added to the embeddings ("Attention Is All You Need", §3.5).</summary>
        Sinusoidal = 0,
        /// <summary>A trained table of position vectors added to the embeddings (<c>pos_embedding.weight</c>).</summary>
        Learned = 1,
        /// <summary>Rotary position embedding (RoFormer): queries and keys are rotated by an angle proportional to the position. Needs an even head size.</summary>
        Rotary = 2,
        /// <summary>
        /// T5's learned relative-position bias: no position enters the embeddings; each head adds a learned scalar per bucket of
        /// key-minus-query distances to its scores. Comes from a T5 config.json (<c>Config =</c>); declarations of their own
        /// cannot choose it.
        /// </summary>
        Relative = 3,
    }

    /// <summary>Where LayerNorm sits relative to each residual sub-layer.</summary>
    public enum NormPlacement
    {
        /// <summary>After the residual add, as in the paper: <c>x = LayerNorm(x + Sublayer(x))</c>.</summary>
        Post = 0,
        /// <summary>Before the sub-layer, as in GPT-2: <c>x = x + Sublayer(LayerNorm(x))</c>, with a final LayerNorm.</summary>
        Pre = 1,
    }

    /// <summary>The activation between the feed-forward network's two linear layers.</summary>
    public enum Activation
    {
        /// <summary><c>max(0, x)</c>, as in the paper.</summary>
        Relu = 0,
        /// <summary><c>x·Φ(x)</c> with the exact error function, as PyTorch's <c>gelu</c> by default.</summary>
        Gelu = 1,
    }
}
