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
    // The axes of an encoder–decoder's two streams, as optimum names them.
    private const string EncoderSequence = "encoder_sequence", DecoderSequence = "decoder_sequence";

    // A masked score is replaced (not added to) by the lowest float, as transformers does with finfo.min: its exponential
    // is exactly 0 after the softmax subtracts the row's maximum, and a row with every key masked stays finite.
    private const float MaskedScore = float.MinValue;

    private readonly OnnxArchitecture _a;
    private readonly ReadOnlyMemory<float> _parameters;
    private readonly OnnxExportOptions _options;
    private readonly B _g;
    private readonly List<OnnxValueInfo> _inputs = new(), _outputs = new();
    // Each layer's keys and values with the new positions appended, output after the logits (optimum's order); in an
    // encoder–decoder's cached decoder also each layer's cross-attention keys and values of every encoder position.
    private readonly List<(string Keys, string Values)> _presents = new(), _crossPresents = new();
    // The position tables of PositionRows rows, written once and sliced by each stream.
    private string? _sinusoids, _cosTable, _sinTable, _localCosTable, _localSinTable;

    /// <summary>
    /// One token stream (a model's only one, or an encoder's or decoder's): its length at run time, the position of its first
    /// token and the one after its last (<c>[1]</c> int64: 0 and the length, or with a cache the cached length and that plus
    /// the length), its rotary rows, and the relative-position bias (T5's, MPNet's) that its self-attention adds to every
    /// layer's scores (<c>[heads, sequence, past + sequence]</c>, <see cref="WithRelativeBias"/>).
    /// </summary>
    private sealed record TokenStream(string Prefix, string Length, string Start, string End, string? Cos, string? Sin)
    {
        public string? PositionBias { get; init; }

        /// <summary>The sliding layers' rows of their own rotary tables (Gemma 3's, ModernBERT's local layers).</summary>
        public string? LocalCos { get; init; }

        public string? LocalSin { get; init; }
    }

    /// <summary>What a decoder layer of an encoder–decoder attends to: the encoder's output and which of its positions are real.</summary>
    private sealed record EncoderOutput(string HiddenStates, string KeyMask);

    /// <summary>
    /// A layer's keys and values of the earlier positions (graph inputs <c>[batch, kvHeads, past_sequence, headDim]</c>), which its
    /// new ones join; or of a decoder layer's cross-attention, those of the encoder positions already projected.
    /// </summary>
    private sealed record PastKeysValues(string Keys, string Values, int Layer);

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
        string doc = _a.Decoder is { } decoder ? BuildEncoderDecoder(decoder) : BuildSingleStack();
        return (_g.Model(typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "0", doc), _inputs, _outputs);
    }

    /// <summary>A decoder-only or encoder-only model: one stack over <c>input_ids</c>, then its head.</summary>
    private string BuildSingleStack()
    {
        if (_options.KeyValueCache) return BuildCachedDecoder();
        string ids = Input("input_ids", DataType.Int64, Batch, Sequence);
        string attentionMask = Input("attention_mask", DataType.Int64, Batch, Sequence);
        string? tokenTypes = _a.TokenTypeEmbedding is null ? null : Input("token_type_ids", DataType.Int64, Batch, Sequence);
        // An encoder's relative-position bias (MPNet's), computed once and added in every layer; Check refuses one on a decoder.
        TokenStream stream = WithRelativeBias(Stream(ids, ""), _a.RelativeAttentionBias, bidirectional: true, _a.SeqLen);
        string keys = KeyMask(attentionMask, "");
        string mask = SelfAttentionMask(stream, keys, causal: !_a.Encoder, _a.SeqLen);
        // The sliding layers (Gemma 3's, ModernBERT's local ones) see only their window.
        string? slidingMask = _a.SlidingWindow > 0 ? SelfAttentionMask(stream, keys, causal: !_a.Encoder, _a.SeqLen, _a.SlidingWindow, "sliding_") : null;
        string x = Embed(stream, ids, tokenTypes, _a.TokenEmbedding, _a.PositionEmbedding, _a.EmbeddingNorm, _a.EmbeddingNormBias);
        // ELECTRA's embeddings_project: the normalized embeddings, embedding_size wide, mapped to the layers' width.
        if (_a.EmbeddingProjection is { } projection)
            x = Linear("embeddings_project", x, [projection], _a.EmbeddingProjectionBias is { } projectionBias ? [projectionBias] : null);
        for (int layer = 0; layer < _a.Layers.Count; layer++)
            x = Layer($"layers.{layer}.", _a.Layers[layer], x, stream, _a.Layers[layer].Sliding ? slidingMask! : mask, null, null);
        if (_a.FinalNorm is { } finalNorm) x = Norm("norm_f", x, finalNorm, _a.FinalNormBias);

        if (!_a.Encoder)
        {
            LogitsOutput(x, Sequence, _a.Vocab, _a.LanguageModelHead, _a.TokenEmbedding, null);
        }
        else
        {
            Output(x, "last_hidden_state", Batch, Sequence, _a.DModel);
            if (_a.Head == EncoderHead.SentenceEmbedding)
            {
                string pooled = Pool(x, attentionMask);
                int width = _a.DModel;
                foreach (OnnxDense dense in _a.Dense)
                {
                    // sentence-transformers' Dense: activation(linear(x)), Identity or tanh.
                    pooled = Linear(dense.Module, pooled, [dense.Weight], dense.Bias is null ? null : [dense.Bias]);
                    if (dense.Tanh) pooled = _g.Node("Tanh", [pooled], dense.Module + "_output");
                    width = dense.Weight.Shape[0];
                }
                string embedding;
                if (_a.UnnormalizedEmbeddings)
                    embedding = _g.Node("Identity", [pooled], "sentence_embedding");
                else
                {
                    string norm = _g.Node("ReduceL2", [pooled], "embedding_norm", n => { B.Ints(n, "axes", 1); B.Int(n, "keepdims", 1); });
                    embedding = _g.Node("Div", [pooled, _g.Node("Max", [norm, _g.Scalar(1e-12f)], "embedding_norm_clamped")], "sentence_embedding");
                }
                Output(embedding, "sentence_embedding", Batch, width);
            }
            else
            {
                int classes = _a.Classifier!.Shape[0];
                string features = _a.Head == EncoderHead.Tagging ? x : Pool(x, attentionMask);
                if (_a.PoolerDense is { } dense)
                {
                    // BERT's pooler, RoBERTa's classification head: tanh(dense(pooled)); DistilBERT's: relu; ELECTRA's: the erf GELU.
                    string projected = Linear("pooler", features, [dense], [_a.PoolerDenseBias!]);
                    features = _a.PoolerActivation switch
                    {
                        OnnxPoolerActivation.Relu => _g.Node("Relu", [projected], "pooler_output"),
                        OnnxPoolerActivation.GeluErf => GeluErf(projected, "pooler_", "pooler_output"),
                        _ => _g.Node("Tanh", [projected], "pooler_output"),
                    };
                }
                string logits = Linear("classifier", features, [_a.Classifier], [_a.ClassifierBias!]);
                if (_a.Head == EncoderHead.Tagging) Output(logits, "logits", Batch, Sequence, classes);
                else Output(logits, "logits", Batch, classes);
            }
        }
        return $"{_a.Name}: {(_a.Encoder ? "encoder-only" : "decoder-only")}, {_a.Layers.Count} layers, DModel {_a.DModel}, {_a.Heads} heads" +
            (_a.KeyValueHeads != _a.Heads ? $" on {_a.KeyValueHeads} key/value heads" : "") + $", sequences of up to {_a.SeqLen} tokens";
    }

    /// <summary>
    /// An encoder–decoder model (<see cref="OnnxSeq2SeqGraph"/>): the encoder over the source, the decoder over its own input
    /// with cross-attention to the encoder's output, the head over the target vocabulary; or either stack alone.
    /// </summary>
    private string BuildEncoderDecoder(OnnxDecoderStack decoder)
    {
        if (_options.KeyValueCache) return BuildCachedSeq2SeqDecoder(decoder);
        OnnxSeq2SeqGraph part = _options.Seq2SeqGraph;
        EncoderOutput memory;
        if (part == OnnxSeq2SeqGraph.Decoder)
        {
            string hidden = Input("encoder_hidden_states", DataType.Float, Batch, EncoderSequence, _a.DModel);
            memory = new EncoderOutput(hidden, KeyMask(Input("encoder_attention_mask", DataType.Int64, Batch, EncoderSequence), "encoder."));
        }
        else
        {
            string ids = Input("input_ids", DataType.Int64, Batch, EncoderSequence);
            string keys = KeyMask(Input("attention_mask", DataType.Int64, Batch, EncoderSequence), "encoder.");
            TokenStream source = WithRelativeBias(Stream(ids, "encoder."), _a.RelativeAttentionBias, bidirectional: true, _a.SeqLen);
            string mask = SelfAttentionMask(source, keys, causal: false, _a.SeqLen);
            string x = Embed(source, ids, null, _a.TokenEmbedding, _a.PositionEmbedding, _a.EmbeddingNorm, _a.EmbeddingNormBias);
            for (int layer = 0; layer < _a.Layers.Count; layer++) x = Layer($"encoder.layers.{layer}.", _a.Layers[layer], x, source, mask, null, null);
            if (_a.FinalNorm is { } finalNorm) x = Norm("encoder.norm", x, finalNorm, _a.FinalNormBias);
            memory = new EncoderOutput(x, keys);
        }
        string shape = $"{_a.Name}: encoder–decoder, {_a.Layers.Count} encoder and {decoder.Layers.Count} decoder layers, DModel {_a.DModel}, {_a.Heads} heads, " +
            $"sources of up to {_a.SeqLen} tokens, decoder inputs of up to {decoder.SeqLen}";
        if (part == OnnxSeq2SeqGraph.Encoder)
        {
            Output(memory.HiddenStates, "last_hidden_state", Batch, EncoderSequence, _a.DModel);
            return shape + "; the encoder alone";
        }

        string decoderIds = Input(part == OnnxSeq2SeqGraph.Decoder ? "input_ids" : "decoder_input_ids", DataType.Int64, Batch, DecoderSequence);
        string? decoderKeys = decoder.MasksPadding ? KeyMask(Input("decoder_attention_mask", DataType.Int64, Batch, DecoderSequence), "decoder.") : null;
        TokenStream target = WithRelativeBias(Stream(decoderIds, "decoder."), decoder.RelativeAttentionBias, bidirectional: false, decoder.SeqLen);
        string selfMask = SelfAttentionMask(target, decoderKeys, causal: true, decoder.SeqLen);
        string y = Embed(target, decoderIds, null, decoder.TokenEmbedding, decoder.PositionEmbedding, decoder.EmbeddingNorm, decoder.EmbeddingNormBias);
        for (int layer = 0; layer < decoder.Layers.Count; layer++)
            y = Layer($"decoder.layers.{layer}.", decoder.Layers[layer], y, target, selfMask, decoder.CrossAttention[layer], memory);
        if (decoder.FinalNorm is { } decoderNorm) y = Norm("decoder.norm", y, decoderNorm, decoder.FinalNormBias);
        LogitsOutput(y, DecoderSequence, decoder.Vocab, decoder.LanguageModelHead, decoder.TokenEmbedding, decoder.LogitsBias, decoder.HeadScale);
        if (part == OnnxSeq2SeqGraph.Full) Output(memory.HiddenStates, "encoder_last_hidden_state", Batch, EncoderSequence, _a.DModel);
        return shape + (part == OnnxSeq2SeqGraph.Decoder ? "; the decoder alone" : "");
    }

    /// <summary>
    /// A decoder-only model with a key/value cache, in Hugging Face optimum's form: the new tokens' <c>input_ids</c> and
    /// <c>position_ids</c> <c>[batch, sequence]</c>, an <c>attention_mask</c> over every position so far
    /// <c>[batch, past_sequence + sequence]</c> and each layer's <c>past_key_values.{i}.key</c> and <c>.value</c> in;
    /// <c>logits</c> and each layer's <c>present.{i}.key</c> and <c>.value</c> (the past with the new positions appended) out.
    /// </summary>
    private string BuildCachedDecoder()
    {
        const string Past = "past_sequence", Total = "past_sequence + sequence";
        string ids = Input("input_ids", DataType.Int64, Batch, Sequence);
        string attentionMask = Input("attention_mask", DataType.Int64, Batch, Total);
        string positionIds = Input("position_ids", DataType.Int64, Batch, Sequence);
        var past = new PastKeysValues[_a.Layers.Count];
        for (int layer = 0; layer < past.Length; layer++)
        {
            past[layer] = new PastKeysValues(
                Input($"past_key_values.{layer}.key", DataType.Float, Batch, _a.KeyValueHeads, Past, _a.HeadDim),
                Input($"past_key_values.{layer}.value", DataType.Float, Batch, _a.KeyValueHeads, Past, _a.HeadDim), layer);
        }
        string pastLength = SequenceAxisLength(past[0].Keys, "past_sequence_length");
        TokenStream stream = Stream(ids, "", positionIds, pastLength);
        string keyMask = KeyMask(attentionMask, "");
        string mask = CachedAttentionMask(stream, keyMask, _a.SeqLen, _a.AttentionWindow);
        // Gemma 3's sliding layers see only the last keys of their window.
        string? slidingMask = _a.SlidingWindow > 0 ? CachedAttentionMask(stream, keyMask, _a.SeqLen, _a.SlidingWindow, "sliding_") : null;
        string x = Embed(stream, ids, null, _a.TokenEmbedding, _a.PositionEmbedding, _a.EmbeddingNorm, _a.EmbeddingNormBias, positionIds);
        for (int layer = 0; layer < _a.Layers.Count; layer++)
            x = Layer($"layers.{layer}.", _a.Layers[layer], x, stream, _a.Layers[layer].Sliding ? slidingMask! : mask, null, null, past[layer]);
        if (_a.FinalNorm is { } finalNorm) x = Norm("norm_f", x, finalNorm, _a.FinalNormBias);
        LogitsOutput(x, Sequence, _a.Vocab, _a.LanguageModelHead, _a.TokenEmbedding, null);
        for (int layer = 0; layer < _presents.Count; layer++)
        {
            Output(_presents[layer].Keys, $"present.{layer}.key", Batch, _a.KeyValueHeads, Total, _a.HeadDim);
            Output(_presents[layer].Values, $"present.{layer}.value", Batch, _a.KeyValueHeads, Total, _a.HeadDim);
        }
        return $"{_a.Name}: decoder-only with a key/value cache, {_a.Layers.Count} layers, DModel {_a.DModel}, {_a.Heads} heads" +
            (_a.KeyValueHeads != _a.Heads ? $" on {_a.KeyValueHeads} key/value heads" : "") + $", up to {_a.SeqLen} positions in all";
    }

    /// <summary>
    /// An encoder–decoder's decoder with its key/value caches, in the layout of Hugging Face optimum's merged seq2seq decoder
    /// (<c>decoder_model_merged.onnx</c>): <c>encoder_hidden_states</c> <c>[batch, encoder_sequence, DModel]</c>,
    /// <c>encoder_attention_mask</c> <c>[batch, encoder_sequence]</c>, the new tokens' <c>input_ids</c> <c>[batch,
    /// decoder_sequence]</c>, <c>decoder_attention_mask</c> over every decoder position so far (a model with a padding id)
    /// and each layer's <c>past_key_values.{i}.decoder.key</c>, <c>.decoder.value</c> (self-attention) and
    /// <c>.encoder.key</c>, <c>.encoder.value</c> (cross-attention) in; <c>logits</c> and each layer's
    /// <c>present.{i}.decoder.*</c> (the past with the new positions appended) and <c>present.{i}.encoder.*</c> out. The
    /// new tokens stand at positions past, past + 1, …. A cross-attention projects only the encoder positions its past does
    /// not hold: all of them when the past is empty (the first step), none once it holds them; so one graph serves every
    /// step, where optimum switches between two branches with a <c>use_cache_branch</c> input.
    /// </summary>
    private string BuildCachedSeq2SeqDecoder(OnnxDecoderStack decoder)
    {
        const string PastDecoder = "past_decoder_sequence", TotalDecoder = "past_decoder_sequence + decoder_sequence", PastEncoder = "past_encoder_sequence";
        string hidden = Input("encoder_hidden_states", DataType.Float, Batch, EncoderSequence, _a.DModel);
        var memory = new EncoderOutput(hidden, KeyMask(Input("encoder_attention_mask", DataType.Int64, Batch, EncoderSequence), "encoder."));
        string ids = Input("input_ids", DataType.Int64, Batch, DecoderSequence);
        string? decoderKeys = decoder.MasksPadding ? KeyMask(Input("decoder_attention_mask", DataType.Int64, Batch, TotalDecoder), "decoder.") : null;
        int layers = decoder.Layers.Count;
        var past = new PastKeysValues[layers];
        var crossPast = new PastKeysValues[layers];
        for (int layer = 0; layer < layers; layer++)
        {
            string p = $"past_key_values.{layer}.";
            past[layer] = new PastKeysValues(
                Input(p + "decoder.key", DataType.Float, Batch, _a.KeyValueHeads, PastDecoder, _a.HeadDim),
                Input(p + "decoder.value", DataType.Float, Batch, _a.KeyValueHeads, PastDecoder, _a.HeadDim), layer);
            crossPast[layer] = new PastKeysValues(
                Input(p + "encoder.key", DataType.Float, Batch, _a.Heads, PastEncoder, _a.HeadDim),
                Input(p + "encoder.value", DataType.Float, Batch, _a.Heads, PastEncoder, _a.HeadDim), layer);
        }
        string pastLength = SequenceAxisLength(past[0].Keys, "decoder.past_sequence_length");
        TokenStream target = WithRelativeBias(Stream(ids, "decoder.", start: pastLength), decoder.RelativeAttentionBias, bidirectional: false, decoder.SeqLen);
        string selfMask = CachedAttentionMask(target, decoderKeys, decoder.SeqLen, _a.AttentionWindow);
        string y = Embed(target, ids, null, decoder.TokenEmbedding, decoder.PositionEmbedding, decoder.EmbeddingNorm, decoder.EmbeddingNormBias);
        for (int layer = 0; layer < layers; layer++)
            y = Layer($"decoder.layers.{layer}.", decoder.Layers[layer], y, target, selfMask, decoder.CrossAttention[layer], memory, past[layer], crossPast[layer]);
        if (decoder.FinalNorm is { } decoderNorm) y = Norm("decoder.norm", y, decoderNorm, decoder.FinalNormBias);
        LogitsOutput(y, DecoderSequence, decoder.Vocab, decoder.LanguageModelHead, decoder.TokenEmbedding, decoder.LogitsBias, decoder.HeadScale);
        for (int layer = 0; layer < layers; layer++)
        {
            Output(_presents[layer].Keys, $"present.{layer}.decoder.key", Batch, _a.KeyValueHeads, TotalDecoder, _a.HeadDim);
            Output(_presents[layer].Values, $"present.{layer}.decoder.value", Batch, _a.KeyValueHeads, TotalDecoder, _a.HeadDim);
            Output(_crossPresents[layer].Keys, $"present.{layer}.encoder.key", Batch, _a.Heads, EncoderSequence, _a.HeadDim);
            Output(_crossPresents[layer].Values, $"present.{layer}.encoder.value", Batch, _a.Heads, EncoderSequence, _a.HeadDim);
        }
        return $"{_a.Name}: the decoder of an encoder–decoder with its key/value caches, {layers} layers, DModel {_a.DModel}, {_a.Heads} heads, " +
            $"sources of up to {_a.SeqLen} tokens, up to {decoder.SeqLen} decoder positions in all";
    }

    /// <summary>The length of a cache's sequence axis (axis 2 of <c>[batch, heads, sequence, headDim]</c>), <c>[1]</c> int64.</summary>
    private string SequenceAxisLength(string cache, string stem) =>
        _g.Node("Shape", [cache], stem, n => { B.Int(n, "start", 2); B.Int(n, "end", 3); });

    /// <summary>
    /// Which keys each new query sees when the stream's first position is its cached length: query i is position
    /// past + i of the sequence and sees the real keys (<paramref name="keyMask"/>, when the stream has one) at or before it
    /// (within <paramref name="window"/> when it is not 0), from the rows past … past + sequence of a table of
    /// <paramref name="rows"/>².
    /// </summary>
    private string CachedAttentionMask(TokenStream stream, string? keyMask, int rows, int window, string kind = "")
    {
        string p = stream.Prefix + kind;
        string full = VisibilityTable(rows, causal: true, window);
        string starts = _g.Node("Concat", [stream.Start, _g.Int64s(0)], p + "query_key_starts", a => B.Int(a, "axis", 0));
        string ends = _g.Node("Concat", [stream.End, stream.End], p + "query_key_ends", a => B.Int(a, "axis", 0));
        string square = _g.Node("Slice", [full, starts, ends, _g.Int64s(0, 1)], p + "query_key_mask"); // [sequence, past + sequence]
        string mask = keyMask is null ? square : _g.Node("And", [keyMask, square], p + "attention_mask_bool");
        return Grouped(mask, p + "attention_mask_grouped");
    }

    // ----- inputs and outputs -----

    private string Input(string name, DataType type, params object[] dims)
    {
        _inputs.Add(new OnnxValueInfo(name, TypeName(type), Dims(dims)));
        return _g.Input(name, type, dims);
    }

    private void Output(string value, string name, params object[] dims)
    {
        _g.Output(value, name, DataType.Float, dims);
        _outputs.Add(new OnnxValueInfo(name, "float", Dims(dims)));
    }

    private static string TypeName(DataType type) => type == DataType.Int64 ? "int64" : "float";

    private static string[] Dims(object[] dims) =>
        Array.ConvertAll(dims, d => d as string ?? Convert.ToString(d, System.Globalization.CultureInfo.InvariantCulture)!);

    /// <summary>
    /// The LM head over <paramref name="x"/> <c>[batch, positions, DModel]</c> (times <paramref name="scale"/> when it is not 1,
    /// T5's tied head) as the graph's <c>logits</c>: its own matrix, or the token embedding read through a Transpose (one copy
    /// in the file), plus <paramref name="bias"/> when the model has one (<c>final_logits_bias</c>); with LastPositionOnly, the
    /// last position only.
    /// </summary>
    private void LogitsOutput(string x, string positions, int vocab, ParameterTensor? head, ParameterTensor tokenEmbedding, ParameterTensor? bias, float scale = 1f)
    {
        if (_options.LastPositionOnly) x = _g.Node("Gather", [x, _g.Int64s(-1)], "last_position", n => B.Int(n, "axis", 1));
        if (scale != 1f) x = _g.Node("Mul", [x, _g.Scalar(scale)], "head_input_scaled");
        string logits = head is not null
            ? Linear("lm_head", x, [head], null)
            : _g.Node("MatMul", [x, _g.Node("Transpose", [Weight(tokenEmbedding)], "token_embedding_transposed", n => B.Ints(n, "perm", 1, 0))], bias is null ? "logits" : "logits_unbiased");
        if (bias is not null) logits = _g.Node("Add", [logits, Weight(bias)], "logits");
        Output(logits, "logits", Batch, _options.LastPositionOnly ? (object)1 : positions, vocab);
    }

    // ----- embeddings and masks -----

    /// <summary>
    /// The stream of <paramref name="ids"/>: its length (the second axis), where it starts (0, or <paramref name="start"/>: the
    /// cached length) and, for rotary positions, its rows of the tables (those of <paramref name="positionIds"/> when given).
    /// </summary>
    private TokenStream Stream(string ids, string prefix, string? positionIds = null, string? start = null)
    {
        string length = _g.Node("Shape", [ids], prefix + "sequence_length", n => { B.Int(n, "start", 1); B.Int(n, "end", 2); });
        string first = start ?? _g.Int64s(0);
        string end = start is null ? length : _g.Node("Add", [start, length], prefix + "total_sequence_length");
        if (_a.Positions is not (OnnxPositions.RotaryHalf or OnnxPositions.RotaryInterleaved)) return new TokenStream(prefix, length, first, end, null, null);
        RotaryTables();
        // The stream's rows of the tables ([sequence, headDim]), or with position_ids each token's row ([batch, 1, sequence, headDim]).
        string Rows(string table, string stem) => positionIds is null
            ? StreamRows(table, first, end, stem)
            : _g.Node("Unsqueeze", [_g.Node("Gather", [table, positionIds], stem + "_per_token", n => B.Int(n, "axis", 0)), _g.Int64s(1)], stem);
        var stream = new TokenStream(prefix, length, first, end, Rows(_cosTable!, prefix + "rotary_cos_rows"), Rows(_sinTable!, prefix + "rotary_sin_rows"));
        return _localCosTable is null ? stream
            : stream with { LocalCos = Rows(_localCosTable, prefix + "rotary_local_cos_rows"), LocalSin = Rows(_localSinTable!, prefix + "rotary_local_sin_rows") };
    }

    /// <summary>
    /// Token embeddings (scaled, with token types, positions and the stack's embedding norm where the model has them);
    /// absolute positions are those of the stream (0, 1, …, or from its cached length on), or <paramref name="positionIds"/>
    /// when given.
    /// </summary>
    private string Embed(TokenStream stream, string ids, string? tokenTypes, ParameterTensor tokenEmbedding, ParameterTensor? positionEmbedding,
        ParameterTensor? embeddingNorm, ParameterTensor? embeddingNormBias, string? positionIds = null)
    {
        string p = stream.Prefix;
        string x = _g.Node("Gather", [Weight(tokenEmbedding), ids], p + "embedding", n => B.Int(n, "axis", 0));
        if (_a.EmbeddingScale != 1f) x = _g.Node("Mul", [x, _g.Scalar(_a.EmbeddingScale)], p + "embedding_scaled");
        if (tokenTypes is not null)
            x = _g.Node("Add", [x, _g.Node("Gather", [Weight(_a.TokenTypeEmbedding!), tokenTypes], p + "token_type_embedding", n => B.Int(n, "axis", 0))], p + "embedding_with_types");
        switch (_a.Positions)
        {
            case OnnxPositions.Learned:
            {
                string table = Weight(positionEmbedding!);
                if (_a.PositionOffset > 0) // RoBERTa: position 0 is the row after the padding id's
                    table = StreamRows(table, _g.Int64s(_a.PositionOffset), _g.Int64s(positionEmbedding!.Shape[0]), p + "position_table");
                x = _g.Node("Add", [x, PositionRows(table, stream, positionIds)], p + "embedding_with_positions");
                break;
            }
            case OnnxPositions.Sinusoidal or OnnxPositions.SinusoidalSplit or OnnxPositions.SinusoidalFairseq:
            {
                if (_sinusoids is null)
                {
                    // The table the model computes, position 0 in row 0: the paper's interleaved sinusoids, Marian's split ones,
                    // or fairseq's counted from SinusoidFirstPosition (M2M100's pad_token_id + 1).
                    int rows = _a.PositionRows, c = _a.DModel;
                    var table = new float[rows * c];
                    if (_a.Positions == OnnxPositions.SinusoidalSplit) Kernels.Positional.SinusoidalSplitTable(table, rows, c);
                    else if (_a.Positions == OnnxPositions.SinusoidalFairseq) Kernels.Positional.SinusoidalFairseqTable(table, rows, c, _a.SinusoidFirstPosition);
                    else Kernels.Positional.SinusoidalTable(table, rows, c);
                    _sinusoids = _g.Floats("sinusoidal_positions", [rows, c], table);
                }
                x = _g.Node("Add", [x, PositionRows(_sinusoids, stream, positionIds)], p + "embedding_with_positions");
                break;
            }
        }
        if (embeddingNorm is not null) x = Norm(p + "embedding_norm", x, embeddingNorm, embeddingNormBias);
        return x;
    }

    /// <summary>The rows of a position table for a stream: those of its positions, or those of <paramref name="positionIds"/> (<c>[batch, sequence, …]</c>).</summary>
    private string PositionRows(string table, TokenStream stream, string? positionIds) => positionIds is null
        ? StreamRows(table, stream.Start, stream.End, stream.Prefix + "positions")
        : _g.Node("Gather", [table, positionIds], stream.Prefix + "positions", n => B.Int(n, "axis", 0));

    /// <summary>Rows <c>[start, end)</c> of a table <c>[rows, …]</c>: a stream's positions.</summary>
    private string StreamRows(string table, string start, string end, string stem) =>
        _g.Node("Slice", [table, start, end, _g.Int64s(0)], stem);

    /// <summary>
    /// <paramref name="stream"/> with the relative-position bias of its self-attention (T5's, MPNet's; none without a table): for query
    /// positions start … end − 1 and key positions 0 … end − 1, <c>bias[h, i, j] = table[bucket(key − query), h]</c>,
    /// <c>[heads, sequence, past + sequence]</c>, computed once and added to the scores of every layer of the stack. The
    /// bucket of each distance −(span − 1) … span − 1 is <see cref="Kernels.RelativePosition.Buckets"/>'s, the model's own,
    /// written as an int64 vector of 2·span − 1 entries; the graph looks each pair's distance up in it. The vector rather than
    /// a bucket per (query, key) pair: span² int64 would stay in the graph even with external data (shape constants do).
    /// </summary>
    private TokenStream WithRelativeBias(TokenStream stream, ParameterTensor? table, bool bidirectional, int span)
    {
        if (table is null) return stream;
        string p = stream.Prefix;
        var buckets = new int[2 * span - 1];
        Kernels.RelativePosition.Buckets(buckets, span, bidirectional, _a.RelativeBuckets, _a.RelativeMaxDistance);
        var distanceBuckets = Array.ConvertAll(buckets, b => (long)b);
        string bucketOf = _g.Initializer(_g.Fresh(p + "relative_position_buckets"), [distanceBuckets.Length], DataType.Int64,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(distanceBuckets.AsSpan()));
        var numbers = new long[span];
        for (int i = 0; i < span; i++) numbers[i] = i;
        string positions = _g.Initializer(_g.Fresh(p + "relative_positions"), [span], DataType.Int64,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(numbers.AsSpan()));
        string queries = _g.Node("Unsqueeze", [StreamRows(positions, stream.Start, stream.End, p + "query_positions"), _g.Int64s(1)], p + "query_positions_column"); // [sequence, 1]
        string keys = StreamRows(positions, _g.Int64s(0), stream.End, p + "key_positions"); // [past + sequence]
        // span − 1 + key − query: the distance's entry in the bucket vector, [sequence, past + sequence].
        string entries = _g.Node("Sub", [_g.Node("Add", [keys, _g.Int64s(span - 1)], p + "key_positions_shifted"), queries], p + "relative_distance_entries");
        string bucket = _g.Node("Gather", [bucketOf, entries], p + "relative_buckets", n => B.Int(n, "axis", 0));
        string rows = _g.Node("Gather", [Weight(table), bucket], p + "relative_bias_rows", n => B.Int(n, "axis", 0)); // [sequence, past + sequence, heads]
        return stream with { PositionBias = _g.Node("Transpose", [rows], p + "relative_position_bias", n => B.Ints(n, "perm", 2, 0, 1)) };
    }

    /// <summary>
    /// cos and sin <c>[PositionRows, headDim]</c> for <c>x·cos + rotate_half(x)·sin</c>, written once: each half-size table
    /// of the model (<see cref="Kernels.Positional.RotaryTables(Span{float}, Span{float}, int, int, float, Kernels.RotaryScaling)"/> for the families, with their rotary scaling,
    /// the double-precision one for this project's models) twice side by side, as transformers' <c>cat(freqs, freqs)</c>.
    /// </summary>
    private void RotaryTables()
    {
        if (_cosTable is not null) return;
        int half = _a.HeadDim / 2, n = _a.PositionRows;
        var cos = new float[n * half];
        var sin = new float[n * half];
        if (_a.Positions == OnnxPositions.RotaryHalf) Kernels.Positional.RotaryTables(cos, sin, n, _a.HeadDim, _a.RopeTheta, _a.RopeScaling ?? Kernels.RotaryScaling.None);
        else Kernels.Positional.RotaryTables(cos, sin, n, _a.HeadDim);
        if (_a.LocalRopeTheta > 0)
        {
            // The sliding layers (Gemma 3's, ModernBERT's local ones): their own base, never scaled.
            var localCos = new float[n * half];
            var localSin = new float[n * half];
            Kernels.Positional.RotaryTables(localCos, localSin, n, _a.HeadDim, _a.LocalRopeTheta);
            _localCosTable = _g.Floats("rotary_local_cos", [n, _a.HeadDim], Doubled(localCos));
            _localSinTable = _g.Floats("rotary_local_sin", [n, _a.HeadDim], Doubled(localSin));
        }
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
        _cosTable = _g.Floats("rotary_cos", [n, _a.HeadDim], Doubled(cos));
        _sinTable = _g.Floats("rotary_sin", [n, _a.HeadDim], Doubled(sin));
    }

    /// <summary>Which keys are real, <c>[batch, 1, 1, keys]</c> bool, from an attention mask of 1 (a token) and 0 (padding).</summary>
    private string KeyMask(string attentionMask, string prefix)
    {
        string keys = _g.Node("Cast", [attentionMask], prefix + "key_visible", n => B.Int(n, "to", (long)DataType.Bool));
        return _g.Node("Unsqueeze", [keys, _g.Int64s(1, 2)], prefix + "key_mask");
    }

    /// <summary>
    /// Which keys each query of a self-attention sees, as bool broadcast to the scores' shape: the real keys
    /// (<paramref name="keyMask"/>, when the stream has one), and for a causal stack those at or before the query, and within
    /// <paramref name="window"/> positions when it is not 0 (the model's attention window unless given: Gemma 3's sliding
    /// layers pass theirs, named with <paramref name="kind"/>), from a table of <paramref name="rows"/>² sliced to the
    /// stream's length.
    /// </summary>
    private string SelfAttentionMask(TokenStream stream, string? keyMask, bool causal, int rows, int window = -1, string kind = "")
    {
        string p = stream.Prefix + kind;
        if (window < 0) window = _a.AttentionWindow;
        string? mask = keyMask;
        if (causal || window > 0)
        {
            string full = VisibilityTable(rows, causal, window);
            string ends = _g.Node("Concat", [stream.Length, stream.Length], p + "query_key_ends", a => B.Int(a, "axis", 0));
            string square = _g.Node("Slice", [full, _g.Int64s(0, 0), ends, _g.Int64s(0, 1)], p + "query_key_mask"); // [sequence, sequence]
            mask = mask is null ? square : _g.Node("And", [mask, square], p + "attention_mask_bool"); // [batch, 1, sequence, sequence]
        }
        if (mask is null) throw new InvalidOperationException($"{_a.Name}: a bidirectional attention without an attention mask");
        return Grouped(mask, p + "attention_mask_grouped");
    }

    /// <summary>
    /// Whether query position i sees key position j, a bool initializer <c>[n, n]</c>: j ≤ i for a causal stack, and
    /// |i − j| within <paramref name="window"/> when it is not 0.
    /// </summary>
    private string VisibilityTable(int n, bool causal, int window)
    {
        var table = new byte[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                table[i * n + j] = (byte)((!causal || j <= i) && (window == 0 || Math.Abs(i - j) <= window) ? 1 : 0);
        return _g.Initializer(_g.Fresh("query_key_visible"), [n, n], DataType.Bool, table);
    }

    /// <summary>With grouped-query attention the scores have a group axis: the mask gets one too.</summary>
    private string Grouped(string mask, string stem) =>
        _a.KeyValueHeads != _a.Heads ? _g.Node("Unsqueeze", [mask, _g.Int64s(1)], stem) : mask;

    // ----- layers -----

    /// <summary>
    /// One layer: self-attention, then (in a decoder of an encoder–decoder, <paramref name="cross"/> given) cross-attention
    /// to <paramref name="memory"/>, then the feed-forward network, each in a residual connection with its norm before
    /// (pre-LN) or after (post-LN) it. With <paramref name="past"/> and <paramref name="crossPast"/>, each attention's cached
    /// keys and values are extended.
    /// </summary>
    private string Layer(string p, OnnxLayerTensors t, string x, TokenStream stream, string mask, OnnxCrossAttentionTensors? cross, EncoderOutput? memory,
        PastKeysValues? past = null, PastKeysValues? crossPast = null)
    {
        // A pre-norm layer without an attention norm (ModernBERT's first) attends over its input as it is.
        string attentionInput = _a.PreNorm && t.AttentionNorm is { } attentionNorm ? Norm(p + "attention_norm", x, attentionNorm, t.AttentionNormBias) : x;
        // The sliding layers (Gemma 3's, ModernBERT's local ones) rotate with their own table.
        TokenStream rotation = t.Sliding && stream.LocalCos is not null ? stream with { Cos = stream.LocalCos, Sin = stream.LocalSin } : stream;
        string attended = SelfAttention(p, t, attentionInput, rotation, mask, past);
        if (t.PostAttentionNorm is { } postAttention) attended = Norm(p + "post_attention_norm", attended, postAttention, null);
        string residual = _g.Node("Add", [x, attended], p + "residual1");
        if (!_a.PreNorm) residual = Norm(p + "attention_norm", residual, t.AttentionNorm!, t.AttentionNormBias);
        if (cross is not null)
        {
            string crossInput = _a.PreNorm ? Norm(p + "cross_attention_norm", residual, cross.Norm, cross.NormBias) : residual;
            string crossAttended = CrossAttention(p, cross, crossInput, memory!, crossPast);
            residual = _g.Node("Add", [residual, crossAttended], p + "residual2");
            if (!_a.PreNorm) residual = Norm(p + "cross_attention_norm", residual, cross.Norm, cross.NormBias);
        }
        string ffnInput = _a.PreNorm ? Norm(p + "ffn_norm", residual, t.FeedForwardNorm, t.FeedForwardNormBias) : residual;
        string ffn = FeedForward(p, t, ffnInput);
        if (t.PostFeedForwardNorm is { } postFeedForward) ffn = Norm(p + "post_ffn_norm", ffn, postFeedForward, null);
        string output = _g.Node("Add", [residual, ffn], p + "output");
        if (!_a.PreNorm) output = Norm(p + "ffn_norm", output, t.FeedForwardNorm, t.FeedForwardNormBias);
        return output;
    }

    /// <summary>
    /// Self-attention of a stream; with <paramref name="past"/>, the new keys and values are appended to the cached ones
    /// (the graph's <c>present.{i}.key</c> and <c>.value</c>) and the queries attend to all of them.
    /// </summary>
    private string SelfAttention(string p, OnnxLayerTensors t, string x, TokenStream stream, string mask, PastKeysValues? past)
    {
        int h = _a.Heads, kv = _a.KeyValueHeads, d = _a.HeadDim;
        string qkv = Linear(p + "qkv", x, t.QueryKeyValue, t.QueryKeyValueBias,
            _a.Positions == OnnxPositions.RotaryInterleaved ? InterleavedToHalfSplit : null);
        string[] parts = _g.Nodes("Split", [qkv, _g.Int64s(h * d, kv * d, kv * d)], p + "qkv_part", 3, n => B.Int(n, "axis", 2));
        string q = Heads(parts[0], h, p + "q"), k = Heads(parts[1], kv, p + "k"), v = Heads(parts[2], kv, p + "v");
        // Qwen3: each query and key head RMS-normalized over its D channels before the rotation. The heads are
        // [batch, heads, sequence, D] here, so the norm's last axis is a head's channels and its [D] weight broadcasts.
        if (t.QueryNorm is { } queryNorm) q = Norm(p + "q_norm", q, queryNorm, null);
        if (t.KeyNorm is { } keyNorm) k = Norm(p + "k_norm", k, keyNorm, null);
        if (stream.Cos is not null)
        {
            q = Rotate(q, stream, p + "q_rotated");
            k = Rotate(k, stream, p + "k_rotated");
        }
        if (past is not null)
        {
            k = _g.Node("Concat", [past.Keys, k], p + "k_all", n => B.Int(n, "axis", 2));
            v = _g.Node("Concat", [past.Values, v], p + "v_all", n => B.Int(n, "axis", 2));
            _presents.Add((k, v));
        }
        return Attend(p, q, k, v, mask, t.Output, t.OutputBias, stream.PositionBias);
    }

    /// <summary>
    /// Queries from the decoder's stream, keys and values from the encoder's output (no positions: the model rotates only
    /// in self-attention), every real source position visible to every query. With <paramref name="past"/>, only the encoder
    /// positions from its length on are projected and appended to it (all of them when it is empty, none once it holds
    /// them: a Slice of zero rows), and the result is the graph's <c>present.{i}.encoder.*</c>.
    /// </summary>
    private string CrossAttention(string p, OnnxCrossAttentionTensors t, string x, EncoderOutput memory, PastKeysValues? past)
    {
        int h = _a.Heads, d = _a.HeadDim;
        string q = Heads(Linear(p + "cross_query", x, [t.Query], t.QueryBias is { } queryBias ? [queryBias] : null), h, p + "cross_q");
        string hidden = memory.HiddenStates;
        if (past is not null)
            hidden = _g.Node("Slice", [hidden, SequenceAxisLength(past.Keys, p + "cross_past_length"), _g.Int64s(long.MaxValue), _g.Int64s(1)], p + "cross_unprojected");
        string keyValue = Linear(p + "cross_key_value", hidden, t.KeyValue, t.KeyValueBias);
        string[] parts = _g.Nodes("Split", [keyValue, _g.Int64s(h * d, h * d)], p + "cross_kv_part", 2, n => B.Int(n, "axis", 2));
        string k = Heads(parts[0], h, p + "cross_k"), v = Heads(parts[1], h, p + "cross_v");
        if (past is not null)
        {
            k = _g.Node("Concat", [past.Keys, k], p + "cross_k_all", n => B.Int(n, "axis", 2));
            v = _g.Node("Concat", [past.Values, v], p + "cross_v_all", n => B.Int(n, "axis", 2));
            _crossPresents.Add((k, v));
        }
        return Attend(p + "cross_", q, k, v, Grouped(memory.KeyMask, p + "cross_mask_grouped"), t.Output, t.OutputBias);
    }

    /// <summary><c>[batch, sequence, heads·D]</c> → <c>[batch, heads, sequence, D]</c>.</summary>
    private string Heads(string value, int heads, string stem) =>
        _g.Node("Transpose", [_g.Node("Reshape", [value, _g.Int64s(0, 0, heads, _a.HeadDim)], stem + "_heads")], stem, n => B.Ints(n, "perm", 0, 2, 1, 3));

    /// <summary>
    /// softmax(q·kᵀ/√D, masked)·v over heads <c>[batch, heads, queries, D]</c> and <c>[batch, kvHeads, keys, D]</c>, the heads
    /// put side by side again, and the output projection. A relative-position bias <paramref name="positionBias"/>
    /// <c>[heads, queries, keys]</c> is added to the scores before the mask, as transformers adds it: after the division
    /// by √D (MPNet), or to scores that T5 does not divide.
    /// </summary>
    private string Attend(string p, string q, string k, string v, string mask, ParameterTensor output, ParameterTensor? outputBias, string? positionBias = null)
    {
        int h = _a.Heads, kv = _a.KeyValueHeads, d = _a.HeadDim;
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
        if (!_a.UnscaledScores) scores = _g.Node("Mul", [scores, _g.Scalar(_a.ScoreScale != 0f ? _a.ScoreScale : 1f / MathF.Sqrt(d))], p + "scores_scaled");
        if (positionBias is not null) scores = _g.Node("Add", [scores, positionBias], p + "scores_biased");
        scores = _g.Node("Where", [mask, scores, _g.Scalar(MaskedScore)], p + "scores_masked");
        string probabilities = _g.Node("Softmax", [scores], p + "attention_probabilities", n => B.Int(n, "axis", -1));
        string context = _g.Node("MatMul", [probabilities, v], p + "context");
        if (kv != h) context = _g.Node("Reshape", [context, _g.Int64s(0, h, -1, d)], p + "context_heads");
        context = _g.Node("Transpose", [context], p + "context_tokens", n => B.Ints(n, "perm", 0, 2, 1, 3));
        context = _g.Node("Reshape", [context, _g.Int64s(0, 0, h * d)], p + "context_flat");
        return Linear(p + "attention_output", context, [output], outputBias is { } b ? [b] : null);
    }

    /// <summary><c>x·cos + rotate_half(x)·sin</c>, rotate_half(x) = <c>cat(−x[D/2:], x[:D/2])</c>, on <c>[batch, heads, sequence, D]</c>.</summary>
    private string Rotate(string x, TokenStream stream, string stem)
    {
        int half = _a.HeadDim / 2;
        string first = _g.Node("Slice", [x, _g.Int64s(0), _g.Int64s(half), _g.Int64s(3)], stem + "_first_half");
        string second = _g.Node("Slice", [x, _g.Int64s(half), _g.Int64s(_a.HeadDim), _g.Int64s(3)], stem + "_second_half");
        string rotated = _g.Node("Concat", [_g.Node("Neg", [second], stem + "_negated"), first], stem + "_rotate_half", n => B.Int(n, "axis", 3));
        return _g.Node("Add", [_g.Node("Mul", [x, stream.Cos!], stem + "_cos"), _g.Node("Mul", [rotated, stream.Sin!], stem + "_sin")], stem);
    }

    private string FeedForward(string p, OnnxLayerTensors t, string x)
    {
        string hidden = Linear(p + "ffn_up", x, t.Up, t.UpBias);
        string activated;
        switch (_a.FeedForward)
        {
            case OnnxFeedForward.SwiGlu or OnnxFeedForward.GeGluTanh or OnnxFeedForward.GeGluErf:
            {
                // rows gate | up, from one tensor (Phi-3's gate_up_proj, ModernBERT's Wi: input | gate, the first half
                // activated) or two (Llama's gate_proj and up_proj, T5's wi_0 and wi_1)
                int dff = t.Down.Shape[1];
                string[] gateUp = _g.Nodes("Split", [hidden, _g.Int64s(dff, dff)], p + "ffn_gate_up", 2, n => B.Int(n, "axis", 2));
                string gate = _a.FeedForward switch
                {
                    OnnxFeedForward.SwiGlu => _g.Node("Mul", [gateUp[0], _g.Node("Sigmoid", [gateUp[0]], p + "ffn_sigmoid")], p + "ffn_silu"),
                    OnnxFeedForward.GeGluErf => GeluErf(gateUp[0], p),
                    _ => GeluTanh(gateUp[0], p),
                };
                activated = _g.Node("Mul", [gate, gateUp[1]], p + "ffn_activated");
                break;
            }
            case OnnxFeedForward.Silu:
                activated = _g.Node("Mul", [hidden, _g.Node("Sigmoid", [hidden], p + "ffn_sigmoid")], p + "ffn_silu");
                break;
            case OnnxFeedForward.GeluErf:
                activated = GeluErf(hidden, p);
                break;
            case OnnxFeedForward.GeluTanh:
                activated = GeluTanh(hidden, p);
                break;
            default:
                activated = _g.Node("Relu", [hidden], p + "ffn_relu");
                break;
        }
        return Linear(p + "ffn_down", activated, [t.Down], t.DownBias is { } b ? [b] : null);
    }

    /// <summary>0.5·x·(1 + erf(x/√2)), the pattern ONNX Runtime fuses into one Gelu (opset 17 has none).</summary>
    private string GeluErf(string x, string p, string? stem = null)
    {
        string erf = _g.Node("Erf", [_g.Node("Div", [x, _g.Scalar(MathF.Sqrt(2f))], p + "ffn_scaled")], p + "ffn_erf");
        string sum = _g.Node("Add", [erf, _g.Scalar(1f)], p + "ffn_erf_plus_one");
        return _g.Node("Mul", [_g.Node("Mul", [x, sum], p + "ffn_gelu_product"), _g.Scalar(0.5f)], stem ?? p + "ffn_gelu");
    }

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), GPT-2's gelu_new (T5's gated-gelu on the gate): opset 17 has no Gelu.</summary>
    private string GeluTanh(string x, string p)
    {
        string cube = _g.Node("Pow", [x, _g.Scalar(3f)], p + "ffn_cube");
        string inner = _g.Node("Add", [x, _g.Node("Mul", [cube, _g.Scalar(0.044715f)], p + "ffn_cube_scaled")], p + "ffn_inner");
        string tanh = _g.Node("Tanh", [_g.Node("Mul", [inner, _g.Scalar(MathF.Sqrt(2f / MathF.PI))], p + "ffn_tanh_input")], p + "ffn_tanh");
        string sum = _g.Node("Add", [tanh, _g.Scalar(1f)], p + "ffn_tanh_plus_one");
        return _g.Node("Mul", [_g.Node("Mul", [x, _g.Scalar(0.5f)], p + "ffn_half"), sum], p + "ffn_gelu");
    }

    private string Norm(string stem, string x, ParameterTensor weight, ParameterTensor? bias)
    {
        if (!_a.RmsNorm)
        {
            string[] inputs = bias is null ? [x, Weight(weight)] : [x, Weight(weight), Weight(bias)];
            return _g.Node("LayerNormalization", inputs, stem, n => { B.Int(n, "axis", -1); B.Float(n, "epsilon", _a.NormEpsilon); });
        }
        // x / sqrt(mean(x²) + eps) · w: the pattern ONNX Runtime fuses into SimplifiedLayerNormalization; Gemma 3's scale is 1 + w.
        string square = _g.Node("Pow", [x, _g.Scalar(2f)], stem + "_square");
        string mean = _g.Node("ReduceMean", [square], stem + "_mean_square", n => { B.Ints(n, "axes", -1); B.Int(n, "keepdims", 1); });
        string root = _g.Node("Sqrt", [_g.Node("Add", [mean, _g.Scalar(_a.NormEpsilon)], stem + "_plus_eps")], stem + "_rms");
        string scale = _a.NormUnitOffset ? _g.Node("Add", [Weight(weight), _g.Scalar(1f)], stem + "_scale") : Weight(weight);
        return _g.Node("Mul", [_g.Node("Div", [x, root], stem + "_normalized"), scale], stem);
    }

    /// <summary>The head's one vector per sequence <c>[batch, DModel]</c>: the mean over unmasked positions, or the first token.</summary>
    private string Pool(string x, string attentionMask) => _a.Pooling == Pooling.Mean
        ? MeanPool(x, attentionMask)
        : _g.Node("Squeeze", [_g.Node("Gather", [x, _g.Int64s(0)], "first_token", n => B.Int(n, "axis", 1)), _g.Int64s(1)], "pooled");

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
