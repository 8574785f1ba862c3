using System;
using System.Collections.Generic;
using Onnx;
using B = TransformerGen.OnnxGraphBuilder;
using DataType = Onnx.TensorProto.Types.DataType;

namespace TransformerGen;

/// <summary>
/// Lays out one model's forward pass as ONNX nodes (<see cref="OnnxExport"/> says what the graph computes). Activations are
/// <c>[batch, sequence, channels]</c>; attention works on <c>[batch, heads, sequence, headDim]</c>, or with grouped-query
/// attention on <c>[batch, kvHeads, group, sequence, headDim]</c> so that each key/value head broadcasts over its group.
/// </summary>
internal sealed class OnnxGraphWriter
{
    private const string Batch = "batch", Sequence = "sequence";

    // A masked score is replaced (not added to) by the lowest float, as transformers does with finfo.min: its exponential
    // is exactly 0 after the softmax subtracts the row's maximum, and a row with every key masked stays finite.
    private const float MaskedScore = float.MinValue;

    private readonly OnnxArchitecture _a;
    private readonly ReadOnlyMemory<float> _parameters;
    private readonly OnnxExportOptions _options;
    private readonly B _g;
    private string _sequenceLength = "";
    private string _mask = "";
    private string? _cos, _sin;

    public OnnxGraphWriter(OnnxArchitecture architecture, ReadOnlyMemory<float> parameters, OnnxExportOptions options, OnnxExternalDataFile? external)
    {
        _a = architecture;
        _parameters = parameters;
        _options = options;
        _g = new B(architecture.Name, external);
    }

    public int NodeCount => _g.NodeCount;

