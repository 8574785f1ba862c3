using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>The vocab.txt of a tiny WordPiece model: BERT's first 104 lines, the pieces of some texts, then filler.</summary>
internal static class TinyWordPieceVocabulary
{
    /// <summary>
    /// <paramref name="count"/> lines: <paramref name="before"/> (MPNet's four), BERT's [PAD], [unused0…98], [UNK], [CLS],
    /// [SEP], [MASK], then every character and word of <paramref name="texts"/> lowercased, in ordinal order, then
    /// [unused99…] to fill.
    /// </summary>
    public static List<string> Lines(IEnumerable<string> before, IEnumerable<string> texts, int count)
    {
        var lines = new List<string>(before) { "[PAD]" };
        lines.AddRange(Enumerable.Range(0, 99).Select(i => $"[unused{i}]"));
        lines.AddRange(["[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
        var seen = new HashSet<string>(lines, StringComparer.Ordinal);
        string lowered = string.Join(" ", texts).ToLowerInvariant();
        IEnumerable<string> characters = lowered.Where(c => !char.IsWhiteSpace(c)).Select(c => c.ToString());
        IEnumerable<string> words = Regex.Split(lowered, @"[^\p{L}\p{N}]+");
        foreach (string entry in characters.Concat(words).Where(w => w.Length > 0).Distinct().Order(StringComparer.Ordinal))
        {
            if (seen.Add(entry))
            {
                lines.Add(entry);
            }
        }

        if (lines.Count > count)
        {
            throw new InvalidOperationException($"the texts need {lines.Count} vocabulary lines, the tiny model has {count}");
        }

        for (int filler = 99; lines.Count < count; filler++)
        {
            lines.Add($"[unused{filler}]");
        }

        return lines;
    }
}
