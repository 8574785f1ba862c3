using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>BERT's WordPiece (<c>vocab.txt</c>) through <see cref="BertTokenizer"/>.</summary>
internal static class WordPieceLoader
{
    public static TokenizerParts Load(string vocabPath, TokenizerConfig config)
    {
        byte[] vocabBytes = File.ReadAllBytes(vocabPath);

        // transformers' BertTokenizer: do_lower_case defaults to True, and strip_accents=None means "strip when
        // lower-casing". ML.Tokenizers lower-cases without stripping unless RemoveNonSpacingMarks is set.
        bool lowerCase = config.DoLowerCase ?? true;
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = lowerCase,
            RemoveNonSpacingMarks = config.StripAccents ?? lowerCase,
            IndividuallyTokenizeCjk = config.TokenizeChineseChars ?? true,
            ApplyBasicTokenization = config.DoBasicTokenize ?? true,
        };
        options.UnknownToken = config.UnkToken ?? options.UnknownToken;
        options.ClassificationToken = config.ClsToken ?? options.ClassificationToken;
        options.SeparatorToken = config.SepToken ?? options.SeparatorToken;
        options.PaddingToken = config.PadToken ?? options.PaddingToken;
        options.MaskingToken = config.MaskToken ?? options.MaskingToken;

        BertTokenizer bert;
        using (var stream = new MemoryStream(vocabBytes, writable: false))
        {
            bert = BertTokenizer.Create(stream, options);
        }

        var specialTokens = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            [bert.UnknownToken] = bert.UnknownTokenId,
            [bert.ClassificationToken] = bert.ClassificationTokenId,
            [bert.SeparatorToken] = bert.SeparatorTokenId,
            [bert.PaddingToken] = bert.PaddingTokenId,
            [bert.MaskingToken] = bert.MaskingTokenId,
        };
        var skipped = new HashSet<int>(specialTokens.Values);
        int vocabSize = CountLines(vocabBytes);
        foreach (AddedToken added in config.AddedTokens)
        {
            specialTokens[added.Content] = added.Id;
            vocabSize = Math.Max(vocabSize, added.Id + 1);
            if (added.Special)
            {
                skipped.Add(added.Id);
            }
        }

        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.WordPieceKind,
            // BertTokenizer's EncodeToIds overloads are `new`, not overrides: they must be called on a
            // BertTokenizer-typed reference. [CLS] and [SEP] are added by PretrainedTokenizer from Prefix/Suffix,
            // which gives the same ids as bert.EncodeToIds(text) (a test checks it) and lets truncation keep [SEP].
            EncodeText = text => bert.EncodeToIds(options.ApplyBasicTokenization ? SpaceConnectors(text) : text, addSpecialTokens: false),
            DecodeIds = ids => bert.Decode(ids, skipSpecialTokens: false),
            Prefix = [bert.ClassificationTokenId],
            Suffix = [bert.SeparatorTokenId],
            PairSeparator = [],   // [CLS] A [SEP] B [SEP]
            PadId = bert.PaddingTokenId,
            UnkId = bert.UnknownTokenId,
            VocabSize = vocabSize,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
        };
    }

    /// <summary>
    /// Spaces out connector punctuation (<c>_</c>, and the other characters of Unicode category Pc): transformers'
    /// BasicTokenizer splits every punctuation character off as a word of its own, and Microsoft.ML.Tokenizers' basic
    /// tokenization keeps Pc inside words, as regular expressions' <c>\w</c> does, so "search_document" would be one
    /// unknown word instead of "search", "_", "document". Spaces around it give BasicTokenizer's words.
    /// </summary>
    internal static string SpaceConnectors(string text)
    {
        int first = -1;
        for (int i = 0; i < text.Length && first < 0; i++)
        {
            if (char.GetUnicodeCategory(text[i]) == System.Globalization.UnicodeCategory.ConnectorPunctuation) first = i;
        }

        if (first < 0)
        {
            return text;
        }

        var spaced = new System.Text.StringBuilder(text.Length + 8);
        spaced.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            if (char.GetUnicodeCategory(text[i]) == System.Globalization.UnicodeCategory.ConnectorPunctuation)
            {
                spaced.Append(' ').Append(text[i]).Append(' ');
            }
            else
            {
                spaced.Append(text[i]);
            }
        }

        return spaced.ToString();
    }

    // transformers numbers vocab.txt by line (load_vocab): the id count is the line count.
    private static int CountLines(ReadOnlySpan<byte> text)
    {
        int lines = text.Count((byte)'\n');
        return text.Length > 0 && text[^1] != (byte)'\n' ? lines + 1 : lines;
    }
}
