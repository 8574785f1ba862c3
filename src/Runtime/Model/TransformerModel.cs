using System;
using System.Collections.Generic;
using System.Numerics.Tensors;

namespace TransformerGen;

/// <summary>
/// The part of every generated model that does not depend on its shape: buffers, input checks, the training
/// protocol (<see cref="Forward"/>, <see cref="Backward()"/>, <see cref="ZeroGrad"/>), checkpoints and
/// cached decoding. The generated half supplies the layers, unrolled, with every size and offset a literal.
/// </summary>
/// <remarks>
/// All memory is allocated by the constructor; afterwards training steps and decoding allocate nothing.
/// An instance is not thread-safe.
/// </remarks>
public abstract partial class TransformerModel : ITrainableParameters
{
    private readonly ModelLayout _layout;
    // Aligned so that every tensor of the memory plan starts on a cache line (see AlignedBuffer).
    private readonly AlignedBuffer _parameters, _gradients, _activations, _activationGradients, _constants;
    // The parameter segments after the first, for a model of more parameter floats than one array holds (usually none).
    private readonly AlignedBuffer[] _parameterSegments;
    private readonly AlignedBuffer _inference, _keyValues, _scores;
    private readonly int[] _tokens, _targets, _decoderTokens;
    private readonly byte[] _tokenPadding, _decoderPadding;
    // The token types (segments) of the last batched Forward, when its caller gave them; otherwise every token is of type 0.
    private readonly int[] _tokenTypes;
    private bool _hasTokenTypes;
    private bool _forwardDone;
    private readonly CallGate _gate;

    /// <summary>Allocates every buffer the layout names and initializes the parameters from <paramref name="seed"/>.</summary>
    protected TransformerModel(ModelLayout layout, ulong seed) : this(layout, seed, ModelUse.Training, initialize: true) { }

    /// <summary>
    /// Allocates the buffers that <paramref name="use"/> needs (see <see cref="ModelUse"/>) and, when
    /// <paramref name="initialize"/> is true, initializes the parameters from <paramref name="seed"/> (a model whose
    /// parameters are loaded next skips that: they are zero until then, and its factory calls <see cref="PackWeights"/>
    /// once they are loaded). An inference instance holds its weight matrices as <paramref name="weights"/> says, or
    /// reads <paramref name="shared"/> (then neither allocated nor initialized here, and of its weight type).
    /// </summary>
    /// <exception cref="ArgumentException">A training instance with weights other than fp32 or with shared weights; shared weights of another model.</exception>
    protected TransformerModel(ModelLayout layout, ulong seed, ModelUse use, bool initialize, WeightType weights = WeightType.Float32, ModelWeights? shared = null)
    {
        _layout = layout ?? throw new ArgumentNullException(nameof(layout));
        layout.CheckSegments();
        _gate = new CallGate(layout.Name);
        if (use is not (ModelUse.Training or ModelUse.Inference)) throw new ArgumentOutOfRangeException(nameof(use), use, "not a ModelUse");
        if (weights is not (WeightType.Float32 or WeightType.BFloat16 or WeightType.Int8)) throw new ArgumentOutOfRangeException(nameof(weights), weights, "not a WeightType");
        if (use == ModelUse.Training && layout.ParameterSegments.Count > 1)
            throw new NotSupportedException($"{layout.Name} has {layout.TotalParameterFloats.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} parameter floats, more than one span holds (2³¹ − 1), in {layout.ParameterSegments.Count} segments: it runs for inference only (ForInference, LoadWeights); training needs its parameters and gradients as one span each");
        if (use == ModelUse.Training && weights != WeightType.Float32)
            throw new ArgumentException($"a {layout.Name} built for training holds fp32 weights (its backward pass and optimizer update them); {weights} weights are for inference instances", nameof(weights));
        if (shared is not null)
        {
            if (use != ModelUse.Inference)
                throw new ArgumentException($"a {layout.Name} built for training owns its weights (its optimizer updates them); shared weights are for inference instances", nameof(shared));
            if (!ReferenceEquals(shared.Layout, layout))
                throw new ArgumentException($"these weights are for {shared.Layout.Name}, not {layout.Name}", nameof(shared));
            weights = shared.WeightType;
            initialize = false;
        }
        Use = use;
        WeightType = weights;
        _shared = shared;
        bool training = use == ModelUse.Training;
        Training = training;
        // Only training runs the batched forward pass (inference runs exact-length passes in the inference workspace).
        bool forward = training;
        // The weights are streamed from memory by every pass (the whole matrix per decoded token): huge pages where the
        // system has them (WeightPageRanges). Training's other buffers gained nothing from them (base's step within ±3%
        // on 1 and 2 threads, compute-bound).
        _parameters = shared?.Buffer ?? new AlignedBuffer(layout.ParameterCount, WeightPageRanges(0));
        _parameterSegments = shared?.MoreSegments ?? new AlignedBuffer[layout.ParameterSegments.Count - 1];
        if (shared is null)
            for (int k = 0; k < _parameterSegments.Length; k++)
                _parameterSegments[k] = new AlignedBuffer(layout.ParameterSegments[k + 1], WeightPageRanges(k + 1));
        WeightsPacked = shared?.Packed ?? false;
        _gradients = new AlignedBuffer(training ? layout.ParameterCount : 0);
        _activations = new AlignedBuffer(forward ? layout.ActivationCount : 0);
        _activationGradients = new AlignedBuffer(training ? layout.ActivationGradientCount : 0);
        _constants = new AlignedBuffer(layout.ConstantCount);
        _inference = new AlignedBuffer(layout.InferenceCount);
        _keyValues = new AlignedBuffer(layout.KeyValueCount);
        _scores = new AlignedBuffer(Math.Max(layout.SeqLen, layout.DecoderSeqLen));
        _tokens = new int[forward ? layout.TokensPerStep : 0];
        _targets = new int[forward ? layout.TargetLength : 0];
        bool seq2seq = layout.Architecture == Architecture.EncoderDecoder;
        _decoderTokens = seq2seq && forward ? new int[layout.Batch * layout.DecoderSeqLen] : [];
        bool padding = layout.PadToken >= 0 && forward;
        _tokenPadding = padding ? new byte[layout.TokensPerStep] : [];
        _tokenTypes = layout.TokenTypes > 0 && forward ? new int[layout.TokensPerStep] : [];
        _decoderPadding = padding && seq2seq ? new byte[layout.Batch * layout.DecoderSeqLen] : [];
        Seed = seed;
        DropoutRng = new Rng(seed ^ 0xD50F_0A7E_5EED_0001UL);
        if (initialize)
        {
            InitializeParameters(seed);
            if (use == ModelUse.Inference) Pack();
        }
    }

