using System;

namespace TransformerGen;

/// <summary>
/// A decoder-only model (GPT): trained with <see cref="TransformerModel.Forward"/> on next tokens, and run one
/// sequence at a time with a key/value cache: <see cref="Append"/> gives next-token logits, <see cref="Generate"/>
/// samples a continuation.
/// </summary>
public abstract class LanguageModel : TransformerModel
{
    private readonly int[] _window;
    private int _cacheLength;

    /// <summary>Allocates every buffer and initializes the parameters from <paramref name="seed"/>.</summary>
    protected LanguageModel(ModelLayout layout, ulong seed) : this(layout, seed, ModelUse.Training, initialize: true) { }

    /// <summary>Allocates the buffers <paramref name="use"/> needs; initializes the parameters from <paramref name="seed"/> when <paramref name="initialize"/> is true.</summary>
    protected LanguageModel(ModelLayout layout, ulong seed, ModelUse use, bool initialize, WeightType weights = WeightType.Float32, ModelWeights? shared = null) : base(layout, seed, use, initialize, weights, shared) => _window = new int[layout.SeqLen];

    /// <summary>Number of positions held in the key/value cache.</summary>
    public int CacheLength => _cacheLength;

    /// <summary>Empties the key/value cache, to start a new sequence.</summary>
    public void ResetCache()
    {
        using CallScope scope = Enter("ResetCache");
        _cacheLength = 0;
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> to the cached sequence (a prompt, or one sampled token) and returns
    /// the logits <c>[Vocab]</c> for the token after the last one. Earlier positions are not recomputed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The sequence would exceed <c>SeqLen</c>; call <see cref="ResetCache"/> or use <see cref="Generate"/>, which slides the window.</exception>
    public ReadOnlySpan<float> Append(ReadOnlySpan<int> tokens)
    {
        using CallScope scope = Enter("Append");
        if (tokens.IsEmpty) throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (_cacheLength + tokens.Length > Layout.SeqLen)
            throw new InvalidOperationException($"{Layout.Name} holds {_cacheLength} cached positions; {tokens.Length} more exceed SeqLen = {Layout.SeqLen}");
        CheckIds(tokens, nameof(tokens), Layout.Vocab, allowIgnored: false);
        InferCore(tokens, _cacheLength);
        _cacheLength += tokens.Length;
        return InferenceLogits;
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by <c>output.Length</c> tokens drawn by <paramref name="sampler"/>,
    /// with the key/value cache. When the sequence reaches <c>SeqLen</c>, the cache is rebuilt from the most
    /// recent half of the window, so generation can go on indefinitely. Allocates nothing.
    /// </summary>
    public void Generate(ReadOnlySpan<int> prompt, Span<int> output, Sampler sampler)
    {
        using CallScope scope = Enter("Generate");
        ArgumentNullException.ThrowIfNull(sampler);
        if (prompt.IsEmpty) throw new ArgumentException("the prompt needs at least one token", nameof(prompt));
        int window = Layout.SeqLen;
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

    /// <summary>
    /// Writes the model as a GGUF v3 file for llama.cpp (<see cref="GgufExport.Save"/>): the <c>llama</c> architecture for
    /// Llama/Qwen2/SmolLM-shaped models, <c>gpt2</c> for GPT-2, with F32, BF16 or Q8_0 weight matrices.
    /// </summary>
    /// <remarks>
    /// An inference instance whose matrices are in the kernels' panel layout is unpacked while the file is written. A graph
    /// that would not fit one protobuf message (2 GiB) keeps its large initializers in a data file beside it
    /// (<see cref="OnnxExportOptions.ExternalData"/>, <c>Auto</c> by default; <c>model.onnx.data</c> unless
    /// <see cref="OnnxExportOptions.ExternalDataFile"/> names another); both files are written under temporary names and
    /// renamed when complete.
    /// </remarks>
    public GgufExportReport SaveGguf(string path, GgufExportOptions options)
    {
        using CallScope scope = Enter("SaveGguf");
        return WithUnpackedWeights(() => GgufExport.Write(this, path, options));
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
        return WithUnpackedWeights(() => OnnxExport.Write(this, path, options));
    }

    /// <inheritdoc />
    protected override void OnParametersReplaced() => _cacheLength = 0;

    /// <summary>The generated cached inference pass: <paramref name="tokens"/> at positions <paramref name="position0"/>…; writes the last position's logits.</summary>
    protected abstract void InferCore(ReadOnlySpan<int> tokens, int position0);
}
