using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// The config.json files of published models that users bring (their values as the hub publishes them, written out here
/// key by key): each compiles with no diagnostic into the family, sizes and head it describes. The fixture configs of the
/// other tests are small; these check that the real ones' extra keys, label maps and sizes are read as intended.
/// </summary>
public class PublishedConfigTests
{
    private static GeneratorHarness.Result Run(string folder, string json, string attribute) =>
        RunClean([($"/repo/models/{folder}/config.json", json)], Model($"Config = \"models/{folder}/config.json\"{attribute}"));

    private static void Sizes(string source, int dModel, int layers, int heads, string family)
    {
        Assert.Contains($"public const int DModel = {dModel};", source);
        Assert.Contains($"public const int Layers = {layers};", source);
        Assert.Contains($"public const int Heads = {heads};", source);
        Assert.Contains($"Family = global::TransformerGen.CheckpointFamily.{family},", source);
    }

    [Fact]
    public void Qwen3_0_6B()  // Qwen3-Embedding-0.6B publishes the same architecture and sizes
    {
        const string json = """
            {
              "architectures": ["Qwen3ForCausalLM"],
              "attention_bias": false,
              "attention_dropout": 0.0,
              "bos_token_id": 151643,
              "eos_token_id": 151645,
              "head_dim": 128,
              "hidden_act": "silu",
              "hidden_size": 1024,
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "max_position_embeddings": 40960,
              "max_window_layers": 28,
              "model_type": "qwen3",
              "num_attention_heads": 16,
              "num_hidden_layers": 28,
              "num_key_value_heads": 8,
              "rms_norm_eps": 1e-06,
              "rope_scaling": null,
              "rope_theta": 1000000,
              "sliding_window": null,
              "tie_word_embeddings": true,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.51.0",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": 151936
            }
            """;
        string source = Run("Qwen3-0.6B", json, ", SeqLen = 512, WeightType = WeightType.Int8").GeneratedSource;
        Sizes(source, 1024, 28, 16, "Qwen3");
        Assert.Contains("public const int KvHeads = 8;", source);
        Assert.Contains("new(\"model.layers.27.self_attn.q_proj.weight\", new[] { 2048, 1024 }", source); // 16 heads of 128
        Assert.Contains("new(\"model.layers.27.self_attn.k_norm.weight\", new[] { 128 }", source);
        Assert.DoesNotContain("\"lm_head.weight\"", source);                                              // tied
        Assert.Contains("protected override global::System.ReadOnlySpan<float> InferenceLastHiddenStates(int sequences)", source); // Embed
    }

    [Fact]
    public void Bge_small_en_v1_5_pools_the_cls_token()
    {
        const string json = """
            {
              "_name_or_path": "/root/.cache/torch/sentence_transformers/BAAI_bge-small-en/",
              "architectures": ["BertModel"],
              "attention_probs_dropout_prob": 0.1,
              "classifier_dropout": null,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 384,
              "id2label": {"0": "LABEL_0"},
              "initializer_range": 0.02,
              "intermediate_size": 1536,
              "label2id": {"LABEL_0": 0},
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512,
              "model_type": "bert",
              "num_attention_heads": 12,
              "num_hidden_layers": 12,
              "pad_token_id": 0,
              "position_embedding_type": "absolute",
              "torch_dtype": "float32",
              "transformers_version": "4.30.0",
              "type_vocab_size": 2,
              "use_cache": true,
              "vocab_size": 30522
            }
            """;
        string source = Run("bge-small-en-v1.5", json, ", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding, Pooling = Pooling.FirstToken").GeneratedSource;
        Sizes(source, 384, 12, 12, "Bert");
        Assert.Contains("Pooling = global::TransformerGen.Pooling.FirstToken,", source);
        Assert.DoesNotContain("classifier", source); // a label map beside BertModel is not a classifier
    }

