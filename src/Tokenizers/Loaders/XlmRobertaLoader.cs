using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Tokenizers;
using TransformerGen.Tokenizers.Folder;
using TransformerGen.Tokenizers.PreTokenization;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// XLM-RoBERTa's tokenizer (<c>sentencepiece.bpe.model</c>, a SentencePiece Unigram model despite the name), as
/// transformers' <c>XLMRobertaTokenizer</c>: <see cref="SentencePieceTokenizer"/> segments the text and
/// <see cref="FairseqSentencePiece"/> renumbers the ids. The tokenizer of multilingual-e5, bge-m3 and
/// paraphrase-multilingual-MiniLM (a BERT model with this tokenizer).
/// </summary>
internal static class XlmRobertaLoader
{
    // transformers' fairseq_tokens_to_ids; <mask> is added after the model's pieces.
    private static readonly (string Token, int Id)[] FairseqSpecialTokens = [("<s>", 0), ("<pad>", 1), ("</s>", 2), ("<unk>", 3)];

    public static TokenizerParts Load(string modelPath, TokenizerConfig config)
    {
        if (config.TokenizerClass is not (null or "XLMRobertaTokenizer" or "XLMRobertaTokenizerFast"))
        {
            // CamemBERT and mBART also ship sentencepiece.bpe.model, with other fairseq layouts.
            throw new NotSupportedException(
                $"{Path.GetFileName(modelPath)} with tokenizer_class '{config.TokenizerClass}': only XLM-RoBERTa's fairseq id layout (XLMRobertaTokenizer) is read.");
        }

        // BOS/EOS are added by PretrainedTokenizer (fairseq's ids, not the model's).
        SentencePieceTokenizer model = SentencePieceFile.Open(modelPath);
        FairseqSentencePiece.RequireFairseqLayout(model, modelPath, "XLM-RoBERTa");

        // The added tokens, fairseq's first; tokenizer_config.json's added_tokens_decoder may restate them with
        // their flags. XLMRobertaTokenizer makes <mask> lstrip ("Mask token behave like a normal word").
        int pieceCount = FairseqSentencePiece.ModelPieceCount(model);
        var addedTokens = new List<AddedToken>();
        foreach ((string token, int id) in FairseqSpecialTokens)
        {
            addedTokens.Add(new AddedToken(token, id, Special: true));
        }

        addedTokens.Add(new AddedToken("<mask>", pieceCount + FairseqSentencePiece.Offset, Special: true, LStrip: true));
        addedTokens.AddRange(config.AddedTokens);

        (Dictionary<string, int> specialTokens, Dictionary<int, string> addedTokenText, HashSet<int> skipped, int highestId) =
            FairseqSentencePiece.AddedTokenTables(addedTokens, pieceCount + FairseqSentencePiece.Offset);

        var fairseq = new FairseqSentencePiece(model, new AddedTokenSplitter(addedTokens), specialTokens["<unk>"], addedTokenText);

        int? IdOf(string token) => specialTokens.TryGetValue(token, out int id) ? id : fairseq.PieceId(token);

        // XLMRobertaTokenizer's defaults; build_inputs_with_special_tokens frames with cls and sep, not bos and eos.
        int cls = IdOf(config.ClsToken ?? "<s>") ?? throw MissingToken("cls_token", config.ClsToken);
        int sep = IdOf(config.SepToken ?? "</s>") ?? throw MissingToken("sep_token", config.SepToken);
        int? bos = IdOf(config.BosToken ?? "<s>");
        int? eos = IdOf(config.EosToken ?? "</s>");
        int? pad = IdOf(config.PadToken ?? "<pad>");
        int? unk = IdOf(config.UnkToken ?? "<unk>");
        foreach (int? named in new[] { cls, sep, bos, eos, pad, unk })
        {
            if (named is int id)
            {
                skipped.Add(id);
            }
        }

        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.SentencePieceUnigramKind,
            EncodeText = fairseq.Encode,
            DecodeIds = fairseq.Decode,
            Prefix = [cls],
            Suffix = [sep],
            PairSeparator = [sep],   // <s> A </s></s> B </s>
            BosId = bos,
            EosId = eos,
            PadId = pad,
            UnkId = unk,
            BosToken = config.BosToken ?? "<s>",
            EosToken = config.EosToken ?? "</s>",
            VocabSize = highestId + 1,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
        };
    }

    private static InvalidDataException MissingToken(string key, string? token) =>
        new($"tokenizer_config.json's {key} '{token}' is neither a special token nor a piece of the SentencePiece model.");
}
