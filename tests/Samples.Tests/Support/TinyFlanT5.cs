using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TransformerGen.Tokenizers.Tests.Support;
using TranslateSample;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// The tiny T5 and folders for the Translate sample's Flan-T5 tests: a flan-t5-small-shaped folder (config.json,
/// model.safetensors, spiece.model, tokenizer_config.json, special_tokens_map.json) at toy size, the Unigram model
/// written with the tokenizer tests' writer. Its pieces are single characters, a little punctuation and whole words
/// (the instruction's, and a few English and German ones) that score far better than their letters, so each word is one piece.
/// </summary>
internal static class TinyFlanT5
{
    /// <summary>The config <see cref="TinyFlanT5Model"/> is compiled from, as copied beside the tests.</summary>
    public static string ConfigPath => Path.Combine(AppContext.BaseDirectory, "Models", "tiny-flan-t5", "config.json");

    /// <summary>The tiny model as the Translate sample takes a model: told "translate English to German: " unless told otherwise.</summary>
    public static TranslationModelSpec Spec { get; } = new(
        "tests/tiny-flan-t5",
        TranslationModelSpec.T5Files,
        File.ReadAllText(ConfigPath),
        "tests/Samples.Tests/Models/tiny-flan-t5/config.json",
        (folder, weights) => TinyFlanT5Model.ForInference(folder, weights),
        "T5ForConditionalGeneration",
        new TranslationLanguages("English", "German"),
        TranslationModelSpec.TranslationInstruction);

    /// <summary>T5's ids: &lt;pad&gt; (also the decoder's start), &lt;/s&gt;, &lt;unk&gt;.</summary>
    public const int Pad = 0, Eos = 1, Unk = 2;

    /// <summary>The tokenizer's ids: 3 control pieces, the pieces below, then &lt;extra_id_1&gt; and &lt;extra_id_0&gt;.</summary>
    public const int TokenizerIds = 3 + 49 + 2;

    private static readonly string[] Words =
    [
        "▁translate", "▁English", "▁to", "▁German", "▁French", "▁summarize", "▁question", "▁answer",
        "▁the", "▁house", "▁is", "▁small", "▁where", "▁das", "▁Haus", "▁ist", "▁klein", "▁wo",
    ];

    // Punctuation and letters score badly, words well: "▁the" (-5) beats "▁", "t", "h", "e" (-47).
    private static readonly (string Piece, float Score)[] Pieces =
    [
        ("▁", -2), (".", -3), (",", -3), ("?", -3), (":", -3),
        .. "abcdefghijklmnopqrstuvwxyz".Select(c => (c.ToString(), -15f)),
        .. Words.Select(word => (word, -5f)),
    ];

    /// <summary>The id of a piece: its place after the 3 control pieces.</summary>
    public static int Id(string piece)
    {
        int index = Array.FindIndex(Pieces, entry => entry.Piece == piece);
        return index >= 0 ? 3 + index : throw new ArgumentException($"'{piece}' is not a piece of the tiny T5 model", nameof(piece));
    }

    /// <summary>A random model, its weights drawn from <paramref name="seed"/>.</summary>
    public static TinyFlanT5Model Model(ulong seed) => TinyFlanT5Model.ForInference(seed);