    /// <summary>
    /// Enters the public member <paramref name="member"/> for the calling thread; throws if another thread is inside the
    /// instance (see <see cref="CallScope"/>). Every public member that reads or writes the instance's buffers opens one.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another thread is inside this instance; the message names both members.</exception>
    protected CallScope Enter(string member) => _gate.Enter(member);

    /// <summary>Enters <paramref name="model"/> for an optimizer's step when it is a generated model (other parameter holders have no gate).</summary>
    internal static CallScope Enter(ITrainableParameters model, string member) =>
        model is TransformerModel m ? m._gate.Enter(member) : default;

    /// <summary>What this instance was built for: <see cref="ModelUse.Inference"/> instances hold no gradients.</summary>
    public ModelUse Use { get; }

    /// <summary>
    /// Bytes of the float buffers this instance allocated (parameters, gradients, activations and their gradients,
    /// constants, the inference workspace, the key/value cache and the score row); the generated
    /// <c>TrainingBytes</c> and <c>InferenceBytes</c> constants give the same figure at compile time. Each buffer
    /// adds up to 60 bytes of alignment, and arrays of token ids are not counted. An instance that reads shared weights
    /// (<see cref="ModelWeights"/>) does not count them: they are allocated once, whatever the number of instances.
    /// </summary>
    public long BufferBytes => sizeof(float) * ((_shared is null ? _layout.TotalParameterFloats : 0) + _gradients.Length + _activations.Length + _activationGradients.Length
        + _constants.Length + _inference.Length + _keyValues.Length + _scores.Length);

    /// <summary>The model's compile-time layout: sizes and the parameter table.</summary>
    public ModelLayout Layout => _layout;

    /// <summary>The seed the parameters were initialized from.</summary>
    public ulong Seed { get; }

    /// <inheritdoc />
    /// <remarks>
    /// Always fp32 in PyTorch's layout, as <see cref="ParameterTensors"/> describe it. An inference instance whose
    /// matrices are packed (<see cref="WeightsPacked"/>: panels, bf16 or 8-bit, see <see cref="WeightType"/>) unpacks
    /// them when this is read (to the values it computes with: bf16 or dequantized 8-bit weights), and then runs the
    /// slower fp32 kernels over rows until <see cref="PackWeights"/> is called again; <see cref="CopyParametersTo"/>
    /// reads them without unpacking.
    /// </remarks>
    public Span<float> Parameters
    {
        get
        {
            using CallScope scope = Enter("Parameters");
            if (_shared is not null) throw SharedWeightsAreReadOnly("Parameters");
            Span<float> whole = WholeParameters("Parameters");
            if (WeightsPacked) UnpackWeights();
            return whole;
        }
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The instance was built for inference.</exception>
    public Span<float> Gradients => Use == ModelUse.Training ? _gradients.Span : throw NotForTraining("has no gradients");

    /// <inheritdoc />
    public IReadOnlyList<ParameterTensor> ParameterTensors => _layout.Tensors;

    /// <summary>When true (the default for a <see cref="ModelUse.Training"/> instance) dropout is active in <see cref="Forward"/>; set false to evaluate.</summary>
    public bool Training { get; set; }

    /// <summary>The logits of the last <see cref="Forward"/>: <c>[targets, target vocabulary]</c> (for a classifier, <c>[Batch, Classes]</c>).</summary>
    /// <exception cref="InvalidOperationException">The instance was built for inference and runs no batched forward pass.</exception>
    public ReadOnlySpan<float> Logits => _activations.Length > 0
        ? _activations.Span.Slice(_layout.LogitsOffset, _layout.LogitsLength)
        : throw NotForTraining("keeps no batched logits");

    /// <summary>
    /// The last hidden state of the last <see cref="Forward"/>, <c>[Batch·SeqLen, DModel]</c>: the encoder's output, or a
    /// decoder's after its final norm (what Hugging Face calls <c>last_hidden_state</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The model does not expose it, or keeps no batched activations.</exception>
    public ReadOnlySpan<float> LastHiddenState => _layout.HiddenStateOffset < 0
        ? throw new InvalidOperationException($"{_layout.Name} does not expose its last hidden state (models compiled from a Hugging Face config do)")
        : _activations.Length > 0 ? _activations.Span.Slice(_layout.HiddenStateOffset, _layout.HiddenStateLength) : throw NotForTraining("keeps no hidden states");

    /// <summary>
    /// An encoder–decoder's encoder output of the last <see cref="Forward"/>, <c>[Batch·SeqLen, DModel]</c>, what its
    /// cross-attention reads (after the encoder's final norm where it has one): Hugging Face's <c>encoder_last_hidden_state</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model is not an encoder–decoder, or keeps no batched activations.</exception>
    public ReadOnlySpan<float> EncoderHiddenState => _layout.EncoderStateOffset < 0
        ? throw new InvalidOperationException($"{_layout.Name} has no encoder–decoder's encoder output")
        : _activations.Length > 0 ? _activations.Span.Slice(_layout.EncoderStateOffset, _layout.EncoderStateLength) : throw NotForTraining("keeps no encoder output");

    /// <summary>
    /// The attention probabilities <c>[Batch, Heads, queries, keys]</c> of the last <see cref="Forward"/> in the
    /// named layer, e.g. <c>decoder.layers.0.cross_attention_probabilities</c> (see <see cref="ModelLayout.AttentionMaps"/>
    /// and <see cref="ModelLayout.TiledAttentionMaps"/>). Attention that keeps its probabilities returns a view of them;
    /// tiled attention (<c>AttentionKernel.Tiled</c>, or <c>Auto</c> at long sequences) keeps none, and its map is
    /// recomputed from the last forward's queries, keys and softmax statistics into a new array at each call.
    /// </summary>
    /// <exception cref="ArgumentException">No attention map has that name; the message lists those that exist.</exception>
    public ReadOnlySpan<float> AttentionMap(string name)
    {
        foreach (ActivationTensor t in _layout.AttentionMaps)
            if (t.Name == name)
                return _activations.Length > 0 ? _activations.Span.Slice(t.Offset, t.Length) : throw NotForTraining("keeps no attention maps");
        foreach (TiledAttentionMap t in _layout.TiledAttentionMaps)
            if (t.Name == name)
                return _activations.Length > 0
                    ? t.Recompute(_activations.Span, t.KeyPadding == 1 ? _tokenPadding : t.KeyPadding == 2 ? _decoderPadding : default)
                    : throw NotForTraining("keeps no attention maps");
        var names = new List<string>();
        foreach (ActivationTensor t in _layout.AttentionMaps) names.Add(t.Name);
        foreach (TiledAttentionMap t in _layout.TiledAttentionMaps) names.Add(t.Name);
        throw new ArgumentException($"{_layout.Name} has no attention map '{name}'; it has: {string.Join(", ", names)}", nameof(name));
    }

    /// <summary>
    /// Runs the model on <c>Batch·SeqLen</c> input ids (row-major <c>[Batch, SeqLen]</c>) and returns the mean
    /// cross-entropy over the targets that are not negative (a negative target is ignored, like PyTorch's
    /// <c>ignore_index</c>; so is a padding target). Returns 0 when every target is ignored. The targets are:
    /// the next token at each position (decoder-only); the target sequence <c>[Batch, TargetSeqLen]</c>, which the
    /// decoder also reads shifted right behind the begin token (encoder–decoder); one class per sequence or per
    /// token (encoder-only).
    /// </summary>
    /// <exception cref="ArgumentException">A span has the wrong length.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token or target id is out of range; the message names the position.</exception>
    public float Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets)
    {
        using CallScope scope = Enter("Forward");
        return ForwardBatch(tokens, default, targets);
    }

