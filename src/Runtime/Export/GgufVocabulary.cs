using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace TransformerGen;

/// <summary>
/// The vocabulary a GGUF file carries (<c>tokenizer.ggml.*</c>): one string per token id with its type, and for a
/// byte-level BPE tokenizer its merges. llama.cpp reads it to tokenize text and to print tokens; a model fed token ids
/// directly needs only its size to be right (<see cref="Synthetic"/>).
/// </summary>
public sealed class GgufVocabulary
{
    private GgufVocabulary(string model, string preTokenizer, string[] tokens, int[] tokenTypes, string[] merges, string? chatTemplate = null)
    {
        ChatTemplate = chatTemplate;
        Scores = [];
        Model = model;
        PreTokenizer = preTokenizer;
        Tokens = tokens;
        TokenTypes = tokenTypes;
        Merges = merges;
    }

    /// <summary>llama.cpp's tokenizer model: <c>gpt2</c> (byte-level BPE) or <c>llama</c> (SentencePiece BPE).</summary>
    public string Model { get; }

    /// <summary>llama.cpp's pre-tokenizer name (<c>tokenizer.ggml.pre</c>): <c>default</c>, <c>gpt-2</c>, <c>qwen2</c>, <c>smollm</c>, …</summary>
    public string PreTokenizer { get; }

    /// <summary>The token strings, by id (byte-level BPE spells bytes as GPT-2's printable characters, e.g. <c>Ġ</c> for a space).</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>llama.cpp's type of each token: 1 normal, 3 control (special), 4 user-defined (added, not special), 5 unused (padding rows).</summary>
    public IReadOnlyList<int> TokenTypes { get; }

    /// <summary>The BPE merges, <c>"left right"</c>, highest priority first.</summary>
    public IReadOnlyList<string> Merges { get; }

    /// <summary>SentencePiece's score of each token (merge priority), empty for byte-level BPE.</summary>
    public IReadOnlyList<float> Scores { get; private init; }

    /// <summary>Whether llama.cpp adds the end token when it tokenizes a prompt (<c>add_eos_token</c>: T5's source ends with &lt;/s&gt;).</summary>
    public bool AddEos { get; private init; }

    /// <summary>A unigram SentencePiece model's normalizer table (<c>normalizer_spec.precompiled_charsmap</c>), which llama.cpp's <c>t5</c> tokenizer applies; null for none.</summary>
    public byte[]? PrecompiledCharsMap { get; private init; }

    /// <summary>Whether llama.cpp adds the begin token when it tokenizes a prompt (<c>add_bos_token</c>).</summary>
    public bool AddBos { get; private init; }

    /// <summary>SentencePiece: whether a space is put before the text (<c>add_dummy_prefix</c>).</summary>
    public bool AddSpacePrefix { get; private init; }

    /// <summary>SentencePiece: whether runs of whitespace are collapsed first (<c>remove_extra_whitespaces</c>).</summary>
    public bool RemoveExtraWhitespaces { get; private init; }

    /// <summary>The unknown token's id, or -1.</summary>
    public int UnknownId { get; private init; } = -1;

    /// <summary>The Jinja chat template of <c>tokenizer_config.json</c>, written as <c>tokenizer.chat_template</c> for chat apps; null when there is none.</summary>
    public string? ChatTemplate { get; }

    /// <summary>Number of token ids.</summary>
    public int Count => Tokens.Count;

    /// <summary>
    /// A vocabulary of <paramref name="size"/> distinct tokens for a model driven by token ids alone (benchmarks, tests):
    /// ids below 256 are GPT-2's byte-level characters of the bytes 0–255, so every byte has a token when the model has 256
    /// or more, and the ids above are <c>&lt;|tokenN|&gt;</c>; no merges.
    /// </summary>
    public static GgufVocabulary Synthetic(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        string[] bytes = ByteLevelCharacters();
        var tokens = new string[size];
        var types = new int[size];
        for (int i = 0; i < size; i++)
        {
            tokens[i] = i < bytes.Length ? bytes[i] : $"<|token{i}|>";
            types[i] = (int)GgufFormat.TokenType.Normal;
        }
        return new GgufVocabulary("gpt2", "default", tokens, types, []);
    }

