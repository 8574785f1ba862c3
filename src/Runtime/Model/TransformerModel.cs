using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// The part of every generated model that does not depend on its shape: buffers, input checks, the training
/// protocol (<see cref="Forward"/>, <see cref="Backward"/>, <see cref="ZeroGrad"/>), checkpoints and
/// cached decoding. The generated half supplies the layers, unrolled, with every size and offset a literal.
/// </summary>
/// <remarks>
/// All memory is allocated by the constructor; afterwards training steps and decoding allocate nothing.
/// An instance is not thread-safe.
/// </remarks>
public abstract class TransformerModel : ITrainableParameters
{
    private readonly ModelLayout _layout;
    private readonly float[] _parameters, _gradients, _activations, _activationGradients, _constants;
    private readonly float[] _inference, _keyValues, _scores;
    private readonly int[] _tokens, _targets;
    private readonly int[] _window;
    private bool _forwardDone;
    private int _cacheLength;

    /// <summary>Allocates every buffer the layout names and initializes the parameters from <paramref name="seed"/>.</summary>
    protected TransformerModel(ModelLayout layout, ulong seed)
    {
        _layout = layout ?? throw new ArgumentNullException(nameof(layout));
        _parameters = new float[layout.ParameterCount];
        _gradients = new float[layout.ParameterCount];
        _activations = new float[layout.ActivationCount];
        _activationGradients = new float[layout.ActivationCount];
        _constants = new float[layout.ConstantCount];
        _inference = new float[layout.InferenceCount];
        _keyValues = new float[layout.KeyValueCount];
        _scores = new float[layout.SeqLen];
        _tokens = new int[layout.TokensPerStep];
        _targets = new int[layout.TokensPerStep];
        _window = new int[layout.SeqLen];
        Seed = seed;
        DropoutRng = new Rng(seed ^ 0xD50F_0A7E_5EED_0001UL);
        InitializeParameters(seed);
    }

    /// <summary>The model's compile-time layout: sizes and the parameter table.</summary>
    public ModelLayout Layout => _layout;

    /// <summary>The seed the parameters were initialized from.</summary>
    public ulong Seed { get; }

    /// <inheritdoc />
    public Span<float> Parameters => _parameters;

    /// <inheritdoc />
    public Span<float> Gradients => _gradients;

    /// <inheritdoc />
    public IReadOnlyList<ParameterTensor> ParameterTensors => _layout.Tensors;

    /// <summary>When true (the default) dropout is active in <see cref="Forward"/>; set false to evaluate.</summary>
    public bool Training { get; set; } = true;

    /// <summary>The logits <c>[Batch·SeqLen, Vocab]</c> of the last <see cref="Forward"/>.</summary>
    public ReadOnlySpan<float> Logits => _activations.AsSpan(_layout.LogitsOffset, _layout.TokensPerStep * _layout.Vocab);

