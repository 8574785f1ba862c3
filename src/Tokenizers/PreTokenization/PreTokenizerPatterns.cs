using System.Text.RegularExpressions;

namespace TransformerGen.Tokenizers.PreTokenization;

/// <summary>
/// The pre-tokenizer regexes of the byte-level BPE families. .NET matches UTF-16 code units, so a letter or digit
/// outside the Basic Multilingual Plane (a surrogate pair: CJK Extension B, mathematical letters) is not
/// <c>\p{L}</c>/<c>\p{N}</c> here, while Hugging Face's Rust regex, which matches code points, says it is.
/// Text made of BMP characters (nearly all text) splits identically.
/// </summary>
internal static partial class PreTokenizerPatterns
{
    /// <summary>
    /// GPT-2's pre-tokenizer (openai/gpt-2 encoder.py; huggingface/tokenizers ByteLevel with use_regex): English
    /// contractions, letters and numbers each with one optional leading space, other symbols, and whitespace
    /// that leaves its last space to the next word.
    /// </summary>
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>
    /// Qwen2's pre-tokenizer (transformers models/qwen2/tokenization_qwen2.py PRETOKENIZE_REGEX): contractions in
    /// any case, one non-letter before a letter run, digits one by one, symbols with the line breaks after them.
    /// </summary>
    public const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    [GeneratedRegex(Gpt2, RegexOptions.CultureInvariant)]
    public static partial Regex Gpt2Regex();

    [GeneratedRegex(Qwen2, RegexOptions.CultureInvariant)]
    public static partial Regex Qwen2Regex();

    /// <summary>A pattern read from tokenizer.json; the two known ones get their generated regex.</summary>
    public static Regex FromPattern(string pattern) => pattern switch
    {
        Gpt2 => Gpt2Regex(),
        Qwen2 => Qwen2Regex(),
        _ => new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled),
    };
}