    /// <summary><see cref="Forward"/> once the caller holds the guard; <paramref name="tokenTypes"/> empty for all type 0 (checked by the caller otherwise).</summary>
    private protected float ForwardBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<int> tokenTypes, ReadOnlySpan<int> targets)
    {
        if (_tokens.Length == 0) throw NotForTraining("cannot run the batched Forward; use its inference methods");
        int count = _layout.TokensPerStep;
        if (tokens.Length != count)
            throw new ArgumentException($"{_layout.Name}.Forward needs Batch·SeqLen = {_layout.Batch}·{_layout.SeqLen} = {count} tokens, got {tokens.Length}", nameof(tokens));
        if (targets.Length != _layout.TargetLength)
            throw new ArgumentException($"{_layout.Name}.Forward needs {_layout.TargetLength} targets, got {targets.Length}", nameof(targets));
        CheckIds(tokens, nameof(tokens), _layout.Vocab, allowIgnored: false);
        // A model of scores (no loss of its own) reads no targets: any values stand for the shape.
        if (!_layout.SeededOutput) CheckIds(targets, nameof(targets), _layout.TargetVocab, allowIgnored: true);
        CheckTrailingPadding(tokens, _layout.SeqLen);
        PrepareInputs(tokens, targets);
        if (!tokenTypes.IsEmpty)
        {
            tokenTypes.CopyTo(_tokenTypes);
            _hasTokenTypes = true;
        }
        float loss = ForwardCore();
        _forwardDone = true;
        return loss;
    }

    /// <summary>
    /// RoBERTa, XLM-RoBERTa and MPNet number positions from the padding id + 1 over the tokens that are not padding
    /// (transformers' <c>create_position_ids_from_input_ids</c>); the compiled model numbers them by place, which is the
    /// same when padding only follows a sequence's tokens. A padding id before a real token of its sequence (left
    /// padding) would get other positions than transformers gives, so it is refused.
    /// </summary>
    /// <exception cref="ArgumentException">A sequence of <paramref name="sequenceLength"/> tokens has padding before a real token.</exception>
    private protected void CheckTrailingPadding(ReadOnlySpan<int> tokens, int sequenceLength)
    {
        if (_layout.Family is not (CheckpointFamily.Roberta or CheckpointFamily.MPNet)) return;
        for (int start = 0; start < tokens.Length; start += sequenceLength)
            CheckSequencePadding(tokens.Slice(start, Math.Min(sequenceLength, tokens.Length - start)), start);
    }

    /// <summary>The check of <see cref="CheckTrailingPadding"/> for one sequence starting at <paramref name="offset"/> of the call's tokens.</summary>
    private protected void CheckSequencePadding(ReadOnlySpan<int> sequence, int offset)
    {
        if (_layout.Family is not (CheckpointFamily.Roberta or CheckpointFamily.MPNet)) return;
        int pad = sequence.IndexOf(_layout.PadToken);
        if (pad < 0) return;
        int after = sequence[pad..].IndexOfAnyExcept(_layout.PadToken);
        if (after >= 0)
            throw new ArgumentException($"{_layout.Name}: the padding id {_layout.PadToken} at token {offset + pad} comes before a real token at {offset + pad + after}; {_layout.Family}'s positions count only the tokens that are not padding, so pad after a sequence, not before", "tokens");
    }

    /// <summary>
    /// Copies the inputs into the model's own buffers and derives what the generated code reads: padding masks,
    /// padding targets turned into ignored ones, and the decoder's shifted input.
    /// </summary>
    private void PrepareInputs(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets)
    {
        tokens.CopyTo(_tokens);
        _hasTokenTypes = false;
        targets.CopyTo(_targets);
        int pad = _layout.PadToken;
        if (pad >= 0)
        {
            MarkPadding(_tokens, pad, _tokenPadding);
            bool tagging = _layout.Architecture == Architecture.EncoderOnly && _layout.TargetLength == _tokens.Length;
            if (tagging)
            {
                for (int i = 0; i < _targets.Length; i++) if (_tokenPadding[i] != 0) _targets[i] = -1;
            }
            else if (_layout.Architecture != Architecture.EncoderOnly)
            {
                for (int i = 0; i < _targets.Length; i++) if (_targets[i] == pad) _targets[i] = -1;
            }
        }
        if (_layout.Architecture == Architecture.EncoderDecoder)
        {
            // Teacher forcing: the decoder reads [BOS, y0, y1, …], the target shifted right; an ignored target
            // becomes padding (or BOS when the model has no padding id). mBART starts from the row's last label instead.
            int length = _layout.DecoderSeqLen, filler = pad >= 0 ? pad : _layout.BosToken;
            for (int b = 0; b < _layout.Batch; b++)
            {
                int row = b * length;
                int last = _layout.DecoderStartsFromLastLabel ? _targets.AsSpan(row, length).LastIndexOfAnyInRange(0, int.MaxValue) : -1;
                _decoderTokens[row] = last >= 0 ? _targets[row + last] : _layout.BosToken;
                for (int t = 1; t < length; t++)
                {
                    int previous = _targets[row + t - 1];
                    _decoderTokens[row + t] = previous >= 0 ? previous : filler;
                }
            }
            if (pad >= 0) MarkPadding(_decoderTokens, pad, _decoderPadding);
        }
    }

    /// <summary>
    /// Adds the gradient of the last <see cref="Forward"/>'s loss to <see cref="Gradients"/> (call
    /// <see cref="ZeroGrad"/> first to start from zero, as in PyTorch).
    /// </summary>
    /// <exception cref="InvalidOperationException">No <see cref="Forward"/> ran since the last backward pass.</exception>
    public void Backward()
    {
        using CallScope scope = Enter("Backward");
        if (Use != ModelUse.Training) throw NotForTraining("cannot run Backward");
        if (_layout.SeededOutput)
            throw new InvalidOperationException($"{_layout.Name} has no loss of its own: call Backward(outputGradient) with the gradient of your loss with respect to Logits");
        if (!_forwardDone) throw new InvalidOperationException($"{_layout.Name}.Backward needs a Forward first (each Forward allows one Backward)");
        _forwardDone = false;
        BackwardCore(); // clears each activation gradient just before its first use
    }

    /// <summary>
    /// The backward pass of a model without a loss of its own (<see cref="ModelLayout.SeededOutput"/>: a sentence
    /// embedder, a classifier of scores), from the gradient of the caller's loss with respect to <see cref="Logits"/> (the
    /// embeddings <c>[Batch, DModel]</c>, or the scores <c>[Batch, Classes]</c>): adds into <see cref="Gradients"/> as
    /// <see cref="Backward()"/> does.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model computes its own loss, or no Forward ran since the last backward pass.</exception>
    /// <exception cref="ArgumentException"><paramref name="outputGradient"/> does not have the length of <see cref="Logits"/>.</exception>
    public void Backward(ReadOnlySpan<float> outputGradient)
    {
        using CallScope scope = Enter("Backward");
        if (!_layout.SeededOutput)
            throw new InvalidOperationException($"{_layout.Name} computes its own loss in Forward; call Backward() without a gradient");
        if (outputGradient.Length != _layout.LogitsLength)
            throw new ArgumentException($"{_layout.Name}.Backward needs a gradient of {_layout.LogitsLength} floats (the output's), got {outputGradient.Length}", nameof(outputGradient));
        if (Use != ModelUse.Training) throw NotForTraining("cannot run Backward");
        if (!_forwardDone) throw new InvalidOperationException($"{_layout.Name}.Backward needs a Forward first (each Forward allows one Backward)");
        outputGradient.CopyTo(_activationGradients.Span.Slice(_layout.LogitsGradientOffset, _layout.LogitsLength));
        _forwardDone = false;
        BackwardCore();
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad()
    {
        using CallScope scope = Enter("ZeroGrad");
        if (Use != ModelUse.Training) throw NotForTraining("has no gradients");
        Kernels.Elementwise.ClearSplit(_gradients.Span);
    }

    private InvalidOperationException NotForTraining(string what) => new(
        $"this {_layout.Name} was built for inference (ForInference or FromBuiltInWeights) and {what}; construct it with new {_layout.Name}(seed) to train");

    /// <summary>
    /// One whole training step: forward, zeroed gradients, backward, optional clipping by global norm, and the
    /// optimizer's update. Returns the loss before the update.
    /// </summary>
    /// <remarks>
    /// A loss or gradient that is not finite is found before the update, in the pass that measures the clipping norm; the
    /// step is then refused (<see cref="NonFiniteStepException"/>, naming the first such tensor) or skipped and counted, as
    /// <see cref="NonFiniteSteps"/> says. Either way the parameters and the optimizer are left as they were.
    /// </remarks>
    /// <exception cref="NonFiniteStepException">The loss or a gradient is not finite and <see cref="NonFiniteSteps"/> is <see cref="NonFiniteStepPolicy.Throw"/>.</exception>
    public float TrainStep(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, IOptimizer optimizer, float maxGradientNorm = 0f)
    {
        using CallScope scope = Enter("TrainStep");
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = Forward(tokens, targets);
        ZeroGrad();
        Backward();
        UpdateIfFinite(loss, optimizer, maxGradientNorm);
        return loss;
    }

    /// <summary>
    /// One training step over <paramref name="microBatches"/> micro-batches of <c>Batch</c> sequences each (gradient
    /// accumulation): the gradient of the mean loss over every counted target of all of them, what a model declared with
    /// <c>microBatches·Batch</c> would compute, then clipping and one update of <paramref name="optimizer"/>, as
    /// <see cref="TrainStep(ReadOnlySpan{int}, ReadOnlySpan{int}, IOptimizer, float)"/>. Returns that mean loss.
    /// </summary>
    /// <param name="tokens"><c>microBatches·Batch·SeqLen</c> input ids: the micro-batches' inputs one after another.</param>
    /// <param name="targets"><c>microBatches</c> times what <see cref="Forward"/> takes, in the same order.</param>
    /// <param name="microBatches">How many micro-batches the spans hold, at least 1.</param>
    /// <param name="optimizer">The optimizer, stepped once.</param>
    /// <param name="maxGradientNorm">Clip the accumulated gradient to this global norm; 0 does not clip.</param>
    /// <remarks>
    /// The divergence guard (<see cref="NonFiniteSteps"/>) judges the accumulated step as a whole: one micro-batch with a
    /// non-finite loss or gradient refuses or skips the whole step. See <see cref="AccumulateGradients"/> for how the
    /// micro-batches are weighed. Allocates nothing.
    /// </remarks>
    /// <exception cref="NonFiniteStepException">The loss or a gradient is not finite and <see cref="NonFiniteSteps"/> is <see cref="NonFiniteStepPolicy.Throw"/>.</exception>
    public float TrainStep(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int microBatches, IOptimizer optimizer, float maxGradientNorm = 0f)
    {
        using CallScope scope = Enter("TrainStep");
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = AccumulateGradients(tokens, targets, microBatches);
        UpdateIfFinite(loss, optimizer, maxGradientNorm);
        return loss;
    }

    /// <summary>
    /// Sets <see cref="Gradients"/> to the gradient of the mean loss over <paramref name="microBatches"/> micro-batches of
    /// <c>Batch</c> sequences (a forward and a backward pass each) and returns that loss, without an optimizer step.
    /// </summary>
    /// <remarks>
    /// <para>Each micro-batch's loss is a mean over its own counted targets (<see cref="Forward"/>: negative and padding
    /// targets are not counted). With nⱼ targets counted in micro-batch j and N = Σ nⱼ, the loss returned is
    /// Σ nⱼ·lossⱼ / N and the gradient Σ nⱼ·gⱼ / N: every counted target weighs the same, however unevenly the ignored ones
    /// fall, as in one batch of <c>microBatches·Batch</c> sequences. A micro-batch with no counted target adds nothing and
    /// is not run; when no target at all is counted, the loss and the gradient are 0, as <see cref="Forward"/> gives.</para>
    /// <para>The backward pass adds each gⱼ into the gradient buffer unscaled, so the buffer is kept as Σᵢ (nᵢ/nⱼ)·gᵢ
    /// and rescaled by nⱼ/nⱼ₊₁ before the next micro-batch's backward pass (skipped when the counts are equal) and by
    /// n_last/N at the end: one extra pass over the gradients per change of count, and one at the end.</para>
    /// <para>All micro-batches are checked (lengths, ids) before any runs. Dropout draws its masks micro-batch by
    /// micro-batch, so with dropout on the masks differ from those of a larger declared batch.</para>
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="microBatches"/> is below 1, or an id is out of range (the message names the position).</exception>
    /// <exception cref="ArgumentException">A span is not <paramref name="microBatches"/> times the length <see cref="Forward"/> takes.</exception>
    public float AccumulateGradients(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, int microBatches)
    {
        using CallScope scope = Enter("AccumulateGradients");
        if (_tokens.Length == 0 || Use != ModelUse.Training) throw NotForTraining("cannot accumulate gradients");
        if (_layout.SeededOutput)
            throw new InvalidOperationException($"{_layout.Name} has no loss of its own: accumulate the gradients of your loss with Forward and Backward(outputGradient)");
        if (microBatches < 1) throw new ArgumentOutOfRangeException(nameof(microBatches), microBatches, "at least one micro-batch is needed");
        int tokenCount = _layout.TokensPerStep, targetCount = _layout.TargetLength;
        if (tokens.Length != (long)microBatches * tokenCount)
            throw new ArgumentException($"{_layout.Name}: {microBatches} micro-batches need {microBatches}·Batch·SeqLen = {microBatches}·{_layout.Batch}·{_layout.SeqLen} = {(long)microBatches * tokenCount} tokens, got {tokens.Length}", nameof(tokens));
        if (targets.Length != (long)microBatches * targetCount)
            throw new ArgumentException($"{_layout.Name}: {microBatches} micro-batches need {microBatches}·{targetCount} = {(long)microBatches * targetCount} targets, got {targets.Length}", nameof(targets));
        CheckIds(tokens, nameof(tokens), _layout.Vocab, allowIgnored: false);
        CheckIds(targets, nameof(targets), _layout.TargetVocab, allowIgnored: true);
        CheckTrailingPadding(tokens, _layout.SeqLen);

        ZeroGrad();
        _forwardDone = false;
        Span<float> gradients = _gradients.Span;
        double weightedLoss = 0;
        long total = 0;
        int held = 0; // the count the buffer's sum is divided by: that of the last micro-batch run, 0 before any
        for (int j = 0; j < microBatches; j++)
        {
            PrepareInputs(tokens.Slice(j * tokenCount, tokenCount), targets.Slice(j * targetCount, targetCount));
            int counted = CountedTargets();
            if (counted == 0) continue;
            float loss = ForwardCore();
            if (held != 0 && held != counted) TensorPrimitives.Multiply(gradients, (float)((double)held / counted), gradients);
            BackwardCore();
            held = counted;
            total += counted;
            weightedLoss += (double)counted * loss;
        }
        if (total == 0) return 0f;
        if (held != total) TensorPrimitives.Multiply(gradients, (float)((double)held / total), gradients);
        return (float)(weightedLoss / total);
    }

    /// <summary>How many of the stored targets the loss counts: those not negative once padding was turned into ignored.</summary>
    private int CountedTargets()
    {
        int counted = 0;
        foreach (int target in _targets) if (target >= 0) counted++;
        return counted;
    }

    /// <summary>What <c>TrainStep</c> does with a loss or gradient that is not finite: refuse the step (the default) or skip it.</summary>
    public NonFiniteStepPolicy NonFiniteSteps { get; set; } = NonFiniteStepPolicy.Throw;

    /// <summary>How many steps <c>TrainStep</c> skipped because their loss or gradients were not finite (<see cref="NonFiniteStepPolicy.Skip"/>).</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>
    /// The end of a training step: one pass over the gradients gives both the finiteness check and the clipping norm; then
    /// clipping and the optimizer's update, unless the check failed.
    /// </summary>
    private void UpdateIfFinite(float loss, IOptimizer optimizer, float maxGradientNorm)
    {
        Span<float> gradients = _gradients.Span;
        double sumOfSquares = GradientClipping.SumOfSquares(gradients);
        if (!float.IsFinite(loss) || !double.IsFinite(sumOfSquares))
        {
            if (NonFiniteSteps == NonFiniteStepPolicy.Skip)
            {
                SkippedSteps++;
                return;
            }
            throw NonFiniteGradients.Describe(_layout.Name, loss, _layout.Tensors, gradients, optimizer.StepCount);
        }
        if (maxGradientNorm > 0f) GradientClipping.ClipToNorm(gradients, maxGradientNorm, Math.Sqrt(sumOfSquares));
        optimizer.Step();
    }

    /// <summary>
    /// Writes the parameters to a safetensors file with PyTorch names, atomically (written beside the target,
    /// then renamed). <paramref name="metadata"/> is stored in the header's <c>__metadata__</c> beside the
    /// model's name and <c>format: pt</c>.
    /// </summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using CallScope scope = Enter("Save");
        var header = new Dictionary<string, string> { ["format"] = "pt", ["model"] = _layout.Name };
        if (metadata is not null)
            foreach (KeyValuePair<string, string> entry in metadata) header[entry.Key] = entry.Value;
        WithUnpackedWeights(() =>
        {
            if (_layout.Family == CheckpointFamily.Native) SafeTensors.Save(path, _layout.Tensors, WholeParameters("Save"), header);
            else HuggingFaceCheckpoint.Save(path, _layout.Tensors, WholeParameters("Save"), _layout.Family, header);
            return true;
        });
    }

    /// <summary>
    /// Writes a sentence embedder's parameters into <paramref name="folder"/> as sentence-transformers keeps them: the
    /// transformer's in <c>model.safetensors</c> (its family's names and layout, as <see cref="Save(string, IReadOnlyDictionary{string, string}?)"/>
    /// writes them) and each Dense layer's in <c>{module}/model.safetensors</c> as <c>linear.weight</c> and
    /// <c>linear.bias</c> (<c>2_Dense/</c>, …), each file written atomically. With the source folder's config.json,
    /// modules.json, the modules' configs and the tokenizer's files beside them, the folder loads in sentence-transformers
    /// (a fine-tuned model goes back to Python) and here.
    /// </summary>
    /// <exception cref="NotSupportedException">The model was not compiled from a Hugging Face config (its own layout has no such folder).</exception>
    public void SaveSentenceTransformers(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        using CallScope scope = Enter("SaveSentenceTransformers");
        if (_layout.Family == CheckpointFamily.Native)
            throw new NotSupportedException($"{_layout.Name} uses this project's own layout; a sentence-transformers folder holds a Hugging Face family's (compile the model from its config.json)");
        System.IO.Directory.CreateDirectory(folder);
        var header = new Dictionary<string, string> { ["format"] = "pt", ["model"] = _layout.Name };
        WithUnpackedWeights(() =>
        {
            HuggingFaceCheckpoint.SaveSentenceTransformers(folder, _layout.Tensors, WholeParameters("SaveSentenceTransformers"), _layout.Family, header);
            return true;
        });
    }

    /// <summary>
    /// Writes the parameters as <see cref="Save(string, IReadOnlyDictionary{string, string}?)"/> does, with the weight
    /// matrices (<see cref="ModelLayout.PackedMatrices"/>) stored as <paramref name="weights"/> says: BFloat16 as BF16
    /// tensors, Int8 as an I8 tensor of the matrix's name and shape beside an F16 tensor of its block scales named
    /// after it plus <see cref="SafeTensors.Int8ScaleSuffix"/> (blocks of 32 inputs, the arithmetic of
    /// <see cref="WeightType.Int8"/>). Everything else stays F32. The file is about a half (bf16) or a quarter (8 bits) of
    /// the fp32 one: for weights built into a program (<c>Weights =</c>), which then load into any instance, and into an
    /// instance of the same weight type exactly as they were saved.
    /// </summary>
    /// <remarks>
    /// A model compiled from a Hugging Face config writes its family's names and layout, as <see cref="Save(string, IReadOnlyDictionary{string, string}?)"/>
    /// does; matrices its family stores transposed (GPT-2's <c>Conv1D</c> weights, <c>[in, out]</c>) stay F32, since
    /// their blocks of 32 inputs would run down the file's columns. Such files are this project's (transformers does
    /// not read I8 tensors without a quantization config); <c>SaveGguf</c> writes what llama.cpp reads.
    /// </remarks>
    /// <exception cref="InvalidOperationException">A weight cannot be stored in 8 bits (not finite, or beyond fp16's range of scales).</exception>
    public void Save(string path, WeightType weights, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (weights == WeightType.Float32)
        {
            Save(path, metadata);
            return;
        }
        if (!Enum.IsDefined(weights)) throw new ArgumentOutOfRangeException(nameof(weights), weights, "not a weight type");
        using CallScope scope = Enter("Save");
        var header = new Dictionary<string, string> { ["format"] = "pt", ["model"] = _layout.Name, ["weight_type"] = weights.ToString() };
        if (metadata is not null)
            foreach (KeyValuePair<string, string> entry in metadata) header[entry.Key] = entry.Value;
        var storage = new TensorStorage[_layout.Tensors.Count];
        for (int i = 0; i < storage.Length; i++)
            if (IsReducible(_layout.Tensors[i])) storage[i] = weights == WeightType.Int8 ? TensorStorage.Int8 : TensorStorage.BF16;
        WithUnpackedWeights(() =>
        {
            if (_layout.Family == CheckpointFamily.Native)
                SafeTensors.Save(path, _layout.Tensors, WholeParameters("Save"), values: null, header, beforeCommit: null, storage: storage);
            else
                HuggingFaceCheckpoint.Save(path, _layout.Tensors, WholeParameters("Save"), _layout.Family, header, storage);
            return true;
        });
    }

    /// <summary>
    /// Whether <paramref name="tensor"/> is rows of a weight matrix that inference instances reduce: the matrix itself, or
    /// one of the projections packed together into one (Hugging Face's q, k and v, or gate and up), whose 32-weight blocks
    /// run along the same rows. Not a matrix its family stores transposed.
    /// </summary>
    private bool IsReducible(ParameterTensor tensor)
    {
        if (tensor.Shape.Length != 2 || tensor.StoredTransposed) return false;
        foreach (WeightMatrix m in _layout.PackedMatrices)
            if (m.Columns == tensor.Shape[1] && tensor.Offset >= m.Offset && tensor.Offset + tensor.Length <= m.Offset + m.Rows * m.Columns
                && (tensor.Offset - m.Offset) % m.Columns == 0)
                return true;
        return false;
    }

    /// <summary>
    /// A sentence embedder loaded from a sentence-transformers folder: the folder's modules.json must agree with the model
    /// on the L2 normalization (a Normalize module, or none for the dot-product models), or its embeddings would not be the
    /// folder's. The weights are the same either way, so nothing else could tell.
    /// </summary>
    /// <exception cref="System.IO.InvalidDataException">They disagree; the message says how to compile the model from the folder.</exception>
    private void CheckNormalization(string path)
    {
        if (_layout.Architecture != Architecture.EncoderOnly || _layout.TargetVocab != 0 || !System.IO.Directory.Exists(path)) return;
        if (SentenceTransformersFolder.Normalizes(path) is not bool normalizes || normalizes != _layout.UnnormalizedEmbeddings) return;
        string fix = "compile the model from this folder's config.json with its modules.json beside it (the build reads it)";
        throw new System.IO.InvalidDataException(normalizes
            ? $"'{path}': {SentenceTransformersFolder.ModulesFileName} has a Normalize module, but {_layout.Name} was compiled without one, so its embeddings would not be the unit vectors the folder's are; {fix}"
            : $"'{path}': {SentenceTransformersFolder.ModulesFileName} lists no Normalize module (its embeddings are the pooled vectors as they are, for dot-product scores), but {_layout.Name} was compiled to normalize them; {fix}");
    }

    /// <summary>
    /// Reads parameters from a safetensors file; every name and shape must match this model. A model compiled from a
    /// Hugging Face config reads its family's files: <paramref name="path"/> may then also be a sharded checkpoint's
    /// <c>model.safetensors.index.json</c> or the model's folder, names may carry the family's prefix, and the buffers
    /// such files hold besides the parameters (masks, position ids) are skipped.
    /// </summary>
    /// <exception cref="System.IO.InvalidDataException">Names, shapes or the file itself do not match; the message says which.</exception>
    public void Load(string path)
    {
        using CallScope scope = Enter("Load");
        CheckNormalization(path);
        LoadParameters(written =>
        {
            if (_layout.Family != CheckpointFamily.Native) HuggingFaceCheckpoint.LoadInto(path, _layout.Tensors, ParameterSpans, _layout.Family, written);
            else if (Int8MatricesToPack() is { } pack) LoadPacked(pack, flags => SafeTensors.LoadPackingInt8(path, _layout.Tensors, ParameterSpans, flags, written));
            else SafeTensors.LoadInto(path, _layout.Tensors, ParameterSpans, strict: true, written);
        });
    }

    /// <summary>
    /// Reads the parameters a safetensors file has for this model; with <paramref name="strict"/> false, tolerates
    /// names that differ, as PyTorch's <c>load_state_dict(strict=False)</c>: tensors the file lacks keep their values
    /// (a new classification head, say), tensors the model lacks are skipped, and both are reported with their shapes.
    /// A tensor both name must still match in shape, and the file must be whole.
    /// </summary>
    /// <returns>What was loaded, missing and unexpected (see <see cref="SafeTensorsLoadReport"/>).</returns>
    /// <exception cref="System.IO.InvalidDataException">The file is malformed, a shared tensor's shape differs, or (strict) the names differ; the parameters are then unchanged.</exception>
    public SafeTensorsLoadReport Load(string path, bool strict)
    {
        using CallScope scope = Enter("Load");
        SafeTensorsLoadReport report = WithUnpackedWeights(() => SafeTensors.LoadInto(path, _layout.Tensors, ParameterSpans, strict));
        OnParametersReplaced();
        return report;
    }

    /// <summary>
    /// Reads parameters from a safetensors file held in <paramref name="stream"/>, from its current position to
    /// its end: weights built into the program (<c>Assembly.GetManifestResourceStream</c>), say. Checked as
    /// <see cref="Load(string)"/>; the stream stays open.
    /// </summary>
    /// <param name="stream">A readable, seekable stream.</param>
    /// <param name="name">What error messages call the file (the resource name, say).</param>
    /// <exception cref="System.IO.InvalidDataException">Names, shapes or the data itself do not match; the message says which.</exception>
    /// <exception cref="ArgumentException">The stream cannot read or seek.</exception>
    public void Load(System.IO.Stream stream, string? name = null)
    {
        using CallScope scope = Enter("Load");
        LoadParameters(written =>
        {
            if (_layout.Family != CheckpointFamily.Native) HuggingFaceCheckpoint.LoadInto(stream, _layout.Tensors, ParameterSpans, _layout.Family, name, written);
            else if (Int8MatricesToPack() is { } pack)
            {
                ArgumentNullException.ThrowIfNull(stream);
                LoadPacked(pack, flags => SafeTensors.LoadPackingInt8(stream, _layout.Tensors, ParameterSpans, name ?? "stream", flags, written));
            }
            else
            {
                ArgumentNullException.ThrowIfNull(stream);
                SafeTensors.LoadInto(stream, _layout.Tensors, ParameterSpans, strict: true, name, written);
            }
        });
    }

    /// <summary>Called after the parameters were replaced wholesale (a checkpoint loaded): caches built from the old ones are stale.</summary>
    protected virtual void OnParametersReplaced() { }

    // ----- what the generated half sees -----

    /// <summary>The generated forward pass over the stored tokens and targets; returns the loss.</summary>
    protected abstract float ForwardCore();

    /// <summary>
    /// The generated backward pass. Activation gradients hold the previous pass's values on entry: the generated code
    /// clears each one just before the first operation that reads or adds into it.
    /// </summary>
    protected abstract void BackwardCore();

    /// <summary>The next-token logits <c>[target vocabulary]</c> that the last inference pass wrote.</summary>
    protected ReadOnlySpan<float> InferenceLogits => InferenceLogitRows(1);

    /// <summary>The logits <c>[rows, target vocabulary]</c> that the last inference pass wrote, one row per sequence it ran.</summary>
    protected ReadOnlySpan<float> InferenceLogitRows(int rows) => _inference.Span.Slice(_layout.InferenceLogitsOffset, rows * _layout.TargetVocab);

    private static void MarkPadding(ReadOnlySpan<int> tokens, int pad, Span<byte> padding)
    {
        for (int i = 0; i < tokens.Length; i++) padding[i] = tokens[i] == pad ? (byte)1 : (byte)0;
    }

    /// <summary>Checks ids against a vocabulary before anything runs; the message names the position.</summary>
    protected void CheckIds(ReadOnlySpan<int> ids, string argument, int vocab, bool allowIgnored)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id >= vocab || (id < 0 && !allowIgnored))
                throw new ArgumentOutOfRangeException(argument, id,
                    $"{argument}[{i}] = {id} is outside [0, {vocab}){(allowIgnored ? " (negative targets are ignored)" : "")}");
        }
    }

    /// <summary>Parameters, laid out as <see cref="ParameterTensors"/> (their first segment, in a model of several).</summary>
    protected Span<float> ParameterBuffer => _parameters.Span;

    /// <summary>
    /// Parameter segment <paramref name="segment"/> (see <see cref="ModelLayout.ParameterSegments"/>): the generated code of
    /// a model of more parameter floats than one span holds reads the tensors of segment k ≥ 1 here.
    /// </summary>
    protected Span<float> ParameterSegment(int segment) => segment == 0 ? _parameters.Span : _parameterSegments[segment - 1].Span;

    /// <summary>Every parameter tensor's floats, in whichever segment it lies.</summary>
    private ParameterSpans ParameterSpans => new(_parameters.Span, _parameterSegments);

    /// <summary>The parameters as one span, for what needs them so (saving, exports, optimizers); a model of several segments refuses.</summary>
    private protected Span<float> WholeParameters(string member) => _parameterSegments.Length == 0 ? _parameters.Span
        : throw new NotSupportedException($"{_layout.Name}.{member}: this model has {_layout.TotalParameterFloats.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} parameter floats in {_layout.ParameterSegments.Count} segments, more than one span holds (2³¹ − 1); it loads checkpoints and runs inference, but {member} needs its parameters as one span");
    /// <summary>Parameter gradients, same layout.</summary>
    protected Span<float> GradientBuffer => _gradients.Span;
    /// <summary>The training workspace: activations kept for the backward pass.</summary>
    protected Span<float> ActivationBuffer => _activations.Span;
    /// <summary>The backward pass's buffer: the activations' gradients, each in a slot while the pass needs it, and any activation it computes again (<see cref="ModelLayout.ActivationGradientCount"/>).</summary>
    protected Span<float> ActivationGradientBuffer => _activationGradients.Span;
    /// <summary>Fixed tables computed once (sinusoids, rotary angles).</summary>
    protected Span<float> ConstantBuffer => _constants.Span;
    /// <summary>The inference workspace of one sequence.</summary>
    protected Span<float> InferenceBuffer => _inference.Span;
    /// <summary>The key/value cache: per layer, keys then values, <c>[SeqLen, DModel]</c> each.</summary>
    protected Span<float> KeyValueBuffer => _keyValues.Span;
    /// <summary>Scratch for one query's attention scores in cached decoding.</summary>
    protected Span<float> ScoreBuffer => _scores.Span;
    /// <summary>The token ids of the last <see cref="Forward"/>.</summary>
    protected ReadOnlySpan<int> Tokens => _tokens;
    /// <summary>The targets of the last <see cref="Forward"/>, padding turned into ignored (-1).</summary>
    protected ReadOnlySpan<int> Targets => _targets;
    /// <summary>The decoder's input of the last <see cref="Forward"/>: the targets shifted right behind the begin token (encoder–decoder).</summary>
    protected ReadOnlySpan<int> DecoderTokens => _decoderTokens;
    /// <summary>1 where an input token is padding (empty when the model has no padding id).</summary>
    protected ReadOnlySpan<byte> TokenPadding => _tokenPadding;
    /// <summary>The token types (segments) of the last batched Forward; empty when every token is of type 0.</summary>
    protected ReadOnlySpan<int> TokenTypes => _hasTokenTypes ? _tokenTypes : default;
    /// <summary>1 where a decoder input token is padding (encoder–decoder with a padding id).</summary>
    protected ReadOnlySpan<byte> DecoderPadding => _decoderPadding;
    /// <summary>The generator of dropout masks, seeded from the model's seed.</summary>
    protected Rng DropoutRng { get; }

    /// <summary>
    /// Where the dropout masks' random sequence stands: the next <see cref="Forward"/> in training draws its masks from here.
    /// A <see cref="TrainingCheckpoint"/> saves and restores it, so a resumed run draws the masks it would have drawn.
    /// </summary>
    public RngState DropoutState
    {
        get => DropoutRng.State;
        set => DropoutRng.State = value;
    }

    /// <summary>
    /// Copies the keys and values of <paramref name="count"/> new positions out of a packed <c>[count, 3·C]</c>
    /// Q|K|V block into the cache rows starting at <paramref name="position0"/>.
    /// </summary>
    protected static void AppendKeysValues(ReadOnlySpan<float> qkv, int count, int channels, Span<float> keys, Span<float> values, int position0)
    {
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<float> row = qkv.Slice(i * 3 * channels, 3 * channels);
            row.Slice(channels, channels).CopyTo(keys.Slice((position0 + i) * channels, channels));
            row.Slice(2 * channels, channels).CopyTo(values.Slice((position0 + i) * channels, channels));
        }
    }

    private void InitializeParameters(ulong seed)
    {
        var rng = new Rng(seed);
        foreach (ParameterTensor t in _layout.Tensors)
        {
            Span<float> values = ParameterSpans[t];
            switch (t.Init)
            {
                case WeightInit.Zeros: values.Clear(); break;
                case WeightInit.Ones: values.Fill(1f); break;
                case WeightInit.Normal:
                    rng.FillNormal(values, t.InitScale);
                    break;
            }
        }
    }
}
