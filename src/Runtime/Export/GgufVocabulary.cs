using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

using TransformerGen.SentencePiece;

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

    /// <summary>llama.cpp's tokenizer model: <c>gpt2</c> (byte-level BPE), <c>llama</c> (SentencePiece BPE), <c>t5</c> (SentencePiece unigram) or <c>bert</c> (WordPiece).</summary>
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

    /// <summary>The mask token's id (a BERT-like tokenizer's <c>[MASK]</c>), or -1; written as <c>tokenizer.ggml.mask_token_id</c> by the ModernBERT export.</summary>
    public int MaskId { get; private init; } = -1;

    /// <summary>A WordPiece vocabulary's <c>[CLS]</c> id, or -1; the BERT export writes it as the begin and <c>cls_token_id</c> token.</summary>
    public int ClsId { get; private init; } = -1;

    /// <summary>A WordPiece vocabulary's <c>[SEP]</c> id, or -1; the BERT export writes it as <c>seperator_token_id</c>.</summary>
    public int SepId { get; private init; } = -1;

    /// <summary>A WordPiece vocabulary's <c>[PAD]</c> id, or -1.</summary>
    public int PadId { get; private init; } = -1;

    /// <summary>
    /// A byte-level BPE folder's begin token as llama.cpp's converter finds it: <c>tokenizer_config.json</c>'s <c>bos_token</c>
    /// (else its <c>cls_token</c>) among the added tokens; -1 when it names none. The export writes it as
    /// <c>tokenizer.ggml.bos_token_id</c> in place of the config's <c>bos_token_id</c>, as the converter prefers it.
    /// </summary>
    public int BosId { get; private init; } = -1;

    /// <summary>
    /// A byte-level BPE folder's end token as llama.cpp's converter finds it: <c>tokenizer_config.json</c>'s <c>eos_token</c>
    /// (else its <c>sep_token</c>) among the added tokens; -1 when it names none. Written as <c>tokenizer.ggml.eos_token_id</c>
    /// in place of the config's <c>eos_token_id</c> (Llama-3.2-Instruct: &lt;|eot_id|&gt; 128009, where the config's list starts with 128001).
    /// </summary>
    public int EosId { get; private init; } = -1;

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
        char[] bytes = TransformerGen.ByteLevel.ByteLevelAlphabet.Characters;
        var tokens = new string[size];
        var types = new int[size];
        for (int i = 0; i < size; i++)
        {
            tokens[i] = i < bytes.Length ? bytes[i].ToString() : $"<|token{i}|>";
            types[i] = (int)GgufFormat.TokenType.Normal;
        }
        return new GgufVocabulary("gpt2", "default", tokens, types, []);
    }

    /// <summary>
    /// The vocabulary of a Hugging Face tokenizer folder. A SentencePiece BPE <c>tokenizer.model</c> (Llama 2, TinyLlama)
    /// gives llama.cpp's <c>llama</c> tokenizer with each piece's score and type, the unknown id and the normalizer's dummy
    /// prefix and whitespace settings. A SentencePiece unigram <c>spiece.model</c> (T5, Flan-T5, mT5; or <c>tokenizer.model</c>)
    /// gives llama.cpp's <c>t5</c> tokenizer: the pieces, then T5's <c>&lt;extra_id_n&gt;</c> sentinels and added tokens as
    /// transformers' T5Tokenizer numbers them, <c>[PADn]</c> rows up to <paramref name="size"/> (t5-small: 32100 ids, 32128
    /// rows), the normalizer's <c>precompiled_charsmap</c>, and &lt;/s&gt; appended to each text. Otherwise the folder's byte-level BPE (<c>vocab.json</c> and <c>merges.txt</c>, as
    /// GPT-2, SmolLM and Qwen2 ship) gives llama.cpp's <c>gpt2</c> tokenizer: the added tokens of <c>tokenizer.json</c> (or <c>tokenizer_config.json</c>'s
    /// <c>added_tokens_decoder</c>) become control tokens when special, user-defined otherwise; ids the tokenizer does not
    /// use, up to <paramref name="size"/> (the model's embedding rows), become unused <c>[PADn]</c> tokens, as llama.cpp's
    /// converter writes them. A <c>chat_template</c> string in <c>tokenizer_config.json</c> is kept (<see cref="ChatTemplate"/>);
    /// the begin and end ids and whether llama.cpp adds them are read as the converter reads them (<see cref="BosId"/>,
    /// <see cref="EosId"/>, <see cref="AddBos"/>, <see cref="AddEos"/>).
    /// A folder whose only vocabulary file is <c>tokenizer.json</c> with a byte-level BPE model gives the same from that
    /// model's vocab and merges, with the unknown and mask ids: ModernBERT's (name llama.cpp's pre-tokenizer <c>modern-bert</c>
    /// for it) and Llama 3's (<c>llama-bpe</c>: 128,000 tokens, 256 special ones as control tokens, &lt;|begin_of_text|&gt;
    /// added before each text as its post-processor adds it, tokenizer_config.json's eos_token as the end id; llama.cpp's
    /// <c>llama-bpe</c> looks each pre-tokenized piece up whole before merging, as the model's <c>ignore_merges</c> asks).
    /// </summary>
    /// <param name="folder">The folder with <c>vocab.json</c> and <c>merges.txt</c>, with <c>tokenizer.model</c> or <c>spiece.model</c>, or with a byte-level BPE <c>tokenizer.json</c> alone.</param>
    /// <param name="size">The model's vocabulary (embedding rows); the tokenizer's ids must all be below it.</param>
    /// <param name="preTokenizer">For byte-level BPE, llama.cpp's name of the tokenizer's pre-tokenizer: <c>gpt-2</c> for GPT-2,
    /// <c>qwen2</c> for Qwen2, <c>smollm</c> for SmolLM/SmolLM2, <c>llama-bpe</c> for Llama 3, <c>modern-bert</c> for ModernBERT (llama.cpp tokenizes text with the
    /// split rules it names; <c>default</c> is a generic GPT-2-like split). Unused by SentencePiece.</param>
    /// <exception cref="InvalidDataException">A file is missing or malformed, two tokens share an id, an id is not below
    /// <paramref name="size"/>, a token has two ids, or the SentencePiece model is neither BPE nor unigram.</exception>
    public static GgufVocabulary FromTokenizerFolder(string folder, int size, string preTokenizer = "default")
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(preTokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        string vocabPath = Path.Combine(folder, "vocab.json"), mergesPath = Path.Combine(folder, "merges.txt");
        bool byteLevel = File.Exists(vocabPath) && File.Exists(mergesPath);
        string tokenizerJsonPath = Path.Combine(folder, "tokenizer.json");
        if (!byteLevel && !File.Exists(Path.Combine(folder, "tokenizer.model")) && !File.Exists(Path.Combine(folder, "spiece.model")) && File.Exists(tokenizerJsonPath))
            return FromTokenizerJson(folder, tokenizerJsonPath, size, preTokenizer);
        if (!byteLevel)
        {
            // T5's folders name the model spiece.model, Llama's tokenizer.model (convert_hf_to_gguf.py looks for both).
            string sentencePiecePath = Path.Combine(folder, "tokenizer.model");
            if (!File.Exists(sentencePiecePath)) sentencePiecePath = Path.Combine(folder, "spiece.model");
            if (!File.Exists(sentencePiecePath))
                throw new InvalidDataException($"'{folder}' has neither vocab.json and merges.txt (byte-level BPE) nor tokenizer.model or spiece.model (SentencePiece) nor a tokenizer.json alone (byte-level BPE)");
            SentencePieceModel model = SentencePieceModel.Read(sentencePiecePath);
            return model.ModelType switch
            {
                SentencePieceModel.BpeModel => FromSentencePiece(folder, sentencePiecePath, model, size),
                SentencePieceModel.UnigramModel => FromUnigram(folder, sentencePiecePath, model, size),
                _ => throw new InvalidDataException($"'{sentencePiecePath}' is a SentencePiece model of type {model.ModelType}, neither unigram " +
                    $"({SentencePieceModel.UnigramModel}, llama.cpp's t5 tokenizer) nor BPE ({SentencePieceModel.BpeModel}, its llama tokenizer)"),
            };
        }
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
        Specials specials = ConverterSpecials(folder);
        return new GgufVocabulary("gpt2", preTokenizer, complete, types, merges.ToArray(), ChatTemplateOf(folder))
        {
            AddBos = specials.AddBos ?? false, AddEos = specials.AddEos ?? false, BosId = specials.Bos, EosId = specials.Eos,
        };

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

    /// <summary>
    /// The WordPiece vocabulary of a BERT tokenizer folder's <c>vocab.txt</c> (one token a line, its line number its id) as
    /// llama.cpp's <c>bert</c> tokenizer reads it, spelled as llama.cpp's converter (<c>BertModel.set_vocab</c>) writes it:
    /// a continuation <c>##piece</c> loses its <c>##</c>, a special token stays as it is, and every other token gains the
    /// phantom space U+2581 that llama.cpp's WordPiece tokenizer puts before each word it looks up. The special tokens
    /// (<c>tokenizer_config.json</c>'s <c>unk_token</c>, <c>cls_token</c>, <c>sep_token</c>, <c>pad_token</c> and
    /// <c>mask_token</c>, else <c>[UNK]</c>, <c>[CLS]</c>, <c>[SEP]</c>, <c>[PAD]</c> and <c>[MASK]</c>) and the special added
    /// tokens are control tokens; ids past the file, up to <paramref name="size"/>, are unused <c>[PADn]</c> rows.
    /// </summary>
    /// <exception cref="InvalidDataException">The folder has no <c>vocab.txt</c>, it has more lines than <paramref name="size"/>,
    /// or two tokens are spelled alike once rewritten (llama.cpp would refuse the file).</exception>
    public static GgufVocabulary FromWordPieceFolder(string folder, int size)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        string path = Path.Combine(folder, "vocab.txt");
        if (!File.Exists(path)) throw new InvalidDataException($"'{folder}' has no vocab.txt (a WordPiece vocabulary)");
        var lines = new List<string>();
        foreach (string line in File.ReadLines(path)) lines.Add(line.TrimEnd('\r'));
        // BertTokenizer numbers the lines, the last one too when the file ends without a newline; a trailing empty line is no token.
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        if (lines.Count > size) throw new InvalidDataException($"'{path}' has {lines.Count} tokens; the model's vocabulary is {size}");
        var special = new HashSet<string>(StringComparer.Ordinal);
        string Special(string key, string fallback)
        {
            string text = SpecialTokenOf(folder, key) ?? fallback;
            special.Add(text);
            return text;
        }
        string unk = Special("unk_token", "[UNK]"), cls = Special("cls_token", "[CLS]"), sep = Special("sep_token", "[SEP]"),
            pad = Special("pad_token", "[PAD]"), mask = Special("mask_token", "[MASK]");
        foreach ((int _, string content, bool isSpecial) in AddedTokens(folder))
            if (isSpecial) special.Add(content);
        var tokens = new string[size];
        var types = new int[size];
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < size; i++)
        {
            string text;
            if (i >= lines.Count) { text = $"[PAD{i}]"; types[i] = (int)GgufFormat.TokenType.Unused; }
            else if (special.Contains(lines[i])) { text = lines[i]; types[i] = (int)GgufFormat.TokenType.Control; }
            else
            {
                text = lines[i].StartsWith("##", StringComparison.Ordinal) && lines[i].Length > 2 ? lines[i][2..] : "\u2581" + lines[i];
                types[i] = (int)GgufFormat.TokenType.Normal;
            }
            if (!seen.TryAdd(text, i))
                throw new InvalidDataException($"'{path}': tokens {seen[text]} and {i} are both spelled '{text}' once '##' is dropped and U+2581 put before the words; llama.cpp would refuse the file");
            tokens[i] = text;
        }
        int IdOf(string text) => lines.IndexOf(text);
        return new GgufVocabulary("bert", "default", tokens, types, [])
        {
            AddBos = true,
            UnknownId = IdOf(unk), ClsId = IdOf(cls), SepId = IdOf(sep), PadId = IdOf(pad), MaskId = IdOf(mask),
        };
    }

    /// <summary>
    /// A folder whose only vocabulary file is <c>tokenizer.json</c> with a byte-level BPE model (ModernBERT's): the model's
    /// <c>vocab</c> and <c>merges</c> ("a b" strings, or [a, b] pairs as tokenizers 0.20 on writes them) as <c>vocab.json</c>
    /// and <c>merges.txt</c> would give them, the added tokens, <c>[PADn]</c> rows past the tokenizer's ids, and the unknown
    /// and mask ids of <c>tokenizer_config.json</c>'s <c>unk_token</c> and <c>mask_token</c> (or of <c>[UNK]</c> and
    /// <c>[MASK]</c> when it names none), the begin and end ids and whether they are added (<see cref="ConverterSpecials"/>).
    /// Llama 3's form (a BPE model with <c>ignore_merges</c>) is read alike: GGUF has no key for <c>ignore_merges</c>, and
    /// llama.cpp's <c>llama-bpe</c> pre-tokenizer looks each piece up whole before merging, as that flag asks.
    /// </summary>
    private static GgufVocabulary FromTokenizerJson(string folder, string path, int size, string preTokenizer)
    {
        var tokens = new string?[size];
        var types = new int[size];
        var merges = new List<string>();
        using (JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path)))
        {
            if (!document.RootElement.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object
                || !model.TryGetProperty("type", out JsonElement type) || type.GetString() != "BPE"
                || !model.TryGetProperty("vocab", out JsonElement vocab) || vocab.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"'{path}' is the folder's only vocabulary file and has no BPE model with a vocab (a byte-level BPE tokenizer.json is read, as ModernBERT ships it)");
            foreach (JsonProperty entry in vocab.EnumerateObject()) Put(entry.Value.GetInt32(), entry.Name, GgufFormat.TokenType.Normal, path);
            if (model.TryGetProperty("merges", out JsonElement list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement merge in list.EnumerateArray())
                {
                    if (merge.ValueKind == JsonValueKind.String) merges.Add(merge.GetString()!);
                    else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2) merges.Add(merge[0].GetString() + " " + merge[1].GetString());
                    else throw new InvalidDataException($"'{path}': merge {merge.GetRawText()} is neither \"a b\" nor [a, b]");
                }
            }
        }
        foreach ((int id, string content, bool special) in AddedTokens(folder))
            Put(id, content, special ? GgufFormat.TokenType.Control : GgufFormat.TokenType.UserDefined, folder, replace: true);
        var complete = new string[size];
        for (int i = 0; i < size; i++)
        {
            complete[i] = tokens[i] ?? $"[PAD{i}]";
            if (tokens[i] is null) types[i] = (int)GgufFormat.TokenType.Unused;
        }
        int IdOf(string key, string fallback)
        {
            string text = SpecialTokenOf(folder, key) ?? fallback;
            return Array.IndexOf(complete, text);
        }
        Specials specials = ConverterSpecials(folder);
        return new GgufVocabulary("gpt2", preTokenizer, complete, types, merges.ToArray(), ChatTemplateOf(folder))
        {
            AddBos = specials.AddBos ?? false, AddEos = specials.AddEos ?? false, BosId = specials.Bos, EosId = specials.Eos,
            UnknownId = IdOf("unk_token", "[UNK]"),
            MaskId = IdOf("mask_token", "[MASK]"),
        };

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

    /// <summary>A special token's text in <c>tokenizer_config.json</c> (<c>"unk_token": "[UNK]"</c>, or an object with its <c>content</c>), or null.</summary>
    private static string? SpecialTokenOf(string folder, string key)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
        if (!document.RootElement.TryGetProperty(key, out JsonElement value)) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString()
            : value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String ? content.GetString()
            : null;
    }

    private static GgufVocabulary FromSentencePiece(string folder, string path, SentencePieceModel model, int size)
    {
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

    /// <summary>
    /// T5's vocabulary (a unigram <c>spiece.model</c>) as llama.cpp's <c>t5</c> tokenizer reads it, laid out as convert_hf_to_gguf.py's
    /// <c>T5Model.set_vocab</c> lays it out: the pieces with their scores and types (unknown 2, control 3, unused 5, byte 6, the rest
    /// normal), then what transformers' T5Tokenizer adds after them, then <c>[PADn]</c> rows (unused, score −10000) up to the
    /// model's table; no begin token, the end token appended, the normalizer's table, dummy prefix and whitespace setting.
    /// </summary>
    /// <remarks>
    /// The converter gives added tokens (<c>added_tokens.json</c>) the user-defined type and score −1000 and leaves every other
    /// id past the pieces a <c>[PADn]</c> row; a Hub T5 or Flan-T5 folder has no <c>added_tokens.json</c>, so its sentinels
    /// would be padding and llama.cpp would cut "&lt;extra_id_0&gt;" into pieces. Here the sentinels are written as transformers
    /// numbers them (<c>tokenizer_config.json</c>'s <c>extra_ids</c>, 100 when it does not say: &lt;extra_id_n&gt; is
    /// pieces + extra_ids − 1 − n), and they and the folder's other added tokens get the converter's user-defined type and
    /// −1000, which llama.cpp keeps whole wherever they are written, as transformers does (a control token would be kept whole
    /// only when special tokens are parsed). With <c>extra_ids</c> 0 (mT5) the sentinels are pieces of the model, made
    /// user-defined for the same reason. A user-defined piece stays user-defined (the converter makes it normal; SentencePiece
    /// keeps it whole).
    /// </remarks>
    private static GgufVocabulary FromUnigram(string folder, string path, SentencePieceModel model, int size)
    {
        int pieces = model.Pieces.Count;
        int extraIds = ExtraIdsOf(folder);
        if (pieces + extraIds > size)
            throw new InvalidDataException($"'{path}' has {pieces} pieces and tokenizer_config.json {extraIds} extra ids, more than the model's vocabulary of {size}");
        var tokens = new string[size];
        var types = new int[size];
        var scores = new float[size];
        for (int i = 0; i < size; i++)
            (tokens[i], scores[i], types[i]) = ($"[PAD{i}]", -10000f, (int)GgufFormat.TokenType.Unused);
        for (int i = 0; i < pieces; i++)
        {
            SentencePieceModel.Piece piece = model.Pieces[i];
            // SentencePiece's piece types are numbered as llama.cpp's token types (normal 1 … byte 6).
            int type = piece.Type is >= (int)GgufFormat.TokenType.Normal and <= (int)GgufFormat.TokenType.Byte ? piece.Type : (int)GgufFormat.TokenType.Normal;
            if (extraIds == 0 && piece.Text.StartsWith("<extra_id_", StringComparison.Ordinal) && piece.Text.EndsWith('>')) type = (int)GgufFormat.TokenType.UserDefined;
            (tokens[i], scores[i], types[i]) = (piece.Text, piece.Score, type);
        }
        for (int n = 0; n < extraIds; n++)
            Added(pieces + extraIds - 1 - n, $"<extra_id_{n.ToString(System.Globalization.CultureInfo.InvariantCulture)}>", "tokenizer_config.json's extra_ids");
        foreach ((int id, string content, _) in AddedTokens(folder)) Added(id, content, folder);
        string addedTokensJson = Path.Combine(folder, "added_tokens.json");
        if (File.Exists(addedTokensJson))
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(addedTokensJson));
            foreach (JsonProperty token in document.RootElement.EnumerateObject()) Added(token.Value.GetInt32(), token.Name, addedTokensJson);
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string token in tokens)
            if (!seen.Add(token)) throw new InvalidDataException($"'{folder}': token '{token}' has two ids (llama.cpp needs each token once)");
        return new GgufVocabulary("t5", "default", tokens, types, [])
        {
            Scores = scores,
            AddBos = false,
            AddEos = true,
            AddSpacePrefix = model.AddDummyPrefix,
            RemoveExtraWhitespaces = model.RemoveExtraWhitespaces,
            PrecompiledCharsMap = model.PrecompiledCharsMap.Length > 0 ? model.PrecompiledCharsMap : null,
            UnknownId = model.UnkId >= 0 && model.UnkId < size ? model.UnkId : -1,
        };

        // A token transformers adds: a piece's own text is kept as the piece; past the pieces it is user-defined (see remarks).
        void Added(int id, string content, string source)
        {
            if (id < 0 || id >= size)
                throw new InvalidDataException($"'{source}': added token '{content}' has id {id}, outside the model's vocabulary of {size}");
            bool placed = id < pieces || types[id] != (int)GgufFormat.TokenType.Unused;
            if (placed && tokens[id] != content) throw new InvalidDataException($"'{source}': id {id} is both '{tokens[id]}' and '{content}'");
            if (id < pieces) return;
            (tokens[id], scores[id], types[id]) = (content, -1000f, (int)GgufFormat.TokenType.UserDefined);
        }
    }

    /// <summary>T5's <c>extra_ids</c> of <c>tokenizer_config.json</c> (how many sentinels follow the pieces), 100 when it does not say (T5Tokenizer's default).</summary>
    private static int ExtraIdsOf(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return 100;
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
        if (!document.RootElement.TryGetProperty("extra_ids", out JsonElement extra) || extra.ValueKind != JsonValueKind.Number) return 100;
        int count = extra.GetInt32();
        if (count < 0) throw new InvalidDataException($"'{path}': extra_ids is {count}; it counts sentinels");
        return count;
    }

    /// <summary>The <c>add_bos_token</c> of <c>tokenizer_config.json</c>, or null when it does not say.</summary>
    private static bool? AddBosOf(string folder) => FlagOf(folder, "add_bos_token");

    /// <summary>A boolean of <c>tokenizer_config.json</c> (<c>add_bos_token</c>, <c>add_eos_token</c>), or null when it does not say.</summary>
    private static bool? FlagOf(string folder, string key)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.TryGetProperty(key, out JsonElement add) && add.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? add.GetBoolean() : null;
    }

    /// <summary>A byte-level BPE folder's begin and end ids and whether they are added, as <see cref="ConverterSpecials"/> reads them.</summary>
    private readonly record struct Specials(int Bos, int Eos, bool? AddBos, bool? AddEos);

    /// <summary>
    /// The begin and end tokens of a byte-level BPE folder as llama.cpp's converter (gguf-py's SpecialVocab) reads them:
    /// the ids of <c>tokenizer_config.json</c>'s <c>bos_token</c> (else <c>cls_token</c>) and <c>eos_token</c> (else
    /// <c>sep_token</c>) among the added tokens; whether each is added from <c>tokenizer.json</c>'s post-processor (a
    /// RobertaProcessing adds both; a TemplateProcessing whose single-sequence template starts with the begin or cls token
    /// adds the begin token, one that ends with the end token adds that: Llama 3's puts &lt;|begin_of_text|&gt; first), unless
    /// <c>tokenizer_config.json</c>'s <c>add_bos_token</c> or <c>add_eos_token</c> says otherwise; null where neither says.
    /// </summary>
    private static Specials ConverterSpecials(string folder)
    {
        string? cls = SpecialTokenOf(folder, "cls_token"), sep = SpecialTokenOf(folder, "sep_token");
        string? bos = SpecialTokenOf(folder, "bos_token") ?? cls, eos = SpecialTokenOf(folder, "eos_token") ?? sep;
        int bosId = -1, eosId = -1;
        foreach ((int id, string content, bool _) in AddedTokens(folder))
        {
            if (bosId < 0 && content == bos) bosId = id;
            if (eosId < 0 && content == eos) eosId = id;
        }
        bool? addBos = null, addEos = null;
        string tokenizerJson = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(tokenizerJson))
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(tokenizerJson));
            if (document.RootElement.TryGetProperty("post_processor", out JsonElement post) && post.ValueKind == JsonValueKind.Object)
            {
                var processors = new List<JsonElement>();
                if (post.TryGetProperty("processors", out JsonElement list) && list.ValueKind == JsonValueKind.Array) processors.AddRange(list.EnumerateArray());
                else processors.Add(post);
                foreach (JsonElement processor in processors)
                {
                    string? type = processor.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                    if (type == "RobertaProcessing") (addBos, addEos) = (true, true);
                    if (type != "TemplateProcessing" || !processor.TryGetProperty("single", out JsonElement single)
                        || single.ValueKind != JsonValueKind.Array || single.GetArrayLength() < 2)
                        continue;
                    if (SpecialTokenIdOf(single[0]) is { } first) addBos = first == bos || first == cls;
                    if (SpecialTokenIdOf(single[single.GetArrayLength() - 1]) is { } last) addEos = last == eos;
                }
            }
        }
        return new Specials(bosId, eosId, FlagOf(folder, "add_bos_token") ?? addBos, FlagOf(folder, "add_eos_token") ?? addEos);

        static string? SpecialTokenIdOf(JsonElement piece) =>
            piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("SpecialToken", out JsonElement special) && special.ValueKind == JsonValueKind.Object
            && special.TryGetProperty("id", out JsonElement id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
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
}