    /// <summary>
    /// The vocabulary of a Hugging Face tokenizer folder. A SentencePiece BPE <c>tokenizer.model</c> (Llama 2, TinyLlama)
    /// gives llama.cpp's <c>llama</c> tokenizer with each piece's score and type, the unknown id and the normalizer's dummy
    /// prefix and whitespace settings. Otherwise the folder's byte-level BPE (<c>vocab.json</c> and <c>merges.txt</c>, as
    /// GPT-2, SmolLM and Qwen2 ship) gives llama.cpp's <c>gpt2</c> tokenizer: the added tokens of <c>tokenizer.json</c> (or <c>tokenizer_config.json</c>'s
    /// <c>added_tokens_decoder</c>) become control tokens when special, user-defined otherwise; ids the tokenizer does not
    /// use, up to <paramref name="size"/> (the model's embedding rows), become unused <c>[PADn]</c> tokens, as llama.cpp's
    /// converter writes them. A <c>chat_template</c> string in <c>tokenizer_config.json</c> is kept (<see cref="ChatTemplate"/>).
    /// </summary>
    /// <param name="folder">The folder with <c>vocab.json</c> and <c>merges.txt</c>.</param>
    /// <param name="size">The model's vocabulary (embedding rows); the tokenizer's ids must all be below it.</param>
    /// <param name="preTokenizer">For byte-level BPE, llama.cpp's name of the tokenizer's pre-tokenizer: <c>gpt-2</c> for GPT-2,
    /// <c>qwen2</c> for Qwen2, <c>smollm</c> for SmolLM/SmolLM2, <c>llama-bpe</c> for Llama 3 (llama.cpp tokenizes text with the
    /// split rules it names; <c>default</c> is a generic GPT-2-like split). Unused by SentencePiece.</param>
    /// <exception cref="InvalidDataException">A file is missing or malformed, two tokens share an id, an id is not below
    /// <paramref name="size"/>, or the SentencePiece model is not BPE (a unigram model is another llama.cpp tokenizer).</exception>
    public static GgufVocabulary FromTokenizerFolder(string folder, int size, string preTokenizer = "default")
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(preTokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        string vocabPath = Path.Combine(folder, "vocab.json"), mergesPath = Path.Combine(folder, "merges.txt");
        string sentencePiecePath = Path.Combine(folder, "tokenizer.model");
        bool byteLevel = File.Exists(vocabPath) && File.Exists(mergesPath);
        if (!byteLevel && File.Exists(sentencePiecePath)) return FromSentencePiece(folder, sentencePiecePath, size);
        if (!byteLevel)
            throw new InvalidDataException($"'{folder}' has neither vocab.json and merges.txt (byte-level BPE) nor tokenizer.model (SentencePiece)");
        var tokens = new string?[size];
        var types = new int[size];
        using (JsonDocument vocab = JsonDocument.Parse(File.ReadAllBytes(vocabPath)))
        {
            foreach (JsonProperty entry in vocab.RootElement.EnumerateObject())
                Put(entry.Value.GetInt32(), entry.Name, GgufFormat.TokenType.Normal, vocabPath);
        }
        foreach ((int id, string content, bool special) in AddedTokens(folder))
            Put(id, content, special ? GgufFormat.TokenType.Control : GgufFormat.TokenType.UserDefined, folder, replace: true);
        var complete = new string[size];
        for (int i = 0; i < size; i++)
        {
            complete[i] = tokens[i] ?? $"[PAD{i}]";
            if (tokens[i] is null) types[i] = (int)GgufFormat.TokenType.Unused;
        }
        var merges = new List<string>();
        foreach (string line in File.ReadLines(mergesPath))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            merges.Add(line);
        }
        return new GgufVocabulary("gpt2", preTokenizer, complete, types, merges.ToArray(), ChatTemplateOf(folder)) { AddBos = AddBosOf(folder) ?? false };

