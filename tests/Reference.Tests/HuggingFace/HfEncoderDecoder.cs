using System;
using System.Collections.Generic;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// An encoder–decoder reference (<see cref="HfMarian"/>: Marian, BART, mBART, M2M100; <see cref="HfT5"/>: T5, mT5), as the
/// translation entry points of <see cref="HfReference"/> drive it.
/// </summary>
internal interface IHfEncoderDecoder
{
    HfConfig Config { get; }

    /// <summary>The encoder's output <c>[B, S, E]</c> for ids <c>[B, S]</c> and the 0/1 source mask <c>[B, S]</c> (null: every token visible).</summary>
    Tensor Encode(Tensor ids, Tensor? sourceMask);

    /// <summary>
    /// The decoder's final hidden states <c>[B, T, E]</c> for ids <c>[B, T]</c> at positions past…past+T−1 (past = what
    /// <paramref name="cache"/> holds, 0 without one), causal, with cross-attention over <paramref name="memory"/> <c>[B, S, E]</c>.
    /// </summary>
    Tensor Decode(Tensor ids, Tensor memory, Tensor? sourceMask, EncoderDecoderCache? cache = null);

    /// <summary>The LM head: logits <c>[…, V]</c> from the decoder's hidden states.</summary>
    Tensor TranslationLogits(Tensor hidden);

    /// <summary>The decoder input <c>[B·T]</c> for labels <c>[B·T]</c> (&lt; 0 for −100): the model's shift_tokens_right / _shift_right.</summary>
    long[] ShiftRight(int[] labels, int batch, int length);
}

/// <summary>
/// The decoder's key/value cache for step-by-step decoding (transformers' EncoderDecoderCache): per layer, the
/// self-attention keys and values so far <c>[B, H, past, D]</c> and the cross-attention ones over the encoder output.
/// Holds tensors: create and use it inside one dispose scope.
/// </summary>
internal sealed class EncoderDecoderCache
{
    private readonly Dictionary<int, (Tensor Keys, Tensor Values)> _self = new(), _cross = new();

    /// <summary>Decoder positions held.</summary>
    public int Length { get; set; }

    public (Tensor Keys, Tensor Values) AppendSelf(int layer, Tensor keys, Tensor values)
    {
        if (_self.TryGetValue(layer, out (Tensor Keys, Tensor Values) held))
        {
            keys = cat(new[] { held.Keys, keys }, 2);
            values = cat(new[] { held.Values, values }, 2);
        }
        _self[layer] = (keys, values);
        return (keys, values);
    }

    public (Tensor Keys, Tensor Values) Cross(int layer, Func<(Tensor, Tensor)> compute)
    {
        if (!_cross.TryGetValue(layer, out (Tensor Keys, Tensor Values) held)) _cross[layer] = held = compute();
        return held;
    }
}
