using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.PreTokenization;

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
        if (options.ApplyBasicTokenization)
        {
            // BasicTokenizer's words: Microsoft.ML.Tokenizers' own BERT pre-tokenizer drops ASCII symbols ($, +, =, …)
            // and keeps "_" inside words; transformers splits each off as a word.
            var specials = new List<string> { options.UnknownToken, options.ClassificationToken, options.SeparatorToken, options.PaddingToken, options.MaskingToken };
            foreach (AddedToken added in config.AddedTokens) specials.Add(added.Content);
            options.PreTokenizer = new BertPunctuationPreTokenizer(specials);
        }
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
            EncodeText = text => bert.EncodeToIds(text, addSpecialTokens: false),
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

    // transformers numbers vocab.txt by line (load_vocab): the id count is the line count.
    private static int CountLines(ReadOnlySpan<byte> text)
    {
        int lines = text.Count((byte)'\n');
        return text.Length > 0 && text[^1] != (byte)'\n' ? lines + 1 : lines;
    }
}
