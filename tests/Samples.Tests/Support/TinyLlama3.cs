using System;
using System.IO;
using System.Linq;
using ChatSample;
using TransformerGen.Tokenizers.Tests.Support;
using TokenizerFolder = TransformerGen.Tokenizers.Tests.Support.TempFolder;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>The tiny Llama 3 and its folder, as Llama-3.2-1B-Instruct's at toy size, for the Chat sample's tests.</summary>
internal static class TinyLlama3
{
    /// <summary>The config <see cref="TinyLlama3ChatModel"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-llama3", "config.json");

    /// <summary>The tiny model as the Chat sample takes a model: Llama-3.2-1B-Instruct's files, loaded as <see cref="TinyLlama3ChatModel"/>.</summary>
    public static ChatModelSpec Spec { get; } = new(
        "tests/tiny-llama3",
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-llama3/config.json",
        (folder, weights) => TinyLlama3ChatModel.ForInference(folder, weights));

    /// <summary>
    /// The ids that end a reply: config.json's eos_token_id list, &lt;|end_of_text|&gt;, &lt;|eom_id|&gt; and &lt;|eot_id|&gt;
    /// (the last also tokenizer_config.json's eos_token and the template's end of turn).
    /// </summary>
    public static readonly int[] StopIds = [Llama3FolderFromCl100k.EndOfText, Llama3FolderFromCl100k.EndOfMessage, Llama3FolderFromCl100k.EndOfTurn];

    /// <summary>The first id the cl100k-based tokenizer has no token for: Llama 3's own 28,000 tokens, 100,256 to 127,999, are left out.</summary>
    public const int FirstIdWithoutToken = 100256;

    /// <summary>The first of Llama 3's reserved special tokens after &lt;|python_tag|&gt; (128,010), untrained in the real model.</summary>
    public const int FirstReservedAfterNamed = 128011;

    /// <summary>
    /// A random model that writes text: the table's rows of ids without a token and of the reserved special tokens are
    /// zero (the reserved ones, untrained, are nearly so in Llama 3), so that their logit, 0, is below the best of the others; and
    /// the layers' matrices are 30 times the initializer's 0.02 (0.6, about 2/√10), so that each position's residual
    /// stream moves away from its token's row and the greedy reply does not repeat its first token. Any of
    /// <see cref="StopIds"/> may still end the reply.
    /// </summary>
    public static TinyLlama3ChatModel Model(ulong seed)
    {
        TinyLlama3ChatModel model = TinyLlama3ChatModel.ForInference(seed);
        const int width = TinyLlama3ChatModel.DModel;
        Span<float> rows = Table(model);
        rows[(FirstIdWithoutToken * width)..(Llama3FolderFromCl100k.BeginOfText * width)].Clear();
        rows[(FirstReservedAfterNamed * width)..].Clear();
        foreach (ParameterTensor matrix in model.ParameterTensors.Where(t => t.Name.StartsWith("model.layers.", StringComparison.Ordinal) && t.Shape.Length == 2))
        {
            foreach (ref float weight in model.Parameters.Slice(matrix.Offset, matrix.Length))
            {
                weight *= 30f;
            }
        }

        model.PackWeights(); // reading Parameters unpacked the matrices; decode over panels again
        return model;
    }

    /// <summary>
    /// A random model whose LM head always picks <paramref name="stop"/>, as <see cref="TinyChat.Model"/> makes one:
    /// channel 0 of every row of the tied table is 10, the other stop ids' −10 and <paramref name="stop"/>'s +30, which
    /// puts its logit about 20·√10 ≈ 63 above every other.
    /// </summary>
    public static TinyLlama3ChatModel Preferring(ulong seed, int stop)
    {
        TinyLlama3ChatModel model = TinyLlama3ChatModel.ForInference(seed);
        const int width = TinyLlama3ChatModel.DModel;
        Span<float> rows = Table(model);
        for (int id = 0; id < TinyLlama3ChatModel.Vocab; id++)
        {
            rows[id * width] = 10f;
        }

        foreach (int id in StopIds)
        {
            rows[id * width] = id == stop ? 30f : -10f;
        }

        model.PackWeights();
        return model;
    }

    private static Span<float> Table(TinyLlama3ChatModel model)
    {
        ParameterTensor embedding = model.ParameterTensors.Single(t => t.Name == "model.embed_tokens.weight");
        return model.Parameters.Slice(embedding.Offset, embedding.Length);
    }

    /// <summary>
    /// A folder as the Hub has Llama-3.2-1B-Instruct's, at toy size: the tiny config.json, Llama 3's tokenizer.json from
    /// cl100k_base, tokenizer_config.json with Llama 3.2's chat template, and (with a model) model.safetensors.
    /// </summary>
    public static TokenizerFolder Folder(TinyLlama3ChatModel? model = null)
    {
        var folder = new TokenizerFolder();
        Llama3FolderFromCl100k.Write(folder, chatTemplate: Llama3ChatTemplates.Llama32);
        folder.Write("config.json", File.ReadAllText(ConfigPath));
        model?.Save(Path.Combine(folder.Path, "model.safetensors"));
        return folder;
    }
}