    [Fact]
    public void Ms_marco_MiniLM_L_6_v2_cross_encoder_scores_pairs()
    {
        const string json = """
            {
              "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
              "architectures": ["BertForSequenceClassification"],
              "attention_probs_dropout_prob": 0.1,
              "gradient_checkpointing": false,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 384,
              "id2label": {"0": "LABEL_0"},
              "initializer_range": 0.02,
              "intermediate_size": 1536,
              "label2id": {"LABEL_0": 0},
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512,
              "model_type": "bert",
              "num_attention_heads": 12,
              "num_hidden_layers": 6,
              "pad_token_id": 0,
              "position_embedding_type": "absolute",
              "sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity",
              "transformers_version": "4.6.1",
              "type_vocab_size": 2,
              "use_cache": true,
              "vocab_size": 30522
            }
            """;
        string source = Run("ms-marco-MiniLM-L-6-v2", json, ", SeqLen = 512, Batch = 8").GeneratedSource;
        Sizes(source, 384, 6, 12, "Bert");
        Assert.Contains("public const int Classes = 1;", source);
        Assert.Contains("SeededOutput = true,", source);
        Assert.Contains("TokenTypes = 2,", source);
    }

    // answerdotai/ModernBERT-base's config.json (ModernBertForMaskedLM, transformers 4.48's keys); gte-modernbert-base keeps
    // it with architectures ModernBertModel, the reranker gte-reranker-modernbert-base as a one-label sequence classifier.
    private const string ModernBertBase = """
        {
          "architectures": ["ModernBertForMaskedLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 50281,
          "classifier_activation": "gelu",
          "classifier_bias": false,
          "classifier_dropout": 0.0,
          "classifier_pooling": "mean",
          "cls_token_id": 50281,
          "decoder_bias": true,
          "deterministic_flash_attn": false,
          "embedding_dropout": 0.0,
          "eos_token_id": 50282,
          "global_attn_every_n_layers": 3,
          "global_rope_theta": 160000.0,
          "gradient_checkpointing": false,
          "hidden_activation": "gelu",
          "hidden_size": 768,
          "initializer_cutoff_factor": 2.0,
          "initializer_range": 0.02,
          "intermediate_size": 1152,
          "layer_norm_eps": 1e-05,
          "local_attention": 128,
          "local_rope_theta": 10000.0,
          "max_position_embeddings": 8192,
          "mlp_bias": false,
          "mlp_dropout": 0.0,
          "model_type": "modernbert",
          "norm_bias": false,
          "norm_eps": 1e-05,
          "num_attention_heads": 12,
          "num_hidden_layers": 22,
          "pad_token_id": 50283,
          "position_embedding_type": "absolute",
          "sep_token_id": 50282,
          "tie_word_embeddings": true,
          "torch_dtype": "float32",
          "transformers_version": "4.47.0.dev0",
          "vocab_size": 50368
        }
        """;

    [Fact]
    public void ModernBert_base_embeds_and_its_reranker_scores()
    {
        string source = Run("ModernBERT-base", ModernBertBase, ", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding").GeneratedSource;
        Sizes(source, 768, 22, 12, "ModernBert");
        Assert.Contains("public const int DFF = 1152;", source);
        Assert.Contains("PadToken = 50283,", source);
        // 22 layers: 0, 3, …, 21 global (8), the other 14 local with 64 positions either side.
        Assert.Contains("on 8 global layers, base 10000 on 14 local layers that see 64 positions either side", source);

        string reranker = ModernBertBase.Replace("\"ModernBertForMaskedLM\"", "\"ModernBertForSequenceClassification\"")
            .Replace("\"attention_bias\": false,", "\"attention_bias\": false,\n  \"id2label\": {\"0\": \"LABEL_0\"},\n  \"label2id\": {\"LABEL_0\": 0},");
        string scores = Run("gte-reranker-modernbert-base", reranker, ", SeqLen = 512, Batch = 8").GeneratedSource;
        Assert.Contains("public const int Classes = 1;", scores);
        Assert.Contains("SeededOutput = true,", scores);
        Assert.Contains("new(\"head.dense.weight\"", scores);
    }

