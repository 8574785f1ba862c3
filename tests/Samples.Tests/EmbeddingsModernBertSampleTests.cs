using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmbeddingsSample;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Embeddings sample's gte-modernbert-base path: a tiny ModernBERT folder (<see cref="TinyModernBert"/>: tokenizer.json
/// alone, byte-level BPE with ModernBERT's ids, CLS pooling from its modules) picked by its model_type among the sample's
/// MiniLM and the tiny model, its texts between [CLS] and [SEP], and every printed cosine checked against the model's own
/// <c>Predict</c> on each text alone; and the real gte-modernbert-base picked, checked and told what to download from its
/// config.json alone.
/// </summary>
public sealed class EmbeddingsModernBertSampleTests(TinyModernBert fixture, ITestOutputHelper log) : IClassFixture<TinyModernBert>
{
    [Fact]
    public void The_similarities_are_cosines_of_the_models_own_embeddings_of_the_sentences()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        log.WriteLine(output);
        Assert.Contains("model: tests/tiny-modernbert from " + fixture.Path + ": ModernBERT (local and global rotary layers, CLS pooling), 4 layers, 18 wide; compiled for 8 sentences of 32 tokens a batch", output);
        Assert.Matches(@"loaded in \d+\.\d\d s \(tokenizer \d+\.\d\d s, 50,368 ids; weights", output);
        Assert.DoesNotContain("task prefixes", output);

