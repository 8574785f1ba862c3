using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

// The encoder–decoder entry points (MarianMTModel and the BART family, T5ForConditionalGeneration: any IHfEncoderDecoder).
// Sources are [batch·sourceLength], labels [batch·targetLength]; the source mask defaults to the tokenizer's
// attention_mask (1 where the id is not the padding id).
public sealed partial class HfReference
{
    /// <summary>
    /// The logits <c>[B·T·V]</c> of <c>model(input_ids, attention_mask, labels=labels)</c>: the decoder reads the
    /// labels shifted right behind <c>decoder_start_token_id</c> (<paramref name="labels"/> &lt; 0 stand for −100 and are
    /// read as the padding id).
    /// </summary>
    public float[] TranslationLogits(int[] source, int[] labels, int batch, int sourceLength, int targetLength, int[]? sourceMask = null)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(TranslationForward(source, labels, batch, sourceLength, targetLength, sourceMask));
    }

    /// <summary>
    /// The encoder's output <c>[batch·sourceLength, d]</c> (transformers' <c>encoder_last_hidden_state</c>; T5's after
    /// <c>encoder.final_layer_norm</c>), source padding masked.
    /// </summary>
    public float[] EncoderLastHiddenState(int[] source, int batch, int sourceLength, int[]? sourceMask = null)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(Seq2Seq.Encode(Ids(source, batch, sourceLength), SourceMask(source, sourceMask, batch, sourceLength)));
    }

    /// <summary>
    /// transformers' loss with <c>labels</c> (mean cross-entropy over the labels ≥ 0; &lt; 0 stand for −100, as
    /// DataCollatorForSeq2Seq pads labels) and the gradient of every parameter by name, Marian's <c>final_logits_bias</c>
    /// included. A table read in several places (T5's <c>shared.weight</c>: both stacks' inputs and, tied, the head) gets
    /// the sum of its uses. Marian's <c>model.shared.weight</c>'s padding row gets the output head's part only
    /// (<c>padding_idx</c>); T5's <c>shared</c> has no <c>padding_idx</c>, so its padding row learns from its lookups too.
    /// </summary>
    public (float Loss, Dictionary<string, float[]> Gradients) TranslationLossAndGradients(int[] source, int[] labels, int batch, int sourceLength, int targetLength, int[]? sourceMask = null)
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor loss = TranslationLoss(source, labels, batch, sourceLength, targetLength, sourceMask);
        return ((float)loss.to(ScalarType.Float64).item<double>(), Gradients(loss));
    }

    /// <summary>The translation loss as a tensor (float64 gradient checks).</summary>
    internal Tensor TranslationLoss(int[] source, int[] labels, int batch, int sourceLength, int targetLength, int[]? sourceMask = null)
    {
        Tensor logits = TranslationForward(source, labels, batch, sourceLength, targetLength, sourceMask);
        Tensor target = tensor(labels.Select(t => t < 0 ? -100L : t).ToArray(), ScalarType.Int64);
        return F.cross_entropy(logits.view(-1, Seq2Seq.Config.VocabSize), target, ignore_index: -100);
    }

    /// <summary>
    /// The logits <c>[V]</c> for the token after <paramref name="decoderInput"/> (which starts with the decoder
    /// start token), for one source, the whole decoder input recomputed.
    /// </summary>
    public float[] NextTokenLogits(int[] source, int[] decoderInput)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        IHfEncoderDecoder model = Seq2Seq;
        Tensor ids = Ids(source, 1, source.Length), mask = SourceMask(source, null, 1, source.Length);
        Tensor memory = model.Encode(ids, mask);
        Tensor hidden = model.Decode(TargetIds(decoderInput, 1, decoderInput.Length), memory, mask);
        return Values(model.TranslationLogits(hidden.select(1, decoderInput.Length - 1)).view(-1));
    }

    /// <summary>
    /// Marian, BART, mBART, M2M100, T5: <c>generate(num_beams=1)</c> on one source: from <c>decoder_start_token_id</c>, the argmax of
    /// each step's logits (lowest id on a tie) with the <c>bad_words_ids</c> tokens (opus-mt: the padding id) and the start
    /// token banned, each step recomputing the whole decoder input; stops at <c>eos_token_id</c> (not returned) or after
    /// <paramref name="maxTokens"/> tokens. <c>forced_eos_token_id</c> acts only at <c>max_length</c>, which the callers
    /// stay below.
    /// </summary>
    public int[] GreedyTranslation(int[] source, int maxTokens) => GreedyTranslation(source, maxTokens, out _);

    /// <summary>
    /// As <see cref="GreedyTranslation(int[], int)"/>; <paramref name="smallestMargin"/> is the smallest gap between the
    /// chosen token's logit and the runner-up's over the steps: how far the choices are from a tie that rounding could flip.
    /// </summary>
    /// <param name="prefix">
    /// Ids read after the start token before the first choice (not returned), as <c>forced_bos_token_id</c> or given
    /// <c>decoder_input_ids</c> put them: mBART-50's or NLLB's target language code, BART's &lt;s&gt;.
    /// </param>
    /// <remarks>
    /// The banned tokens are those the compiled models never produce: the padding id (which BART's, mBART's and T5's configs
    /// do not list in <c>bad_words_ids</c>: transformers would choose it if it were the argmax; <paramref name="paddingWasArgmax"/>
    /// says whether that ever happened) and the start token unless it is also <c>eos_token_id</c> (BART's and mBART's
    /// decoders start from &lt;/s&gt;, which stays choosable and ends the translation; T5's start token is its padding id 0).
    /// </remarks>
    public int[] GreedyTranslation(int[] source, int maxTokens, out double smallestMargin, int[]? prefix = null) =>
        GreedyTranslation(source, maxTokens, out smallestMargin, out _, prefix);

    /// <summary>As <see cref="GreedyTranslation(int[], int, out double, int[])"/>, saying whether unbanned the padding id would have been chosen.</summary>
    public int[] GreedyTranslation(int[] source, int maxTokens, out double smallestMargin, out bool paddingWasArgmax, int[]? prefix = null)
    {
        smallestMargin = double.PositiveInfinity;
        paddingWasArgmax = false;
        IHfEncoderDecoder model = Seq2Seq;
        HfConfig config = model.Config;
        var banned = new HashSet<int>(config.BannedTokens) { config.PadTokenId };
        if (config.DecoderStartTokenId != config.EosTokenId) banned.Add(config.DecoderStartTokenId);
        var produced = new List<int>();
        var input = new List<int> { config.DecoderStartTokenId };
        input.AddRange(prefix ?? []);
        while (produced.Count < maxTokens)
        {
            float[] logits = NextTokenLogits(source, input.ToArray());
            int unbanned = ArgMax(logits);
            if (unbanned == config.PadTokenId && !config.BannedTokens.Contains(unbanned)) paddingWasArgmax = true;
            foreach (int token in banned) logits[token] = float.NegativeInfinity;
            int next = ArgMax(logits);
            float runnerUp = logits.Where((_, i) => i != next).Max();
            smallestMargin = Math.Min(smallestMargin, logits[next] - runnerUp);
            if (next == config.EosTokenId) break;
            produced.Add(next);
            input.Add(next);
        }
        return produced.ToArray();
    }

    // The first index of the largest value.
    private static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>
    /// The logits <c>[T·V]</c> of <paramref name="decoderInput"/> decoded one token at a time through
    /// <see cref="EncoderDecoderCache"/> (the path of <c>generate</c>), for comparison with the full pass.
    /// </summary>
    public float[] CachedDecoderLogits(int[] source, int[] decoderInput)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        IHfEncoderDecoder model = Seq2Seq;
        Tensor ids = Ids(source, 1, source.Length), mask = SourceMask(source, null, 1, source.Length);
        Tensor memory = model.Encode(ids, mask);
        var cache = new EncoderDecoderCache();
        var rows = new List<Tensor>();
        foreach (int token in decoderInput)
            rows.Add(model.TranslationLogits(model.Decode(TargetIds([token], 1, 1), memory, mask, cache)).view(-1));
        return Values(stack(rows));
    }

    private Tensor TranslationForward(int[] source, int[] labels, int batch, int sourceLength, int targetLength, int[]? sourceMask)
    {
        IHfEncoderDecoder model = Seq2Seq;
        if (labels.Length != batch * targetLength) throw new ArgumentException($"{labels.Length} labels for {batch}×{targetLength}");
        if (labels.Any(t => t >= model.Config.VocabSize)) throw new ArgumentException("a label is outside the vocabulary");
        Tensor mask = SourceMask(source, sourceMask, batch, sourceLength);
        Tensor memory = model.Encode(Ids(source, batch, sourceLength), mask);
        Tensor decoderInput = tensor(model.ShiftRight(labels, batch, targetLength), new long[] { batch, targetLength });
        return model.TranslationLogits(model.Decode(decoderInput, memory, mask));
    }

    private Tensor SourceMask(int[] source, int[]? mask, int batch, int length) =>
        Mask(mask ?? source.Select(t => t == Seq2Seq.Config.PadTokenId ? 0 : 1).ToArray(), batch, length)!;

    private Tensor TargetIds(int[] tokens, int batch, int length)
    {
        if (tokens.Any(t => t < 0 || t >= Seq2Seq.Config.VocabSize)) throw new ArgumentException("a decoder input is outside the vocabulary");
        return tensor(tokens.Select(t => (long)t).ToArray(), new long[] { batch, length });
    }

    private IHfEncoderDecoder Seq2Seq => _model as IHfEncoderDecoder ?? throw new InvalidOperationException($"{ModelType} is not an encoder–decoder");
}
