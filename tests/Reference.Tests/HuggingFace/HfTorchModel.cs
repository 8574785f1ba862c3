using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// One tensor of a model's <c>state_dict()</c>, under its canonical name (no <c>transformer.</c>/<c>bert.</c> prefix;
/// <c>model.</c> for Llama/Qwen2) and in the layout of the file (GPT-2 Conv1D weights <c>[in, out]</c>).
/// </summary>
/// <param name="IsBuffer">A non-parameter buffer that some files carry (written only with <c>IncludeBuffers</c>).</param>
/// <param name="Used">Whether the forward pass reads it (BERT's pooler is a parameter it never reads).</param>
internal sealed record HfStateEntry(string Name, Tensor Value, bool IsBuffer, bool Used);

/// <summary>How a parameter is drawn from the seed.</summary>
internal enum HfInit
{
    /// <summary>N(0, 1/fan_in): attention scores and activations of order one, so every part of the formula shows.</summary>
    Matrix,
    /// <summary>N(0, 0.5²): with the tied heads, logits of a few units.</summary>
    Embedding,
    /// <summary>1 + 0.1·N(0, 1).</summary>
    NormWeight,
    /// <summary>0.05·N(0, 1).</summary>
    Bias,
    /// <summary>0.1·N(0, 1): a norm weight w read as 1 + w (Gemma's RMSNorm, whose weights start at zero).</summary>
    NormOffset,
}

/// <summary>
/// The part every Hugging Face reference shares: parameters drawn from a seed in <c>state_dict()</c> order, the buffers
/// among them, and the LM head. Subclasses register their tensors in the order <c>transformers</c> registers its modules
/// (the order a sharded file is split in) and write the forward pass.
/// </summary>
/// <remarks>
/// Parameters are leaf tensors that require grad, drawn in float32 from a libtorch generator and then converted to the
/// model's dtype: a float64 model built from the same seed has exactly the float32 model's weights (the gradient checks
/// use one). Buffers are float32 or int64 whatever the model's dtype, as the files hold them.
/// </remarks>
internal abstract class HfTorchModel : IDisposable
{
    private readonly List<HfStateEntry> _state = new();
    private readonly Dictionary<string, HfStateEntry> _byName = new(StringComparer.Ordinal);
    private readonly Generator _generator;

    static HfTorchModel()
    {
        // Reference numbers should not depend on how libtorch splits work between threads.
        torch.set_num_threads(1);
    }

    protected HfTorchModel(HfConfig config, long seed, ScalarType dtype)
    {
        if (dtype != ScalarType.Float32 && dtype != ScalarType.Float64)
            throw new ArgumentException("the reference computes in float32, or float64 for gradient checks", nameof(dtype));
        Config = config;
        Dtype = dtype;
        _generator = new Generator((ulong)seed, CPU);
    }

    public HfConfig Config { get; }

    public ScalarType Dtype { get; }

    /// <summary>finfo(dtype).min, the value <c>transformers</c> masks scores with.</summary>
    public double MinValue => finfo(Dtype).min;

    /// <summary>Every tensor of <c>state_dict()</c>, in its order.</summary>
    public IReadOnlyList<HfStateEntry> State => _state;

    /// <summary>The parameters the forward pass reads: the ones with gradients.</summary>
    public IEnumerable<HfStateEntry> UsedParameters => _state.Where(e => !e.IsBuffer && e.Used);

    /// <summary>The canonical name of the token embedding, which a tied LM head shares.</summary>
    public abstract string TokenEmbeddingName { get; }

    /// <summary>
    /// The names a file may also carry for the tied token embedding (<c>KeepTiedCopy</c>), each a copy of it: a tied
    /// model's <c>lm_head.weight</c>, none for an untied one.
    /// </summary>
    public virtual IReadOnlyList<string> TiedCopyNames => Config.TieWordEmbeddings ? ["lm_head.weight"] : [];

    /// <summary>
    /// Tensors that some files carry and that neither transformers' base model nor this reference reads, which are not
    /// parameters here (written with <c>IncludeUnusedHeads</c>), under their file names for the layout
    /// <paramref name="options"/> asks for and rounded to its dtype: none but T5's old cross-attention bias table and
    /// MPNetForMaskedLM's <c>lm_head</c>.
    /// </summary>
    public virtual IEnumerable<(string Name, Tensor Value)> UnreadFileTensors(HfWriteOptions options) => [];

    /// <summary>The LM head <c>[V, E]</c>: <c>lm_head.weight</c>, or the token embedding when tied.</summary>
    public Tensor LmHead => this[Config.TieWordEmbeddings ? TokenEmbeddingName : "lm_head.weight"];

    public Tensor this[string name] =>
        _byName.TryGetValue(name, out HfStateEntry? e) ? e.Value : throw new KeyNotFoundException($"the {Config.ModelType} reference has no tensor '{name}'");

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The final hidden states <c>[B, T, E]</c> for token ids <c>[B, T]</c> (int64) and an optional 0/1 mask <c>[B, T]</c>.</summary>
    public abstract Tensor LastHiddenState(Tensor ids, Tensor? attentionMask);

    /// <summary>Logits <c>[B, T, V]</c> from <see cref="LastHiddenState"/>: <c>lm_head(x)</c>, no bias.</summary>
    public Tensor Logits(Tensor hidden) =>
        Config.IsDecoder ? nn.functional.linear(hidden, LmHead) : throw new InvalidOperationException($"{Config.ModelType} has no LM head");

