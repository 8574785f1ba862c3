using System;

namespace TransformerGen;

/// <summary>
/// An encoder-only model (BERT): trained with <see cref="TransformerModel.Forward"/> on one class per sequence or
/// per token; <see cref="Predict(ReadOnlySpan{int}, ReadOnlySpan{int})"/> runs sequences at their own lengths.
/// </summary>
/// <remarks>
/// <para>
/// Prediction is an exact-length pass: sequences of any length from 1 to SeqLen lie end to end in one span, with no
/// padding between them, and a call costs what its tokens cost. The matrix products, norms and activations run over
/// the tokens given; positions, attention and pooling restart at each sequence, and a query sees only the keys of its
/// own sequence. SeqLen and Batch stay the compile-time maxima that the workspace is sized for, so nothing is allocated
/// per call. A sentence gets the same output at its own length as padded to SeqLen (padding is masked when the model
/// has a padding id: as keys and in mean pooling), and padding ids inside the tokens given are masked the same way.
/// </para>
/// <para>
/// An instance from <c>ForInference</c> holds only the weights and that workspace. A training instance also predicts
/// at exact lengths, except for a call with exactly <c>Batch·SeqLen</c> tokens, which keeps the padded batched forward
/// pass (with dropout off) so that <see cref="TransformerModel.Logits"/>, <see cref="TransformerModel.LastHiddenState"/>,
/// attention maps and <see cref="TransformerModel.Backward(ReadOnlySpan{float})"/> follow it, as fine-tuning with a loss
/// of one's own needs.
/// </para>
/// </remarks>
public abstract class EncoderModel : TransformerModel
{
    private readonly int[] _noTargets;
    // The lengths of a one-sequence call, and those of a padded batch (Batch sequences of SeqLen).
    private readonly int[] _oneLength = new int[1];
    private readonly int[] _batchLengths;
    // 1 where a token given to an exact-length pass is padding (only when the model has a padding id).
    private readonly byte[] _padding;
    // The token types (segments) of the current exact-length pass, when its caller gave them; otherwise all type 0.
    private readonly int[] _types;
    private bool _hasTypes;
    private int _tokenCount;
    private PredictPath _lastPath;

    private enum PredictPath { None, Batched, ExactLength }

    /// <summary>Allocates every buffer and initializes the parameters from <paramref name="seed"/>.</summary>
    protected EncoderModel(ModelLayout layout, ulong seed) : this(layout, seed, ModelUse.Training, initialize: true) { }

    /// <summary>Allocates the buffers <paramref name="use"/> needs; initializes the parameters from <paramref name="seed"/> when <paramref name="initialize"/> is true.</summary>
    protected EncoderModel(ModelLayout layout, ulong seed, ModelUse use, bool initialize, WeightType weights = WeightType.Float32, ModelWeights? shared = null) : base(layout, seed, use, initialize, weights, shared)
    {
        _noTargets = new int[use == ModelUse.Training ? layout.TargetLength : 0];
        _noTargets.AsSpan().Fill(-1);
        _batchLengths = new int[layout.Batch];
        _batchLengths.AsSpan().Fill(layout.SeqLen);
        _padding = new byte[layout.PadToken >= 0 ? layout.TokensPerStep : 0];
        _types = new int[layout.TokenTypes > 0 ? layout.TokensPerStep : 0];
    }

