using System;
using TransformerGen.Tokenizers;

namespace TransformerGen.Samples.Hub;

/// <summary>
/// Whether a folder's tokenizer fits the model its ids go to. Gemma 3's tokenizers keep the multimodal models'
/// <c>&lt;image_soft_token&gt;</c> (id 262144) one past the text models' 262,144-row table: ids past the table are let
/// through when they are special tokens, which no text holds unless it names one (the model then refuses that id).
/// Compiled into samples/Embeddings and samples/Chat.
/// </summary>
internal static class VocabularyFit
{
    /// <exception cref="ArgumentException">The tokenizer has an id past <paramref name="vocab"/> that is not a special token.</exception>
    public static void Check(PretrainedTokenizer tokenizer, int vocab, string model, string parameter)
    {
        for (int id = vocab; id < tokenizer.VocabSize; id++)
        {
            string token = tokenizer.Decode([id], skipSpecialTokens: false);
            if (tokenizer.SpecialTokenId(token) != id)
            {
                throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} ids, {model}'s vocabulary {vocab}", parameter);
            }
        }
    }
}