    /// <summary>
    /// The sentence-transformers Dense modules of the config (modules.json's order), registered after the transformer's
    /// tensors as <c>nn.Linear(in, out, bias)</c> under the module's path: <c>2_Dense.linear.weight</c>, <c>2_Dense.linear.bias</c>.
    /// </summary>
    protected void DenseParameters()
    {
        foreach (HfDenseLayer dense in Config.DenseLayers)
        {
            Parameter(dense.Path + ".linear.weight", HfInit.Matrix, dense.OutFeatures, dense.InFeatures);
            if (dense.Bias) Parameter(dense.Path + ".linear.bias", HfInit.Bias, dense.OutFeatures);
        }
    }

    /// <summary>
    /// The sentence-transformers pipeline after the transformer, on its last hidden states <c>[B, T, E]</c>: Pooling (the
    /// mean over the mask, Σ_t h[t]·m[t] / clamp(Σ_t m[t], 1e-9), or token 0 with <paramref name="clsToken"/> or a cls
    /// pooling config), each Dense (<c>activation(linear(x))</c>, Identity or tanh), then Normalize
    /// (<c>F.normalize(p = 2, dim = 1)</c>, ε = 1e-12) unless modules.json leaves it out: <c>[B, out]</c>.
    /// </summary>
    protected Tensor SentenceModules(Tensor tokens, Tensor attentionMask, bool clsToken)
    {
        Tensor x;
        if (clsToken || Config.Pooling == HfPooling.Cls) x = tokens.select(1, 0);
        else
        {
            Tensor mask = attentionMask.to(Dtype).unsqueeze(-1).expand(tokens.shape);
            x = (tokens * mask).sum(1) / clamp(mask.sum(1), min: 1e-9);
        }
        foreach (HfDenseLayer dense in Config.DenseLayers)
        {
            x = nn.functional.linear(x, this[dense.Path + ".linear.weight"], dense.Bias ? this[dense.Path + ".linear.bias"] : null);
            if (dense.Tanh) x = x.tanh();
        }
        return Config.Normalize ? nn.functional.normalize(x, p: 2, dim: 1) : x;
    }

    /// <summary>Registers a parameter drawn from the seed.</summary>
    protected Tensor Parameter(string name, HfInit init, params long[] shape) => Parameter(name, init, used: true, shape);

    protected Tensor Parameter(string name, HfInit init, bool used, params long[] shape)
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor value = Drawn(name, init, shape).to(Dtype).detach().requires_grad_(true);
        Add(new HfStateEntry(name, scope.Detach(value), IsBuffer: false, used));
        return value;
    }

    /// <summary>
    /// A float32 tensor drawn from the seed as a parameter would be, next in the same stream, but not registered: for a
    /// file's tensor that no forward pass here reads (see <see cref="UnreadFileTensors"/>).
    /// </summary>
    protected Tensor Drawn(string name, HfInit init, params long[] shape)
    {
        Tensor noise = randn(shape, ScalarType.Float32, generator: _generator);
        return init switch
        {
            HfInit.Matrix => noise * (1.0 / Math.Sqrt(FanIn(name, shape))),
            HfInit.Embedding => noise * 0.5,
            HfInit.NormWeight => 1.0 + 0.1 * noise,
            HfInit.Bias => 0.05 * noise,
            HfInit.NormOffset => 0.1 * noise,
            _ => throw new ArgumentOutOfRangeException(nameof(init)),
        };
    }

    /// <summary>A Linear (<c>[out, in]</c>) or, for GPT-2, a Conv1D (<c>[in, out]</c>): fan-in is the "in" side.</summary>
    private double FanIn(string name, long[] shape) =>
        shape.Length != 2 ? throw new ArgumentException($"{name} is not a matrix")
        : Config.Family == HfFamily.Gpt2 && !name.StartsWith("lm_head", StringComparison.Ordinal) ? shape[0] : shape[1];

    /// <summary>A LayerNorm's <c>weight</c> and <c>bias</c> <c>[E]</c>.</summary>
    protected void LayerNormParameters(string prefix, long size)
    {
        Parameter(prefix + ".weight", HfInit.NormWeight, size);
        Parameter(prefix + ".bias", HfInit.Bias, size);
    }

    /// <summary>Registers a buffer (kept out of any dispose scope, like the parameters).</summary>
    protected Tensor Buffer(string name, Func<Tensor> create)
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor value = scope.Detach(create());
        Add(new HfStateEntry(name, value, IsBuffer: true, Used: false));
        return value;
    }

    private void Add(HfStateEntry entry)
    {
        if (!_byName.TryAdd(entry.Name, entry)) throw new InvalidOperationException($"'{entry.Name}' registered twice");
        _state.Add(entry);
    }

    /// <summary>A scalar of the model's dtype (a 0-dim tensor, as <c>torch.full([], v, dtype=…)</c>).</summary>
    protected Tensor Scalar(double value) => tensor(value, Dtype);

    /// <summary>
    /// The rows of the table <paramref name="name"/> for <paramref name="ids"/>, flat, as <c>nn.Embedding(padding_idx)</c>
    /// computes them: the padding row's value is read, but its lookups pass no gradient back (a <paramref name="paddingIdx"/>
    /// outside the table: none is the padding row).
    /// </summary>
    protected Tensor Lookup(string name, Tensor ids, int paddingIdx)
    {
        Tensor table = this[name];
        long rows = table.shape[0];
        if (paddingIdx >= 0 && paddingIdx < rows)
            table = cat(new[] { table.narrow(0, 0, paddingIdx), table.narrow(0, paddingIdx, 1).detach(), table.narrow(0, paddingIdx + 1, rows - paddingIdx - 1) }, 0);
        return table.index_select(0, ids.flatten());
    }

    public void Dispose()
    {
        foreach (HfStateEntry e in _state) e.Value.Dispose();
        _generator.Dispose();
    }
}
