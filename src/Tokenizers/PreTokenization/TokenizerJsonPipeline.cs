using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.Normalization;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>
/// What tokenizer.json says around a byte-level BPE's vocabulary: its normalizer, its pre-tokenizer steps, the
/// special tokens its post-processor adds, and its added tokens. Only the forms these families use are read;
/// anything else is refused with <see cref="NotSupportedException"/> naming the part, rather than tokenized
/// differently from Hugging Face.
/// </summary>
internal sealed class TokenizerJsonPipeline
{
    public required IReadOnlyList<SplitStep> Steps { get; init; }
    public required Normalizer? Normalizer { get; init; }

    /// <summary>Ids the post-processor puts before the text (Llama-3's <c>&lt;|begin_of_text|&gt;</c>), or null when it says nothing.</summary>
    public required int[]? Prefix { get; init; }

    /// <summary>Ids the post-processor puts after the text, or null when it says nothing.</summary>
    public required int[]? Suffix { get; init; }

    public required IReadOnlyList<AddedToken> AddedTokens { get; init; }

    public static TokenizerJsonPipeline Read(string path)
    {
        using JsonDocument document = TokenizerConfig.ParseFile(path);
        JsonElement root = document.RootElement;
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
                "tokenizer.json: neither the pre_tokenizer nor the decoder is ByteLevel, so vocab.json/merges.txt are not a byte-level BPE.");
        }

        (int[]? prefix, int[]? suffix) = root.TryGetProperty("post_processor", out JsonElement postProcessor)
            ? ReadPostProcessor(postProcessor)
            : (null, null);

        return new TokenizerJsonPipeline
        {
            Steps = steps,
            Normalizer = root.TryGetProperty("normalizer", out JsonElement normalizer) ? ReadNormalizer(normalizer) : null,
            Prefix = prefix,
            Suffix = suffix,
            AddedTokens = ReadAddedTokens(root),
        };
    }

    private static void CheckModel(JsonElement root)
    {
        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        string? type = TokenizerConfig.GetString(model, "type");
        if (type is not null and not "BPE")
        {
            throw new NotSupportedException($"tokenizer.json: model type '{type}' beside vocab.json/merges.txt; only BPE is read.");
        }

        // ignore_merges (Llama-3) looks a whole piece up in the vocabulary before merging; BpeTokenizer always merges.
        if (TokenizerConfig.GetBool(model, "ignore_merges") == true)
        {
            throw new NotSupportedException("tokenizer.json: model.ignore_merges = true is not supported by Microsoft.ML.Tokenizers' BpeTokenizer.");
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

    // TemplateProcessing's "single": [{"SpecialToken": {"id": "<|begin_of_text|>"}}, {"Sequence": {"id": "A"}}, …]
    // with the ids of each special token under "special_tokens". ByteLevel as a post-processor only trims offsets.
    private static (int[]? Prefix, int[]? Suffix) ReadPostProcessor(JsonElement node)
    {
        if (node.ValueKind == JsonValueKind.Null)
        {
            return (null, null);
        }

        string? type = TokenizerConfig.GetString(node, "type");
        switch (type)
        {
            case "ByteLevel":
                return (null, null);

            case "Sequence":
                (int[]? prefix, int[]? suffix) = (null, null);
                foreach (JsonElement inner in node.GetProperty("processors").EnumerateArray())
                {
                    (int[]? innerPrefix, int[]? innerSuffix) = ReadPostProcessor(inner);
                    prefix = innerPrefix ?? prefix;
                    suffix = innerSuffix ?? suffix;
                }

                return (prefix, suffix);

            case "TemplateProcessing":
                var before = new List<int>();
                var after = new List<int>();
                bool seenText = false;
                JsonElement specialTokens = node.GetProperty("special_tokens");
                foreach (JsonElement part in node.GetProperty("single").EnumerateArray())
                {
                    if (part.TryGetProperty("Sequence", out _))
                    {
                        seenText = true;
                    }
                    else if (part.TryGetProperty("SpecialToken", out JsonElement special))
                    {
                        string name = TokenizerConfig.GetString(special, "id")!;
                        foreach (JsonElement id in specialTokens.GetProperty(name).GetProperty("ids").EnumerateArray())
                        {
                            (seenText ? after : before).Add(id.GetInt32());
                        }
                    }
                }

                return ([.. before], [.. after]);

            default:
                throw new NotSupportedException($"tokenizer.json: post-processor '{type}' is not supported for byte-level BPE (supported: ByteLevel, TemplateProcessing, Sequence).");
        }
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
