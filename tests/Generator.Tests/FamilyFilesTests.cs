using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Built-in weights (<c>Weights = …</c>) of every family the reference tests have a config for: a file that holds the
/// model's own parameter names and shapes (what <c>TransformerModel.Save</c> writes) compiles with no diagnostic, and
/// so does one under the family's base-model prefix where its Hugging Face files may carry one; a missing tensor is
/// still named. GPT-2's files, whose Conv1D weights are stored transposed, are FamilyWeightsTests'.
/// </summary>
public partial class FamilyFilesTests
{
    private const string HeaderPath = "/obj/transformergen/family.safetensors.header.json";

    /// <summary>Config folder, the attribute's other arguments, and the prefix its Hugging Face files may put on the base model's names ("" for none).</summary>
    public static TheoryData<string, string, string> Families => new()
    {
        { "bert", "SeqLen = 8, Head = EncoderHead.SentenceEmbedding", "bert." },
        { "bert-classifier", "SeqLen = 8", "bert." },
        { "bert-tagger", "SeqLen = 8, Head = EncoderHead.Tagging", "bert." },
        { "bert-cross-encoder", "SeqLen = 8", "bert." },
        { "roberta", "SeqLen = 8, Head = EncoderHead.SentenceEmbedding", "roberta." },
        { "roberta-classifier", "SeqLen = 8", "roberta." },
        { "distilbert", "SeqLen = 8, Head = EncoderHead.SentenceEmbedding", "distilbert." },
        { "distilbert-classifier", "SeqLen = 8", "distilbert." },
        { "nomic-bert", "SeqLen = 8, Head = EncoderHead.SentenceEmbedding", "bert." },
        { "mpnet", "SeqLen = 8, Head = EncoderHead.SentenceEmbedding", "mpnet." },
        { "llama-gqa", "SeqLen = 8", "" },
        { "llama-mqa", "SeqLen = 8", "" },
        { "qwen2", "SeqLen = 8", "" },
        { "qwen3", "SeqLen = 8", "" },
        { "phi3", "SeqLen = 8", "" },
        { "marian", "SeqLen = 8, TargetSeqLen = 6", "" },
        { "bart", "SeqLen = 8, TargetSeqLen = 6", "" },
        { "mbart", "SeqLen = 8, TargetSeqLen = 6", "" },
        { "m2m100", "SeqLen = 8, TargetSeqLen = 6", "" },
        { "t5", "SeqLen = 8, TargetSeqLen = 6", "" },
        { "flan-t5", "SeqLen = 8, TargetSeqLen = 6", "" },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void A_file_of_the_models_own_names_compiles_and_so_does_one_under_the_base_prefix(string folder, string arguments, string prefix)
    {
        string config = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "HfConfigs", folder, "config.json"));
        string configPath = $"/src/models/{folder}/config.json";
        var bare = GeneratorHarness.RunWith([(configPath, config)], Model(folder, arguments, weights: false));
        Assert.Empty(bare.Problems);
        List<(string Name, int[] Shape)> own = ParameterTensors(bare.GeneratedSource);
        Assert.NotEmpty(own);

        AssertCompiles(own);
        if (prefix.Length > 0)
            AssertCompiles([.. own.Select(t => (prefix + t.Name, t.Shape))]);

        // And the check still reads the file: one tensor left out is named.
        List<(string Name, int[] Shape)> short_ = [.. own.Skip(1)];
        var missing = GeneratorHarness.RunWith([(configPath, config), (HeaderPath, Header(short_))], Model(folder, arguments, weights: true));
        Assert.Contains(missing.Problems, d => d.Id == "TG0032" && d.GetMessage().Contains($"'{own[0].Name}'"));

