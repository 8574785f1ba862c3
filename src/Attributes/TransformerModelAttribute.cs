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
        /// <summary>Which stack of layers the model is: decoder-only (causal) is the default.</summary>
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

        /// <summary>Whether the output projection reuses the token embedding matrix. Defaults to true.</summary>
        public bool TiedEmbeddings { get; set; } = true;
    }

    /// <summary>The stack of layers a model is made of.</summary>
    public enum Architecture
    {
        /// <summary>A stack of causal self-attention layers predicting the next token (GPT).</summary>
        DecoderOnly = 0,
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
