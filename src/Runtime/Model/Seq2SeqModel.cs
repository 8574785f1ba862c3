using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// An encoder–decoder model (the paper's Transformer): trained with <see cref="TransformerModel.Forward"/> on a
/// source and its target (teacher forcing); at inference the encoder runs once per source
/// (<see cref="Encode"/>, which also caches every decoder layer's cross-attention keys and values), and the
/// decoder runs step by step with its own key/value cache (<see cref="Append"/>), for greedy or sampled
/// decoding (<see cref="Translate"/>) and beam search (<see cref="BeamSearch"/>).
/// </summary>
public abstract class Seq2SeqModel : TransformerModel
{
    private readonly int[] _one = new int[1];
    private readonly float[] _choice;
    private readonly int[] _decoderInput;   // the decoder's start token and prefix, which a sampler's penalties read
    private int _sourceLength, _decoderLength;

    /// <summary>Allocates every buffer and initializes the parameters from <paramref name="seed"/>.</summary>
    protected Seq2SeqModel(ModelLayout layout, ulong seed) : this(layout, seed, ModelUse.Training, initialize: true) { }

    /// <summary>Allocates the buffers <paramref name="use"/> needs; initializes the parameters from <paramref name="seed"/> when <paramref name="initialize"/> is true.</summary>
    protected Seq2SeqModel(ModelLayout layout, ulong seed, ModelUse use, bool initialize, WeightType weights = WeightType.Float32, ModelWeights? shared = null)
        : base(layout, seed, use, initialize, weights, shared)
    {
        _choice = new float[layout.TargetVocab];
        _decoderInput = new int[layout.DecoderSeqLen];
    }

    /// <summary>Positions held in the decoder's key/value cache.</summary>
    public int DecoderCacheLength => _decoderLength;

    /// <summary>Length of the source last encoded (0 before <see cref="Encode"/>).</summary>
    protected int SourceLength => _sourceLength;

    /// <summary>
    /// Runs the encoder on one source (1 to <c>SeqLen</c> ids; with a padding id, trailing pads are dropped, as the
    /// padding mask of training would ignore them) and caches the cross-attention keys and values of every decoder
    /// layer. Empties the decoder's cache.
    /// </summary>
    /// <exception cref="ArgumentException">The source is empty or all padding, longer than <c>SeqLen</c>, has an id
    /// outside the vocabulary, or has padding before a real token (training masks such pads one by one; inference
    /// takes only a contiguous source).</exception>
    public void Encode(ReadOnlySpan<int> source)
    {
        using CallScope scope = Enter("Encode");
        if (Layout.PadToken >= 0)
        {
            int end = source.IndexOf(Layout.PadToken);
            if (end >= 0)
            {
                int after = source[end..].IndexOfAnyExcept(Layout.PadToken);
                if (after >= 0)
                    throw new ArgumentException($"the source has padding ({Layout.PadToken}) at {end} before a token at {end + after}; only trailing padding is allowed", nameof(source));
                source = source[..end];
            }
        }
        if (source.IsEmpty) throw new ArgumentException("the source needs at least one token that is not padding", nameof(source));
        if (source.Length > Layout.SeqLen)
            throw new ArgumentException($"{Layout.Name} encodes at most SeqLen = {Layout.SeqLen} tokens, got {source.Length}", nameof(source));
        CheckIds(source, nameof(source), Layout.Vocab, allowIgnored: false);
        _sourceLength = 0;
        EncodeCore(source);
        _sourceLength = source.Length;
        _decoderLength = 0;
    }

    /// <summary>Empties the decoder's key/value cache; the encoded source stays.</summary>
    public void ResetDecoder()
    {
        using CallScope scope = Enter("ResetDecoder");
        _decoderLength = 0;
    }

    /// <summary>
    /// Appends decoder input tokens (the first is usually the begin token) after those already cached, and
    /// returns the logits <c>[TargetVocab]</c> for the token that follows the last one.
    /// </summary>
    public ReadOnlySpan<float> Append(ReadOnlySpan<int> tokens)
    {
        using CallScope scope = Enter("Append");
        if (_sourceLength == 0) throw new InvalidOperationException($"{Layout.Name}.Append needs a source: call Encode first");
        if (tokens.IsEmpty) throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (_decoderLength + tokens.Length > Layout.DecoderSeqLen)
            throw new InvalidOperationException($"{Layout.Name} holds {_decoderLength} decoded positions; {tokens.Length} more exceed TargetSeqLen = {Layout.DecoderSeqLen}");
        CheckIds(tokens, nameof(tokens), Layout.TargetVocab, allowIgnored: false);
        InferCore(tokens, _decoderLength);
        _decoderLength += tokens.Length;
        return InferenceLogits;
    }