    /// <summary>
    /// Runs the model on <c>Batch·SeqLen</c> token ids (row-major <c>[Batch, SeqLen]</c>) and returns the mean
    /// cross-entropy over the targets that are not negative (a negative target is ignored, like PyTorch's
    /// <c>ignore_index</c>). Returns 0 when every target is ignored.
    /// </summary>
    /// <exception cref="ArgumentException">A span has the wrong length.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token or target id is outside <c>[0, Vocab)</c>; the message names the position.</exception>
    public float Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets)
    {
        int count = _layout.TokensPerStep;
        if (tokens.Length != count)
            throw new ArgumentException($"{_layout.Name}.Forward needs Batch·SeqLen = {_layout.Batch}·{_layout.SeqLen} = {count} tokens, got {tokens.Length}", nameof(tokens));
        if (targets.Length != count)
            throw new ArgumentException($"{_layout.Name}.Forward needs Batch·SeqLen = {count} targets, got {targets.Length}", nameof(targets));
        CheckIds(tokens, nameof(tokens), allowIgnored: false);
        CheckIds(targets, nameof(targets), allowIgnored: true);
        tokens.CopyTo(_tokens);
        targets.CopyTo(_targets);
        float loss = ForwardCore();
        _forwardDone = true;
        return loss;
    }

    /// <summary>
    /// Adds the gradient of the last <see cref="Forward"/>'s loss to <see cref="Gradients"/> (call
    /// <see cref="ZeroGrad"/> first to start from zero, as in PyTorch).
    /// </summary>
    /// <exception cref="InvalidOperationException">No <see cref="Forward"/> ran since the last backward pass.</exception>
    public void Backward()
    {
        if (!_forwardDone) throw new InvalidOperationException($"{_layout.Name}.Backward needs a Forward first (each Forward allows one Backward)");
        _forwardDone = false;
        Array.Clear(_activationGradients);
        BackwardCore();
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad() => Array.Clear(_gradients);

    /// <summary>
    /// One whole training step: forward, zeroed gradients, backward, optional clipping by global norm, and the
    /// optimizer's update. Returns the loss before the update.
    /// </summary>
    public float TrainStep(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, IOptimizer optimizer, float maxGradientNorm = 0f)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = Forward(tokens, targets);
        ZeroGrad();
        Backward();
        if (maxGradientNorm > 0f) GradientClipping.ClipByGlobalNorm(_gradients, maxGradientNorm);
        optimizer.Step();
        return loss;
    }

    /// <summary>
    /// Writes the parameters to a safetensors file with PyTorch names, atomically (written beside the target,
    /// then renamed). <paramref name="metadata"/> is stored in the header's <c>__metadata__</c> beside the
    /// model's name and <c>format: pt</c>.
    /// </summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, string> { ["format"] = "pt", ["model"] = _layout.Name };
        if (metadata is not null)
            foreach (KeyValuePair<string, string> entry in metadata) header[entry.Key] = entry.Value;
        SafeTensors.Save(path, _layout.Tensors, _parameters, header);
    }

    /// <summary>Reads parameters from a safetensors file; every name and shape must match this model.</summary>
    /// <exception cref="System.IO.InvalidDataException">Names, shapes or the file itself do not match; the message says which.</exception>
    public void Load(string path)
    {
        SafeTensors.Load(path, _layout.Tensors, _parameters);
        _cacheLength = 0;
    }

    // ----- cached decoding -----

    /// <summary>Number of positions held in the key/value cache.</summary>
    public int CacheLength => _cacheLength;

    /// <summary>Empties the key/value cache, to start a new sequence.</summary>
    public void ResetCache() => _cacheLength = 0;

    /// <summary>
    /// Appends <paramref name="tokens"/> to the cached sequence (a prompt, or one sampled token) and returns
    /// the logits <c>[Vocab]</c> for the token after the last one. Earlier positions are not recomputed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The sequence would exceed <c>SeqLen</c>; call <see cref="ResetCache"/> or use <see cref="Generate"/>, which slides the window.</exception>
    public ReadOnlySpan<float> Append(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (_cacheLength + tokens.Length > _layout.SeqLen)
            throw new InvalidOperationException($"{_layout.Name} holds {_cacheLength} cached positions; {tokens.Length} more exceed SeqLen = {_layout.SeqLen}");
        CheckIds(tokens, nameof(tokens), allowIgnored: false);
        InferCore(tokens, _cacheLength);
        _cacheLength += tokens.Length;
        return _inference.AsSpan(_layout.InferenceLogitsOffset, _layout.Vocab);
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by <c>output.Length</c> tokens drawn by <paramref name="sampler"/>,
    /// with the key/value cache. When the sequence reaches <c>SeqLen</c>, the cache is rebuilt from the most
    /// recent half of the window, so generation can go on indefinitely. Allocates nothing.
    /// </summary>
    public void Generate(ReadOnlySpan<int> prompt, Span<int> output, Sampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        if (prompt.IsEmpty) throw new ArgumentException("the prompt needs at least one token", nameof(prompt));
        int window = _layout.SeqLen;
        ResetCache();
        // The window holds the tokens the cache was built from, so it can be rebuilt when full.
        int held = Math.Min(prompt.Length, window);
        prompt[^held..].CopyTo(_window);
        ReadOnlySpan<float> logits = Append(_window.AsSpan(0, held));
        for (int i = 0; i < output.Length; i++)
        {
            int next = sampler.Sample(logits);
            output[i] = next;
            if (i == output.Length - 1) break;
            if (held == window)
            {
                int keep = Math.Max(1, window / 2);
                _window.AsSpan(window - keep + 1, keep - 1).CopyTo(_window);
                held = keep - 1;
                _window[held++] = next;
                ResetCache();
                logits = Append(_window.AsSpan(0, held));
            }
            else
            {
                _window[held++] = next;
                logits = Append(_window.AsSpan(held - 1, 1));
            }
        }
    }

    // ----- what the generated half sees -----

    /// <summary>The generated forward pass over the stored tokens and targets; returns the loss.</summary>
    protected abstract float ForwardCore();

    /// <summary>The generated backward pass; activation gradients are zero on entry.</summary>
    protected abstract void BackwardCore();

    /// <summary>The generated cached inference pass: <paramref name="tokens"/> at positions <paramref name="position0"/>…; writes the last position's logits.</summary>
    protected abstract void InferCore(ReadOnlySpan<int> tokens, int position0);

    /// <summary>Parameters, laid out as <see cref="ParameterTensors"/>.</summary>
    protected Span<float> ParameterBuffer => _parameters;
    /// <summary>Parameter gradients, same layout.</summary>
    protected Span<float> GradientBuffer => _gradients;
    /// <summary>The training workspace: activations kept for the backward pass.</summary>
    protected Span<float> ActivationBuffer => _activations;
    /// <summary>Gradients of the activations, same layout as <see cref="ActivationBuffer"/>.</summary>
    protected Span<float> ActivationGradientBuffer => _activationGradients;
    /// <summary>Fixed tables computed once (sinusoids, rotary angles).</summary>
    protected Span<float> ConstantBuffer => _constants;
    /// <summary>The inference workspace of one sequence.</summary>
    protected Span<float> InferenceBuffer => _inference;
    /// <summary>The key/value cache: per layer, keys then values, <c>[SeqLen, DModel]</c> each.</summary>
    protected Span<float> KeyValueBuffer => _keyValues;
    /// <summary>Scratch for one query's attention scores in cached decoding.</summary>
    protected Span<float> ScoreBuffer => _scores;
    /// <summary>The token ids of the last <see cref="Forward"/>.</summary>
    protected ReadOnlySpan<int> Tokens => _tokens;
    /// <summary>The targets of the last <see cref="Forward"/>.</summary>
    protected ReadOnlySpan<int> Targets => _targets;
    /// <summary>The generator of dropout masks, seeded from the model's seed.</summary>
    protected Rng DropoutRng { get; }

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
            Span<float> values = _parameters.AsSpan(t.Offset, t.Length);
            switch (t.Init)
            {
                case WeightInit.Zeros: values.Clear(); break;
                case WeightInit.Ones: values.Fill(1f); break;
                case WeightInit.Normal:
                    for (int i = 0; i < values.Length; i++) values[i] = rng.NextNormal() * t.InitScale;
                    break;
            }
        }
    }

    private void CheckIds(ReadOnlySpan<int> ids, string argument, bool allowIgnored)
    {
        int vocab = _layout.Vocab;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id >= vocab || (id < 0 && !allowIgnored))
                throw new ArgumentOutOfRangeException(argument, id,
                    $"{argument}[{i}] = {id} is outside [0, {vocab}){(allowIgnored ? " (negative targets are ignored)" : "")}");
        }
    }
}
