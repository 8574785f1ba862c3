using System;

namespace TransformerGen;

/// <summary>
/// A decoder-only model (GPT): trained with <see cref="TransformerModel.Forward"/> on next tokens, and run with a
/// key/value cache: <see cref="Append(ReadOnlySpan{int})"/> gives next-token logits, <see cref="Generate(ReadOnlySpan{int}, Span{int}, Sampler)"/> samples a
/// continuation.
/// </summary>
/// <remarks>
/// An instance holds Sequences key/value caches (the declaration's Sequences, else Batch), one per sequence (cache slot). <see cref="Append(ReadOnlySpan{int})"/> and
/// <see cref="Generate(ReadOnlySpan{int}, Span{int}, Sampler)"/> use sequence 0; <see cref="Append(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int})"/>
/// runs new tokens of up to Sequences sequences in one exact-length pass (prompts of several conversations, or one decoding
/// step of each), so the weights are read once for all of them. Each sequence continues at its own cached length and
/// attends only to its own cache.
/// </remarks>
public abstract class LanguageModel : TransformerModel
{
    private readonly int[] _window;
    // Positions cached in each slot, and the floats of one slot's keys and values (all layers).
    private readonly int[] _cacheLengths;
    private readonly int _slotLength;
    // The per-sequence spans of a call: sequence 0 alone, or the cached lengths of the sequences a call names.
    private readonly int[] _oneLength = new int[1];
    private readonly int[] _slotZero = new int[1];
    private readonly int[] _positions;
    private readonly bool[] _named;
    // Embed's slots (0, 1, …), unit-length outputs and their norms; the sequences of the last Append.
    private readonly int[] _slots;
    private readonly float[] _embeddings, _embeddingNorms;
    private int _appended;

    /// <summary>Allocates every buffer and initializes the parameters from <paramref name="seed"/>.</summary>
    protected LanguageModel(ModelLayout layout, ulong seed) : this(layout, seed, ModelUse.Training, initialize: true) { }

    /// <summary>Allocates the buffers <paramref name="use"/> needs; initializes the parameters from <paramref name="seed"/> when <paramref name="initialize"/> is true.</summary>
    protected LanguageModel(ModelLayout layout, ulong seed, ModelUse use, bool initialize, WeightType weights = WeightType.Float32, ModelWeights? shared = null)
        : base(layout, seed, use, initialize, weights, shared)
    {
        _window = new int[layout.SeqLen];
        _cacheLengths = new int[layout.Sequences];
        _slotLength = layout.KeyValueCount / layout.Sequences;
        _positions = new int[layout.Sequences];
        _named = new bool[layout.Sequences];
        _slots = new int[layout.Sequences];
        for (int i = 0; i < _slots.Length; i++) _slots[i] = i;
        int width = layout.HiddenStateOffset >= 0 ? layout.HiddenStateLength / layout.TokensPerStep : 0;
        _embeddings = new float[layout.Sequences * width];
        _embeddingNorms = new float[width > 0 ? layout.Sequences : 0];
    }

    /// <summary>
    /// The last hidden state (after the final norm, what the LM head reads) of the last new token of each sequence of the
    /// last <c>Append</c> (after <see cref="Embed"/>, of its last pass): <c>[sequences, DModel]</c>, row i for its i-th
    /// sequence. Valid until the next call that runs the model (a <c>ResetCache</c> leaves it, as it leaves the logits).
    /// </summary>
    /// <exception cref="InvalidOperationException">No Append ran yet, or the model does not expose its hidden states (models compiled from a Hugging Face config do).</exception>
    public ReadOnlySpan<float> AppendedHiddenStates => _appended == 0
        ? throw new InvalidOperationException($"{Layout.Name}.AppendedHiddenStates needs an Append first")
        : InferenceLastHiddenStates(_appended);