    /// <summary>
    /// Decodes <paramref name="source"/> token by token with the caches: greedy (the most likely token) when
    /// <paramref name="sampler"/> is null, else drawn by it. The padding and begin tokens are never produced (unless the
    /// begin token is also the end token). Stops at the end token (not written) or when <paramref name="output"/> or the
    /// target length is full. Returns the number of tokens written. Allocates nothing.
    /// </summary>
    /// <param name="source">The source ids (see <see cref="Encode"/>).</param>
    /// <param name="output">Receives the generated ids, without the begin token, the prefix and the end token.</param>
    /// <param name="sampler">Draws each token; null for greedy decoding. Its penalties read the decoder's input as transformers' repetition penalty does: the start token, the prefix and the tokens written so far.</param>
    /// <param name="prefix">
    /// Ids the decoder reads after the begin token before it generates, as transformers' <c>forced_bos_token_id</c> or
    /// <c>decoder_input_ids</c> give them: mBART-50's target language code, or BART's &lt;s&gt; in bart-large-cnn.
    /// </param>
    /// <exception cref="ArgumentException">The prefix leaves no room in <c>TargetSeqLen</c>, or has an id outside the target vocabulary.</exception>
    public int Translate(ReadOnlySpan<int> source, Span<int> output, Sampler? sampler = null, ReadOnlySpan<int> prefix = default)
    {
        using CallScope scope = Enter("Translate");
        if (1 + prefix.Length >= Layout.DecoderSeqLen)
            throw new ArgumentException($"{Layout.Name} decodes at most TargetSeqLen = {Layout.DecoderSeqLen} positions: the begin token and a prefix of {prefix.Length} leave none to generate", nameof(prefix));
        CheckIds(prefix, nameof(prefix), Layout.TargetVocab, allowIgnored: false);
        Encode(source);
        _one[0] = Layout.BosToken;
        ReadOnlySpan<float> logits = Append(_one);
        if (!prefix.IsEmpty) logits = Append(prefix);
        _decoderInput[0] = Layout.BosToken;
        prefix.CopyTo(_decoderInput.AsSpan(1));
        int count = 0, limit = Math.Min(output.Length, Layout.DecoderSeqLen - prefix.Length);
        while (count < limit)
        {
            ReadOnlySpan<float> choosable = Choosable(logits);
            int token = sampler is null ? ArgMax(choosable) : sampler.Sample(choosable, _decoderInput.AsSpan(0, 1 + prefix.Length), output[..count]);
            if (token == Layout.EosToken) break;
            output[count++] = token;
            if (count == limit) break;
            _one[0] = token;
            logits = Append(_one);
        }
        return count;
    }

