using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace TransformerGen.Tokenizers.Folder;

/// <summary>
/// One entry of <c>added_tokens_decoder</c> (tokenizer_config.json) or <c>added_tokens</c> (tokenizer.json).
/// <paramref name="LStrip"/>/<paramref name="RStrip"/>: the token takes in the whitespace before/after it
/// (XLM-R's <c>&lt;mask&gt;</c> is <c>lstrip</c>, so "a &lt;mask&gt;" encodes as "a" and the mask).
/// </summary>
internal readonly record struct AddedToken(string Content, int Id, bool Special, bool LStrip = false, bool RStrip = false);

/// <summary>
/// What a Hugging Face model folder says about its tokenizer outside the vocabulary files:
/// tokenizer_config.json (special tokens, flags, chat template) and config.json (<c>model_type</c>).
/// Every field is null when the file or the key is absent, so each loader writes its family's default
/// where it reads the field (as transformers' tokenizer classes do in their constructors).
/// </summary>
internal sealed class TokenizerConfig
{
    public string? ModelType { get; private init; }

    /// <summary>transformers' class the folder names (<c>"XLMRobertaTokenizer"</c>, <c>"BertTokenizer"</c>), or null.</summary>
    public string? TokenizerClass { get; private init; }

    /// <summary>
    /// <c>model_max_length</c>, or null when absent or when it is transformers' "no limit" placeholder
    /// (<c>int(1e30)</c>, written as 1000000000000000019884624838656).
    /// </summary>
    public int? ModelMaxLength { get; private init; }

    public string? BosToken { get; private init; }
    public string? EosToken { get; private init; }
    public string? UnkToken { get; private init; }
    public string? PadToken { get; private init; }
    public string? ClsToken { get; private init; }
    public string? SepToken { get; private init; }
    public string? MaskToken { get; private init; }

    public bool? AddBosToken { get; private init; }
    public bool? AddEosToken { get; private init; }
    public bool? DoLowerCase { get; private init; }
    public bool? StripAccents { get; private init; }
    public bool? TokenizeChineseChars { get; private init; }
    public bool? DoBasicTokenize { get; private init; }

    /// <summary>
    /// <c>clean_up_tokenization_spaces</c>: decoding removes the space before punctuation and English contractions
    /// (read by the Marian, NLLB, T5, Gemma and byte-level BPE loaders; transformers' default is false).
    /// </summary>
    public bool? CleanUpTokenizationSpaces { get; private init; }

    /// <summary>Marian's <c>separate_vocabs</c>: the target side has a vocabulary of its own (target_vocab.json).</summary>
    public bool? SeparateVocabs { get; private init; }

    /// <summary>NLLB's <c>src_lang</c>: the language code put around a source text (transformers' default <c>eng_Latn</c>).</summary>
    public string? SrcLang { get; private init; }

    /// <summary>NLLB's <c>tgt_lang</c>: the language code put around a target text (<c>text_target=</c>); no default.</summary>
    public string? TgtLang { get; private init; }

    /// <summary>
    /// NLLB's <c>legacy_behaviour</c>: the language code goes after the closing &lt;/s&gt; (<c>text &lt;/s&gt; code</c>)
    /// instead of before the text (<c>code text &lt;/s&gt;</c>, transformers' default since April 2023).
    /// </summary>
    public bool? LegacyBehaviour { get; private init; }

    /// <summary>
    /// T5's <c>extra_ids</c>: how many sentinels (<c>&lt;extra_id_0&gt;</c>, …) follow the SentencePiece pieces
    /// (transformers' default 100; mT5's folders say 0, their sentinels being pieces of the model).
    /// </summary>
    public int? ExtraIds { get; private init; }

    /// <summary>
    /// <c>legacy</c> of transformers' SentencePiece tokenizers (T5, Llama): true or absent, the text after an added token
    /// gets SentencePiece's dummy prefix as a text of its own does; false, it does not.
    /// </summary>
    public bool? Legacy { get; private init; }

    /// <summary>
    /// tokenizer_config.json's <c>additional_special_tokens</c> (NLLB's language codes), in file order, or null when it
    /// has none (see <see cref="ReadSpecialTokensMapAdditional"/>).
    /// </summary>
    public IReadOnlyList<string>? AdditionalSpecialTokens { get; private init; }

    /// <summary>Tokens kept whole before pre-tokenization, special or not, in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; private init; } = [];

    /// <summary>The Jinja source of the chat template, if the folder has one.</summary>
    public string? ChatTemplate { get; private init; }

