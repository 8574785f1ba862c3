using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;

namespace TransformerGen.EmbeddingServer.Bench;

/// <summary>
/// A folder laid out as all-MiniLM-L6-v2 is on the Hub, with seeded random weights of its real shape (only the shape
/// matters for timing) and a vocabulary of its real size whose word entries are <c>w{id}</c>, so that a text of those
/// words tokenizes to known ids; plus the same weights exported to ONNX (fp32 and 8-bit) for ONNX Runtime.
/// </summary>
internal sealed class ModelFolder : IDisposable
{
    public const ulong Seed = 20261206;

    public ModelFolder(string? path = null)
    {
        Path = path is null ? Directory.CreateTempSubdirectory("transformergen-serverbench-").FullName : Directory.CreateDirectory(path).FullName;
        string compiledConfig = System.IO.Path.Combine(AppContext.BaseDirectory, "models", "all-MiniLM-L6-v2", "config.json");
        System.IO.File.Copy(compiledConfig, File("config.json"));
        ServedMiniLm model = ServedMiniLm.ForInference(Seed);
        model.Save(File("model.safetensors"));
        OnnxFloat32 = File("model.onnx");
        OnnxInt8 = File("model-int8.onnx");
        model.SaveOnnx(OnnxFloat32, new OnnxExportOptions { Config = compiledConfig });
        // From our 8-bit instance: the graph holds its blocks unchanged, so ORT's 8-bit model multiplies our int8 weights.
        ServedMiniLm.ForInference(Seed, WeightType.Int8).SaveOnnx(OnnxInt8, new OnnxExportOptions { Config = compiledConfig, Weights = OnnxWeightFormat.Int8Blocks });
        string[] vocab = [
            "[PAD]", .. Enumerable.Range(0, 99).Select(i => $"[unused{i}]"), "[UNK]", "[CLS]", "[SEP]", "[MASK]",
            .. Enumerable.Range(104, ServedMiniLm.Vocab - 104).Select(Word)];
        System.IO.File.WriteAllText(File("vocab.txt"), string.Join("\n", vocab) + "\n");
        System.IO.File.WriteAllText(File("tokenizer_config.json"), new JsonObject
        {
            ["cls_token"] = "[CLS]", ["do_lower_case"] = true, ["mask_token"] = "[MASK]", ["model_max_length"] = 512,
            ["pad_token"] = "[PAD]", ["sep_token"] = "[SEP]", ["tokenizer_class"] = "BertTokenizer", ["unk_token"] = "[UNK]",
        }.ToJsonString());
    }

    public string Path { get; }

    /// <summary>Writes the folder to <paramref name="path"/> and keeps it; returns 0 (the exit code).</summary>
    public static int WriteTo(string path)
    {
        var folder = new ModelFolder(path);
        Console.WriteLine($"wrote {folder.Path}: config.json, model.safetensors (random weights), vocab.txt (words w104 … w30521), tokenizer_config.json, model.onnx, model-int8.onnx");
        return 0;
    }

    public string OnnxFloat32 { get; }

    public string OnnxInt8 { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>The vocabulary's entry for <paramref name="id"/> (from 104 on).</summary>
    public static string Word(int id) => "w" + id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The text that tokenizes to <paramref name="ids"/> ([CLS], words, [SEP]).</summary>
    public static string Text(int[] ids) => string.Join(" ", ids[1..^1].Select(Word));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // left in the temporary folder
        }
    }
}
