using System;
using System.Collections.Generic;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace TransformerGen.Tokenizers.Normalization;

/// <summary>
/// Unicode normalization forms applied in order (tokenizers' <c>NFC</c>, <c>NFD</c>, <c>NFKC</c>, <c>NFKD</c> and a
/// <c>Sequence</c> of them). Qwen2 uses NFC, so a decomposed "é" (e + U+0301) encodes as the composed one.
/// </summary>
internal sealed class UnicodeFormNormalizer(IReadOnlyList<NormalizationForm> forms) : Normalizer
{
    public IReadOnlyList<NormalizationForm> Forms { get; } = forms;

    public override string Normalize(string original)
    {
        string text = original;
        foreach (NormalizationForm form in Forms)
        {
            try
            {
                if (!text.IsNormalized(form))
                {
                    text = text.Normalize(form);
                }
            }
            catch (ArgumentException)
            {
                // A lone surrogate: .NET refuses to normalize it (and a Rust string, Hugging Face's input, cannot
                // hold one). Rather than fail the whole encode, the text goes on unnormalized.
                return text;
            }
        }

        return text;
    }

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());
}