    /// <summary>
    /// Beam search: keeps the <paramref name="beamWidth"/> most likely partial targets, extends each by its most
    /// likely tokens, and ranks finished ones (ended by the end token or by the target length) by log-probability
    /// divided by GNMT's length penalty ((5 + length) / 6)^α (Wu et al. 2016); α = 0 ranks by log-probability.
    /// Returns the number of tokens of the best target written to <paramref name="output"/>.
    /// </summary>
    /// <remarks>
    /// The encoder runs once. Each beam keeps its own copy of the decoder's self-attention keys and values, so that a step
    /// feeds each beam's newest token alone through the cache, as greedy decoding does; the copies (the positions a target
    /// can reach, in every decoder layer) come from <see cref="System.Buffers.ArrayPool{T}"/> and go back to it, so a call
    /// allocates only its beams' token lists.
    /// </remarks>
    /// <param name="source">The source ids (see <see cref="Encode"/>).</param>
    /// <param name="output">Receives the best target, without the begin token, the prefix and the end token.</param>
    /// <param name="beamWidth">Partial targets kept at each step, at least 1 (1 is greedy decoding).</param>
    /// <param name="lengthPenalty">GNMT's α: 0 ranks finished targets by log-probability, larger values favor longer ones.</param>
    /// <param name="prefix">Ids every beam reads after the begin token before it generates (see <see cref="Translate"/>): NLLB's target language.</param>
    /// <exception cref="ArgumentException">The prefix leaves no room in <c>TargetSeqLen</c>, or has an id outside the target vocabulary.</exception>
    public int BeamSearch(ReadOnlySpan<int> source, Span<int> output, int beamWidth = 4, float lengthPenalty = 0.6f, ReadOnlySpan<int> prefix = default)
    {
        using CallScope scope = Enter("BeamSearch");
        if (beamWidth < 1) throw new ArgumentOutOfRangeException(nameof(beamWidth), beamWidth, "must be at least 1");
        if (1 + prefix.Length >= Layout.DecoderSeqLen)
            throw new ArgumentException($"{Layout.Name} decodes at most TargetSeqLen = {Layout.DecoderSeqLen} positions: the begin token and a prefix of {prefix.Length} leave none to generate", nameof(prefix));
        CheckIds(prefix, nameof(prefix), Layout.TargetVocab, allowIgnored: false);
        Encode(source);
        // A beam's tokens are [begin, prefix…, generated…]; positions before its newest token are in its cache copy.
        int forced = prefix.Length, maxLength = Math.Min(output.Length, Layout.DecoderSeqLen - forced), vocab = Layout.TargetVocab;
        var caches = new BeamCaches(this, forced + maxLength);
        var first = new Beam(new int[forced + maxLength + 1], 0, 0.0, caches.Rent());
        first.Tokens[0] = Layout.BosToken;
        prefix.CopyTo(first.Tokens.AsSpan(1));
        if (forced > 0)
        {
            Append(first.Tokens.AsSpan(0, forced));
            for (int position = 0; position < forced; position++) caches.Save(first.Cache, position);
        }
        var beams = new List<Beam> { first };
        (int[] Tokens, int Length, double Score)? best = null;
        var logProbs = new float[vocab];
        try
        {
            for (int step = 0; step < maxLength && beams.Count > 0; step++)
            {
                var candidates = new List<(int Beam, int Token, double LogProb)>();
                for (int b = 0; b < beams.Count; b++)
                {
                    // The beam's cached positions go back into the model's cache; its newest token goes through alone.
                    Beam beam = beams[b];
                    int cached = forced + beam.Length;
                    caches.Restore(beam.Cache, cached);
                    _decoderLength = cached;
                    LogSoftmax(Choosable(Append(beam.Tokens.AsSpan(cached, 1))), logProbs);
                    caches.Save(beam.Cache, cached);
                    foreach (int token in TopK(logProbs, beamWidth))
                        candidates.Add((b, token, beam.LogProb + logProbs[token]));
                }
                candidates.Sort((x, y) => y.LogProb.CompareTo(x.LogProb));
                var next = new List<Beam>();
                foreach ((int b, int token, double logProb) in candidates)
                {
                    if (next.Count == beamWidth) break;
                    Beam beam = beams[b];
                    bool ends = token == Layout.EosToken;
                    int newLength = ends ? beam.Length : beam.Length + 1;
                    var extended = (int[])beam.Tokens.Clone();
                    if (!ends) extended[forced + newLength] = token;
                    if (ends || newLength == maxLength)
                    {
                        double score = logProb / Math.Pow((5.0 + newLength) / 6.0, lengthPenalty);
                        if (best is null || score > best.Value.Score) best = (extended, newLength, score);
                        if (ends) continue;
                    }
                    else next.Add(new Beam(extended, newLength, logProb, caches.Copy(beam.Cache, forced + newLength)));
                }
                foreach (Beam beam in beams) caches.Return(beam.Cache);
                beams = next;
            }
        }
        finally
        {
            foreach (Beam beam in beams) caches.Return(beam.Cache);
        }
        if (best is null) return 0;
        best.Value.Tokens.AsSpan(1 + forced, best.Value.Length).CopyTo(output);
        return best.Value.Length;
    }

    /// <summary>One partial target: its tokens (the begin token first), how many it has generated, its log-probability, and its cache copy.</summary>
    private sealed record Beam(int[] Tokens, int Length, double LogProb, float[] Cache);

    /// <summary>
    /// Copies of the decoder's self-attention keys and values for beam search: in the key/value cache, decoder layer l's keys
    /// are <c>TargetSeqLen</c> rows of <see cref="ModelLayout.DecoderCacheWidth"/> at <c>2·l·TargetSeqLen·width</c>, its
    /// values right after them; a copy keeps the same blocks at <paramref name="positions"/> rows each.
    /// </summary>
    private sealed class BeamCaches(Seq2SeqModel model, int positions)
    {
        private readonly int _width = model.Layout.DecoderCacheWidth, _layers = model.Layout.DecoderLayers, _rows = model.Layout.DecoderSeqLen;