        EmbeddingsOutput.AssertMatrix(output, [.. EmbeddingsApp.Sentences.Select(Embed)]);
        // The [CLS] states differ from text to text (TinyModernBertWeights): the comparison is not of equal vectors.
        float[][] matrix = EmbeddingsOutput.Matrix(output);
        Assert.True(matrix.SelectMany((row, i) => row.Where((_, j) => j != i)).Min() < 0.95f, "every pair of sentences has a cosine of 0.95 or more");
        Assert.Matches(@"embedded 6 texts \(\d+ tokens, 1 batch of up to 8 at their own lengths\)", output);
    }

    [Fact]
    public void Search_scores_are_cosines_of_the_queries_and_sentences_best_first()
    {
        (int exit, string output, string error) = RunTiny();
        Assert.True(exit == 0, error);
        Dictionary<string, List<(float Score, string Sentence)>> results = EmbeddingsOutput.AssertSearch(output, Embed, Embed);

        // Without prefixes a listed sentence asked as a query is its own copy.
        string listed = MiniLmFolder.SearchList[5];
        float self = results[listed].Single(hit => hit.Sentence == listed).Score;
        Assert.True(self >= 0.9999f, $"the listed sentence scored {self} against itself");
    }

    [Fact]
    public void The_folders_tokenizer_puts_texts_between_cls_and_sep_with_modernberts_ids_and_the_window_bites()
    {
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(fixture.Path);
        TinyModernBertTokenizer vocabulary = fixture.Tokenizer;
        // Worked out from the vocabulary: each word with the space before it is one token, the full stop a byte.
        string[] pieces = ["A", " man", " is", " riding", " a", " horse", "."];
        Assert.Equal([TinyModernBertTokenizer.Cls, .. pieces.Select(vocabulary.Id), TinyModernBertTokenizer.Sep], tokenizer.Encode("A man is riding a horse."));
        Assert.Equal(15, vocabulary.Id(".")); // as in ModernBERT's vocabulary: the printable bytes from "!" = 2
        // Only letters were merged: a number is spelled out in bytes, the space before it one of them.
        Assert.Equal([vocabulary.Id(" "), vocabulary.Id("4"), vocabulary.Id("2")], tokenizer.Encode(" 42", addSpecialTokens: false));

        Assert.Equal((TinyModernBertTokenizer.Pad, TinyModernBertModel.Vocab), (tokenizer.PadId, tokenizer.VocabSize));
        Assert.Equal(50368, TinyModernBertModel.Vocab);
        // Every text fits SeqLen, and most are longer than the local layers' window (local_attention 4: 2 either side).
        int[] lengths = [.. MiniLmFolder.SampleTexts().Select(text => tokenizer.Encode(text).Count)];
        Assert.All(lengths, length => Assert.InRange(length, 3, TinyModernBertModel.SeqLen));
        Assert.True(lengths.Count(length => length > 5) > lengths.Length / 2, string.Join(", ", lengths));
    }

    [Fact]
    public void The_weights_are_saved_under_modernberts_names()
    {
        string[] names = TensorNames(fixture.Folder.File("model.safetensors"));
        foreach (string expected in new[] { "embeddings.tok_embeddings.weight", "embeddings.norm.weight", "layers.0.attn.Wqkv.weight", "layers.0.attn.Wo.weight",
                     "layers.1.attn_norm.weight", "layers.3.mlp_norm.weight", "layers.3.mlp.Wi.weight", "layers.3.mlp.Wo.weight", "final_norm.weight" })
        {
            Assert.Contains(names, name => name == expected || name == "model." + expected);
        }

        // Layer 0 has no norm before its attention, and no LayerNorm or projection has a bias.
        Assert.DoesNotContain(names, name => name.EndsWith("layers.0.attn_norm.weight", StringComparison.Ordinal));
        Assert.DoesNotContain(names, name => name.EndsWith(".bias", StringComparison.Ordinal));
    }

    [Fact]
    public void A_folder_of_gte_modernbert_bases_config_alone_is_told_its_own_files()
    {
        using var gte = new TempFolder();
        gte.Write("config.json", EmbeddingModelSpec.GteModernBertBase.CompiledConfig);
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", gte.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{gte.Path}' lacks model.safetensors, tokenizer.json, tokenizer_config.json, special_tokens_map.json, modules.json, 1_Pooling/config.json.", error);
        Assert.Contains("huggingface-cli download Alibaba-NLP/gte-modernbert-base config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json modules.json 1_Pooling/config.json --local-dir models/gte-modernbert-base", error);
        Assert.Contains("https://huggingface.co/Alibaba-NLP/gte-modernbert-base/resolve/main/1_Pooling/config.json", error);
        Assert.Contains("dotnet run -c Release --project samples/Embeddings -- --model models/gte-modernbert-base", error);
        Assert.DoesNotContain("all-MiniLM", error);
    }

    [Fact]
    public void A_modernbert_folder_of_other_settings_is_refused_naming_the_keys()
    {
        using var other = new TempFolder();
        JsonObject config = Compiled();
        config["local_attention"] = 256;
        config["global_rope_theta"] = 10000.0;
        config["norm_bias"] = true;
        other.Write("config.json", config.ToJsonString());
        (int exit, string output, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (Alibaba-NLP/gte-modernbert-base)", error);
        Assert.Contains("local_attention: 256 in the folder, 128 compiled", error);
        Assert.Contains("global_rope_theta: 10000 in the folder, 160000 compiled", error);
        Assert.Contains("norm_bias: true in the folder, false compiled", error);
        Assert.DoesNotContain("hidden_size", error);
        Assert.DoesNotContain("layer_types", error);
        Assert.Contains("samples/Embeddings/models/gte-modernbert-base/config.json", error);
    }

    [Fact]
    public void A_config_as_transformers_5_writes_it_is_compared_by_the_rotary_bases_and_layer_kinds_it_stands_for()
    {
        // transformers 5 keeps each layer kind's base under rope_parameters and lists the kinds in layer_types.
        JsonObject Written(double slidingBase, int globalEvery)
        {
            JsonObject config = Compiled();
            config.Remove("global_rope_theta");
            config.Remove("local_rope_theta");
            config["rope_parameters"] = new JsonObject
            {
                ["full_attention"] = new JsonObject { ["rope_theta"] = 160000.0, ["rope_type"] = "default" },
                ["sliding_attention"] = new JsonObject { ["rope_theta"] = slidingBase, ["rope_type"] = "default" },
            };
            config["layer_types"] = new JsonArray([.. Enumerable.Range(0, 22).Select(i => (JsonNode)(i % globalEvery == 0 ? "full_attention" : "sliding_attention"))]);
            return config;
        }

        using var same = new TempFolder();
        same.Write("config.json", Written(10000, 3).ToJsonString());
        (int exit, _, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", same.Path);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit); // accepted: only the other files are missing
        Assert.StartsWith($"The model folder '{same.Path}' lacks model.safetensors,", error);

        using var other = new TempFolder();
        other.Write("config.json", Written(20000, 2).ToJsonString());
        (exit, _, error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All, "--model", other.Path);
        Assert.Equal(EmbeddingsApp.ExitWrongModel, exit);
        Assert.Contains("local_rope_theta: 20000 in the folder, 10000 compiled", error);
        Assert.Contains("layer_types: [full_attention,sliding_attention,full_attention,", error);
        Assert.DoesNotContain("global_rope_theta", error);
    }

    [Fact]
    public void Without_a_folder_names_gte_modernbert_bases_download_too()
    {
        (int exit, _, string error) = EmbeddingsOutput.Run(EmbeddingModelSpec.All);
        Assert.Equal(EmbeddingsApp.ExitMissingModel, exit);
        Assert.Contains("Or, for a folder whose config.json has model_type modernbert:", error);
        Assert.Contains("huggingface-cli download Alibaba-NLP/gte-modernbert-base config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json modules.json 1_Pooling/config.json --local-dir models/gte-modernbert-base", error);
    }

    [Fact]
    public void The_embedded_config_is_the_one_gte_modernbert_base_was_compiled_from()
    {
        JsonObject root = Compiled();
        Assert.Equal("modernbert", (string?)root["model_type"]);
        Assert.Null(EmbeddingModelSpec.GteModernBertBase.Prefixes); // the model card embeds queries and documents as they are
        Assert.Equal((50368, 768, 22, 12, 1152), (GteModernBertBase.Vocab, GteModernBertBase.DModel, GteModernBertBase.Layers, GteModernBertBase.Heads, GteModernBertBase.DFF));
        Assert.Equal((64, 768, 512, 8), (GteModernBertBase.HeadDim, GteModernBertBase.EmbeddingWidth, GteModernBertBase.SeqLen, GteModernBertBase.Batch));
        Assert.True(GteModernBertBase.SeqLen <= (int)root["max_position_embeddings"]!);
        // ModernBERT-base's 149 million: the 50368 × 768 table and its norm, 22 layers of Wqkv 768 × 2304, Wo 768 × 768, Wi
        // 768 × 2304 and the feed-forward's Wo 1152 × 768 with two norms each (layer 0 without the one before its
        // attention), and the final norm; no biases.
        const long Layer = 768L * 2304 + 768L * 768 + 768L * 2304 + 1152L * 768 + 2 * 768;
        Assert.Equal(50368L * 768 + 768 + 22 * Layer - 768 + 768, GteModernBertBase.ParameterCount);
        Assert.Equal(149_014_272, GteModernBertBase.ParameterCount);
    }

    private (int Exit, string Output, string Error) RunTiny() => EmbeddingsOutput.RunTiny(fixture.Folder, TinyModernBert.Spec);

    private static JsonObject Compiled() => JsonNode.Parse(EmbeddingModelSpec.GteModernBertBase.CompiledConfig)!.AsObject();

    /// <summary>One text alone through the tiny model's own Predict, one row: [CLS] text [SEP], the two ids ModernBERT's.</summary>
    private float[] Embed(string text)
    {
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(fixture.Path);
        List<int> ids = [TinyModernBertTokenizer.Cls, .. tokenizer.Encode(text, addSpecialTokens: false), TinyModernBertTokenizer.Sep];
        Assert.True(ids.Count <= TinyModernBertModel.SeqLen, text);
        Assert.DoesNotContain(TinyModernBertTokenizer.Pad, ids);
        return TinyModernBertModel.ForInference(fixture.Path).Predict(ids.ToArray(), [ids.Count]).ToArray();
    }

    /// <summary>The tensor names of a safetensors file's header (its first 8 bytes give the header's length).</summary>
    private static string[] TensorNames(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        int length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        using JsonDocument header = JsonDocument.Parse(file.AsMemory(8, length));
        return [.. header.RootElement.EnumerateObject().Select(entry => entry.Name).Where(name => name != "__metadata__")];
    }
}
