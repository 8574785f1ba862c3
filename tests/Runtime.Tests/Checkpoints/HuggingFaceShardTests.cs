using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;
using static TransformerGen.Tests.Checkpoints.HuggingFaceTestFiles;

namespace TransformerGen.Tests.Checkpoints;

/// <summary>
/// Checkpoints split into shards with a <c>model.safetensors.index.json</c>: loading by the index or its directory,
/// and refusing an index that disagrees with the shards' headers, with the buffer untouched.
/// </summary>
public sealed class HuggingFaceShardTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tg-hf-shards-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string ShardName(int k) => $"model-{k + 1:00000}-of-00003.safetensors";

    /// <summary>Writes <paramref name="files"/> in three shards (every third tensor to each) and an index that lists them; returns the index's path.</summary>
    private string WriteShards(IReadOnlyList<FileTensor> files, Func<List<(string Shard, IEnumerable<string> Names)>, List<(string Shard, IEnumerable<string> Names)>>? editIndex = null)
    {
        var shards = new List<(string Shard, IEnumerable<string> Names)>();
        for (int k = 0; k < 3; k++)
        {
            List<FileTensor> part = files.Where((_, i) => i % 3 == k).ToList();
            Write(Path.Combine(_directory, ShardName(k)), part, new Dictionary<string, string> { ["format"] = "pt" });
            shards.Add((ShardName(k), part.Select(f => f.Name).ToList()));
        }
        return WriteIndex(Path.Combine(_directory, "model.safetensors.index.json"), editIndex?.Invoke(shards) ?? shards);
    }

    private static void AssertBitEqual(float[] expected, float[] actual) =>
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));

    private static InvalidDataException Refused(FamilyModel model, string path, params string[] fragments)
    {
        float[] buffer = model.NewBuffer();
        var error = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(path, model.Table, buffer, model.Family));
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
        Assert.All(buffer, x => Assert.Equal(Sentinel, x));
        return error;
    }

    [Fact]
    public void ThreeShardsLoadByTheIndexAndByTheDirectory()
    {
        FamilyModel model = Llama(CheckpointFamily.Qwen2);
        var files = model.FileTensors(dtypeOf: t => t % 2 == 0 ? "BF16" : "F32");
        files.Insert(5, Zeros("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", HeadDim / 2));
        string index = WriteShards(files);

        float[] buffer = model.NewBuffer();
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(index, model.Table, buffer, model.Family);
        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal(model.Table.Select(t => t.Name), report.Loaded);
        SafeTensorsSkippedTensor skipped = Assert.Single(report.Skipped);
        Assert.Equal(Path.Combine(_directory, ShardName(5 % 3)), skipped.File);

        buffer = model.NewBuffer();
        HuggingFaceCheckpoint.Load(_directory, model.Table, buffer, model.Family);
        AssertBitEqual(model.Expected(), buffer);
    }

    [Fact]
    public void PrefixedShardsWithATransposedTensorAndATiedCopyLoad()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors(name => "transformer." + name, "F16");
        files.Add(Zeros("lm_head.weight", "F32", V, E));
        files.Add(Zeros("transformer.h.1.attn.bias", "F32", 1, 1, P, P));
        float[] buffer = model.NewBuffer();
        SafeTensorsLoadReport report = HuggingFaceCheckpoint.Load(WriteShards(files), model.Table, buffer, model.Family);
        AssertBitEqual(model.Expected(), buffer);
        Assert.Equal([SafeTensorsSkipReason.Buffer, SafeTensorsSkipReason.TiedCopy], report.Skipped.Select(s => s.Reason).Order());
    }

    [Fact]
    public void AShardTheWeightMapNamesButThatDoesNotExistIsRefused()
    {
        FamilyModel model = Bert();
        var files = model.FileTensors();
        string index = WriteShards(files, shards => [.. shards, ("model-00004-of-00003.safetensors", ["encoder.layer.9.output.dense.weight"])]);
        Refused(model, index, index, "model-00004-of-00003.safetensors", "does not exist", "encoder.layer.9.output.dense.weight");

        index = WriteShards(files);
        File.Delete(Path.Combine(_directory, ShardName(1)));
        Refused(model, index, ShardName(1), "does not exist");
    }

    [Fact]
    public void ATensorTheWeightMapPutsInAnotherShardIsRefused()
    {
        FamilyModel model = Gpt2();
        var files = model.FileTensors();
        // wte.weight is in shard 1; the index claims shard 2.
        string index = WriteShards(files, shards => shards.Select((s, k) => k switch
        {
            0 => (s.Shard, s.Names.Where(n => n != "wte.weight")),
            1 => (s.Shard, s.Names.Append("wte.weight")),
            _ => s,
        }).ToList());
        Refused(model, index, index, "wte.weight", ShardName(1), ShardName(0));
    }

    [Fact]
    public void ATensorTheWeightMapListsButItsShardLacksIsRefused()
    {
        FamilyModel model = Llama();
        string index = WriteShards(model.FileTensors(), shards => shards.Select((s, k) => k == 2 ? (s.Shard, s.Names.Append("model.layers.7.mlp.up_proj.weight")) : s).ToList());
        Refused(model, index, index, "model.layers.7.mlp.up_proj.weight", ShardName(2), "does not have it");
    }

    [Fact]
    public void ATensorInAShardThatTheWeightMapDoesNotListIsRefused()
    {
        FamilyModel model = Llama();
        string index = WriteShards(model.FileTensors(), shards => shards.Select((s, k) => k == 1 ? (s.Shard, s.Names.Skip(1)) : s).ToList());
        Refused(model, index, index, "does not list", ShardName(1));
    }

    [Fact]
    public void OneTensorInTwoShardsIsRefused()
    {
        FamilyModel model = Bert();
        var files = model.FileTensors();
        files.Add(files[0] with { Name = "bert." + files[0].Name }); // goes to shard 2 (37 % 3 = 1): a prefixed twin of shard 1's first tensor
        string index = WriteShards(files);
        Refused(model, index, "bert.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight", ShardName(0), "same tensor");
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "not an object")]
    [InlineData("{\"metadata\": {}}", "no \"weight_map\"")]
    [InlineData("{\"weight_map\": {}}", "empty")]
    [InlineData("{\"weight_map\": {\"wte.weight\": 3}}", "wte.weight")]
    [InlineData("{\"weight_map\": {\"wte.weight\": \"../model.safetensors\"}}", "not a file name")]
    [InlineData("{\"weight_map\": {\"wte.weight\": \"a.safetensors\", \"wte.weight\": \"a.safetensors\"}}", "more than once")]
    public void AMalformedIndexIsRefused(string json, string fragment)
    {
        FamilyModel model = Gpt2();
        string index = Path.Combine(_directory, "model.safetensors.index.json");
        File.WriteAllText(index, json);
        Refused(model, index, index, fragment);
    }

    [Fact]
    public void ADirectoryPrefersTheSingleFileToTheIndex()
    {
        FamilyModel model = Llama();
        var files = model.FileTensors();
        WriteShards(files);
        File.Delete(Path.Combine(_directory, ShardName(0))); // the index is now broken, but not looked at
        Write(Path.Combine(_directory, "model.safetensors"), files);
        float[] buffer = model.NewBuffer();
        HuggingFaceCheckpoint.Load(_directory, model.Table, buffer, model.Family);
        AssertBitEqual(model.Expected(), buffer);
    }
}