        public float[] Rent() => System.Buffers.ArrayPool<float>.Shared.Rent(2 * _layers * positions * _width);

        public void Return(float[] copy) => System.Buffers.ArrayPool<float>.Shared.Return(copy);

        /// <summary>Puts the copy's first <paramref name="count"/> positions back into the model's cache.</summary>
        public void Restore(float[] copy, int count)
        {
            Span<float> cache = model.KeyValueBuffer;
            for (int block = 0; block < 2 * _layers; block++)
                copy.AsSpan(block * positions * _width, count * _width).CopyTo(cache.Slice(block * _rows * _width, count * _width));
        }

        /// <summary>Takes position <paramref name="position"/> of every layer's keys and values from the model's cache into the copy.</summary>
        public void Save(float[] copy, int position)
        {
            ReadOnlySpan<float> cache = model.KeyValueBuffer;
            for (int block = 0; block < 2 * _layers; block++)
                cache.Slice((block * _rows + position) * _width, _width).CopyTo(copy.AsSpan((block * positions + position) * _width, _width));
        }

        /// <summary>A new copy holding the first <paramref name="count"/> positions of <paramref name="copy"/>.</summary>
        public float[] Copy(float[] copy, int count)
        {
            float[] result = Rent();
            for (int block = 0; block < 2 * _layers; block++)
                copy.AsSpan(block * positions * _width, count * _width).CopyTo(result.AsSpan(block * positions * _width, count * _width));
            return result;
        }
    }

    /// <summary>
    /// Writes a T5, T5 v1.1, Flan-T5 or mT5 (<see cref="CheckpointFamily.T5"/>) as a GGUF v3 file of llama.cpp's <c>t5</c>
    /// architecture, which llama.cpp runs with <c>llama_encode</c> on the source and <c>llama_decode</c> from
    /// <c>t5.decoder_start_token_id</c> on.
    /// </summary>
    /// <remarks>
    /// <para>Weight matrices are F32, BF16 or Q8_0 as <paramref name="options"/> says (a Q8_0 matrix whose rows are not a
    /// multiple of 32 long stays F32; the relative-position tables always F32).</para>
    /// <para>llama.cpp's <c>t5</c> computes what transformers' T5 does (unscaled scores, block 0's bias in every
    /// self-attention and none in cross-attention, a final RMSNorm per stack) within three limits. Two are refused: its
    /// buckets stop growing at distance 128 whatever the config says (<c>llama_relative_position_bucket</c>), and its
    /// feed-forward is ReLU on <c>wi</c> or, gated, ggml's tanh GELU on <c>wi_0</c> (<c>gelu_new</c>: T5 v1.1's, Flan-T5's,
    /// mT5's) and nothing else. A model with more decoder than encoder blocks is refused too: llama.cpp sizes its per-block
    /// tables by the encoder's count, and LLamaSharp 0.30.0's build fails to load such a file (fewer decoder blocks load,
    /// through <c>t5.decoder_block_count</c>). The third is written around: llama.cpp reads a tied head's table as it is, without
    /// transformers' × d_model^−½ on the decoder's output, so a tied model gets an <c>output.weight</c> of its own,
    /// <c>shared</c> × d_model^−½ (one more vocabulary × d_model matrix in the file).</para>
    /// <para>ggml's CPU GELU looks its result up in a table of fp16 values (GGML_GELU_FP16), so a gated model's logits in
    /// llama.cpp differ from ours by more than rounding (as GPT-2's do); a ReLU model's agree to rounding.</para>
    /// <para>The parameters are copied (<see cref="TransformerModel.CopyParametersTo"/>), so a packed inference instance
    /// stays packed and one sharing its weights can be exported.</para>
    /// </remarks>
    /// <exception cref="NotSupportedException">The model is not a T5, or has a part llama.cpp's <c>t5</c> computes otherwise (the message says which).</exception>
    /// <exception cref="ArgumentException">The hyperparameters or vocabulary contradict the model (another model's config, a tied config for an untied model, other sizes).</exception>
    public GgufExportReport SaveGguf(string path, GgufExportOptions options)
    {
        using CallScope scope = Enter("SaveGguf");
        WholeParameters("SaveGguf");
        return GgufExport.SaveSeq2Seq(this, path, options);
    }

