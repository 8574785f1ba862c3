using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Tokenizers;
using TransformerGen.SentencePiece;
using TransformerGen.Tokenizers.Folder;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// SentencePiece BPE (<c>tokenizer.model</c>: Llama-2, TinyLlama) through <see cref="LlamaTokenizer"/>; Gemma's
/// <c>tokenizer.model</c> (no dummy prefix, its own special ids) is handed to <see cref="GemmaLoader"/>.
/// </summary>
internal static class SentencePieceLoader
{
    public static TokenizerParts Load(string modelPath, TokenizerConfig config)
    {
        byte[] model = File.ReadAllBytes(modelPath);
        SentencePieceModel proto = SentencePieceModel.Read(model, modelPath);
        if (GemmaLoader.Claims(config, proto))
        {
            return GemmaLoader.Load(model, proto, config);
        }

        // transformers' LlamaTokenizer(Fast): add_bos_token defaults to True, add_eos_token to False.
        bool addBos = config.AddBosToken ?? true;
        bool addEos = config.AddEosToken ?? false;

        // Hugging Face keeps its added tokens whole wherever they appear in a text, the model's control pieces
        // <unk>, <s>, </s> among them (Llama-2's chat template writes "<s>" and "</s>" into the prompt).
        // ML.Tokenizers does that for the tokens passed as specialTokens, so they are the config's added tokens
        // plus the control pieces; the latter are known only once the model is read, hence a second read when
        // the config did not list them.
        var specialTokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken added in config.AddedTokens)
        {
            specialTokens[added.Content] = added.Id;
        }

        LlamaTokenizer llama = Create(model, addBos, addEos, specialTokens);
        bool controlPiecesAdded = false;
        foreach ((string piece, int id) in ControlPieces(llama))
        {
            controlPiecesAdded |= specialTokens.TryAdd(piece, id);
        }

        if (controlPiecesAdded)
        {
            llama = Create(model, addBos, addEos, specialTokens);
        }

        var skipped = new HashSet<int> { llama.BeginningOfSentenceId, llama.EndOfSentenceId, llama.UnknownId };
        int highestId = -1;
        foreach (int id in llama.Vocabulary.Values)
        {
            highestId = Math.Max(highestId, id);
        }

        foreach (AddedToken added in config.AddedTokens)
        {
            highestId = Math.Max(highestId, added.Id);
            if (added.Special)
            {
                skipped.Add(added.Id);
            }
        }

        int? padId = LookUp(config.PadToken, specialTokens, llama.Vocabulary);
        if (padId is int pad)
        {
            skipped.Add(pad);
        }

        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.SentencePieceBpeKind,
            EncodeText = text => llama.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false),
            DecodeIds = ids => llama.Decode(ids, considerSpecialTokens: true),
            Prefix = llama.AddBeginningOfSentence ? [llama.BeginningOfSentenceId] : [],
            Suffix = llama.AddEndOfSentence ? [llama.EndOfSentenceId] : [],
            // LlamaTokenizer.build_inputs_with_special_tokens: bos A eos bos B eos, each as add_bos/add_eos_token say.
            PairSeparator = llama.AddBeginningOfSentence ? [llama.BeginningOfSentenceId] : [],
            BosId = llama.BeginningOfSentenceId,
            EosId = llama.EndOfSentenceId,
            UnkId = llama.UnknownId,
            PadId = padId,
            BosToken = llama.BeginningOfSentenceToken,
            EosToken = llama.EndOfSentenceToken,
            VocabSize = highestId + 1,
            SpecialTokens = specialTokens,
            SkippedWhenDecoding = skipped,
        };
    }

    private static LlamaTokenizer Create(byte[] model, bool addBos, bool addEos, Dictionary<string, int> specialTokens)
    {
        using var stream = new MemoryStream(model, writable: false);
        try
        {
            return LlamaTokenizer.Create(stream, addBos, addEos, specialTokens.Count > 0 ? new Dictionary<string, int>(specialTokens) : null);
        }
        catch (ArgumentException e)
        {
            // LlamaTokenizer reads only BPE models with the identity normalizer (Llama-2's form); Unigram models
            // (T5, ALBERT) and NFKC-normalizing ones are refused there.
            throw new NotSupportedException($"tokenizer.model is not a SentencePiece BPE model with the identity normalizer: {e.Message}", e);
        }
    }

    private static IEnumerable<(string Piece, int Id)> ControlPieces(LlamaTokenizer llama)
    {
        yield return (llama.UnknownToken, llama.UnknownId);
        yield return (llama.BeginningOfSentenceToken, llama.BeginningOfSentenceId);
        yield return (llama.EndOfSentenceToken, llama.EndOfSentenceId);
    }

    private static int? LookUp(string? token, Dictionary<string, int> specialTokens, IReadOnlyDictionary<string, int> vocabulary) =>
        token is null ? null
        : specialTokens.TryGetValue(token, out int id) ? id
        : vocabulary.TryGetValue(token, out id) ? id
        : null;
}
