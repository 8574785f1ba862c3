using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// A Llama 3 tokenizer folder (Llama-3.2-1B-Instruct's files: tokenizer.json, tokenizer_config.json, config.json) built
/// from cl100k_base's ranks in Microsoft.ML.Tokenizers.Data.Cl100kBase. Llama 3's vocabulary is tiktoken's: its first
/// 100,256 ids are cl100k_base's tokens at their ranks (Meta added 28,000 of its own after them, left out here, and the
/// 256 special tokens from 128,000). Its tokenizer.json has the form transformers converts tiktoken files to: one Split
/// pre-tokenizer with cl100k's pattern, then ByteLevel without its regex; a BPE model with <c>ignore_merges</c>, its
/// merges one per token in rank order (recovered as <see cref="TiktokenData.LastMerge"/> does); and a post-processor
/// that puts &lt;|begin_of_text|&gt; first.
/// </summary>
internal static class Llama3FolderFromCl100k
{
    public const int BeginOfText = 128000, EndOfText = 128001, StartHeader = 128006, EndHeader = 128007, EndOfMessage = 128008, EndOfTurn = 128009;

    /// <summary>cl100k_base's (and Llama 3's) pre-tokenizer pattern.</summary>
    public const string Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly Lazy<(List<string> Vocabulary, List<string> Merges)> Model = new(Build);

    /// <summary>Llama 3.1/3.2's special tokens, 128000–128255.</summary>
    public static IEnumerable<(int Id, string Content)> SpecialTokens()
    {
        string[] named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
            "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"];
        for (int i = 0; i < named.Length; i++) yield return (128000 + i, named[i]);
        for (int id = 128000 + named.Length; id < 128256; id++) yield return (id, $"<|reserved_special_token_{id - 128000 - named.Length + 3}|>");
    }

    /// <summary>
    /// Writes the folder; <paramref name="ignoreMerges"/> false gives the same files as a plain BPE would read them, and
    /// <paramref name="withoutMergeOf"/> leaves out the merge that makes that text's token, which then only a lookup of
    /// the whole piece finds.
    /// </summary>
    public static void Write(TempFolder folder, bool ignoreMerges = true, string? chatTemplate = null, string? withoutMergeOf = null)
    {
        string? dropped = withoutMergeOf is null ? null : ByteLevelFiles.Symbols(withoutMergeOf);
        (List<string> vocabulary, List<string> merges) = Model.Value;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("version", "1.0");
            json.WriteStartArray("added_tokens");
            foreach ((int id, string content) in SpecialTokens())
            {
                json.WriteStartObject();
                json.WriteNumber("id", id);
                json.WriteString("content", content);
                json.WriteBoolean("single_word", false);
                json.WriteBoolean("lstrip", false);
                json.WriteBoolean("rstrip", false);
                json.WriteBoolean("normalized", false);
                json.WriteBoolean("special", true);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNull("normalizer");
            json.WritePropertyName("pre_tokenizer");
            WriteRaw(json, $$"""
                {"type": "Sequence", "pretokenizers": [
                  {"type": "Split", "pattern": {"Regex": {{JsonSerializer.Serialize(Pattern)}}}, "behavior": "Isolated", "invert": false},
                  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
                """);
            json.WritePropertyName("post_processor");
            WriteRaw(json, """
                {"type": "Sequence", "processors": [
                  {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
                  {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                   "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                            {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]}}}]}
                """);
            json.WritePropertyName("decoder");
            WriteRaw(json, """{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}""");
            json.WriteStartObject("model");
            json.WriteString("type", "BPE");
            json.WriteNull("dropout");
            json.WriteNull("unk_token");
            json.WriteNull("continuing_subword_prefix");
            json.WriteNull("end_of_word_suffix");
            json.WriteBoolean("fuse_unk", false);
            json.WriteBoolean("byte_fallback", false);
            json.WriteBoolean("ignore_merges", ignoreMerges);
            json.WriteStartObject("vocab");
            for (int id = 0; id < vocabulary.Count; id++) json.WriteNumber(vocabulary[id], id);
            json.WriteEndObject();
            json.WriteStartArray("merges");
            foreach (string merge in merges)
                if (dropped is null || merge.Replace(" ", "") != dropped) json.WriteStringValue(merge);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        folder.Write("tokenizer.json", buffer.ToArray());

        var config = new Dictionary<string, object?>
        {
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|eot_id|>",
            ["clean_up_tokenization_spaces"] = true,
            ["model_input_names"] = new[] { "input_ids", "attention_mask" },
            ["model_max_length"] = 131072,
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
        };
        if (chatTemplate is not null) config["chat_template"] = chatTemplate;
        folder.Write("tokenizer_config.json", JsonSerializer.Serialize(config));
        folder.Write("config.json", """{ "model_type": "llama", "vocab_size": 128256, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009] }""");
    }

    private static void WriteRaw(Utf8JsonWriter json, string raw)
    {
        using JsonDocument document = JsonDocument.Parse(raw);
        document.RootElement.WriteTo(json);
    }

    // The vocabulary as byte-level symbol strings by id, and one merge per token from id 256 on. cl100k_base's first
    // 256 ranks are not the bytes in order, so every token of more than one byte gets its merge, whatever its rank.
    private static (List<string> Vocabulary, List<string> Merges) Build()
    {
        List<byte[]> tokens = TiktokenData.ReadRanks("Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate");
        var rankOf = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int rank = 0; rank < tokens.Count; rank++) rankOf.Add(Encoding.Latin1.GetString(tokens[rank]), rank);
        var vocabulary = new List<string>(tokens.Count);
        var merges = new List<string>(tokens.Count);
        for (int rank = 0; rank < tokens.Count; rank++)
        {
            vocabulary.Add(ByteLevelFiles.Symbols(tokens[rank]));
            if (tokens[rank].Length < 2) continue;
            (byte[] left, byte[] right) = TiktokenData.LastMerge(tokens[rank], rank, rankOf);
            merges.Add(ByteLevelFiles.Symbols(left) + " " + ByteLevelFiles.Symbols(right));
        }
        return (vocabulary, merges);
    }
}