    /// <summary>
    /// Writes the model with the hyperparameters of the Hugging Face <paramref name="config"/> it was compiled from, weight
    /// matrices of <paramref name="tensorType"/>, and <paramref name="vocabulary"/> (null: a synthetic one of the model's
    /// size, for feeding token ids); see <see cref="SaveGguf(string, GgufExportOptions)"/>.
    /// </summary>
    public GgufExportReport SaveGguf(string path, string config, GgufTensorType tensorType = GgufTensorType.F32, GgufVocabulary? vocabulary = null) =>
        SaveGguf(path, new GgufExportOptions { Hyperparameters = GgufHyperparameters.FromConfig(config), TensorType = tensorType, Vocabulary = vocabulary });

    /// <summary>
    /// Writes the model as an ONNX graph of standard operators (opset 17, <see cref="OnnxExport"/>): <c>input_ids</c> and
    /// <c>attention_mask</c> <c>[batch, encoder_sequence]</c> (the source), <c>decoder_input_ids</c> <c>[batch,
    /// decoder_sequence]</c> (and <c>decoder_attention_mask</c> when the model has a padding id) in, <c>logits</c>
    /// <c>[batch, decoder_sequence, TargetVocab]</c> and <c>encoder_last_hidden_state</c> out, any batch and any lengths up
    /// to SeqLen and TargetSeqLen, no key/value cache. <see cref="OnnxExportOptions.Seq2SeqGraph"/> writes the encoder or
    /// the decoder alone instead; the decoder with <see cref="OnnxExportOptions.KeyValueCache"/> takes and returns its
    /// self- and cross-attention keys and values (<c>past_key_values.{i}.decoder.*</c> and <c>.encoder.*</c>), as
    /// <see cref="Append"/> keeps them, so that a translation loop runs it on the new token only.
    /// </summary>
    /// <remarks>
    /// An inference instance whose matrices are in the kernels' panel layout is unpacked while the file is written; external
    /// data and the atomic write are as for the other models (<see cref="OnnxExportOptions.ExternalData"/>).
    /// </remarks>
    /// <exception cref="NotSupportedException">The model has a part that no standard ONNX graph computes (the message says why).</exception>
    public OnnxExportReport SaveOnnx(string path, OnnxExportOptions? options = null)
    {
        using CallScope scope = Enter("SaveOnnx");
        WholeParameters("SaveOnnx");
        return WithUnpackedWeights(() => OnnxExport.Write(this, path, options));
    }

    /// <summary>
    /// The logits with the padding and begin tokens ruled out: decoding never emits them. A begin token that is also the end
    /// token (BART's decoder starts from &lt;/s&gt;) stays: it ends the target.
    /// </summary>
    private ReadOnlySpan<float> Choosable(ReadOnlySpan<float> logits)
    {
        logits.CopyTo(_choice);
        if (Layout.PadToken >= 0) _choice[Layout.PadToken] = float.NegativeInfinity;
        if (Layout.BosToken >= 0 && Layout.BosToken != Layout.EosToken) _choice[Layout.BosToken] = float.NegativeInfinity;
        return _choice;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private static void LogSoftmax(ReadOnlySpan<float> logits, Span<float> result)
    {
        float max = float.NegativeInfinity;
        foreach (float x in logits) max = Math.Max(max, x);
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        float logSum = max + (float)Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) result[i] = logits[i] - logSum;
    }

    private static int[] TopK(ReadOnlySpan<float> values, int k)
    {
        k = Math.Min(k, values.Length);
        var indices = new int[values.Length];
        for (int i = 0; i < indices.Length; i++) indices[i] = i;
        float[] copy = values.ToArray();
        Array.Sort(copy, indices);
        var top = new int[k];
        for (int i = 0; i < k; i++) top[i] = indices[indices.Length - 1 - i];
        return top;
    }

    /// <inheritdoc />
    protected override void OnParametersReplaced()
    {
        _sourceLength = 0;
        _decoderLength = 0;
    }

    /// <summary>The generated encoder pass for one source; also fills the cross-attention key/value cache.</summary>
    protected abstract void EncodeCore(ReadOnlySpan<int> tokens);

    /// <summary>The generated cached decoder pass: <paramref name="tokens"/> at positions <paramref name="position0"/>…; writes the last position's logits.</summary>
    protected abstract void InferCore(ReadOnlySpan<int> tokens, int position0);
}
