using System;
using System.IO;
using System.Linq;
using System.Text;
using Xunit;

namespace TransformerGen.Tests.Inference;

public sealed class GenerationConfigTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "generation-config-" + Guid.NewGuid().ToString("N"));

    public GenerationConfigTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static GenerationConfig Parse(string json) => GenerationConfig.Parse(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void ReadsAnInstructModelsSampling()
    {
        // Llama-3.2-1B-Instruct's file, as the hub serves it.
        GenerationConfig config = Parse("""
            { "bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128008, 128009],
              "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.45.0.dev0" }
            """);
        Assert.True(config.DoSample);
        Assert.Equal(0.6f, config.Temperature);
        Assert.Equal(50, config.TopK);             // transformers' default where the file is silent
        Assert.Equal(0.9f, config.TopP);
        Assert.Equal(1f, config.RepetitionPenalty);
        Assert.Equal([128001, 128008, 128009], config.EosTokenIds);
        Assert.Null(config.MaxNewTokens);
        Assert.Equal("temperature 0.6, top-k 50, top-p 0.9", config.Describe());
        Assert.Equal(["do_sample", "eos_token_id", "temperature", "top_p"], config.Given.Order());

        var sampler = new Sampler(1) { PresencePenalty = 1f };
        config.ApplyTo(sampler);
        Assert.Equal((0.6f, 50, 0.9f, 0f, 1f, 0f), (sampler.Temperature, sampler.TopK, sampler.TopP, sampler.MinP, sampler.RepetitionPenalty, sampler.PresencePenalty));
    }

    [Fact]
    public void ReadsPenaltiesAndMinP()
    {
        // Qwen2.5-0.5B-Instruct's settings, with a min_p beside them.
        GenerationConfig config = Parse("""
            { "do_sample": true, "eos_token_id": [151645, 151643], "pad_token_id": 151643, "repetition_penalty": 1.1,
              "temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.05, "max_new_tokens": 512 }
            """);
        Assert.Equal((0.7f, 20, 0.8f, 0.05f, 1.1f), (config.Temperature, config.TopK, config.TopP, config.MinP, config.RepetitionPenalty));
        Assert.Equal(512, config.MaxNewTokens);
        Assert.Equal("temperature 0.7, top-k 20, top-p 0.8, min-p 0.05, repetition penalty 1.1", config.Describe());
    }

    [Fact]
    public void WithoutSamplingTheReplyIsGreedyButStillPenalized()
    {
        // generate() without do_sample takes the argmax after its logits processors (the repetition penalty among them).
        GenerationConfig config = Parse("""{ "temperature": 0.7, "top_k": 5, "repetition_penalty": 1.3, "eos_token_id": 2 }""");
        Assert.False(config.DoSample);
        Assert.Equal([2], config.EosTokenIds);
        var sampler = new Sampler(1);
        config.ApplyTo(sampler);
        Assert.Equal((0f, 0, 1f, 0f, 1.3f), (sampler.Temperature, sampler.TopK, sampler.TopP, sampler.MinP, sampler.RepetitionPenalty));
        Assert.Equal("greedy, repetition penalty 1.3", config.Describe());
        Assert.Equal(1, sampler.Sample([3f, 2.9f], [0], []));
    }

    [Fact]
    public void NullTurnsAFilterOffWhereAbsenceTakesTheDefault()
    {
        GenerationConfig config = Parse("""{ "do_sample": true, "top_k": null, "top_p": null, "temperature": null, "min_p": null, "repetition_penalty": null, "eos_token_id": null }""");
        Assert.Equal((1f, 0, 1f, 0f, 1f), (config.Temperature, config.TopK, config.TopP, config.MinP, config.RepetitionPenalty));
        Assert.Empty(config.EosTokenIds);
        Assert.Equal(["do_sample"], config.Given);
        Assert.Equal(50, Parse("{}").TopK);
        Assert.Empty(Parse("{}").Given);
        Assert.Equal("greedy", GenerationConfig.Default.Describe());
    }

    [Fact]
    public void LoadsFromAFolderOrAFile()
    {
        Assert.Same(GenerationConfig.Default, GenerationConfig.FromFolder(_folder));
        Assert.Throws<FileNotFoundException>(() => GenerationConfig.Load(_folder));
        Assert.Throws<DirectoryNotFoundException>(() => GenerationConfig.FromFolder(Path.Combine(_folder, "missing")));

        string file = Path.Combine(_folder, GenerationConfig.FileName);
        File.WriteAllText(file, """{ "do_sample": true, "top_p": 0.95 }""");
        Assert.Equal(0.95f, GenerationConfig.FromFolder(_folder).TopP);
        Assert.Equal(0.95f, GenerationConfig.Load(_folder).TopP);
        Assert.Equal(0.95f, GenerationConfig.Load(file).TopP);
    }

    [Theory]
    [InlineData("""{ "temperature": -0.5 }""", "\"temperature\" is -0.5")]
    [InlineData("""{ "top_p": 1.5 }""", "\"top_p\" is 1.5")]
    [InlineData("""{ "top_k": 2.5 }""", "\"top_k\" is 2.5")]
    [InlineData("""{ "top_k": -1 }""", "\"top_k\" is -1")]
    [InlineData("""{ "min_p": "0.1" }""", "\"min_p\" is \"0.1\"")]
    [InlineData("""{ "repetition_penalty": 0 }""", "\"repetition_penalty\" is 0")]
    [InlineData("""{ "do_sample": 1 }""", "\"do_sample\" is 1")]
    [InlineData("""{ "eos_token_id": [2, -1] }""", "\"eos_token_id\" is -1")]
    [InlineData("""{ "eos_token_id": "</s>" }""", "\"eos_token_id\" is \"</s>\"")]
    [InlineData("""{ "max_new_tokens": 0 }""", "\"max_new_tokens\" is 0")]
    [InlineData("""[1, 2]""", "not a JSON object")]
    [InlineData("""{ "do_sample": tru""", "is not JSON")]
    public void ABadValueNamesTheFileAndTheKey(string json, string expected)
    {
        string file = Path.Combine(_folder, GenerationConfig.FileName);
        File.WriteAllText(file, json);
        var e = Assert.Throws<InvalidDataException>(() => GenerationConfig.FromFolder(_folder));
        Assert.Contains(file, e.Message);
        Assert.Contains(expected, e.Message);
    }
}