    [Fact]
    public void Distilbert_sst2_and_bert_base_NER_classify()
    {
        const string sst2 = """
            {
              "activation": "gelu",
              "architectures": ["DistilBertForSequenceClassification"],
              "attention_dropout": 0.1,
              "dim": 768,
              "dropout": 0.1,
              "finetuning_task": "sst-2",
              "hidden_dim": 3072,
              "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
              "initializer_range": 0.02,
              "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
              "max_position_embeddings": 512,
              "model_type": "distilbert",
              "n_heads": 12,
              "n_layers": 6,
              "output_past": true,
              "pad_token_id": 0,
              "qa_dropout": 0.1,
              "seq_classif_dropout": 0.2,
              "sinusoidal_pos_embds": false,
              "tie_weights_": true,
              "vocab_size": 30522
            }
            """;
        string source = Run("distilbert-sst-2", sst2, ", SeqLen = 128, Batch = 4").GeneratedSource;
        Sizes(source, 768, 6, 12, "DistilBert");
        Assert.Contains("public const int Classes = 2;", source);
        Assert.Contains("new(\"pre_classifier.weight\", new[] { 768, 768 }", source);

        const string ner = """
            {
              "_num_labels": 9,
              "architectures": ["BertForTokenClassification"],
              "attention_probs_dropout_prob": 0.1,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 768,
              "id2label": {"0": "O", "1": "B-MISC", "2": "I-MISC", "3": "B-PER", "4": "I-PER", "5": "B-ORG", "6": "I-ORG", "7": "B-LOC", "8": "I-LOC"},
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "label2id": {"B-LOC": 7, "B-MISC": 1, "B-ORG": 5, "B-PER": 3, "I-LOC": 8, "I-MISC": 2, "I-ORG": 6, "I-PER": 4, "O": 0},
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512,
              "model_type": "bert",
              "num_attention_heads": 12,
              "num_hidden_layers": 12,
              "output_past": true,
              "pad_token_id": 0,
              "type_vocab_size": 2,
              "vocab_size": 28996
            }
            """;
        source = Run("bert-base-NER", ner, ", SeqLen = 128, Head = EncoderHead.Tagging").GeneratedSource;
        Sizes(source, 768, 12, 12, "Bert");
        Assert.Contains("public const int Classes = 9;", source);
        Assert.Contains("new(\"classifier.weight\", new[] { 9, 768 }", source);
    }

    [Fact]
    public void Xlm_roberta_base_counts_positions_after_its_padding_id()
    {
        const string json = """
            {
              "architectures": ["XLMRobertaForMaskedLM"],
              "attention_probs_dropout_prob": 0.1,
              "bos_token_id": 0,
              "eos_token_id": 2,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 768,
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "layer_norm_eps": 1e-05,
              "max_position_embeddings": 514,
              "model_type": "xlm-roberta",
              "num_attention_heads": 12,
              "num_hidden_layers": 12,
              "output_past": true,
              "pad_token_id": 1,
              "position_embedding_type": "absolute",
              "transformers_version": "4.17.0.dev0",
              "type_vocab_size": 1,
              "use_cache": true,
              "vocab_size": 250002
            }
            """;
        string source = Run("xlm-roberta-base", json, ", SeqLen = 512, Head = EncoderHead.SentenceEmbedding").GeneratedSource;
        Sizes(source, 768, 12, 12, "Roberta");
        Assert.Contains("PadToken = 1,", source);
        Assert.Contains("new(\"embeddings.position_embeddings.weight\", new[] { 514, 768 }", source);
    }