        void Put(int id, string text, GgufFormat.TokenType type, string source, bool replace = false)
        {
            if (id < 0 || id >= size)
                throw new InvalidDataException($"'{source}': token '{text}' has id {id}, outside the model's vocabulary of {size}");
            if (tokens[id] is { } existing && !(replace && existing == text))
                throw new InvalidDataException($"'{source}': id {id} is both '{existing}' and '{text}'");
            tokens[id] = text;
            types[id] = (int)type;
        }
    }

    private static GgufVocabulary FromSentencePiece(string folder, string path, int size)
    {
        SentencePieceModelReader.Model model = SentencePieceModelReader.Read(path);
        if (model.ModelType != SentencePieceModelReader.Bpe)
            throw new InvalidDataException($"'{path}' is a SentencePiece model of type {model.ModelType}, not BPE ({SentencePieceModelReader.Bpe}): llama.cpp runs other kinds with other tokenizers");
        if (model.Pieces.Count > size)
            throw new InvalidDataException($"'{path}' has {model.Pieces.Count} pieces, more than the model's vocabulary of {size}");
        var tokens = new string[size];
        var types = new int[size];
        var scores = new float[size];
        for (int i = 0; i < size; i++)
        {
            if (i < model.Pieces.Count)
            {
                // SentencePiece's piece types are numbered as llama.cpp's token types (normal 1 … byte 6).
                (tokens[i], scores[i], types[i]) = (model.Pieces[i].Text, model.Pieces[i].Score, model.Pieces[i].Type);
            }
            else
            {
                (tokens[i], scores[i], types[i]) = ($"[PAD{i}]", -1000f, (int)GgufFormat.TokenType.Unused);
            }
        }
        foreach ((int id, string content, bool special) in AddedTokens(folder))
        {
            if (id < 0 || id >= size) throw new InvalidDataException($"'{folder}': added token '{content}' has id {id}, outside the model's vocabulary of {size}");
            if (id < model.Pieces.Count && tokens[id] != content) throw new InvalidDataException($"'{folder}': id {id} is both '{tokens[id]}' and '{content}'");
            tokens[id] = content;
            if (types[id] is (int)GgufFormat.TokenType.Normal or (int)GgufFormat.TokenType.Unused)
                types[id] = (int)(special ? GgufFormat.TokenType.Control : GgufFormat.TokenType.UserDefined);
        }
        return new GgufVocabulary("llama", "default", tokens, types, [], ChatTemplateOf(folder))
        {
            Scores = scores,
            AddBos = AddBosOf(folder) ?? true,
            AddSpacePrefix = model.AddDummyPrefix,
            RemoveExtraWhitespaces = model.RemoveExtraWhitespaces,
            UnknownId = model.UnkId >= 0 && model.UnkId < size ? model.UnkId : -1,
        };
    }

    /// <summary>The <c>add_bos_token</c> of <c>tokenizer_config.json</c>, or null when it does not say.</summary>
    private static bool? AddBosOf(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.TryGetProperty("add_bos_token", out JsonElement add) && add.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? add.GetBoolean() : null;
    }

    /// <summary>The <c>chat_template</c> string of <c>tokenizer_config.json</c>, or null.</summary>
    private static string? ChatTemplateOf(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.TryGetProperty("chat_template", out JsonElement template) && template.ValueKind == JsonValueKind.String
            ? template.GetString() : null;
    }

    /// <summary>The added tokens of <c>tokenizer.json</c>, or else of <c>tokenizer_config.json</c>; none when neither file has them.</summary>
    private static IEnumerable<(int Id, string Content, bool Special)> AddedTokens(string folder)
    {
        var found = new List<(int, string, bool)>();
        string tokenizerJson = Path.Combine(folder, "tokenizer.json");
        string configJson = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(tokenizerJson))
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(tokenizerJson));
            if (document.RootElement.TryGetProperty("added_tokens", out JsonElement added) && added.ValueKind == JsonValueKind.Array)
                foreach (JsonElement token in added.EnumerateArray())
                    found.Add((token.GetProperty("id").GetInt32(), token.GetProperty("content").GetString() ?? "",
                        token.TryGetProperty("special", out JsonElement s) && s.ValueKind == JsonValueKind.True));
        }
        else if (File.Exists(configJson))
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(configJson));
            if (document.RootElement.TryGetProperty("added_tokens_decoder", out JsonElement added) && added.ValueKind == JsonValueKind.Object)
                foreach (JsonProperty token in added.EnumerateObject())
                    found.Add((int.Parse(token.Name, System.Globalization.CultureInfo.InvariantCulture), token.Value.GetProperty("content").GetString() ?? "",
                        token.Value.TryGetProperty("special", out JsonElement s) && s.ValueKind == JsonValueKind.True));
        }
        return found;
    }

    /// <summary>
    /// GPT-2's byte-to-character table (<c>bytes_to_unicode</c> in its <c>encoder.py</c>): printable Latin-1 bytes stand for
    /// themselves, the other 68 bytes for the characters from U+0100 on, in byte order.
    /// </summary>
    private static string[] ByteLevelCharacters()
    {
        var table = new string[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? ((char)b).ToString() : ((char)(256 + next++)).ToString();
        }
        return table;
    }
}