        void AssertCompiles(List<(string Name, int[] Shape)> tensors)
        {
            var result = GeneratorHarness.RunWith([(configPath, config), (HeaderPath, Header(tensors))], Model(folder, arguments, weights: true));
            Assert.True(!result.Problems.Any(), $"{folder} ({tensors[0].Name}, …): " + string.Join("\n", result.Problems.Take(5)));
            Assert.Contains("FromBuiltInWeights", result.GeneratedSource);
        }
    }

    [Theory]
    [InlineData("t5", "SeqLen = 8, TargetSeqLen = 6", "")]
    [InlineData("marian", "SeqLen = 8, TargetSeqLen = 6", "model.")]
    [InlineData("bart", "SeqLen = 8, TargetSeqLen = 6", "model.")]
    public void An_older_files_copies_of_the_shared_table_and_its_unread_tensors_are_skipped(string folder, string arguments, string prefix)
    {
        string config = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "HfConfigs", folder, "config.json"));
        string configPath = $"/src/models/{folder}/config.json";
        List<(string Name, int[] Shape)> own = ParameterTensors(GeneratorHarness.RunWith([(configPath, config)], Model(folder, arguments, weights: false)).GeneratedSource);
        int[] shared = own.Single(t => t.Name.EndsWith("shared.weight", StringComparison.Ordinal)).Shape;
        List<(string Name, int[] Shape)> file = [.. own, (prefix + "encoder.embed_tokens.weight", shared), (prefix + "decoder.embed_tokens.weight", shared)];
        if (!own.Any(t => t.Name == "lm_head.weight")) file.Add(("lm_head.weight", shared)); // the tied head's copy
        if (folder == "t5") file.Add(("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight", [8, 3]));
        if (folder == "marian") file.AddRange([("model.encoder.embed_positions.weight", [16, shared[1]]), ("model.decoder.embed_positions.weight", [16, shared[1]])]);
        var result = GeneratorHarness.RunWith([(configPath, config), (HeaderPath, Header(file))], Model(folder, arguments, weights: true));
        Assert.True(!result.Problems.Any(), string.Join("\n", result.Problems.Take(5)));

        // A tensor no rule explains is still refused.
        file.Add((prefix + "encoder.embed_scale", [1]));
        Assert.Contains(GeneratorHarness.RunWith([(configPath, config), (HeaderPath, Header(file))], Model(folder, arguments, weights: true)).Problems,
            d => d.Id == "TG0033" && d.GetMessage().Contains($"'{prefix}encoder.embed_scale'"));
    }

    private static string Model(string folder, string arguments, bool weights) => $$"""
        using TransformerGen;
        namespace Demo;
        [TransformerModel(Config = "models/{{folder}}/config.json", {{arguments}}{{(weights ? ", Weights = \"family.safetensors\"" : "")}})]
        public partial class M { }
        """;

    /// <summary>The generated model's parameter table: each tensor's name and shape, in order.</summary>
    private static List<(string Name, int[] Shape)> ParameterTensors(string source)
    {
        int start = source.IndexOf("tensors: new global::TransformerGen.ParameterTensor[]", StringComparison.Ordinal);
        Assert.True(start >= 0, "no parameter table in the generated source");
        // The table's lines, up to the one that closes it.
        IEnumerable<string> table = source[start..].Split('\n').Skip(2).TakeWhile(line => !line.TrimStart().StartsWith('}'));
        return [.. table.Select(line => ParameterLine().Match(line)).Where(m => m.Success).Select(m => (m.Groups["name"].Value,
            m.Groups["shape"].Value.Split(',', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray()))];
    }

    private static string Header(IEnumerable<(string Name, int[] Shape)> tensors)
    {
        var json = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach ((string name, int[] shape) in tensors)
        {
            long bytes = 4L * shape.Aggregate(1L, (a, b) => a * b);
            json.Append($",\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        return json.Append('}').ToString();
    }

    [GeneratedRegex(@"new\(""(?<name>[^""]+)"", new\[\] \{ (?<shape>[0-9, ]+) \}")]
    private static partial Regex ParameterLine();
}
