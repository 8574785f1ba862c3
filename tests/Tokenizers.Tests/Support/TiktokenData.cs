using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Reflection;
using System.Text;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// The ranks of a Microsoft.ML.Tokenizers.Data package, and the merge that makes each token, to build Hugging Face
/// byte-level BPE files from them. A package's resource is a deflated text, "Capacity: N" and then one base64 token
/// (and its rank) per line in rank order; that format is the package's own, read here only to make test data.
/// </summary>
internal static class TiktokenData
{
    /// <summary>The tokens' bytes, by rank.</summary>
    public static List<byte[]> ReadRanks(string assembly, string resource)
    {
        Assembly data = Assembly.Load(assembly);
        using Stream compressed = data.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{assembly} has no {resource} resource.");
        using var reader = new StreamReader(new DeflateStream(compressed, CompressionMode.Decompress));
        var tokens = new List<byte[]>(100_000);
        while (reader.ReadLine() is string line)
        {
            if (line.Length > 0 && !line.StartsWith("Capacity:", StringComparison.Ordinal))
            {
                tokens.Add(Convert.FromBase64String(line.Split(' ')[0]));
            }
        }

        return tokens;
    }

    /// <summary>
    /// The two tokens that merge into <paramref name="token"/>: tiktoken's byte_pair_merge restricted to ranks below
    /// <paramref name="maxRank"/> (merge the adjacent pair whose concatenation has the lowest rank until none is left)
    /// stops at them. <paramref name="rankOf"/> maps each token, as a Latin-1 string of its bytes, to its rank.
    /// </summary>
    public static (byte[] Left, byte[] Right) LastMerge(byte[] token, int maxRank, Dictionary<string, int> rankOf)
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
                throw new InvalidDataException($"The token of rank {maxRank} does not reduce to two tokens of lower rank.");
            }

            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }

        if (parts.Count != 2)
        {
            throw new InvalidDataException($"The token of rank {maxRank} has a single byte.");
        }

        return (Encoding.Latin1.GetBytes(parts[0]), Encoding.Latin1.GetBytes(parts[1]));
    }
}
