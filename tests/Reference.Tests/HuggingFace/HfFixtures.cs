using System.IO;
using System.Runtime.CompilerServices;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>Where the checked-in fixture configs are (<c>HuggingFace/Configs/&lt;name&gt;/config.json</c> in the source tree).</summary>
public static class HfFixtures
{
    /// <summary>The fixture names: one folder each under <c>Configs/</c>.</summary>
    public static readonly string[] Names = { "gpt2", "bert", "llama-gqa", "llama-mqa", "qwen2" };

    /// <summary>
    /// The Llama-family decoders with scaled rotary positions: llama3 (from rope_scaling, and from transformers 5's
    /// rope_parameters), Qwen2 with yarn and Phi-3 with longrope, each original context small enough that the scaling acts
    /// within a few positions.
    /// </summary>
    public static readonly string[] RopeScaled = { "llama3-rope", "llama3-rope-parameters", "qwen2-yarn", "phi3-longrope" };

    /// <summary>The encoder–decoder fixture (MarianMTModel, opus-mt-shaped), kept apart from <see cref="Names"/>: it has neither a decoder-only loss nor sentence embeddings.</summary>
    public const string Marian = "marian";

    /// <summary>The BART-shaped encoder–decoders (facebook/bart-base and facebook/mbart-large-50 in small), apart for the same reason.</summary>
    public const string Bart = "bart", MBart = "mbart";

    /// <summary>The M2M100 encoder–decoder (facebook/nllb-200-distilled-600M in small), apart for the same reason.</summary>
    public const string M2M100 = "m2m100";

    /// <summary>
    /// The T5ForConditionalGeneration encoder–decoders, apart for the same reason: t5-small-shaped (v1.0: relu, tied head
    /// scaled by d_model^−½) and google/flan-t5-small-shaped (v1.1: gated gelu_new, untied <c>lm_head</c>).
    /// </summary>
    public const string T5 = "t5", FlanT5 = "flan-t5";

    /// <summary>The NomicBERT sentence encoder (nomic-ai/nomic-embed-text-v1.5 in small), kept apart: its hub code, not transformers, defines it.</summary>
    public const string NomicBert = "nomic-bert";

    /// <summary>The MPNet sentence encoder (sentence-transformers/all-mpnet-base-v2 in small), kept apart: relative position buckets on top of BERT's layers.</summary>
    public const string MPNet = "mpnet";

    /// <summary>
    /// Gemma3ForCausalLM (google/gemma-3-270m / gemma-3-1b-it in small, with gemma-3-4b's linear rope scaling), kept apart:
    /// no compiled model is built from it yet, and its sliding and global layers differ from the other decoders'.
    /// </summary>
    public const string Gemma3 = "gemma3";

    /// <summary>
    /// google/embeddinggemma-300m in small: Gemma3TextModel with bidirectional attention and the sentence-transformers
    /// modules beside its config.json (mean pooling, two Dense layers, Normalize), kept apart: the reference alone so far.
    /// </summary>
    public const string EmbeddingGemma = "embeddinggemma";

    /// <summary>
    /// ModernBERT in small: a sentence-transformers folder on ModernBertModel (nomic-ai/modernbert-embed-base-shaped: mean
    /// pooling, Normalize), ModernBertForSequenceClassification (3 labels, mean pooling as ModernBERT-base's config has
    /// it) and ModernBertForTokenClassification (5 labels, with the head's and the norms' biases).
    /// </summary>
    public const string ModernBert = "modernbert", ModernBertClassifier = "modernbert-classifier", ModernBertTagger = "modernbert-tagger";

    /// <summary>
    /// ELECTRA in small: electra/ as google/electra-small-discriminator's config has it (ElectraForPreTraining,
    /// embedding_size 20 into hidden 36 through embeddings_project), electra-classifier/ (ElectraForSequenceClassification,
    /// 3 labels, E 22 ≠ H 34), electra-reranker/ (cross-encoder/ms-marco-electra-base-shaped: one label, E = H = 30, so no
    /// projection) and electra-tagger/ (ElectraForTokenClassification, 5 labels, the classifier's sizes).
    /// </summary>
    public const string Electra = "electra", ElectraClassifier = "electra-classifier", ElectraReranker = "electra-reranker", ElectraTagger = "electra-tagger";

    /// <summary>The full path of <c>Configs/<paramref name="name"/>/config.json</c>.</summary>
    public static string ConfigPath(string name) => Path.Combine(ConfigsFolder(), name, "config.json");

    // The compiler records this file's own path: the configs are read from the source tree, not copied to the output.
    private static string ConfigsFolder([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "Configs");
}
