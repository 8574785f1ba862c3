using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.Normalization;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>
/// What tokenizer.json says around a byte-level BPE's vocabulary: its normalizer, its pre-tokenizer steps, the
/// special tokens its post-processor adds, and its added tokens; and, for a folder without vocab.json/merges.txt
/// (ModernBERT's), the vocabulary and merges of its BPE model. Only the forms these families use are read;
/// anything else is refused with <see cref="NotSupportedException"/> naming the part, rather than tokenized
/// differently from Hugging Face.
/// </summary>
internal sealed class TokenizerJsonPipeline
{
    public required IReadOnlyList<SplitStep> Steps { get; init; }
    public required Normalizer? Normalizer { get; init; }

    /// <summary>Ids the post-processor puts before the text (Llama-3's <c>&lt;|begin_of_text|&gt;</c>, ModernBERT's <c>[CLS]</c>), or null when it says nothing.</summary>
    public required int[]? Prefix { get; init; }

    /// <summary>Ids the post-processor puts after the text (ModernBERT's <c>[SEP]</c>), or null when it says nothing.</summary>
    public required int[]? Suffix { get; init; }

    /// <summary>
    /// Ids the post-processor's pair template puts between the first text's <see cref="Suffix"/> and the second text
    /// (ModernBERT's <c>[CLS] $A [SEP] $B [SEP]</c>: none), or null when it has no pair template, or one that is not
    /// <see cref="Prefix"/> A <see cref="Suffix"/> … B <see cref="Suffix"/>.
    /// </summary>
    public required int[]? PairSeparator { get; init; }

    public required IReadOnlyList<AddedToken> AddedTokens { get; init; }

    /// <summary>The BPE model's <c>vocab</c> (token → id), when read with the model; otherwise null.</summary>
    public Dictionary<string, int>? Vocabulary { get; init; }

    /// <summary>The BPE model's <c>merges</c> as "left right" lines, highest priority first, when read with the model; otherwise null.</summary>
    public List<string>? Merges { get; init; }

    /// <summary>
    /// The BPE model's <c>ignore_merges</c> (Llama 3's tokenizer.json, which reproduces tiktoken): a piece of the
    /// pre-tokenizer that is itself in the vocabulary is that token, without merging.
    /// </summary>
    public bool IgnoreMerges { get; init; }

    /// <summary>Reads the pipeline around the vocabulary of vocab.json and merges.txt.</summary>
    public static TokenizerJsonPipeline Read(string path)
    {
        using JsonDocument document = TokenizerConfig.ParseFile(path);
        return Read(document.RootElement, withModel: false);
    }

    /// <summary>
    /// Reads the pipeline, and with <paramref name="withModel"/> the BPE model's vocabulary and merges too (a folder
    /// whose tokenizer.json is its only vocabulary file).
    /// </summary>
    public static TokenizerJsonPipeline Read(JsonElement root, bool withModel)
    {
        CheckModel(root);

        var steps = new List<SplitStep>();
        bool byteLevel = false;
        if (root.TryGetProperty("pre_tokenizer", out JsonElement preTokenizer) && preTokenizer.ValueKind == JsonValueKind.Object)
        {
            ReadPreTokenizer(preTokenizer, steps, ref byteLevel);
        }

        if (root.TryGetProperty("decoder", out JsonElement decoder) && TokenizerConfig.GetString(decoder, "type") == "ByteLevel")
        {
            byteLevel = true;
        }

        if (!byteLevel)
        {
            throw new NotSupportedException(
                "tokenizer.json: neither the pre_tokenizer nor the decoder is ByteLevel, so its BPE is not a byte-level one (the only kind read with tokenizer.json).");
        }

        PostProcessorTemplate? template = root.TryGetProperty("post_processor", out JsonElement postProcessor)
            ? ReadPostProcessor(postProcessor)
            : null;

        Dictionary<string, int>? vocabulary = null;
        List<string>? merges = null;
        if (withModel)
        {
            (vocabulary, merges) = ReadModel(root);
        }

        return new TokenizerJsonPipeline
        {
            Steps = steps,
            Normalizer = root.TryGetProperty("normalizer", out JsonElement normalizer) ? ReadNormalizer(normalizer) : null,
            Prefix = template?.Prefix,
            Suffix = template?.Suffix,
            PairSeparator = template?.PairSeparator,
            AddedTokens = ReadAddedTokens(root),
            Vocabulary = vocabulary,
            Merges = merges,
            IgnoreMerges = root.TryGetProperty("model", out JsonElement model) && model.ValueKind == JsonValueKind.Object
                && TokenizerConfig.GetBool(model, "ignore_merges") == true,
        };
    }

