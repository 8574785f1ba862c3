using System;
using System.IO;
using Microsoft.ML.Tokenizers;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>Opens a SentencePiece model whose ids the caller renumbers (XLM-R's fairseq ids, Marian's vocab.json).</summary>
internal static class SentencePieceFile
{
    /// <summary>
    /// The model without BOS/EOS and without special tokens, so every id it returns is a piece of the model; the
    /// caller adds its own special tokens with its own ids.
    /// </summary>
    /// <exception cref="NotSupportedException">Microsoft.ML.Tokenizers does not read the file; the message names it.</exception>
    public static SentencePieceTokenizer Open(string modelPath) => Open(File.ReadAllBytes(modelPath), Path.GetFileName(modelPath));

    /// <summary>As <see cref="Open(string)"/>, from the file's bytes; <paramref name="name"/> is what the error calls the file.</summary>
    /// <exception cref="NotSupportedException">Microsoft.ML.Tokenizers does not read the model; the message names it.</exception>
    public static SentencePieceTokenizer Open(byte[] model, string name)
    {
        using var stream = new MemoryStream(model, writable: false);
        try
        {
            return SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false, specialTokens: null);
        }
        catch (ArgumentException e)
        {
            throw new NotSupportedException($"{name} is not a SentencePiece model Microsoft.ML.Tokenizers reads: {e.Message}", e);
        }
    }
}
