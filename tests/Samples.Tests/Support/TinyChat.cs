using System;
using System.IO;
using System.Linq;
using ChatSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>Tiny chat models and folders for the Chat sample's tests.</summary>
internal static class TinyChat
{
    /// <summary>The config <see cref="TinyChatModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-llama", "config.json");

    /// <summary>The tiny model as the Chat sample takes a model: a folder of the files <see cref="Folder"/> writes, loaded as <see cref="TinyChatModel"/>.</summary>
    public static ChatModelSpec Spec { get; } = new(
        "tests/tiny-chat",
        ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json"],
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-llama/config.json",
        (folder, weights) => TinyChatModel.ForInference(folder, weights));

    /// <summary>The ids that end a reply: &lt;|endoftext|&gt; (EOS) and &lt;|im_end|&gt; (the template's end of turn).</summary>
    public static readonly int[] StopIds = [TinyByteLevelTokenizer.EndOfText, TinyByteLevelTokenizer.ImEnd];

    /// <summary>
    /// A random model whose LM head never picks a stop id, or always picks <paramref name="preferred"/>. The head is tied to
    /// the embedding, so channel 0 of every embedding row is set to 10 (the residual stream's channel 0 stays near 10, and
    /// after the final RMSNorm it is the largest by far); a stop id's row gets −10 there, or +30 for the preferred one,
    /// which puts its logit about 20·√48 ≈ 140 below, or above, every other.
    /// </summary>
    public static TinyChatModel Model(ulong seed, int? preferred = null)
    {
        TinyChatModel model = TinyChatModel.ForInference(seed);
        ParameterTensor embedding = model.ParameterTensors.Single(t => t.Name == "model.embed_tokens.weight");
        Span<float> rows = model.Parameters.Slice(embedding.Offset, embedding.Length);
        const int width = TinyChatModel.DModel;
        for (int id = 0; id < TinyChatModel.Vocab; id++)
        {
            rows[id * width] = 10f;
        }

        foreach (int stop in StopIds)
        {
            rows[stop * width] = stop == preferred ? 30f : -10f;
        }

        model.PackWeights(); // reading Parameters unpacked the tied table; decode over panels again
        return model;
    }

    /// <summary>A folder as the Hub has SmolLM2-Instruct's, at toy size: config.json, the tokenizer, and (with a model) model.safetensors.</summary>
    public static TempFolder Folder(TinyChatModel? model = null, bool chatTemplate = true)
    {
        var folder = new TempFolder();
        File.Copy(ConfigPath, folder.File("config.json"));
        TinyByteLevelTokenizer.Write(folder, chatTemplate);
        model?.Save(folder.File("model.safetensors"));
        return folder;
    }
}