    /// <summary>The <c>type</c> of tokenizer.json's model (<c>"BPE"</c>, <c>"WordPiece"</c>, <c>"Unigram"</c>), or null when it names none.</summary>
    public static string? ModelType(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty("model", out JsonElement model)
            ? TokenizerConfig.GetString(model, "type")
            : null;

    private static void CheckModel(JsonElement root)
    {
        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        string? type = TokenizerConfig.GetString(model, "type");
        if (type is not null and not "BPE")
        {
            throw new NotSupportedException($"tokenizer.json: model type '{type}'; only a BPE model is read with it.");
        }

        if (model.TryGetProperty("dropout", out JsonElement dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw new NotSupportedException("tokenizer.json: BPE dropout is a training-time setting; this library encodes deterministically.");
        }

        foreach (string key in (string[])["continuing_subword_prefix", "end_of_word_suffix"])
        {
            if (TokenizerConfig.GetString(model, key) is { Length: > 0 } value)
            {
                throw new NotSupportedException($"tokenizer.json: model.{key} = '{value}' is not used by byte-level BPEs and is not supported.");
            }
        }
    }

    private static void ReadPreTokenizer(JsonElement node, List<SplitStep> steps, ref bool byteLevel)
    {
        string? type = TokenizerConfig.GetString(node, "type");
        switch (type)
        {
            case "Sequence":
                foreach (JsonElement inner in node.GetProperty("pretokenizers").EnumerateArray())
                {
                    ReadPreTokenizer(inner, steps, ref byteLevel);
                }

                break;

            case "ByteLevel":
                byteLevel = true;
                if (TokenizerConfig.GetBool(node, "add_prefix_space") == true)
                {
                    // It puts a space before every piece that lacks one; a PreTokenizer gives offsets into the text and cannot insert one.
                    throw new NotSupportedException("tokenizer.json: ByteLevel add_prefix_space = true is not supported.");
                }

                if (TokenizerConfig.GetBool(node, "use_regex") ?? true)
                {
                    steps.Add(new RegexSplitStep(PreTokenizerPatterns.Gpt2Regex()));
                }

                break;

            case "Split":
                string behavior = TokenizerConfig.GetString(node, "behavior") ?? "";
                if (behavior != "Isolated" || TokenizerConfig.GetBool(node, "invert") == true)
                {
                    throw new NotSupportedException($"tokenizer.json: Split with behavior '{behavior}'{(TokenizerConfig.GetBool(node, "invert") == true ? " inverted" : "")} is not supported; only Isolated is.");
                }

                JsonElement pattern = node.GetProperty("pattern");
                string? regex = TokenizerConfig.GetString(pattern, "Regex");
                string? literal = TokenizerConfig.GetString(pattern, "String");
                steps.Add(new RegexSplitStep(regex is not null
                    ? PreTokenizerPatterns.FromPattern(regex)
                    : PreTokenizerPatterns.FromPattern(System.Text.RegularExpressions.Regex.Escape(literal ?? throw new NotSupportedException("tokenizer.json: Split without a pattern.")))));
                break;

            case "Digits":
                steps.Add(new DigitsSplitStep(TokenizerConfig.GetBool(node, "individual_digits") ?? false));
                break;

            default:
                throw new NotSupportedException($"tokenizer.json: pre-tokenizer '{type}' is not supported for byte-level BPE (supported: Sequence, ByteLevel, Split/Isolated, Digits).");
        }
    }

    private static Normalizer? ReadNormalizer(JsonElement node)
    {
        if (node.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var forms = new List<NormalizationForm>();
        AddForms(node, forms);
        return forms.Count == 0 ? null : new UnicodeFormNormalizer(forms);

        static void AddForms(JsonElement node, List<NormalizationForm> forms)
        {
            string? type = TokenizerConfig.GetString(node, "type");
            switch (type)
            {
                case "Sequence":
                    foreach (JsonElement inner in node.GetProperty("normalizers").EnumerateArray())
                    {
                        AddForms(inner, forms);
                    }

                    break;
                case "NFC": forms.Add(NormalizationForm.FormC); break;
                case "NFD": forms.Add(NormalizationForm.FormD); break;
                case "NFKC": forms.Add(NormalizationForm.FormKC); break;
                case "NFKD": forms.Add(NormalizationForm.FormKD); break;
                default:
                    throw new NotSupportedException($"tokenizer.json: normalizer '{type}' is not supported for byte-level BPE (supported: NFC, NFD, NFKC, NFKD and Sequences of them).");
            }
        }
    }

    // TemplateProcessing: "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, …],
    // "pair" likewise with $A and $B, and the ids of each named special token under "special_tokens". ByteLevel as a
    // post-processor only trims offsets; in a Sequence, the last processor that names special tokens decides.
    private static PostProcessorTemplate? ReadPostProcessor(JsonElement node)
    {
        if (node.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        string? type = TokenizerConfig.GetString(node, "type");
        switch (type)
        {
            case "ByteLevel":
                return null;

            case "Sequence":
                PostProcessorTemplate? template = null;
                foreach (JsonElement inner in node.GetProperty("processors").EnumerateArray())
                {
                    template = ReadPostProcessor(inner) ?? template;
                }

                return template;

            case "TemplateProcessing":
                JsonElement specialTokens = node.TryGetProperty("special_tokens", out JsonElement named) ? named : default;
                int[][] single = ReadTemplate(node, "single", specialTokens, ["A"])
                    ?? throw new NotSupportedException("tokenizer.json: the TemplateProcessing post-processor's single template does not hold the text once ($A).");
                (int[] prefix, int[] suffix) = (single[0], single[1]);

                // The pair form PretrainedTokenizer writes is Prefix A Suffix separator B Suffix (BERT's and ModernBERT's
                // [CLS] A [SEP] B [SEP], Llama-3's <|begin_of_text|> A <|begin_of_text|> B); another pair template is left unread.
                int[][]? pair = ReadTemplate(node, "pair", specialTokens, ["A", "B"]);
                int[]? separator = pair is [int[] beforeFirst, int[] between, int[] afterSecond]
                    && beforeFirst.AsSpan().SequenceEqual(prefix)
                    && afterSecond.AsSpan().SequenceEqual(suffix)
                    && between.AsSpan().StartsWith(suffix)
                        ? between[suffix.Length..]
                        : null;
                return new PostProcessorTemplate(prefix, suffix, separator);

            default:
                throw new NotSupportedException($"tokenizer.json: post-processor '{type}' is not supported for byte-level BPE (supported: ByteLevel, TemplateProcessing, Sequence).");
        }
    }

    /// <summary>
    /// A template as the special-token ids around its texts: for <paramref name="sequences"/> A, [before A, after A]; for A
    /// and B, [before A, between them, after B]. Null when the template is absent or empty or does not hold exactly those
    /// texts in that order.
    /// </summary>
    private static int[][]? ReadTemplate(JsonElement node, string key, JsonElement specialTokens, string[] sequences)
    {
        if (!node.TryGetProperty(key, out JsonElement template) || template.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var parts = new List<int[]>();
        var current = new List<int>();
        foreach (JsonElement piece in template.EnumerateArray())
        {
            if (piece.TryGetProperty("Sequence", out JsonElement sequence))
            {
                if (parts.Count == sequences.Length || TokenizerConfig.GetString(sequence, "id") != sequences[parts.Count])
                {
                    return null;
                }

                parts.Add([.. current]);
                current.Clear();
            }
            else if (piece.TryGetProperty("SpecialToken", out JsonElement special))
            {
                current.AddRange(SpecialTokenIds(TokenizerConfig.GetString(special, "id"), specialTokens));
            }
        }

        if (parts.Count != sequences.Length)
        {
            return null;
        }

        parts.Add([.. current]);
        return [.. parts];
    }

    private static IEnumerable<int> SpecialTokenIds(string? name, JsonElement specialTokens)
    {
        if (name is null
            || specialTokens.ValueKind != JsonValueKind.Object
            || !specialTokens.TryGetProperty(name, out JsonElement entry)
            || !entry.TryGetProperty("ids", out JsonElement ids)
            || ids.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException(
                $"tokenizer.json: the post-processor's template names the special token '{name}', whose ids its special_tokens do not give.");
        }

        foreach (JsonElement id in ids.EnumerateArray())
        {
            yield return id.GetInt32();
        }
    }

    // "model": {"type": "BPE", "vocab": {"[token]": id, …}, "merges": ["Ġ t", …]} or, written by tokenizers 0.20 and later,
    // "merges": [["Ġ", "t"], …]. BpeOptions takes each merge as one "left right" string, which a byte-level token (its
    // spaces written as Ġ) never breaks.
    private static (Dictionary<string, int> Vocabulary, List<string> Merges) ReadModel(JsonElement root)
    {
        JsonElement model = root.TryGetProperty("model", out JsonElement found) && found.ValueKind == JsonValueKind.Object
            ? found
            : throw new InvalidDataException("tokenizer.json has no model.");
        if (!model.TryGetProperty("vocab", out JsonElement vocab) || vocab.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException("tokenizer.json: model.vocab is not an object of token → id.");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in vocab.EnumerateObject())
        {
            vocabulary[entry.Name] = entry.Value.GetInt32();
        }

        if (vocabulary.Count == 0)
        {
            throw new InvalidDataException("tokenizer.json: model.vocab holds no tokens.");
        }

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out JsonElement mergeList) && mergeList.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement merge in mergeList.EnumerateArray())
            {
                merges.Add(ReadMerge(merge, merges.Count));
            }
        }

        return (vocabulary, merges);
    }

    private static string ReadMerge(JsonElement merge, int index)
    {
        if (merge.ValueKind == JsonValueKind.String)
        {
            string line = merge.GetString()!;
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
            {
                throw new InvalidDataException($"tokenizer.json: model.merges[{index}] \"{line}\" is not two tokens joined by one space.");
            }

            return line;
        }

        if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
            && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
        {
            string left = merge[0].GetString()!, right = merge[1].GetString()!;
            if (left.Length == 0 || right.Length == 0)
            {
                throw new InvalidDataException($"tokenizer.json: model.merges[{index}] has an empty token.");
            }

            if (left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
            {
                throw new NotSupportedException(
                    $"tokenizer.json: model.merges[{index}] [\"{left}\", \"{right}\"] has a token with a space, which Microsoft.ML.Tokenizers' BpeTokenizer cannot take.");
            }

            return left + " " + right;
        }

        throw new InvalidDataException($"tokenizer.json: model.merges[{index}] is neither a \"left right\" string nor a [left, right] pair.");
    }

    // "added_tokens": [{"id": 151643, "content": "<|endoftext|>", "special": true, …}, …]
    private static IReadOnlyList<AddedToken> ReadAddedTokens(JsonElement root)
    {
        if (!root.TryGetProperty("added_tokens", out JsonElement array) || array.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        var tokens = new List<AddedToken>();
        foreach (JsonElement entry in array.EnumerateArray())
        {
            if (TokenizerConfig.GetString(entry, "content") is string content && entry.TryGetProperty("id", out JsonElement id))
            {
                tokens.Add(TokenizerConfig.ReadAddedToken(entry, content, id.GetInt32()));
            }
        }

        return tokens;
    }
}

/// <summary>What a TemplateProcessing post-processor adds: around one text, and between the two of a pair (null: not read).</summary>
internal sealed record PostProcessorTemplate(int[] Prefix, int[] Suffix, int[]? PairSeparator);
