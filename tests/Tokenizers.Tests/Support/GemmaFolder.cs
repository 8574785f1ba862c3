using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// The tokenizer files of a Gemma 3 folder at toy size, as gemma-3-270m-it's are laid out: a SentencePiece BPE
/// tokenizer.model with Gemma's special ids (<see cref="SentencePieceModelWriter.GemmaShaped"/>, with <c>&lt;table&gt;</c>
/// as a user-defined piece at 107, the bytes from 108, then <see cref="Pieces"/>) and tokenizer_config.json with Gemma's
/// class, flags, added_tokens_decoder (<c>&lt;image_soft_token&gt;</c> one past the pieces, as Gemma 3's 262144 is one past
/// its table) and chat template. The Tokenizers tests and the Chat sample's tests write them.
/// </summary>
public static class GemmaFolder
{
    public const int Pad = 0, Eos = 1, Bos = 2, Unk = 3, Mask = 4, StartOfTurn = 105, EndOfTurn = 106, Table = 107;
    public const int FirstByte = 108, FirstPiece = FirstByte + 256;

    // Each word's merges go one way: "Hello" is He, ll, llo, Hello; "▁world" ▁w, or, ▁wor, ld, ▁world; "user" us, er,
    // user; "model" mo, el, del, model; "▁brief" ▁b, ri, ▁bri, ef, ▁brief. Digits are single pieces (Gemma splits them).
    public static readonly (string Piece, float Score)[] Pieces =
    [
        ("He", -1), ("ll", -2), ("llo", -3), ("Hello", -4),
        ("▁w", -5), ("or", -6), ("▁wor", -7), ("ld", -8), ("▁world", -9),
        ("us", -10), ("er", -11), ("user", -12),
        ("mo", -13), ("el", -14), ("del", -15), ("model", -16),
        ("Be", -17), ("▁b", -18), ("ri", -19), ("▁bri", -20), ("ef", -21), ("▁brief", -22),
        ("Hi", -23), ("▁▁", -24), ("\n\n", -25),
        ("▁", -100), ("\n", -101),
        .. "HelowrdusmBbif.!0123456789".Select((c, i) => (c.ToString(), -102f - i)),
    ];

    /// <summary>One more than the last piece's id: the ids a model of these files needs (without <see cref="ImageSoftToken"/>).</summary>
    public static readonly int PieceCount = FirstPiece + Pieces.Length;

    /// <summary><c>&lt;image_soft_token&gt;</c>: an added token one past the pieces, as Gemma 3's 262144 is.</summary>
    public static readonly int ImageSoftToken = PieceCount;

    // Gemma 3's (gemma-3-270m-it, gemma-3-1b-it, gemma-3-4b-it …): in tokenizer_config.json the newlines inside its
    // string literals are JSON's \n, so the Jinja source holds real newlines there ('\n\n' below is two newline characters).
    public const string ChatTemplate =
        "{{ bos_token }}\n"
        + "{%- if messages[0]['role'] == 'system' -%}\n"
        + "    {%- if messages[0]['content'] is string -%}\n"
        + "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
        + "    {%- else -%}\n"
        + "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
        + "    {%- endif -%}\n"
        + "    {%- set loop_messages = messages[1:] -%}\n"
        + "{%- else -%}\n"
        + "    {%- set first_user_prefix = \"\" -%}\n"
        + "    {%- set loop_messages = messages -%}\n"
        + "{%- endif -%}\n"
        + "{%- for message in loop_messages -%}\n"
        + "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
        + "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
        + "    {%- endif -%}\n"
        + "    {%- if (message['role'] == 'assistant') -%}\n"
        + "        {%- set role = \"model\" -%}\n"
        + "    {%- else -%}\n"
        + "        {%- set role = message['role'] -%}\n"
        + "    {%- endif -%}\n"
        + "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
        + "    {%- if message['content'] is string -%}\n"
        + "        {{ message['content'] | trim }}\n"
        + "    {%- elif message['content'] is iterable -%}\n"
        + "        {%- for item in message['content'] -%}\n"
        + "            {%- if item['type'] == 'image' -%}\n"
        + "                {{ '<start_of_image>' }}\n"
        + "            {%- elif item['type'] == 'text' -%}\n"
        + "                {{ item['text'] | trim }}\n"
        + "            {%- endif -%}\n"
        + "        {%- endfor -%}\n"
        + "    {%- else -%}\n"
        + "        {{ raise_exception(\"Invalid content type\") }}\n"
        + "    {%- endif -%}\n"
        + "    {{ '<end_of_turn>\n' }}\n"
        + "{%- endfor -%}\n"
        + "{%- if add_generation_prompt -%}\n"
        + "    {{'<start_of_turn>model\n'}}\n"
        + "{%- endif -%}\n";

    /// <summary>Writes tokenizer.model and tokenizer_config.json into <paramref name="folder"/>.</summary>
    public static void Write(string folder, bool addEosToken = false)
    {
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), SentencePieceModelWriter.GemmaShaped(Pieces, userDefined: ["<table>"]));
        WriteConfig(folder, addEosToken);
    }

    // tokenizer_config.json as gemma-3-270m-it's has it (its added_tokens_decoder shortened), with Gemma 3's chat template.
    public static void WriteConfig(string folder, bool addEosToken = false)
    {
        var config = new Dictionary<string, object?>
        {
            ["add_bos_token"] = true,
            ["add_eos_token"] = addEosToken,
            ["added_tokens_decoder"] = new Dictionary<string, object>
            {
                ["0"] = AddedToken("<pad>", special: true),
                ["1"] = AddedToken("<eos>", special: true),
                ["2"] = AddedToken("<bos>", special: true),
                ["3"] = AddedToken("<unk>", special: true),
                ["4"] = AddedToken("<mask>", special: true),
                ["105"] = AddedToken("<start_of_turn>", special: true),
                ["106"] = AddedToken("<end_of_turn>", special: true),
                ["107"] = AddedToken("<table>", special: false),
                [ImageSoftToken.ToString(CultureInfo.InvariantCulture)] = AddedToken("<image_soft_token>", special: true),
            },
            ["bos_token"] = "<bos>",
            ["chat_template"] = ChatTemplate,
            ["clean_up_tokenization_spaces"] = false,
            ["eos_token"] = "<eos>",
            ["mask_token"] = "<mask>",
            ["model_max_length"] = "VERY_LARGE_INTEGER",
            ["pad_token"] = "<pad>",
            ["spaces_between_special_tokens"] = false,
            ["tokenizer_class"] = "GemmaTokenizer",
            ["unk_token"] = "<unk>",
            ["use_default_system_prompt"] = false,
        };

        // transformers' "no limit", int(1e30) written out, which no .NET number type holds exactly.
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), JsonSerializer.Serialize(config).Replace("\"VERY_LARGE_INTEGER\"", "1000000000000000019884624838656", StringComparison.Ordinal));
    }

    private static Dictionary<string, object> AddedToken(string content, bool special) => new()
    {
        ["content"] = content,
        ["lstrip"] = false,
        ["normalized"] = false,
        ["rstrip"] = false,
        ["single_word"] = false,
        ["special"] = special,
    };
}