    public (ModelProto Model, List<OnnxValueInfo> Inputs, List<OnnxValueInfo> Outputs) Build()
    {
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        string ids = _g.Input("input_ids", DataType.Int64, Batch, Sequence);
        string attentionMask = _g.Input("attention_mask", DataType.Int64, Batch, Sequence);
        inputs.Add(new OnnxValueInfo("input_ids", "int64", [Batch, Sequence]));
        inputs.Add(new OnnxValueInfo("attention_mask", "int64", [Batch, Sequence]));
        string? tokenTypes = null;
        if (_a.TokenTypeEmbedding is not null)
        {
            tokenTypes = _g.Input("token_type_ids", DataType.Int64, Batch, Sequence);
            inputs.Add(new OnnxValueInfo("token_type_ids", "int64", [Batch, Sequence]));
        }
        _sequenceLength = _g.Node("Shape", [ids], "sequence_length", n => { B.Int(n, "start", 1); B.Int(n, "end", 2); });

        string x = Embed(ids, tokenTypes);
        _mask = AttentionMask(attentionMask);
        for (int layer = 0; layer < _a.Layers.Count; layer++) x = Layer(layer, _a.Layers[layer], x);
        if (_a.FinalNorm is { } finalNorm) x = Norm("norm_f", x, finalNorm, _a.FinalNormBias);

        string dModel = _a.DModel.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!_a.Encoder)
        {
            if (_options.LastPositionOnly) x = _g.Node("Gather", [x, _g.Int64s(-1)], "last_position", n => B.Int(n, "axis", 1));
            string logits = _a.LanguageModelHead is { } head
                ? Linear("lm_head", x, [head], null)
                : _g.Node("MatMul", [x, _g.Node("Transpose", [Weight(_a.TokenEmbedding)], "token_embedding_transposed", n => B.Ints(n, "perm", 1, 0))], "logits");
            object positions = _options.LastPositionOnly ? 1 : Sequence;
            _g.Output(logits, "logits", DataType.Float, Batch, positions, _a.Vocab);
            outputs.Add(new OnnxValueInfo("logits", "float", [Batch, _options.LastPositionOnly ? "1" : Sequence, Vocab(_a.Vocab)]));
        }
        else
        {
            _g.Output(x, "last_hidden_state", DataType.Float, Batch, Sequence, _a.DModel);
            outputs.Add(new OnnxValueInfo("last_hidden_state", "float", [Batch, Sequence, dModel]));
            if (_a.Head == EncoderHead.SentenceEmbedding)
            {
                string pooled = MeanPool(x, attentionMask);
                string norm = _g.Node("ReduceL2", [pooled], "embedding_norm", n => { B.Ints(n, "axes", 1); B.Int(n, "keepdims", 1); });
                string embedding = _g.Node("Div", [pooled, _g.Node("Max", [norm, _g.Scalar(1e-12f)], "embedding_norm_clamped")], "sentence_embedding");
                _g.Output(embedding, "sentence_embedding", DataType.Float, Batch, _a.DModel);
                outputs.Add(new OnnxValueInfo("sentence_embedding", "float", [Batch, dModel]));
            }
            else
            {
                int classes = _a.Classifier!.Shape[0];
                string features = _a.Head == EncoderHead.Tagging ? x
                    : _a.Pooling == Pooling.Mean ? MeanPool(x, attentionMask)
                    : _g.Node("Gather", [x, _g.Int64s(0)], "first_token", n => B.Int(n, "axis", 1));
                if (_a.Head == EncoderHead.Classification && _a.Pooling != Pooling.Mean)
                    features = _g.Node("Squeeze", [features, _g.Int64s(1)], "pooled");
                string logits = Linear("classifier", features, [_a.Classifier], [_a.ClassifierBias!]);
                string c = classes.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (_a.Head == EncoderHead.Tagging)
                {
                    _g.Output(logits, "logits", DataType.Float, Batch, Sequence, classes);
                    outputs.Add(new OnnxValueInfo("logits", "float", [Batch, Sequence, c]));
                }
                else
                {
                    _g.Output(logits, "logits", DataType.Float, Batch, classes);
                    outputs.Add(new OnnxValueInfo("logits", "float", [Batch, c]));
                }
            }
        }
        string doc = $"{_a.Name}: {(_a.Encoder ? "encoder-only" : "decoder-only")}, {_a.Layers.Count} layers, DModel {_a.DModel}, {_a.Heads} heads" +
            (_a.KeyValueHeads != _a.Heads ? $" on {_a.KeyValueHeads} key/value heads" : "") + $", sequences of up to {_a.SeqLen} tokens";
        return (_g.Model(typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "0", doc), inputs, outputs);
    }

    private static string Vocab(int vocab) => vocab.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // ----- embeddings and masks -----

    private string Embed(string ids, string? tokenTypes)
    {
        string x = _g.Node("Gather", [Weight(_a.TokenEmbedding), ids], "embedding", n => B.Int(n, "axis", 0));
        if (_a.EmbeddingScale != 1f) x = _g.Node("Mul", [x, _g.Scalar(_a.EmbeddingScale)], "embedding_scaled");
        if (tokenTypes is not null)
            x = _g.Node("Add", [x, _g.Node("Gather", [Weight(_a.TokenTypeEmbedding!), tokenTypes], "token_type_embedding", n => B.Int(n, "axis", 0))], "embedding_with_types");
        switch (_a.Positions)
        {
            case OnnxPositions.Learned:
                x = _g.Node("Add", [x, FirstRows(Weight(_a.PositionEmbedding!), "positions")], "embedding_with_positions");
                break;
            case OnnxPositions.Sinusoidal:
            {
                var table = new float[_a.SeqLen * _a.DModel];
                Kernels.Positional.SinusoidalTable(table, _a.SeqLen, _a.DModel);
                string sinusoids = _g.Floats("sinusoidal_positions", [_a.SeqLen, _a.DModel], table);
                x = _g.Node("Add", [x, FirstRows(sinusoids, "positions")], "embedding_with_positions");
                break;
            }
            default:
                RotaryTables();
                break;
        }
        if (_a.EmbeddingNorm is { } norm) x = Norm("embedding_norm", x, norm, _a.EmbeddingNormBias);
        return x;
    }

    /// <summary>The first <c>sequence</c> rows of a table <c>[rows, …]</c>.</summary>
    private string FirstRows(string table, string stem) =>
        _g.Node("Slice", [table, _g.Int64s(0), _sequenceLength, _g.Int64s(0)], stem);

    /// <summary>
    /// cos and sin <c>[sequence, headDim]</c> for <c>x·cos + rotate_half(x)·sin</c>: each half-size table of the model
    /// (<see cref="Kernels.Positional.RotaryTables(Span{float}, Span{float}, int, int, float)"/> for the families, the double-precision
    /// one for this project's models) written twice side by side, as transformers' <c>cat(freqs, freqs)</c>.
    /// </summary>
    private void RotaryTables()
    {
        int half = _a.HeadDim / 2, n = _a.SeqLen;
        var cos = new float[n * half];
        var sin = new float[n * half];
        if (_a.Positions == OnnxPositions.RotaryHalf) Kernels.Positional.RotaryTables(cos, sin, n, _a.HeadDim, _a.RopeTheta);
        else Kernels.Positional.RotaryTables(cos, sin, n, _a.HeadDim);
        float[] Doubled(float[] t)
        {
            var d = new float[n * _a.HeadDim];
            for (int p = 0; p < n; p++)
            {
                t.AsSpan(p * half, half).CopyTo(d.AsSpan(p * _a.HeadDim, half));
                t.AsSpan(p * half, half).CopyTo(d.AsSpan(p * _a.HeadDim + half, half));
            }
            return d;
        }
        _cos = FirstRows(_g.Floats("rotary_cos", [n, _a.HeadDim], Doubled(cos)), "rotary_cos_rows");
        _sin = FirstRows(_g.Floats("rotary_sin", [n, _a.HeadDim], Doubled(sin)), "rotary_sin_rows");
    }

    /// <summary>
    /// Which keys each query sees, as bool: not masked by <c>attention_mask</c>, and for a decoder at or before the query
    /// (and within the attention window, when the model has one), broadcast to the scores' shape.
    /// </summary>
    private string AttentionMask(string attentionMask)
    {
        string keys = _g.Node("Cast", [attentionMask], "key_visible", n => B.Int(n, "to", (long)DataType.Bool));
        string mask = _g.Node("Unsqueeze", [keys, _g.Int64s(1, 2)], "key_mask"); // [batch, 1, 1, sequence]
        bool causal = !_a.Encoder;
        if (causal || _a.AttentionWindow > 0)
        {
            int n = _a.SeqLen, window = _a.AttentionWindow;
            var table = new byte[n * n];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    table[i * n + j] = (byte)((!causal || j <= i) && (window == 0 || Math.Abs(i - j) <= window) ? 1 : 0);
            string full = _g.Initializer("query_key_visible", [n, n], DataType.Bool, table);
            string ends = _g.Node("Concat", [_sequenceLength, _sequenceLength], "query_key_ends", a => B.Int(a, "axis", 0));
            string square = _g.Node("Slice", [full, _g.Int64s(0, 0), ends, _g.Int64s(0, 1)], "query_key_mask");
            mask = _g.Node("And", [mask, square], "attention_mask_bool"); // [batch, 1, sequence, sequence]
        }
        if (_a.KeyValueHeads != _a.Heads) mask = _g.Node("Unsqueeze", [mask, _g.Int64s(1)], "attention_mask_grouped");
        return mask;
    }

    // ----- layers -----

    private string Layer(int index, OnnxLayerTensors t, string x)
    {
        string p = $"layers.{index}.";
        string attentionInput = _a.PreNorm ? Norm(p + "attention_norm", x, t.AttentionNorm, t.AttentionNormBias) : x;
        string attended = Attention(p, t, attentionInput);
        string residual = _g.Node("Add", [x, attended], p + "residual1");
        if (!_a.PreNorm) residual = Norm(p + "attention_norm", residual, t.AttentionNorm, t.AttentionNormBias);
        string ffnInput = _a.PreNorm ? Norm(p + "ffn_norm", residual, t.FeedForwardNorm, t.FeedForwardNormBias) : residual;
        string ffn = FeedForward(p, t, ffnInput);
        string output = _g.Node("Add", [residual, ffn], p + "output");
        if (!_a.PreNorm) output = Norm(p + "ffn_norm", output, t.FeedForwardNorm, t.FeedForwardNormBias);
        return output;
    }

    private string Attention(string p, OnnxLayerTensors t, string x)
    {
        int h = _a.Heads, kv = _a.KeyValueHeads, d = _a.HeadDim;
        string qkv = Linear(p + "qkv", x, t.QueryKeyValue, t.QueryKeyValueBias,
            _a.Positions == OnnxPositions.RotaryInterleaved ? InterleavedToHalfSplit : null);
        string[] parts = _g.Nodes("Split", [qkv, _g.Int64s(h * d, kv * d, kv * d)], p + "qkv_part", 3, n => B.Int(n, "axis", 2));
        string Heads(string value, int heads, string stem) =>
            _g.Node("Transpose", [_g.Node("Reshape", [value, _g.Int64s(0, 0, heads, d)], stem + "_heads")], stem, n => B.Ints(n, "perm", 0, 2, 1, 3));
        string q = Heads(parts[0], h, p + "q"), k = Heads(parts[1], kv, p + "k"), v = Heads(parts[2], kv, p + "v");
        if (_cos is not null)
        {
            q = Rotate(q, p + "q_rotated");
            k = Rotate(k, p + "k_rotated");
        }
        string keysT;
        if (kv == h)
        {
            keysT = _g.Node("Transpose", [k], p + "k_transposed", n => B.Ints(n, "perm", 0, 1, 3, 2));
        }
        else
        {
            // [batch, kv, group, sequence, d] against [batch, kv, 1, d, sequence]: query head j·group + g uses key head j.
            q = _g.Node("Reshape", [q, _g.Int64s(0, kv, _a.Group, -1, d)], p + "q_grouped");
            keysT = _g.Node("Transpose", [_g.Node("Unsqueeze", [k, _g.Int64s(2)], p + "k_grouped")], p + "k_transposed", n => B.Ints(n, "perm", 0, 1, 2, 4, 3));
            v = _g.Node("Unsqueeze", [v, _g.Int64s(2)], p + "v_grouped");
        }
        string scores = _g.Node("MatMul", [q, keysT], p + "scores");
        scores = _g.Node("Mul", [scores, _g.Scalar(1f / MathF.Sqrt(d))], p + "scores_scaled");
        scores = _g.Node("Where", [_mask, scores, _g.Scalar(MaskedScore)], p + "scores_masked");
        string probabilities = _g.Node("Softmax", [scores], p + "attention_probabilities", n => B.Int(n, "axis", -1));
        string context = _g.Node("MatMul", [probabilities, v], p + "context");
        if (kv != h) context = _g.Node("Reshape", [context, _g.Int64s(0, h, -1, d)], p + "context_heads");
        context = _g.Node("Transpose", [context], p + "context_tokens", n => B.Ints(n, "perm", 0, 2, 1, 3));
        context = _g.Node("Reshape", [context, _g.Int64s(0, 0, h * d)], p + "context_flat");
        return Linear(p + "attention_output", context, [t.Output], t.OutputBias is { } b ? [b] : null);
    }

    /// <summary><c>x·cos + rotate_half(x)·sin</c>, rotate_half(x) = <c>cat(−x[D/2:], x[:D/2])</c>, on <c>[batch, heads, sequence, D]</c>.</summary>
    private string Rotate(string x, string stem)
    {
        int half = _a.HeadDim / 2;
        string first = _g.Node("Slice", [x, _g.Int64s(0), _g.Int64s(half), _g.Int64s(3)], stem + "_first_half");
        string second = _g.Node("Slice", [x, _g.Int64s(half), _g.Int64s(_a.HeadDim), _g.Int64s(3)], stem + "_second_half");
        string rotated = _g.Node("Concat", [_g.Node("Neg", [second], stem + "_negated"), first], stem + "_rotate_half", n => B.Int(n, "axis", 3));
        return _g.Node("Add", [_g.Node("Mul", [x, _cos!], stem + "_cos"), _g.Node("Mul", [rotated, _sin!], stem + "_sin")], stem);
    }

    private string FeedForward(string p, OnnxLayerTensors t, string x)
    {
        string hidden = Linear(p + "ffn_up", x, t.Up, t.UpBias);
        string activated;
        switch (_a.FeedForward)
        {
            case OnnxFeedForward.SwiGlu:
            {
                int dff = t.Up[0].Shape[0];
                string[] gateUp = _g.Nodes("Split", [hidden, _g.Int64s(dff, dff)], p + "ffn_gate_up", 2, n => B.Int(n, "axis", 2));
                string silu = _g.Node("Mul", [gateUp[0], _g.Node("Sigmoid", [gateUp[0]], p + "ffn_sigmoid")], p + "ffn_silu");
                activated = _g.Node("Mul", [silu, gateUp[1]], p + "ffn_activated");
                break;
            }
            case OnnxFeedForward.GeluErf:
            {
                // 0.5·x·(1 + erf(x/√2)): the pattern ONNX Runtime fuses into one Gelu.
                string erf = _g.Node("Erf", [_g.Node("Div", [hidden, _g.Scalar(MathF.Sqrt(2f))], p + "ffn_scaled")], p + "ffn_erf");
                string sum = _g.Node("Add", [erf, _g.Scalar(1f)], p + "ffn_erf_plus_one");
                activated = _g.Node("Mul", [_g.Node("Mul", [hidden, sum], p + "ffn_gelu_product"), _g.Scalar(0.5f)], p + "ffn_gelu");
                break;
            }
            case OnnxFeedForward.GeluTanh:
            {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), GPT-2's gelu_new.
                string cube = _g.Node("Pow", [hidden, _g.Scalar(3f)], p + "ffn_cube");
                string inner = _g.Node("Add", [hidden, _g.Node("Mul", [cube, _g.Scalar(0.044715f)], p + "ffn_cube_scaled")], p + "ffn_inner");
                string tanh = _g.Node("Tanh", [_g.Node("Mul", [inner, _g.Scalar(MathF.Sqrt(2f / MathF.PI))], p + "ffn_tanh_input")], p + "ffn_tanh");
                string sum = _g.Node("Add", [tanh, _g.Scalar(1f)], p + "ffn_tanh_plus_one");
                activated = _g.Node("Mul", [_g.Node("Mul", [hidden, _g.Scalar(0.5f)], p + "ffn_half"), sum], p + "ffn_gelu");
                break;
            }
            default:
                activated = _g.Node("Relu", [hidden], p + "ffn_relu");
                break;
        }
        return Linear(p + "ffn_down", activated, [t.Down], t.DownBias is { } b ? [b] : null);
    }

    private string Norm(string stem, string x, ParameterTensor weight, ParameterTensor? bias)
    {
        if (!_a.RmsNorm)
        {
            string[] inputs = bias is null ? [x, Weight(weight)] : [x, Weight(weight), Weight(bias)];
            return _g.Node("LayerNormalization", inputs, stem, n => { B.Int(n, "axis", -1); B.Float(n, "epsilon", _a.NormEpsilon); });
        }
        // x / sqrt(mean(x²) + eps) · w: the pattern ONNX Runtime fuses into SimplifiedLayerNormalization.
        string square = _g.Node("Pow", [x, _g.Scalar(2f)], stem + "_square");
        string mean = _g.Node("ReduceMean", [square], stem + "_mean_square", n => { B.Ints(n, "axes", -1); B.Int(n, "keepdims", 1); });
        string root = _g.Node("Sqrt", [_g.Node("Add", [mean, _g.Scalar(_a.NormEpsilon)], stem + "_plus_eps")], stem + "_rms");
        return _g.Node("Mul", [_g.Node("Div", [x, root], stem + "_normalized"), Weight(weight)], stem);
    }

    /// <summary>The mean over positions whose <c>attention_mask</c> is 1 (0 when there are none), <c>[batch, DModel]</c>.</summary>
    private string MeanPool(string x, string attentionMask)
    {
        string weights = _g.Node("Unsqueeze", [_g.Node("Cast", [attentionMask], "pool_mask", n => B.Int(n, "to", (long)DataType.Float)), _g.Int64s(2)], "pool_weights");
        string sum = _g.Node("ReduceSum", [_g.Node("Mul", [x, weights], "pool_masked"), _g.Int64s(1)], "pool_sum", n => B.Int(n, "keepdims", 0));
        string count = _g.Node("ReduceSum", [weights, _g.Int64s(1)], "pool_count", n => B.Int(n, "keepdims", 0));
        return _g.Node("Div", [sum, _g.Node("Max", [count, _g.Scalar(1e-9f)], "pool_count_clamped")], "pooled");
    }

    // ----- weights -----

    private readonly Dictionary<string, string> _weights = new(StringComparer.Ordinal);

    /// <summary>A parameter as an initializer of its own shape (norms, biases, tables), written once.</summary>
    private string Weight(ParameterTensor t)
    {
        if (_weights.TryGetValue(t.Name, out string? name)) return name;
        long[] dims = new long[t.Shape.Length];
        for (int i = 0; i < dims.Length; i++) dims[i] = t.Shape[i];
        return _weights[t.Name] = _g.Floats(t.Name, dims, _parameters.Span.Slice(t.Offset, t.Length));
    }

    /// <summary>
    /// <c>x·Wᵀ + b</c> for the weights <paramref name="rows"/> stacked by rows (<c>[out, in]</c> each): one fp32
    /// <c>MatMul</c> over <c>Wᵀ</c> stored <c>[in, out]</c>, or one <c>MatMulNBits</c> over 8-bit blocks, then the bias.
    /// </summary>
    private string Linear(string stem, string x, ParameterTensor[] rows, ParameterTensor[]? biases, Func<float[], int, float[]>? reorderRows = null)
    {
        int inF = rows[0].Shape[1], outF = 0;
        foreach (ParameterTensor t in rows)
        {
            if (t.Shape.Length != 2 || t.Shape[1] != inF) throw new ArgumentException($"{t.Name} {t.ShapeText} does not stack with {rows[0].Name} {rows[0].ShapeText}");
            outF += t.Shape[0];
        }
        var w = new float[(long)outF * inF];
        int at = 0;
        foreach (ParameterTensor t in rows)
        {
            _parameters.Span.Slice(t.Offset, t.Length).CopyTo(w.AsSpan(at));
            at += t.Length;
        }
        if (reorderRows is not null) w = reorderRows(w, inF);
        float[]? b = null;
        if (biases is not null)
        {
            b = new float[outF];
            at = 0;
            foreach (ParameterTensor t in biases)
            {
                _parameters.Span.Slice(t.Offset, t.Length).CopyTo(b.AsSpan(at));
                at += t.Length;
            }
            if (reorderRows is not null) b = reorderRows(b, 1);
        }
        string y;
        if (_options.Weights == OnnxWeightFormat.Int8Blocks)
        {
            y = OnnxInt8Blocks.MatMul(_g, stem, x, w, outF, inF, _options.Int8AccuracyLevel);
        }
        else
        {
            var transposed = new float[w.Length];
            for (int o = 0; o < outF; o++)
                for (int i = 0; i < inF; i++)
                    transposed[(long)i * outF + o] = w[(long)o * inF + i];
            y = _g.Node("MatMul", [x, _g.Floats(stem + ".weight", [inF, outF], transposed)], stem + "_product");
        }
        return b is null ? y : _g.Node("Add", [y, _g.Floats(stem + ".bias", [outF], b)], stem);
    }

    /// <summary>
    /// This project's rotary embedding rotates adjacent pairs (2i, 2i+1) of each query and key head; the graph rotates
    /// (i, i + D/2). Moving row 2i + j of each query and key head to j·D/2 + i makes the two the same, and leaves every
    /// score q·k unchanged since queries and keys move alike (MODEL_FAMILIES.md §3.3, the inverse of GGUF's pairing).
    /// </summary>
    private float[] InterleavedToHalfSplit(float[] values, int rowLength)
    {
        var result = (float[])values.Clone();
        int d = _a.HeadDim, half = d / 2;
        int rotatedHeads = _a.Heads + _a.KeyValueHeads; // the query heads, then the key heads; values stay
        for (int head = 0; head < rotatedHeads; head++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    values.AsSpan((head * d + 2 * i + j) * rowLength, rowLength).CopyTo(result.AsSpan((head * d + j * half + i) * rowLength, rowLength));
        return result;
    }
}
