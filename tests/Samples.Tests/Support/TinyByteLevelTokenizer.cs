using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>
/// Writes a byte-level BPE tokenizer of SmolLM2's form at toy size: ids 0–2 are &lt;|endoftext|&gt;, &lt;|im_start|&gt;
/// and &lt;|im_end|&gt; (added, special), 3–258 the 256 bytes, then one token per merge of a few words; tokenizer_config.json
/// names &lt;|endoftext|&gt; as EOS and carries SmolLM2-Instruct's ChatML chat template (with its default system prompt).
/// </summary>
internal static class TinyByteLevelTokenizer
{
    public const int EndOfText = 0, ImStart = 1, ImEnd = 2, FirstByte = 3;

    public const string DefaultSystemPrompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

    // SmolLM2-Instruct's template; the Jinja string literals hold the two characters \n, as in the JSON file.
    private const string ChatTemplate =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n" + DefaultSystemPrompt
        + "<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static readonly string[] Words = ["user", "assistant", "system", "Hello", " world", " the", " is", " a", " helpful", "You", " are"];

    private static readonly char[] ByteToSymbol = BuildByteToSymbol();

    // GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 become U+0100, U+0101, … in order.
    private static char[] BuildByteToSymbol()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + next++);
        }

        return map;
    }

    /// <summary>The id of a single byte.</summary>
    public static int ByteId(byte b) => FirstByte + BytesInIdOrder().IndexOf(b);

    // The byte symbols in id order, as GPT-2's vocabulary has them: the printable bytes first, then the others.
    private static List<byte> BytesInIdOrder() =>
        Enumerable.Range(0, 256).Select(b => (byte)b).OrderBy(b => ByteToSymbol[b] >= 256 ? 1 : 0).ThenBy(b => b).ToList();

    private static string Symbols(string text) => new(Encoding.UTF8.GetBytes(text).Select(b => ByteToSymbol[b]).ToArray());

    /// <summary>Writes vocab.json, merges.txt and tokenizer_config.json (with the chat template when <paramref name="chatTemplate"/>) into <paramref name="folder"/>.</summary>
    public static void Write(TempFolder folder, bool chatTemplate = true)
    {
        var vocabulary = new Dictionary<string, int> { ["<|endoftext|>"] = EndOfText, ["<|im_start|>"] = ImStart, ["<|im_end|>"] = ImEnd };
        foreach (byte b in BytesInIdOrder())
        {
            vocabulary.Add(ByteToSymbol[b].ToString(), vocabulary.Count);
        }

        // Each word merged left to right: (w, o), (wo, r), (wor, d)…
        var merges = new List<string>();
        foreach (string word in Words)
        {
            string symbols = Symbols(word), left = symbols[..1];
            for (int i = 1; i < symbols.Length; i++)
            {
                string right = symbols[i].ToString(), joined = left + right;
                if (vocabulary.TryAdd(joined, vocabulary.Count))
                {
                    merges.Add(left + " " + right);
                }

                left = joined;
            }
        }

        if (vocabulary.Count > TinyChatModel.Vocab)
        {
            throw new InvalidOperationException($"the tiny tokenizer has {vocabulary.Count} ids, more than the model's {TinyChatModel.Vocab}");
        }

        folder.Write("vocab.json", JsonSerializer.Serialize(vocabulary));
        folder.Write("merges.txt", "#version: 0.2\n" + string.Join("\n", merges) + "\n");

        var added = new JsonObject();
        foreach ((string content, int id) in new[] { ("<|endoftext|>", EndOfText), ("<|im_start|>", ImStart), ("<|im_end|>", ImEnd) })
        {
            added[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
            };
        }

        var config = new JsonObject
        {
            ["add_prefix_space"] = false,
            ["added_tokens_decoder"] = added,
            ["additional_special_tokens"] = new JsonArray("<|im_start|>", "<|im_end|>"),
            ["bos_token"] = "<|im_start|>",
            ["clean_up_tokenization_spaces"] = false,
            ["eos_token"] = "<|endoftext|>",
            ["model_max_length"] = TinyChatModel.SeqLen,
            ["pad_token"] = "<|im_end|>",
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["unk_token"] = "<|endoftext|>",
        };
        if (chatTemplate)
        {
            config["chat_template"] = ChatTemplate;
        }

        folder.Write("tokenizer_config.json", config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