    /// <summary>
    /// A model whose decoder follows a script: after the token <c>From</c> it chooses <c>To</c>, after any other token
    /// &lt;/s&gt;. Each step gets a channel c of the residual stream (1, 2, …): the token table's column c is 1 in the row
    /// of From and 0 elsewhere, no decoder layer writes channel c (those rows of every output projection are zero), the
    /// final RMSNorm keeps only the script's channels, and lm_head reads channel c into the logit of To alone. So the
    /// logits after From are 0 but To's, which is positive; after a token of no step they are all 0, and the first id that
    /// can be chosen, &lt;/s&gt; (id 1; &lt;pad&gt; is never chosen), wins.
    /// </summary>
    public static TinyFlanT5Model Scripted(ulong seed, params (int From, int To)[] steps)
    {
        const int d = TinyFlanT5Model.DModel;
        if (steps.Length >= d) throw new ArgumentException($"at most {d - 1} steps fit the model's {d} channels", nameof(steps));
        TinyFlanT5Model model = TinyFlanT5Model.ForInference(seed);
        Span<float> parameters = model.Parameters;
        ParameterTensor table = Tensor(model, "shared.weight"), head = Tensor(model, "lm_head.weight"), norm = Tensor(model, "decoder.final_layer_norm.weight");
        ParameterTensor[] outputs =
        [
            .. model.ParameterTensors.Where(t => t.Name.StartsWith("decoder.block.", StringComparison.Ordinal)
                                                 && (t.Name.EndsWith(".o.weight", StringComparison.Ordinal) || t.Name.EndsWith(".wo.weight", StringComparison.Ordinal))),
        ];
        // The config's 2 decoder layers, each with a self-attention, a cross-attention and a feed-forward output.
        if (outputs.Length != 3 * 2) throw new InvalidOperationException($"expected 6 output projections in the decoder, found {outputs.Length}");

        parameters.Slice(norm.Offset, d).Clear();
        parameters.Slice(head.Offset, head.Length).Clear();
        for (int step = 0; step < steps.Length; step++)
        {
            int channel = step + 1;
            (int from, int to) = steps[step];
            for (int row = 0; row < TinyFlanT5Model.Vocab; row++)
            {
                parameters[table.Offset + row * d + channel] = row == from ? 1f : 0f;
            }

            foreach (ParameterTensor output in outputs)
            {
                int inputs = output.Shape[1];
                parameters.Slice(output.Offset + channel * inputs, inputs).Clear();
            }

            parameters[norm.Offset + channel] = 1f;
            parameters[head.Offset + to * d + channel] = 10f;
        }

        model.PackWeights(); // reading Parameters unpacked the weights; decode over panels again
        return model;
    }

    private static ParameterTensor Tensor(TinyFlanT5Model model, string name) => model.ParameterTensors.Single(t => t.Name == name);

    /// <summary>
    /// The text of <paramref name="ids"/> as the sample writes it: the ids the tokenizer has, decoded; rows past them
    /// (which a random model can choose) have no text.
    /// </summary>
    public static string Text(Tokenizers.PretrainedTokenizer tokenizer, ReadOnlySpan<int> ids) =>
        tokenizer.Decode(ids.ToArray().Where(id => id < TokenizerIds).ToArray());

    /// <summary>
    /// The sample's lines for output <paramref name="ids"/>: the arrow and the text, and, when the ids hold rows past the
    /// tokenizer's, the line that counts them.
    /// </summary>
    public static string Printed(Tokenizers.PretrainedTokenizer tokenizer, ReadOnlySpan<int> ids)
    {
        int past = ids.ToArray().Count(id => id >= TokenizerIds);
        string note = past == 0 ? "" : $"    {past} of its ids {(past == 1 ? "is" : "are")} past the tokenizer's {TokenizerIds} (rows of the model's {TinyFlanT5Model.Vocab} that are no token) and have no text\n";
        return $"  → {Text(tokenizer, ids)}\n{note}";
    }

    /// <summary>A folder as the hub has flan-t5-small's, at toy size; without a model it has no model.safetensors.</summary>
    public static TempFolder Folder(TinyFlanT5Model? model = null)
    {
        var folder = new TempFolder();
        File.Copy(ConfigPath, folder.File("config.json"));
        File.WriteAllBytes(folder.File("spiece.model"), SentencePieceModelWriter.T5Shaped(Pieces, PrecompiledCharsMapWriter.Nfkc("ﬁ")));
        // flan-t5-small's files, with 2 sentinels instead of 100.
        folder.Write("tokenizer_config.json", """
            {
              "additional_special_tokens": ["<extra_id_0>", "<extra_id_1>"],
              "eos_token": "</s>", "extra_ids": 2, "model_max_length": 512, "pad_token": "<pad>",
              "sp_model_kwargs": {}, "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>"
            }
            """);
        folder.Write("special_tokens_map.json", """
            {
              "additional_special_tokens": ["<extra_id_0>", "<extra_id_1>"],
              "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"
            }
            """);
        model?.Save(folder.File("model.safetensors"));
        return folder;
    }
}