    public static TokenizerConfig Read(string folder)
    {
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string modelConfigPath = Path.Combine(folder, "config.json");
        string? modelType = null;
        if (File.Exists(modelConfigPath))
        {
            using JsonDocument model = ParseFile(modelConfigPath);
            modelType = GetString(model.RootElement, "model_type");
        }

        if (!File.Exists(configPath))
        {
            return new TokenizerConfig { ModelType = modelType, ChatTemplate = ReadChatTemplateFile(folder) };
        }

        using JsonDocument document = ParseFile(configPath);
        JsonElement root = document.RootElement;
        return new TokenizerConfig
        {
            ModelType = modelType,
            TokenizerClass = GetString(root, "tokenizer_class"),
            ModelMaxLength = GetModelMaxLength(root),
            BosToken = GetTokenContent(root, "bos_token"),
            EosToken = GetTokenContent(root, "eos_token"),
            UnkToken = GetTokenContent(root, "unk_token"),
            PadToken = GetTokenContent(root, "pad_token"),
            ClsToken = GetTokenContent(root, "cls_token"),
            SepToken = GetTokenContent(root, "sep_token"),
            MaskToken = GetTokenContent(root, "mask_token"),
            AddBosToken = GetBool(root, "add_bos_token"),
            AddEosToken = GetBool(root, "add_eos_token"),
            DoLowerCase = GetBool(root, "do_lower_case"),
            StripAccents = GetBool(root, "strip_accents"),
            TokenizeChineseChars = GetBool(root, "tokenize_chinese_chars"),
            DoBasicTokenize = GetBool(root, "do_basic_tokenize"),
            SeparateVocabs = GetBool(root, "separate_vocabs"),
            CleanUpTokenizationSpaces = GetBool(root, "clean_up_tokenization_spaces"),
            SrcLang = GetString(root, "src_lang"),
            TgtLang = GetString(root, "tgt_lang"),
            LegacyBehaviour = GetBool(root, "legacy_behaviour"),
            ExtraIds = GetInt(root, "extra_ids"),
            Legacy = GetBool(root, "legacy"),
            AdditionalSpecialTokens = ReadTokenList(root, "additional_special_tokens"),
            AddedTokens = ReadAddedTokensDecoder(root),
            ChatTemplate = ReadChatTemplate(root) ?? ReadChatTemplateFile(folder),
        };
    }

    internal static JsonDocument ParseFile(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid JSON: {e.Message}", e);
        }
    }

    internal static string? GetString(JsonElement obj, string key) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out JsonElement value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    internal static bool? GetBool(JsonElement obj, string key) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out JsonElement value)
            ? value.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => null }
            : null;

    internal static int? GetInt(JsonElement obj, string key) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out JsonElement value)
        && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int number)
            ? number
            : null;

    internal static AddedToken ReadAddedToken(JsonElement entry, string content, int id) =>
        new(content, id, GetBool(entry, "special") ?? false, GetBool(entry, "lstrip") ?? false, GetBool(entry, "rstrip") ?? false);

    // A model without a limit gets transformers' VERY_LARGE_INTEGER, which does not fit an int (nor, exactly, a long).
    private static int? GetModelMaxLength(JsonElement root) =>
        root.TryGetProperty("model_max_length", out JsonElement value)
        && value.ValueKind == JsonValueKind.Number
        && value.TryGetInt32(out int length)
        && length > 0
            ? length
            : null;

    // Special tokens are written either as a string or as a serialized AddedToken: {"content": "<s>", "lstrip": false, …}.
    private static string? GetTokenContent(JsonElement obj, string key)
    {
        if (!obj.TryGetProperty(key, out JsonElement value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => GetString(value, "content"),
            _ => null,
        };
    }

    /// <summary>
    /// special_tokens_map.json's <c>additional_special_tokens</c>, or null when the file or the key is absent. Read only
    /// by the loaders that need it, so that the file cannot break the other families.
    /// </summary>
    public static IReadOnlyList<string>? ReadSpecialTokensMapAdditional(string folder)
    {
        string path = Path.Combine(folder, "special_tokens_map.json");
        if (!File.Exists(path))
        {
            return null;
        }

        using JsonDocument document = ParseFile(path);
        return ReadTokenList(document.RootElement, "additional_special_tokens");
    }

    // A list of tokens, each a string or a serialized AddedToken ({"content": "eng_Latn", …}).
    private static IReadOnlyList<string>? ReadTokenList(JsonElement obj, string key)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(key, out JsonElement list) || list.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var tokens = new List<string>();
        foreach (JsonElement entry in list.EnumerateArray())
        {
            string? content = entry.ValueKind switch
            {
                JsonValueKind.String => entry.GetString(),
                JsonValueKind.Object => GetString(entry, "content"),
                _ => null,
            };
            if (content is not null)
            {
                tokens.Add(content);
            }
        }

        return tokens;
    }

    // "added_tokens_decoder": { "151643": { "content": "<|endoftext|>", "special": true, … }, … }
    private static IReadOnlyList<AddedToken> ReadAddedTokensDecoder(JsonElement root)
    {
        if (!root.TryGetProperty("added_tokens_decoder", out JsonElement decoder) || decoder.ValueKind != JsonValueKind.Object)
        {
            return [];
        }

        var tokens = new List<AddedToken>();
        foreach (JsonProperty entry in decoder.EnumerateObject())
        {
            if (int.TryParse(entry.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id)
                && GetString(entry.Value, "content") is string content)
            {
                tokens.Add(ReadAddedToken(entry.Value, content, id));
            }
        }

        return tokens;
    }

    // "chat_template" is a string, or a list of {"name": …, "template": …} of which "default" is the one used for plain chat.
    private static string? ReadChatTemplate(JsonElement root)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement value))
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String)
        {
            return value.GetString();
        }

        if (value.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement named in value.EnumerateArray())
            {
                if (GetString(named, "name") == "default")
                {
                    return GetString(named, "template");
                }
            }
        }

        return null;
    }

    // Newer uploads keep the template beside the config instead of inside it.
    private static string? ReadChatTemplateFile(string folder)
    {
        string jinja = Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinja))
        {
            return File.ReadAllText(jinja);
        }

        string json = Path.Combine(folder, "chat_template.json");
        if (File.Exists(json))
        {
            using JsonDocument document = ParseFile(json);
            return ReadChatTemplate(document.RootElement);
        }

        return null;
    }
}
