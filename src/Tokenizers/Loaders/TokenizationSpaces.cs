using System;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>transformers' <c>clean_up_tokenization</c>, which decode applies when tokenizer_config.json's <c>clean_up_tokenization_spaces</c> asks for it.</summary>
internal static class TokenizationSpaces
{
    /// <summary>Removes the space a detokenizer leaves before punctuation and English contractions.</summary>
    public static string CleanUp(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal)
        .Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal)
        .Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal)
        .Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal)
        .Replace(" 're", "'re", StringComparison.Ordinal);
}