    /// <summary>
    /// Sentence embeddings from a decoder, as sentence-transformers computes them with last-token pooling
    /// (<c>pooling_mode_lasttoken</c>, then <c>Normalize</c>: Qwen3-Embedding, gte-Qwen2, e5-mistral): each sequence's
    /// last hidden state at its last token, L2-normalized. <paramref name="tokens"/> holds up to Sequences sequences of
    /// <paramref name="lengths"/> laid end to end (each as the model's tokenizer makes it, with any instruction prefix and
    /// the end token such models expect), run in exact-length passes of up to <see cref="ModelLayout.InferenceTokens"/>
    /// tokens through cache slots 0, 1, …, which are emptied first (what they held is lost). Returns
    /// <c>[lengths.Length, DModel]</c>, valid until the next call; allocates nothing.
    /// </summary>
    /// <exception cref="ArgumentException">No sequences or more than Sequences, or the lengths do not add up to <c>tokens.Length</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A length is outside 1..SeqLen, or a token id outside the vocabulary; nothing is run and no slot changes.</exception>
    /// <exception cref="InvalidOperationException">The model does not expose its hidden states (models compiled from a Hugging Face config do).</exception>
    public ReadOnlySpan<float> Embed(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths)
    {
        using CallScope scope = Enter("Embed");
        ModelLayout layout = Layout;
        if (_embeddingNorms.Length == 0)
            throw new InvalidOperationException($"{layout.Name} does not expose its hidden states (models compiled from a Hugging Face config do)");
        if (lengths.Length < 1 || lengths.Length > layout.Sequences)
            throw new ArgumentException($"{layout.Name}.Embed takes 1 to Sequences = {layout.Sequences} sequences, got {lengths.Length} lengths", nameof(lengths));
        long total = 0;
        for (int i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] < 1 || lengths[i] > layout.SeqLen)
                throw new ArgumentOutOfRangeException(nameof(lengths), lengths[i], $"{layout.Name}.Embed: lengths[{i}] = {lengths[i]} is outside 1 to SeqLen = {layout.SeqLen}");
            total += lengths[i];
        }
        if (total != tokens.Length)
            throw new ArgumentException($"{layout.Name}.Embed: the lengths add up to {total} tokens, but {tokens.Length} were given", nameof(lengths));
        CheckIds(tokens, nameof(tokens), layout.Vocab, allowIgnored: false);

        // Groups of whole sequences, each as many as one pass takes, through slots 0, 1, ….
        int count = lengths.Length, width = _embeddings.Length / layout.Sequences;
        _cacheLengths.AsSpan(0, count).Clear();
        for (int first = 0, start = 0; first < count;)
        {
            int end = first, size = 0;
            while (end < count && size + lengths[end] <= layout.InferenceTokens) size += lengths[end++];
            Append(tokens.Slice(start, size), lengths[first..end], _slots.AsSpan(first, end - first));
            Kernels.L2Normalize.Forward(InferenceLastHiddenStates(end - first), _embeddings.AsSpan(first * width, (end - first) * width),
                _embeddingNorms.AsSpan(first, end - first), end - first, width);
            first = end;
            start += size;
        }
        return _embeddings.AsSpan(0, count * width);
    }

    /// <summary>Number of positions held in the key/value cache of sequence 0 (the one <see cref="Append(ReadOnlySpan{int})"/> and <see cref="Generate(ReadOnlySpan{int}, Span{int}, Sampler)"/> use).</summary>
    public int CacheLength => _cacheLengths[0];

    /// <summary>Number of positions held in the key/value cache of <paramref name="sequence"/> (0 to Sequences − 1).</summary>
    public int CacheLengthOf(int sequence) => _cacheLengths[CheckSequence(sequence)];

    /// <summary>Empties the key/value cache of every sequence.</summary>
    public void ResetCache()
    {
        using CallScope scope = Enter("ResetCache");
        Array.Clear(_cacheLengths);
    }

    /// <summary>Empties the key/value cache of <paramref name="sequence"/> (0 to Sequences − 1), to start a new sequence there; the others keep theirs.</summary>
    public void ResetCache(int sequence)
    {
        using CallScope scope = Enter("ResetCache");
        _cacheLengths[CheckSequence(sequence)] = 0;
    }

    /// <summary>
    /// Keeps the first <paramref name="length"/> positions of sequence 0's key/value cache and forgets the rest, so that
    /// the next <see cref="Append(ReadOnlySpan{int})"/> continues from there: a conversation whose next prompt shares a
    /// prefix with what the cache holds appends only what differs. The positions kept are unchanged (each depends only
    /// on those before it).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or above <see cref="CacheLength"/>.</exception>
    public void TruncateCache(int length) => TruncateCache(0, length);

    /// <summary>As <see cref="TruncateCache(int)"/>, for the cache of <paramref name="sequence"/> (0 to Sequences − 1); the others keep theirs.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The sequence is outside 0..Sequences − 1, or <paramref name="length"/> is negative or above its cache length.</exception>
    public void TruncateCache(int sequence, int length)
    {
        using CallScope scope = Enter("TruncateCache");
        int held = _cacheLengths[CheckSequence(sequence)];
        if ((uint)length > (uint)held)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"{Layout.Name}: sequence {sequence} holds {held} cached positions; a cache can be cut to 0..{held}");
        _cacheLengths[sequence] = length;
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> to the cached sequence 0 (a prompt, or one sampled token) and returns the logits
    /// <c>[Vocab]</c> for the token after the last one. Earlier positions are not recomputed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The sequence would exceed <c>SeqLen</c>; call <see cref="ResetCache()"/> or use <see cref="Generate(ReadOnlySpan{int}, Span{int}, Sampler)"/>, which slides the window.</exception>
    public ReadOnlySpan<float> Append(ReadOnlySpan<int> tokens)
    {
        using CallScope scope = Enter("Append");
        if (tokens.IsEmpty) throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (_cacheLengths[0] + tokens.Length > Layout.SeqLen)
            throw new InvalidOperationException($"{Layout.Name} holds {_cacheLengths[0]} cached positions; {tokens.Length} more exceed SeqLen = {Layout.SeqLen}");
        CheckIds(tokens, nameof(tokens), Layout.Vocab, allowIgnored: false);
        _oneLength[0] = tokens.Length;
        InferCore(tokens, new CachedSequences(_oneLength, _cacheLengths.AsSpan(0, 1), _slotZero));
        _cacheLengths[0] += tokens.Length;
        _appended = 1;
        return InferenceLogits;
    }

    /// <summary>
    /// Appends new tokens to several cached sequences in one pass and returns their next-token logits
    /// <c>[sequences.Length, Vocab]</c>, row i for <c>sequences[i]</c>. Sequence <c>sequences[i]</c> gets the
    /// <c>lengths[i]</c> ids that follow those of the sequences before it in <paramref name="tokens"/> (no padding), at the
    /// positions after those it has cached, and its queries see only its own cache. Each row is what
    /// <see cref="Append(ReadOnlySpan{int})"/> gives for that sequence alone. The span is valid until the next call;
    /// allocates nothing.
    /// </summary>
    /// <param name="tokens">The new ids of every sequence, one after another (<c>Σ lengths</c> in all).</param>
    /// <param name="lengths">How many new ids each sequence gets, each at least 1.</param>
    /// <param name="sequences">Which sequence (key/value cache slot, 0 to Sequences − 1) each entry of <paramref name="lengths"/> continues; no two alike.</param>
    /// <exception cref="ArgumentException">No sequences or more than Sequences, the spans disagree in length, a sequence is named twice, the lengths do not add up to <c>tokens.Length</c>, or there are more tokens than one pass takes (<see cref="ModelLayout.InferenceTokens"/>: SeqLen, or Sequences if more).</exception>
    /// <exception cref="ArgumentOutOfRangeException">A sequence is outside 0..Sequences − 1, a length below 1, or a token id outside the vocabulary; the message names which.</exception>
    /// <exception cref="InvalidOperationException">A sequence would exceed <c>SeqLen</c>; nothing is appended to any.</exception>
    public ReadOnlySpan<float> Append(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths, ReadOnlySpan<int> sequences)
    {
        using CallScope scope = Enter("Append");
        ModelLayout layout = Layout;
        if (lengths.Length < 1 || lengths.Length > layout.Sequences)
            throw new ArgumentException($"{layout.Name}.Append takes 1 to Sequences = {layout.Sequences} sequences, got {lengths.Length} lengths", nameof(lengths));
        if (sequences.Length != lengths.Length)
            throw new ArgumentException($"{layout.Name}.Append: {lengths.Length} lengths need as many sequences, got {sequences.Length}", nameof(sequences));
        long total = 0;
        try
        {
            for (int i = 0; i < lengths.Length; i++)
            {
                int sequence = sequences[i];
                if (sequence < 0 || sequence >= layout.Sequences)
                    throw new ArgumentOutOfRangeException(nameof(sequences), sequence, $"{layout.Name}.Append: sequences[{i}] = {sequence} is outside 0 to Sequences - 1 = {layout.Sequences - 1}");
                if (_named[sequence])
                    throw new ArgumentException($"{layout.Name}.Append: sequence {sequence} is named twice", nameof(sequences));
                _named[sequence] = true;
                if (lengths[i] < 1)
                    throw new ArgumentOutOfRangeException(nameof(lengths), lengths[i], $"{layout.Name}.Append: lengths[{i}] = {lengths[i]} is below 1");
                if (_cacheLengths[sequence] + (long)lengths[i] > layout.SeqLen)
                    throw new InvalidOperationException($"{layout.Name}: sequence {sequence} holds {_cacheLengths[sequence]} cached positions; {lengths[i]} more exceed SeqLen = {layout.SeqLen}");
                _positions[i] = _cacheLengths[sequence];
                total += lengths[i];
            }
        }
        finally
        {
            foreach (int sequence in sequences)
                if (sequence >= 0 && sequence < layout.Sequences) _named[sequence] = false;
        }
        if (total != tokens.Length)
            throw new ArgumentException($"{layout.Name}.Append: the lengths add up to {total} tokens, but {tokens.Length} were given", nameof(lengths));
        if (total > layout.InferenceTokens)
            throw new ArgumentException($"{layout.Name}.Append: {total} tokens exceed the {layout.InferenceTokens} one pass takes (InferenceTokens); give long prompts over several calls", nameof(tokens));
        CheckIds(tokens, nameof(tokens), layout.Vocab, allowIgnored: false);
        InferCore(tokens, new CachedSequences(lengths, _positions.AsSpan(0, lengths.Length), sequences));
        for (int i = 0; i < lengths.Length; i++) _cacheLengths[sequences[i]] += lengths[i];
        _appended = lengths.Length;
        return InferenceLogitRows(lengths.Length);
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by <c>output.Length</c> tokens drawn by <paramref name="sampler"/>,
    /// with the key/value cache. When the sequence reaches <c>SeqLen</c>, the cache is rebuilt from the most
    /// recent half of the window, so generation can go on indefinitely. The sampler's penalties read the whole prompt
    /// and the tokens drawn so far. Allocates nothing.
    /// </summary>
    public void Generate(ReadOnlySpan<int> prompt, Span<int> output, Sampler sampler) => Generate(prompt, output, sampler, []);

    /// <summary>
    /// As <see cref="Generate(ReadOnlySpan{int}, Span{int}, Sampler)"/>, but ends at the first token drawn that is one of
    /// <paramref name="stopTokens"/> (an end of sequence, such as <c>Layout.EndTokens</c>), which is not written.
    /// </summary>
    /// <returns>The tokens written to <paramref name="output"/>: all of it unless a stop token came first.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A stop token is outside the vocabulary.</exception>
    public int Generate(ReadOnlySpan<int> prompt, Span<int> output, Sampler sampler, ReadOnlySpan<int> stopTokens)
    {
        using CallScope scope = Enter("Generate");
        ArgumentNullException.ThrowIfNull(sampler);
        if (prompt.IsEmpty) throw new ArgumentException("the prompt needs at least one token", nameof(prompt));
        CheckIds(stopTokens, nameof(stopTokens), Layout.Vocab, allowIgnored: false);
        int window = Layout.SeqLen;
        _cacheLengths[0] = 0;
        // The window holds the tokens the cache was built from, so it can be rebuilt when full.
        int held = Math.Min(prompt.Length, window);
        prompt[^held..].CopyTo(_window);
        ReadOnlySpan<float> logits = Append(_window.AsSpan(0, held));
        for (int i = 0; i < output.Length; i++)
        {
            int next = sampler.Sample(logits, prompt, output[..i]);
            if (stopTokens.Contains(next)) return i;
            output[i] = next;
            if (i == output.Length - 1) break;
            if (held == window)
            {
                int keep = Math.Max(1, window / 2);
                _window.AsSpan(window - keep + 1, keep - 1).CopyTo(_window);
                held = keep - 1;
                _window[held++] = next;
                _cacheLengths[0] = 0;
                logits = Append(_window.AsSpan(0, held));
            }
            else
            {
                _window[held++] = next;
                logits = Append(_window.AsSpan(held - 1, 1));
            }
        }
        return output.Length;
    }

    /// <summary>
    /// Writes the model as a GGUF v3 file for llama.cpp (<see cref="GgufExport.Save"/>): the <c>llama</c> architecture for
    /// Llama/Qwen2/SmolLM-shaped models, <c>qwen3</c> for Qwen3, <c>phi3</c> for Phi-3, <c>gemma3</c> for Gemma 3, <c>gpt2</c>
    /// for GPT-2, with F32, BF16 or Q8_0 weight matrices.
    /// </summary>
    /// <remarks>
    /// The tensors are read one at a time from whatever form the instance holds them in, which does not change: a packed
    /// matrix (panels, bf16, 8 bits) is unpacked into a copy, one matrix at a time, so weights shared with other instances
    /// export too, and a large model needs one matrix in fp32 beside it rather than all of them. A model of several
    /// parameter segments exports the same way.
    /// </remarks>
    public GgufExportReport SaveGguf(string path, GgufExportOptions options)
    {
        using CallScope scope = Enter("SaveGguf");
        return GgufExport.Write(this, path, options);
    }

    /// <summary>
    /// Writes the model as a GGUF v3 file with the hyperparameters of the Hugging Face <paramref name="config"/> it was
    /// compiled from, weight matrices of <paramref name="tensorType"/>, and <paramref name="vocabulary"/> (null: a synthetic
    /// one of the model's size, for feeding token ids).
    /// </summary>
    public GgufExportReport SaveGguf(string path, string config, GgufTensorType tensorType = GgufTensorType.F32, GgufVocabulary? vocabulary = null) =>
        SaveGguf(path, new GgufExportOptions { Hyperparameters = GgufHyperparameters.FromConfig(config), TensorType = tensorType, Vocabulary = vocabulary });

    /// <summary>
    /// Writes the model as an ONNX graph of standard operators (opset 17, <see cref="OnnxExport"/>): <c>input_ids</c> and
    /// <c>attention_mask</c> <c>[batch, sequence]</c> in, <c>logits</c> <c>[batch, sequence, Vocab]</c> out, any batch and any
    /// length up to SeqLen, no key/value cache. A model compiled from a Hugging Face config needs that config's path in
    /// <paramref name="options"/>.
    /// </summary>
    /// <remarks>
    /// An inference instance whose matrices are in the kernels' panel layout is unpacked while the file is written. A graph
    /// that would not fit one protobuf message (2 GiB) keeps its large initializers in a data file beside it
    /// (<see cref="OnnxExportOptions.ExternalData"/>, <c>Auto</c> by default; <c>model.onnx.data</c> unless
    /// <see cref="OnnxExportOptions.ExternalDataFile"/> names another); both files are written under temporary names and
    /// renamed when complete.
    /// </remarks>
    /// <exception cref="NotSupportedException">The model has a part that no standard ONNX graph computes (the message says why).</exception>
    public OnnxExportReport SaveOnnx(string path, OnnxExportOptions? options = null)
    {
        using CallScope scope = Enter("SaveOnnx");
        WholeParameters("SaveOnnx");
        return WithUnpackedWeights(() => OnnxExport.Write(this, path, options));
    }

    /// <inheritdoc />
    protected override void OnParametersReplaced()
    {
        Array.Clear(_cacheLengths);
        _appended = 0;
    }

    /// <summary>The final-norm hidden states of the last new token of each of the last pass's <paramref name="sequences"/> sequences, where the model exposes them.</summary>
    /// <exception cref="InvalidOperationException">The model does not expose them.</exception>
    protected virtual ReadOnlySpan<float> InferenceLastHiddenStates(int sequences) =>
        throw new InvalidOperationException($"{Layout.Name} does not expose its hidden states (models compiled from a Hugging Face config do)");

    /// <summary>
    /// The generated cached inference pass: the new <paramref name="tokens"/> of <paramref name="sequences"/>, laid end to
    /// end; writes the logits of each sequence's last position, one row per sequence.
    /// </summary>
    protected abstract void InferCore(ReadOnlySpan<int> tokens, CachedSequences sequences);

    /// <summary>
    /// One layer's cached self-attention over several sequences: the keys and values of each sequence's new rows join that
    /// sequence's cache slot (at its cached length), and each new query attends to its own sequence's cache, causally.
    /// </summary>
    /// <param name="qkv">Packed rows <c>[n, rowStride]</c>: queries at column 0, keys at <paramref name="keyColumn"/>, values at <paramref name="valueColumn"/>.</param>
    /// <param name="rowStride">Floats per row.</param>
    /// <param name="keyColumn">Where the keys start in a row.</param>
    /// <param name="valueColumn">Where the values start in a row.</param>
    /// <param name="width">Floats of the keys (and of the values): key/value heads × headDim.</param>
    /// <param name="keyOffset">Where this layer's keys start in a cache slot.</param>
    /// <param name="valueOffset">Where this layer's values start in a cache slot.</param>
    /// <param name="output">Heads concatenated <c>[n, heads·headDim]</c>.</param>
    /// <param name="sequences">The sequences of the call.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="headDim">Channels per head.</param>
    /// <param name="window">0 for no window; otherwise a query sees only the keys within this distance.</param>
    /// <param name="kvHeads">Key/value heads (grouped-query attention), or 0 for one per query head.</param>
    /// <param name="scale">Factor of the raw scores; 0 for 1/√headDim.</param>
    protected void AttendCached(ReadOnlySpan<float> qkv, int rowStride, int keyColumn, int valueColumn, int width, int keyOffset, int valueOffset,
        Span<float> output, CachedSequences sequences, int heads, int headDim, int window = 0, int kvHeads = 0, float scale = 0f)
    {
        Span<float> cache = KeyValueBuffer;
        int row = 0;
        for (int s = 0; s < sequences.Count; s++)
        {
            Span<float> slot = cache.Slice(sequences.Slots[s] * _slotLength, _slotLength);
            int position0 = sequences.Positions[s];
            for (int i = 0; i < sequences.Lengths[s]; i++, row++)
            {
                ReadOnlySpan<float> r = qkv.Slice(row * rowStride, rowStride);
                r.Slice(keyColumn, width).CopyTo(slot.Slice(keyOffset + (position0 + i) * width, width));
                r.Slice(valueColumn, width).CopyTo(slot.Slice(valueOffset + (position0 + i) * width, width));
            }
        }
        Kernels.Attention.ForwardCachedSequences(qkv, rowStride, cache, _slotLength, keyOffset, valueOffset, output, ScoreBuffer,
            sequences.Lengths, sequences.Positions, sequences.Slots, heads, headDim, window, kvHeads, scale);
    }

    /// <summary>
    /// Moves the last row of each sequence of <paramref name="rows"/> (<c>[Σ lengths, width]</c>, sequences end to end) to
    /// row s, in place, so the head runs on one row per sequence. Row s is never a later sequence's last row, so nothing
    /// still to be moved is overwritten.
    /// </summary>
    protected static void GatherLastRows(Span<float> rows, ReadOnlySpan<int> lengths, int width)
    {
        int end = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            end += lengths[s];
            if (end - 1 != s) rows.Slice((end - 1) * width, width).CopyTo(rows.Slice(s * width, width));
        }
    }

    private int CheckSequence(int sequence) => (uint)sequence < (uint)_cacheLengths.Length
        ? sequence
        : throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"{Layout.Name} holds sequences 0 to Sequences - 1 = {_cacheLengths.Length - 1}");
}
