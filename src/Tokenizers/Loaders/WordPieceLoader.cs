using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// BERT's WordPiece (<c>vocab.txt</c>) through <see cref="BertTokenizer"/>; also MPNet's (all-mpnet-base-v2), whose
/// vocab.txt is BERT's behind four RoBERTa-style ids, whose <c>&lt;mask&gt;</c> is an added token past the file's last line,
/// and whose pairs are RoBERTa's (<c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>).
/// </summary>
internal static class WordPieceLoader
{
    public static TokenizerParts Load(string vocabPath, TokenizerConfig config)
    {
        byte[] vocabBytes = WithAddedTokens(File.ReadAllBytes(vocabPath), config);

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
        if (options.ApplyBasicTokenization)
        {
            // BasicTokenizer's words: Microsoft.ML.Tokenizers' own BERT pre-tokenizer drops ASCII symbols ($, +, =, …)
            // and keeps "_" inside words; transformers splits each off as a word.
            var specials = new List<string> { options.UnknownToken, options.ClassificationToken, options.SeparatorToken, options.PaddingToken, options.MaskingToken };
            foreach (AddedToken added in config.AddedTokens) specials.Add(added.Content);
            options.PreTokenizer = new BertPunctuationPreTokenizer(specials);
        }

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
            // [CLS] A [SEP] B [SEP]; MPNetTokenizer's build_inputs_with_special_tokens doubles the separator between the two.
            PairSeparator = IsMPNet(config) ? [bert.SeparatorTokenId] : [],
            PadId = bert.PaddingTokenId,
            UnkId = bert.UnknownTokenId,
            VocabSize = vocabSize,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
        };
    }

    private static bool IsMPNet(TokenizerConfig config) =>
        config.TokenizerClass is "MPNetTokenizer" or "MPNetTokenizerFast" || (config.TokenizerClass is null && config.ModelType == "mpnet");

    /// <summary>
    /// vocab.txt with the tokens transformers numbers after its last line appended as lines of their own, so that
    /// <see cref="BertTokenizer"/> knows them (it refuses a special token missing from its vocabulary): first the added
    /// tokens numbered right after the file, in id order (MPNet's <c>&lt;mask&gt;</c>, id 30526 after 30526 lines, in
    /// tokenizer_config.json's added_tokens_decoder); then the special tokens the config names that neither holds, in the
    /// order transformers adds them (bos, eos, unk, sep, pad, cls, mask), as a tokenizer_config.json without
    /// added_tokens_decoder leaves MPNet's mask. Added tokens elsewhere (inside the file's range, or past a gap) are left
    /// to the special-token table.
    /// </summary>
    private static byte[] WithAddedTokens(byte[] vocab, TokenizerConfig config)
    {
        var known = new HashSet<string>(Encoding.UTF8.GetString(vocab).Split('\n').Select(line => line.TrimEnd('\r')), StringComparer.Ordinal);
        int next = CountLines(vocab);
        var lines = new StringBuilder();
        void Append(string token)
        {
            lines.Append(token).Append('\n');
            known.Add(token);
            next++;
        }
        var byId = new SortedDictionary<int, string>();
        foreach (AddedToken token in config.AddedTokens) byId[token.Id] = token.Content;
        foreach ((int id, string content) in byId)
        {
            if (id < next) continue;
            if (id > next || content.Contains('\n')) break;
            Append(content);
        }
        foreach (string? special in new[] { config.BosToken, config.EosToken, config.UnkToken, config.SepToken, config.PadToken, config.ClsToken, config.MaskToken })
            if (special is { Length: > 0 } && !special.Contains('\n') && !known.Contains(special) && !config.AddedTokens.Any(t => t.Content == special))
                Append(special);
        if (lines.Length == 0) return vocab;
        bool newline = vocab.Length == 0 || vocab[^1] == (byte)'\n';
        byte[] tail = Encoding.UTF8.GetBytes((newline ? "" : "\n") + lines);
        byte[] result = new byte[vocab.Length + tail.Length];
        vocab.CopyTo(result, 0);
        tail.CopyTo(result, vocab.Length);
        return result;
    }

    // transformers numbers vocab.txt by line (load_vocab): the id count is the line count.
    private static int CountLines(ReadOnlySpan<byte> text)
    {
        int lines = text.Count((byte)'\n');
        return text.Length > 0 && text[^1] != (byte)'\n' ? lines + 1 : lines;
    }
}
