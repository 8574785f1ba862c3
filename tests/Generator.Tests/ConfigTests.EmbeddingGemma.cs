using System;
using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// EmbeddingGemma (a bidirectional gemma3_text under sentence-transformers) and the sentence-transformers modules beside a
/// config: the pooling of <c>1_Pooling/config.json</c>, the Dense layers of <c>N_Dense/config.json</c> in modules.json's
/// order, and located refusals of what the head cannot compute.
/// </summary>
public partial class ConfigTests
{
    /// <summary>embeddinggemma-300m's config.json at odd sizes: 3 heads of 10 on 1 key/value head, width 20, 3 layers (2 sliding).</summary>
    private const string EmbeddingGemma = """
        {
          "architectures": ["Gemma3TextModel"],
          "attention_bias": false,
          "bos_token_id": 2,
          "eos_token_id": 1,
          "head_dim": 10,
          "hidden_activation": "gelu_pytorch_tanh",
          "hidden_size": 20,
          "intermediate_size": 37,
          "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
          "max_position_embeddings": 64,
          "model_type": "gemma3_text",
          "num_attention_heads": 3,
          "num_hidden_layers": 3,
          "num_key_value_heads": 1,
          "pad_token_id": 0,
          "query_pre_attn_scalar": 12,
          "rms_norm_eps": 1e-06,
          "rope_local_base_freq": 10000.0,
          "rope_theta": 1000000.0,
          "sliding_window": 6,
          "use_bidirectional_attention": true,
          "vocab_size": 45
        }
        """;

    private const string Modules = """
        [
          {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
          {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
          {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
          {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},
          {"idx": 4, "name": "4", "path": "4_Normalize", "type": "sentence_transformers.models.Normalize"}
        ]
        """;

    private static string Pooling(bool mean, bool cls) =>
        $$"""{"word_embedding_dimension": 20, "pooling_mode_cls_token": {{(cls ? "true" : "false")}}, "pooling_mode_mean_tokens": {{(mean ? "true" : "false")}}, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false, "pooling_mode_weightedmean_tokens": false, "pooling_mode_lasttoken": false, "include_prompt": true}""";

    private static string Dense(int inputs, int outputs, bool bias, string activation) =>
        $$"""{"in_features": {{inputs}}, "out_features": {{outputs}}, "bias": {{(bias ? "true" : "false")}}, "activation_function": "torch.nn.modules.{{activation}}"}""";

    /// <summary>The folder as sentence-transformers saves it: 20 → 33 (no bias, Identity) → 17 (bias, tanh).</summary>
    private static (string, string)[] SentenceTransformersFolder(string folder, string config, string? modules = null, string? pooling = null,
        string? dense2 = null, string? dense3 = null) =>
    [
        ($"/repo/models/{folder}/config.json", config),
        ($"/repo/models/{folder}/modules.json", modules ?? Modules),
        ($"/repo/models/{folder}/1_Pooling/config.json", pooling ?? Pooling(mean: true, cls: false)),
        ($"/repo/models/{folder}/2_Dense/config.json", dense2 ?? Dense(20, 33, bias: false, "linear.Identity")),
        ($"/repo/models/{folder}/3_Dense/config.json", dense3 ?? Dense(33, 17, bias: true, "activation.Tanh")),
    ];

    private static string Embedder(string folder, string more = "", int seqLen = 9) =>
        Declared(folder, ", Head = EncoderHead.SentenceEmbedding" + more, seqLen);