    [Fact]
    public void T5_small_flan_t5_small_and_mt5_small()
    {
        // t5-small (v1.0): relu, the head tied to "shared" (T5Config's default, the key absent).
        const string t5Small = """
            {
              "architectures": ["T5ForConditionalGeneration"],
              "d_ff": 2048,
              "d_kv": 64,
              "d_model": 512,
              "decoder_start_token_id": 0,
              "dropout_rate": 0.1,
              "eos_token_id": 1,
              "initializer_factor": 1.0,
              "is_encoder_decoder": true,
              "layer_norm_epsilon": 1e-06,
              "model_type": "t5",
              "n_positions": 512,
              "num_heads": 8,
              "num_layers": 6,
              "output_past": true,
              "pad_token_id": 0,
              "relative_attention_num_buckets": 32,
              "vocab_size": 32128
            }
            """;
        string source = Run("t5-small", t5Small, ", SeqLen = 512, TargetSeqLen = 128").GeneratedSource;
        Sizes(source, 512, 6, 8, "T5");
        Assert.Contains("public const int DFF = 2048;", source);
        Assert.Contains("Activations.ReluForward(", source);
        Assert.Contains("Scaling.Forward(", source);
        Assert.DoesNotContain("lm_head.weight", source);
        Assert.Contains("bidirectional: true, 32, 128", source); // relative_attention_max_distance's default

        // google/flan-t5-small (v1.1): 6 heads of 64 on 512, gated-gelu, 8 + 8 layers, untied.
        const string flanT5Small = """
            {
              "architectures": ["T5ForConditionalGeneration"],
              "d_ff": 1024,
              "d_kv": 64,
              "d_model": 512,
              "decoder_start_token_id": 0,
              "dense_act_fn": "gelu_new",
              "dropout_rate": 0.1,
              "eos_token_id": 1,
              "feed_forward_proj": "gated-gelu",
              "initializer_factor": 1.0,
              "is_encoder_decoder": true,
              "is_gated_act": true,
              "layer_norm_epsilon": 1e-06,
              "model_type": "t5",
              "n_positions": 512,
              "num_decoder_layers": 8,
              "num_heads": 6,
              "num_layers": 8,
              "output_past": true,
              "pad_token_id": 0,
              "relative_attention_max_distance": 128,
              "relative_attention_num_buckets": 32,
              "tie_word_embeddings": false,
              "torch_dtype": "float32",
              "transformers_version": "4.23.1",
              "use_cache": true,
              "vocab_size": 32128
            }
            """;
        source = Run("flan-t5-small", flanT5Small, ", SeqLen = 512, TargetSeqLen = 128").GeneratedSource;
        Sizes(source, 512, 8, 6, "T5");
        Assert.Contains("public const int HeadDim = 64;", source);
        Assert.Contains("Activations.GeGluTanhForward(", source);
        Assert.Contains("new(\"lm_head.weight\", new[] { 32128, 512 }", source);

        // google/mt5-small: flan-t5-small's shape with a 250,112-row table and model_type mt5.
        string mt5Small = flanT5Small.Replace("\"model_type\": \"t5\"", "\"model_type\": \"mt5\"").Replace("32128", "250112");
        source = Run("mt5-small", mt5Small, ", SeqLen = 512, TargetSeqLen = 128").GeneratedSource;
        Sizes(source, 512, 8, 6, "T5");
        Assert.Contains("new(\"shared.weight\", new[] { 250112, 512 }", source);
    }

