using System;

namespace TransformerGen.Serving;

/// <summary>What the batchers refuse at the call, before a sequence is queued: the checks the model would make later.</summary>
internal static class SequenceChecks
{
    /// <summary>1 to SeqLen ids, each inside the vocabulary of <paramref name="layout"/>.</summary>
    /// <param name="tokens">The caller's ids.</param>
    /// <param name="layout">The model's layout.</param>
    /// <param name="what">The sequence's name in the messages ("a sequence", "a prompt").</param>
    /// <param name="parameter">The caller's parameter, for the exception.</param>
    public static void Ids(ReadOnlySpan<int> tokens, ModelLayout layout, string what, string parameter)
    {
        if (tokens.Length < 1 || tokens.Length > layout.SeqLen)
            throw new ArgumentException($"{what} holds 1 to SeqLen = {layout.SeqLen} tokens of {layout.Name}, got {tokens.Length}", parameter);
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)layout.Vocab)
                throw new ArgumentOutOfRangeException(parameter, tokens[i], $"token {i} is {tokens[i]}, outside the vocabulary of {layout.Name} (0 to {layout.Vocab - 1})");
        }
    }

    /// <summary>As many token types as <paramref name="tokens"/>, each a row of the model's token-type table.</summary>
    /// <param name="tokens">The caller's ids.</param>
    /// <param name="tokenTypes">Their types.</param>
    /// <param name="layout">The model's layout.</param>
    /// <param name="parameter">The caller's parameter, for the exception.</param>
    public static void Types(ReadOnlySpan<int> tokens, ReadOnlySpan<int> tokenTypes, ModelLayout layout, string parameter) =>
        EncoderModel.CheckTypes(tokens, tokenTypes, layout, parameter);
}