    [Fact]
    public void An_embeddinggemma_folder_compiles_to_a_bidirectional_gemma3_encoder_with_its_final_norm_mean_pooling_and_dense_layers()
    {
        Type m = Compile(SentenceTransformersFolder("embeddinggemma", EmbeddingGemma), Embedder("embeddinggemma"), out string source);
        Assert.Equal(20, Constant(m, "DModel"));
        Assert.Contains("Architecture = global::TransformerGen.Architecture.EncoderOnly,", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Gemma3,", source);
        Assert.Contains("Pooling = global::TransformerGen.Pooling.Mean,", source);
        Assert.Contains("new(\"model.norm.weight\"", source);
        Assert.Contains("new(\"2_Dense.linear.weight\", new[] { 33, 20 }, ", source);
        Assert.Contains("new(\"3_Dense.linear.weight\", new[] { 17, 33 }, ", source);
        Assert.Contains("new(\"3_Dense.linear.bias\", new[] { 17 }, ", source);
        Assert.DoesNotContain("2_Dense.linear.bias", source);
        Assert.DoesNotContain("lm_head", source);
        // sliding_window 6 in the file is transformers' 6 // 2 + 1 = 4: |i − j| < 4, the kernels' window 3 either side; no causal mask.
        Assert.Contains("keys within 3 positions either side", source);
        Assert.DoesNotContain("causal: true", source);
        Assert.Contains("causal: false, window: 3, kvHeads: 1", source);
        Assert.Contains("causal: false, window: 0, kvHeads: 1", source);
        Assert.Contains("sentence-transformers Dense layer 2_Dense (20 → 33, no bias)", source);
        Assert.Contains("sentence-transformers Dense layer 3_Dense (33 → 17, tanh)", source);
        Assert.Equal(17, Constant(m, "EmbeddingWidth"));
    }

    [Fact]
    public void A_config_named_through_dot_dot_finds_the_modules_the_build_adds_by_their_full_paths()
    {
        // A project's <TransformerConfig Include="../Other/models/…/config.json" /> keeps the "..", while the module files
        // come in by their full paths.
        (string, string)[] files = SentenceTransformersFolder("embeddinggemma", EmbeddingGemma)
            .Select(f => (f.Item1.EndsWith("/embeddinggemma/config.json", StringComparison.Ordinal) ? f.Item1.Replace("/repo/models/", "/repo/tests/./A/../../models/") : f.Item1, f.Item2))
            .ToArray();
        Assert.Contains(files, f => f.Item1.Contains("/../", StringComparison.Ordinal));
        Type m = Compile(files, Embedder("embeddinggemma"), out string source);
        Assert.Equal(17, Constant(m, "EmbeddingWidth"));
        Assert.Contains("new(\"3_Dense.linear.bias\"", source);
    }

    [Fact]
    public void A_cls_pooling_file_sets_the_pooling_and_a_declared_pooling_that_contradicts_it_is_TG0043()
    {
        string pooling = Pooling(mean: false, cls: true);
        Compile(SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, pooling: pooling), Embedder("embeddinggemma"), out string source);
        Assert.Contains("Pooling = global::TransformerGen.Pooling.FirstToken,", source);
        Diagnostic d = SingleError(SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, pooling: pooling),
            Embedder("embeddinggemma", ", Pooling = Pooling.Mean"), "TG0043", "Pooling = Pooling.Mean");
        Assert.Contains("1_Pooling/config.json's \"pooling_mode_cls_token\"", d.GetMessage());
    }

    [Fact]
    public void A_bert_folder_with_modules_and_no_dense_layer_compiles_as_before()
    {
        string modules = """
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
            """;
        (string, string)[] files = [("/repo/models/bert/config.json", Bert), ("/repo/models/bert/modules.json", modules), ("/repo/models/bert/1_Pooling/config.json", Pooling(mean: true, cls: false))];
        Type m = Compile(files, Declared("bert", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), out string source);
        Assert.Equal(Constant(m, "DModel"), Constant(m, "EmbeddingWidth"));
        Assert.DoesNotContain("Dense layer", source);
    }

    [Fact]
    public void A_folder_without_a_Normalize_module_gives_its_pooled_vectors_as_they_are()
    {
        // The "dot" retrieval models (msmarco-*-dot, multi-qa-*-dot): Transformer and Pooling, no Normalize.
        const string transformer = """{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}""";
        const string pooling = """{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}""";
        const string normalizer = """{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}""";
        static (string, string)[] Folder(bool normalize) =>
        [
            ("/repo/models/bert/config.json", Bert),
            ("/repo/models/bert/modules.json", "[" + transformer + ", " + pooling + (normalize ? ", " + normalizer : "") + "]"),
            ("/repo/models/bert/1_Pooling/config.json", Pooling(mean: true, cls: false)),
        ];
        string declaration = Declared("bert", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12);
        Type dot = Compile(Folder(normalize: false), declaration, out string dotSource);
        Type unit = Compile(Folder(normalize: true), declaration, out string unitSource);
        Assert.Contains("UnnormalizedEmbeddings = true,", dotSource);
        Assert.Contains("into a sentence embedding, not normalized (the folder's modules.json has no Normalize module)", dotSource);
        Assert.DoesNotContain("L2Normalize", dotSource);
        Assert.DoesNotContain("UnnormalizedEmbeddings", unitSource);
        Assert.Contains("L2Normalize.Forward(", unitSource);

        // The same seeded weights: each of the first model's rows, divided by its norm, is the second model's row.
        var a = (EncoderModel)Activator.CreateInstance(dot, 5UL)!;
        var b = (EncoderModel)Activator.CreateInstance(unit, 5UL)!;
        Assert.True(a.Layout.UnnormalizedEmbeddings);
        Assert.False(b.Layout.UnnormalizedEmbeddings);
        int[] tokens = [3, 9, 14, 2, 7, 11, 5, 1, 8], lengths = [5, 4];
        float[] raw = a.Predict(tokens, lengths).ToArray(), normalized = b.Predict(tokens, lengths).ToArray();
        int width = raw.Length / 2;
        for (int row = 0; row < 2; row++)
        {
            float[] r = raw.AsSpan(row * width, width).ToArray();
            double norm = Math.Sqrt(r.Sum(v => (double)v * v));
            Assert.True(Math.Abs(norm - 1) > 0.1, $"row {row}'s norm is {norm}: the test cannot tell normalized rows from raw ones");
            for (int i = 0; i < width; i++) Assert.Equal(normalized[row * width + i], r[i] / norm, 1e-6);
        }
    }

    [Theory]
    [InlineData("activation", "embeddinggemma/2_Dense/config.json: \"activation_function\": torch.nn.modules.activation.ReLU cannot be compiled: a Dense layer's activation is compiled for Identity and Tanh")]
    [InlineData("in_features", "embeddinggemma/2_Dense/config.json: \"in_features\": 21 cannot be compiled: the module before it gives 20 features")]
    [InlineData("max pooling", "embeddinggemma/1_Pooling/config.json: \"pooling_mode_max_tokens\": true cannot be compiled")]
    [InlineData("module", "embeddinggemma/modules.json: \"type\": sentence_transformers.models.LayerNorm cannot be compiled")]
    [InlineData("no transformer", "embeddinggemma/modules.json: \"type\": (none) cannot be compiled: the pipeline must start with the Transformer module")]
    [InlineData("missing dense", "embeddinggemma/3_Dense/config.json: \"(file)\": not part of the build cannot be compiled")]
    public void TG0042_what_a_sentence_transformers_folder_asks_and_the_head_cannot_compute(string what, string expected)
    {
        (string, string)[] files = what switch
        {
            "activation" => SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, dense2: Dense(20, 33, false, "activation.ReLU")),
            "in_features" => SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, dense2: Dense(21, 33, false, "linear.Identity")),
            "max pooling" => SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, pooling: Pooling(true, false).Replace("\"pooling_mode_max_tokens\": false", "\"pooling_mode_max_tokens\": true")),
            "module" => SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, modules: Modules.Replace("4_Normalize\", \"type\": \"sentence_transformers.models.Normalize", "4_LayerNorm\", \"type\": \"sentence_transformers.models.LayerNorm")),
            "no transformer" => SentenceTransformersFolder("embeddinggemma", EmbeddingGemma, modules: Modules.Replace("{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},", "")),
            _ => SentenceTransformersFolder("embeddinggemma", EmbeddingGemma).Where(f => !f.Item1.Contains("3_Dense", StringComparison.Ordinal)).ToArray(),
        };
        Diagnostic d = SingleError(files, Embedder("embeddinggemma"), "TG0042", ConfigArgument("embeddinggemma"));
        Assert.StartsWith(expected, d.GetMessage());
    }

    [Fact]
    public void TG0042_a_bidirectional_gemma3_compiles_only_as_a_sentence_embedder()
    {
        string message = Unsupported("gemma3", Set(Gemma3, "use_bidirectional_attention", "true"));
        Assert.StartsWith("gemma3/config.json: \"use_bidirectional_attention\": true cannot be compiled: a bidirectional Gemma 3 (EmbeddingGemma) compiles as a sentence embedder only", message);
    }
}