    /// <summary>
    /// <see cref="TransformerModel.Forward"/> with each token's type (segment) for BERT's token-type embedding: 0 for the
    /// first sentence of a pair, 1 for the second, as Hugging Face's <c>token_type_ids</c> (the plain Forward takes
    /// every token as type 0). <see cref="TransformerModel.Backward()"/> after it follows the same types.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no token types.</exception>
    /// <exception cref="ArgumentException"><paramref name="tokenTypes"/> is not as long as <paramref name="tokens"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A type is outside the model's token-type table; the message names its position.</exception>
    public float Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> tokenTypes, ReadOnlySpan<int> targets)
    {
        using CallScope scope = Enter("Forward");
        CheckTypes(tokens, tokenTypes);
        return ForwardBatch(tokens, tokenTypes, targets);
    }

    /// <summary>
    /// <see cref="Predict(ReadOnlySpan{int}, ReadOnlySpan{int})"/> with each token's type (segment), in the layout of
    /// <paramref name="tokens"/>: a cross-encoder's or an NLI classifier's sentence pairs, <c>[CLS] a [SEP] b [SEP]</c>
    /// with type 0 up to the first <c>[SEP]</c> and 1 after it, as Hugging Face's <c>token_type_ids</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no token types.</exception>
    /// <exception cref="ArgumentException"><paramref name="tokenTypes"/> is not as long as <paramref name="tokens"/>, or as the other overload says.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A type is outside the model's token-type table, or as the other overload says.</exception>
    public ReadOnlySpan<float> Predict(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths, ReadOnlySpan<int> tokenTypes)
    {
        using CallScope scope = Enter("Predict");
        CheckTypes(tokens, tokenTypes);
        CheckLengths(tokens, lengths);
        return PredictExactLength(tokens, lengths, tokenTypes);
    }

    private void CheckTypes(ReadOnlySpan<int> tokens, ReadOnlySpan<int> tokenTypes) => CheckTypes(tokens, tokenTypes, Layout, nameof(tokenTypes));

    /// <summary>Token types a model of <paramref name="layout"/> takes with <paramref name="tokens"/>: one per token, each a row of its token-type table.</summary>
    /// <exception cref="InvalidOperationException">The model has no token types.</exception>
    /// <exception cref="ArgumentException">Not one type per token.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A type outside the table; the message names its position.</exception>
    internal static void CheckTypes(ReadOnlySpan<int> tokens, ReadOnlySpan<int> tokenTypes, ModelLayout layout, string parameter)
    {
        if (layout.TokenTypes == 0)
            throw new InvalidOperationException($"{layout.Name} has no token-type embedding: give it tokens alone");
        if (tokenTypes.Length != tokens.Length)
            throw new ArgumentException($"{layout.Name}: {tokens.Length} tokens need as many token types, got {tokenTypes.Length}", parameter);
        for (int i = 0; i < tokenTypes.Length; i++)
            if ((uint)tokenTypes[i] >= (uint)layout.TokenTypes)
                throw new ArgumentOutOfRangeException(parameter, tokenTypes[i], $"{layout.Name}: the token type at position {i} is {tokenTypes[i]}, outside 0 to {layout.TokenTypes - 1} (type_vocab_size {layout.TokenTypes})");
    }

    /// <summary>
    /// The output of one sequence of 1 to SeqLen ids at its own length, or (exactly <c>Batch·SeqLen</c> ids) of a padded
    /// batch of Batch sequences of SeqLen: <c>[sequences, Classes]</c> class logits for a classifier, <c>[sequences,
    /// DModel]</c> unit-length embeddings for a sentence embedder, and <c>[tokens, Classes]</c> for a tagger, one row per
    /// token given. Dropout is off. The span is valid until the next call; allocates nothing.
    /// </summary>
    /// <exception cref="ArgumentException">No tokens, or more than SeqLen that are not exactly <c>Batch·SeqLen</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token id is outside the vocabulary; the message names the position.</exception>
    public ReadOnlySpan<float> Predict(ReadOnlySpan<int> tokens)
    {
        using CallScope scope = Enter("Predict");
        ModelLayout layout = Layout;
        if (tokens.Length == layout.TokensPerStep && Use == ModelUse.Training) return PredictBatched(tokens);
        if (tokens.Length == layout.TokensPerStep && layout.Batch > 1) return PredictExactLength(tokens, _batchLengths);
        if (tokens.Length < 1 || tokens.Length > layout.SeqLen)
        {
            string batch = layout.Batch > 1
                ? $", or a padded batch of exactly Batch·SeqLen = {layout.TokensPerStep}; for several sequences of their own lengths call Predict(tokens, lengths)"
                : "";
            throw new ArgumentException($"{layout.Name}.Predict got {tokens.Length} tokens: one sequence holds 1 to SeqLen = {layout.SeqLen}{batch}", nameof(tokens));
        }
        _oneLength[0] = tokens.Length;
        return PredictExactLength(tokens, _oneLength);
    }

    /// <summary>
    /// The output of up to Batch sequences laid end to end in <paramref name="tokens"/> with no padding: sequence s is the
    /// <c>lengths[s]</c> ids after those of the sequences before it, and attends only to itself. Returns one row per
    /// sequence (<c>[lengths.Length, Classes]</c> class logits, or <c>[lengths.Length, DModel]</c> unit-length embeddings
    /// for a sentence embedder), or, for a tagger, one row per token in the layout of <paramref name="tokens"/>
    /// (<c>[tokens.Length, Classes]</c>). Dropout is off. The span is valid until the next call; allocates nothing.
    /// </summary>
    /// <param name="tokens">The ids of every sequence, one after another (<c>Σ lengths</c> in all).</param>
    /// <param name="lengths">How many ids each sequence has: 1 to Batch sequences of 1 to SeqLen ids.</param>
    /// <exception cref="ArgumentException">No sequence or more than Batch, or the lengths do not add up to <c>tokens.Length</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A length is outside 1..SeqLen, or a token id outside the vocabulary; the message names which.</exception>
    public ReadOnlySpan<float> Predict(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths)
    {
        using CallScope scope = Enter("Predict");
        CheckLengths(tokens, lengths);
        return PredictExactLength(tokens, lengths);
    }

    private void CheckLengths(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths)
    {
        ModelLayout layout = Layout;
        if (lengths.Length < 1 || lengths.Length > layout.Batch)
            throw new ArgumentException($"{layout.Name}.Predict takes 1 to Batch = {layout.Batch} sequences, got {lengths.Length} lengths", nameof(lengths));
        long total = 0;
        for (int s = 0; s < lengths.Length; s++)
        {
            if (lengths[s] < 1 || lengths[s] > layout.SeqLen)
                throw new ArgumentOutOfRangeException(nameof(lengths), lengths[s], $"{layout.Name}.Predict: lengths[{s}] = {lengths[s]} is outside 1 to SeqLen = {layout.SeqLen}");
            total += lengths[s];
        }
        if (total != tokens.Length)
            throw new ArgumentException($"{layout.Name}.Predict: the lengths add up to {total} tokens, but {tokens.Length} were given", nameof(lengths));
    }

    /// <summary>
    /// The last hidden state of the tokens of the last <c>Predict</c>, <c>[tokens, DModel]</c>, rows in the layout the
    /// tokens were given in (Hugging Face's <c>last_hidden_state</c>, padding rows included where the tokens were padded).
    /// After a training instance's batched <c>Predict</c> this is <see cref="TransformerModel.LastHiddenState"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No Predict ran yet, or the model does not expose its hidden state.</exception>
    public ReadOnlySpan<float> PredictedHiddenState => _lastPath switch
    {
        PredictPath.Batched => LastHiddenState,
        PredictPath.ExactLength => InferenceHiddenState(_tokenCount),
        _ => throw new InvalidOperationException($"{Layout.Name}.PredictedHiddenState needs a Predict first"),
    };

    private ReadOnlySpan<float> PredictBatched(ReadOnlySpan<int> tokens)
    {
        bool training = Training;
        Training = false;
        try
        {
            Forward(tokens, _noTargets);
        }
        finally
        {
            Training = training;
        }
        _lastPath = PredictPath.Batched;
        return Logits;
    }

    private ReadOnlySpan<float> PredictExactLength(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths, ReadOnlySpan<int> tokenTypes = default)
    {
        CheckIds(tokens, nameof(tokens), Layout.Vocab, allowIgnored: false);
        for (int s = 0, start = 0; s < lengths.Length; start += lengths[s], s++)
            CheckSequencePadding(tokens.Slice(start, lengths[s]), start);
        tokenTypes.CopyTo(_types);
        _hasTypes = !tokenTypes.IsEmpty;
        int pad = Layout.PadToken;
        if (pad >= 0)
            for (int i = 0; i < tokens.Length; i++) _padding[i] = tokens[i] == pad ? (byte)1 : (byte)0;
        _tokenCount = tokens.Length;
        _lastPath = PredictPath.ExactLength;
        return PredictCore(tokens, lengths);
    }

    /// <summary>
    /// The generated exact-length pass over <paramref name="tokens"/>, sequences of <paramref name="lengths"/> laid end
    /// to end (checked by the caller); returns the output rows in the inference workspace.
    /// </summary>
    protected abstract ReadOnlySpan<float> PredictCore(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lengths);

    /// <summary>The last hidden state <c>[n, DModel]</c> of the last exact-length pass over <paramref name="n"/> tokens, where the model exposes it.</summary>
    /// <exception cref="InvalidOperationException">The model does not expose it.</exception>
    protected virtual ReadOnlySpan<float> InferenceHiddenState(int n) =>
        throw new InvalidOperationException($"{Layout.Name} does not expose its last hidden state (models compiled from a Hugging Face config do)");

    /// <summary>1 where a token of the current exact-length pass is padding; empty when the model has no padding id.</summary>
    protected ReadOnlySpan<byte> PredictPadding => _padding.AsSpan(0, _padding.Length == 0 ? 0 : _tokenCount);

    /// <summary>The token types (segments) of the current exact-length pass; empty when every token is of type 0.</summary>
    protected ReadOnlySpan<int> PredictTokenTypes => _hasTypes ? _types.AsSpan(0, _tokenCount) : default;

    /// <summary>
    /// Writes the model as an ONNX graph of standard operators (opset 17, <see cref="OnnxExport"/>): <c>input_ids</c> and
    /// <c>attention_mask</c> (and BERT's <c>token_type_ids</c>) <c>[batch, sequence]</c> in; <c>last_hidden_state</c> and the
    /// head's output (<c>sentence_embedding</c> or class <c>logits</c>) out; any batch and any length up to SeqLen. A model
    /// compiled from a Hugging Face config needs that config's path in <paramref name="options"/>.
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

    /// <summary>The most likely class of each row of <paramref name="logits"/>, written to <paramref name="classes"/>.</summary>
    public static void ArgMax(ReadOnlySpan<float> logits, int classCount, Span<int> classes)
    {
        if (classCount <= 0 || logits.Length != classes.Length * classCount)
            throw new ArgumentException($"{logits.Length} logits do not split into {classes.Length} rows of {classCount}", nameof(logits));
        for (int row = 0; row < classes.Length; row++)
        {
            ReadOnlySpan<float> r = logits.Slice(row * classCount, classCount);
            int best = 0;
            for (int k = 1; k < r.Length; k++) if (r[k] > r[best]) best = k;
            classes[row] = best;
        }
    }
}