    /// <summary>meta-llama/Llama-3.2-1B-Instruct's config.json (Llama-3.2-3B-Instruct's differs in four sizes: <see cref="SegmentTests"/>).</summary>
    internal const string Llama_3_2_1B_Instruct = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 128000,
          "eos_token_id": [128001, 128008, 128009],
          "head_dim": 64,
          "hidden_act": "silu",
          "hidden_size": 2048,
          "initializer_range": 0.02,
          "intermediate_size": 8192,
          "max_position_embeddings": 131072,
          "mlp_bias": false,
          "model_type": "llama",
          "num_attention_heads": 32,
          "num_hidden_layers": 16,
          "num_key_value_heads": 8,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3"
          },
          "rope_theta": 500000.0,
          "tie_word_embeddings": true,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.45.0.dev0",
          "use_cache": true,
          "vocab_size": 128256
        }
        """;

    [Fact]
    public void Llama_3_2_1B_Instruct_rotates_with_llama3_scaling()  // Llama-3.1-8B differs in sizes and factor 8
    {
        const string json = Llama_3_2_1B_Instruct;
        string source = Run("Llama-3.2-1B-Instruct", json, ", SeqLen = 1024, WeightType = WeightType.Int8").GeneratedSource;
        Sizes(source, 2048, 16, 32, "Llama");
        Assert.Contains("public const int KvHeads = 8;", source);
        Assert.Contains(", 500000f, global::TransformerGen.Kernels.RotaryScaling.Llama3(factor: 32f, lowFrequencyFactor: 1f, highFrequencyFactor: 4f, originalPositions: 8192));", source);
        // Its eos_token_id list: the first is EosToken, and every one ends a generation.
        Assert.Contains("EosToken = 128001,", source);
        Assert.Contains("EndTokens = new[] { 128001, 128008, 128009 },", source);
        Assert.DoesNotContain("\"lm_head.weight\"", source); // tied
    }

    [Fact]
    public void Qwen2_5_1_5B_Instruct_with_the_yarn_setting_its_model_card_gives_for_long_texts()
    {
        const string json = """
            {
              "architectures": ["Qwen2ForCausalLM"],
              "attention_dropout": 0.0,
              "bos_token_id": 151643,
              "eos_token_id": 151645,
              "hidden_act": "silu",
              "hidden_size": 1536,
              "initializer_range": 0.02,
              "intermediate_size": 8960,
              "max_position_embeddings": 32768,
              "max_window_layers": 21,
              "model_type": "qwen2",
              "num_attention_heads": 12,
              "num_hidden_layers": 28,
              "num_key_value_heads": 2,
              "rms_norm_eps": 1e-06,
              "rope_theta": 1000000.0,
              "sliding_window": 32768,
              "tie_word_embeddings": true,
              "torch_dtype": "bfloat16",
              "transformers_version": "4.43.1",
              "use_cache": true,
              "use_sliding_window": false,
              "vocab_size": 151936,
              "rope_scaling": {
                "factor": 4.0,
                "original_max_position_embeddings": 32768,
                "type": "yarn"
              }
            }
            """;
        string source = Run("Qwen2.5-1.5B-Instruct", json, ", SeqLen = 256, WeightType = WeightType.Int8").GeneratedSource;
        Sizes(source, 1536, 28, 12, "Qwen2");
        Assert.Contains("public const int KvHeads = 2;", source);
        // YaRN's default attention factor 0.1·ln 4 + 1 = 1.1386294.
        Assert.Contains(", 1000000f, global::TransformerGen.Kernels.RotaryScaling.Yarn(factor: 4f, originalPositions: 32768, betaFast: 32f, betaSlow: 1f, truncate: true, attentionFactor: 1.1386294f));", source);
    }

    [Fact]
    public void Electra_small_discriminator_and_the_ms_marco_electra_base_cross_encoder()
    {
        const string small = """
            {
              "architectures": ["ElectraForPreTraining"],
              "attention_probs_dropout_prob": 0.1,
              "embedding_size": 128,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 256,
              "initializer_range": 0.02,
              "intermediate_size": 1024,
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512,
              "model_type": "electra",
              "num_attention_heads": 4,
              "num_hidden_layers": 12,
              "pad_token_id": 0,
              "type_vocab_size": 2,
              "vocab_size": 30522
            }
            """;
        string source = Run("electra-small-discriminator", small, ", SeqLen = 128, Head = EncoderHead.SentenceEmbedding").GeneratedSource;
        Sizes(source, 256, 12, 4, "Electra");
        Assert.Contains("new(\"embeddings_project.weight\", new[] { 256, 128 }", source);

        const string crossEncoder = """
            {
              "architectures": ["ElectraForSequenceClassification"],
              "attention_probs_dropout_prob": 0.1,
              "embedding_size": 768,
              "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1,
              "hidden_size": 768,
              "id2label": {"0": "LABEL_0"},
              "initializer_range": 0.02,
              "intermediate_size": 3072,
              "label2id": {"LABEL_0": 0},
              "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512,
              "model_type": "electra",
              "num_attention_heads": 12,
              "num_hidden_layers": 12,
              "pad_token_id": 0,
              "position_embedding_type": "absolute",
              "summary_activation": "gelu",
              "summary_last_dropout": 0.1,
              "summary_type": "first",
              "summary_use_proj": true,
              "type_vocab_size": 2,
              "vocab_size": 30522
            }
            """;
        source = Run("ms-marco-electra-base", crossEncoder, ", SeqLen = 512").GeneratedSource;
        Sizes(source, 768, 12, 12, "Electra");
        Assert.DoesNotContain("embeddings_project", source);
        Assert.Contains("new(\"classifier.out_proj.weight\", new[] { 1, 768 }", source);
        Assert.Contains("a linear head gives a score", source);
    }
}
