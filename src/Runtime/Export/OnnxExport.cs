using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace TransformerGen;

/// <summary>How <see cref="OnnxExport"/> stores the weight matrices of the linear layers.</summary>
public enum OnnxWeightFormat
{
    /// <summary>fp32 initializers multiplied by the standard <c>MatMul</c>: any ONNX runtime runs the graph.</summary>
    Float32 = 0,

    /// <summary>
    /// 8-bit blocks of 32 weights along the input with one fp32 scale each (symmetric, q = round(w/d) in [−127, 127], the
    /// arithmetic of GGUF's Q8_0), multiplied by ONNX Runtime's contrib operator <c>com.microsoft.MatMulNBits</c> (bits 8):
    /// about 28% of the bytes. Only ONNX Runtime runs it; the embedding table and a tied head stay fp32.
    /// </summary>
    Int8Blocks = 1,
}

/// <summary>
/// Which graph <see cref="OnnxExport"/> writes for an encoder–decoder model (<see cref="Seq2SeqModel"/>). The names are
/// those of Hugging Face optimum's seq2seq exports: the whole model as one graph, or its encoder and decoder apart
/// (<c>encoder_model.onnx</c> and <c>decoder_model.onnx</c>; with <see cref="OnnxExportOptions.KeyValueCache"/> the decoder
/// carries its caches, as optimum's <c>decoder_model_merged.onnx</c> does).
/// </summary>
public enum OnnxSeq2SeqGraph
{
    /// <summary>
    /// Encoder and decoder in one graph: <c>input_ids</c> and <c>attention_mask</c> (the source), <c>decoder_input_ids</c>
    /// (and <c>decoder_attention_mask</c> for this project's models with a padding id) in; <c>logits</c> <c>[batch, decoder_sequence,
    /// TargetVocab]</c> and <c>encoder_last_hidden_state</c> out.
    /// </summary>
    Full = 0,

    /// <summary>The encoder alone: <c>input_ids</c> and <c>attention_mask</c> in, <c>last_hidden_state</c> <c>[batch, encoder_sequence, DModel]</c> out.</summary>
    Encoder = 1,

    /// <summary>
    /// The decoder alone, over an encoder output: <c>input_ids</c> (the decoder's), <c>encoder_hidden_states</c> and
    /// <c>encoder_attention_mask</c> (and <c>decoder_attention_mask</c> for this project's models with a padding id) in, <c>logits</c> out;
    /// a translation loop runs the encoder once per source and this graph once per step. With
    /// <see cref="OnnxExportOptions.KeyValueCache"/> it takes and returns each layer's self- and cross-attention keys and
    /// values, so that a step computes its new tokens only.
    /// </summary>
    Decoder = 2,
}

/// <summary>What <see cref="OnnxExport"/> writes besides the graph.</summary>
public sealed class OnnxExportOptions
{
    /// <summary>
    /// The Hugging Face <c>config.json</c> a family model (GPT-2, BERT, RoBERTa, DistilBERT, MPNet, ELECTRA, ModernBERT, Llama,
    /// Qwen2, Qwen3, Phi-3, Gemma 3; Marian, BART, mBART, M2M100, T5/Flan-T5/mT5) was compiled from: its norm epsilon, activation,
    /// head counts, rotary bases, embedding scale, T5's relative-position buckets and the sliding layers and their window
    /// (Gemma 3's, ModernBERT's local layers) are not in the parameter table. Unused for this project's own
    /// models, whose <c>[TransformerModel]</c> attribute says all of it.
    /// </summary>
    public string? Config { get; init; }

    /// <summary>How the linear layers' weights are stored (fp32 by default).</summary>
    public OnnxWeightFormat Weights { get; init; } = OnnxWeightFormat.Float32;

    /// <summary>
    /// A decoder outputs the logits of the last position of each row only, <c>[batch, 1, vocab]</c>, as a prompt's
    /// prefill for generation needs (the LM head is then one row per sequence, not one per token). Rows must then end at
    /// their last real token: pad on the left. For an encoder–decoder, the decoder's last position: a greedy step,
    /// where every row holds as many decoder tokens.
    /// </summary>
    public bool LastPositionOnly { get; init; }

    /// <summary>
    /// A decoder's graph with a key/value cache, as Hugging Face optimum exports one for generation. For a decoder-only
    /// model: <c>input_ids</c> and <c>position_ids</c> of the new tokens <c>[batch, sequence]</c>, <c>attention_mask</c> over
    /// every position so far <c>[batch, past_sequence + sequence]</c>, and each layer's <c>past_key_values.{i}.key</c> and
    /// <c>.value</c> <c>[batch, kvHeads, past_sequence, headDim]</c> (0 positions for a prompt) in; <c>logits</c> and
    /// <c>present.{i}.key</c> and <c>.value</c> (the past with the new positions appended, the next step's past) out.
    /// Positions come from <c>position_ids</c>, so rows padded on the left keep positions 0, 1, … for their real tokens.
    /// </summary>
    /// <remarks>
    /// For an encoder–decoder, with <see cref="Seq2SeqGraph"/> = <see cref="OnnxSeq2SeqGraph.Decoder"/> only (the encoder has
    /// no cache, and the whole graph would encode the source again at every step; both are refused), the decoder over an
    /// encoder output with optimum's seq2seq names: <c>encoder_hidden_states</c> <c>[batch, encoder_sequence, DModel]</c>,
    /// <c>encoder_attention_mask</c> <c>[batch, encoder_sequence]</c>, the new tokens' <c>input_ids</c> <c>[batch,
    /// decoder_sequence]</c>, for this project's models with a padding id <c>decoder_attention_mask</c> <c>[batch, past_decoder_sequence +
    /// decoder_sequence]</c>, and each layer's <c>past_key_values.{i}.decoder.key</c> and <c>.decoder.value</c> <c>[batch,
    /// heads, past_decoder_sequence, headDim]</c> (self-attention) and <c>.encoder.key</c> and <c>.encoder.value</c>
    /// <c>[batch, heads, past_encoder_sequence, headDim]</c> (cross-attention) in; <c>logits</c> <c>[batch,
    /// decoder_sequence, TargetVocab]</c> and each layer's <c>present.{i}.decoder.*</c> (the past with the new positions
    /// appended) and <c>present.{i}.encoder.*</c> <c>[batch, heads, encoder_sequence, headDim]</c> out. The new tokens stand
    /// at positions past_decoder_sequence, past_decoder_sequence + 1, …; rows decode in step, as a batched translation does.
    /// The first step passes empty pasts (0 positions): the cross-attention keys and values are then projected from
    /// <c>encoder_hidden_states</c>, and every later step passes them back and projects nothing (the graph projects the
    /// encoder positions from the past's length on). One graph thus serves every step, where optimum's merged decoder
    /// switches between two subgraphs on a <c>use_cache_branch</c> input, which this graph does not have.
    /// </remarks>
    public bool KeyValueCache { get; init; }

    /// <summary>The graph of an encoder–decoder model: the whole model (the default), its encoder or its decoder.</summary>
    public OnnxSeq2SeqGraph Seq2SeqGraph { get; init; } = OnnxSeq2SeqGraph.Full;

    /// <summary>
    /// ONNX Runtime's <c>accuracy_level</c> of <see cref="OnnxWeightFormat.Int8Blocks"/>: 4 (the default) lets it quantize
    /// activations to int8 per block and use integer dot products, as llama.cpp does with Q8_0; 0 keeps fp32 activations.
    /// </summary>
    public int Int8AccuracyLevel { get; init; } = 4;

    /// <summary>
    /// Whether the initializers' bytes go to a data file beside the graph (ONNX's external data): by default only when the
    /// graph would not fit one protobuf message (2 GiB), so that a large model just works.
    /// </summary>
    public OnnxExternalData ExternalData { get; init; } = OnnxExternalData.Auto;

    /// <summary>
    /// The data file's name, a path relative to the graph's folder that stays inside it (the graph refers to it by that
    /// relative path); by default the graph's file name with <c>.data</c> appended, <c>model.onnx.data</c>.
    /// </summary>
    public string? ExternalDataFile { get; init; }

    /// <summary>
    /// Initializers of fewer bytes stay in the graph even with external data (1024, as onnx's <c>save_model</c>); so do the
    /// int64 shape constants of any size, which ONNX Runtime's shape inference reads from the graph only.
    /// </summary>
    public int ExternalDataThreshold { get; init; } = 1024;

    /// <summary>The largest graph file written as one message: the protobuf limit, lowered by tests to exercise <see cref="OnnxExternalData.Auto"/>.</summary>
    internal long MessageLimit { get; init; } = OnnxExport.MaxMessageBytes;
}

/// <summary>One input or output of an exported graph.</summary>
/// <param name="Name">Its name in the graph, e.g. <c>input_ids</c>.</param>
/// <param name="ElementType">Its element type: <c>int64</c> or <c>float</c>.</param>
/// <param name="Shape">Its dimensions: a name for a dynamic one (<c>batch</c>, <c>sequence</c>), else the size.</param>
public sealed record OnnxValueInfo(string Name, string ElementType, IReadOnlyList<string> Shape);

/// <summary>What <see cref="OnnxExport"/> wrote.</summary>
/// <param name="Inputs">The graph's inputs, in order.</param>
/// <param name="Outputs">The graph's outputs, in order.</param>
/// <param name="Opset">The standard operator set the graph uses (17).</param>
/// <param name="Nodes">Operator nodes in the graph.</param>
/// <param name="Bytes">The graph file's size.</param>
/// <param name="DataFile">The external data file's full path, or null when every initializer is in the graph file.</param>
/// <param name="DataBytes">The external data file's size (0 without one).</param>
public sealed record OnnxExportReport(IReadOnlyList<OnnxValueInfo> Inputs, IReadOnlyList<OnnxValueInfo> Outputs, long Opset, int Nodes, long Bytes,
    string? DataFile, long DataBytes);

/// <summary>
/// Writes a decoder-only model (<see cref="LanguageModel"/>), an encoder-only model (<see cref="EncoderModel"/>) or an
/// encoder–decoder model (<see cref="Seq2SeqModel"/>) as an ONNX graph of standard operators (opset 17) that ONNX Runtime
/// and the other engines that read ONNX load: the full forward pass with the model's weights as initializers, for any batch
/// and any sequence length up to SeqLen.
/// </summary>
/// <remarks>
/// <para>Inputs are <c>input_ids</c> and <c>attention_mask</c> (int64 <c>[batch, sequence]</c>, 1 for a real token and 0 for
/// padding, which is masked as keys in attention and left out of mean pooling, as the model masks its padding id), and for
/// BERT also <c>token_type_ids</c>. Positions are 0, 1, … in every row, as in the model (RoBERTa's and MPNet's table rows
/// from the one after the padding id's, which is transformers' numbering when padding follows the tokens). A decoder
/// outputs <c>logits</c> <c>[batch, sequence, vocab]</c> (no key/value cache: every position is computed); an encoder outputs
/// <c>last_hidden_state</c> and, by its head, <c>sentence_embedding</c> <c>[batch, EmbeddingWidth]</c> (mean over unmasked positions, or the first token, then any sentence-transformers Dense layers,
/// L2-normalized unless the layout says <c>UnnormalizedEmbeddings</c>), or class <c>logits</c> <c>[batch, classes]</c> (first token or mean) or <c>[batch, sequence, classes]</c>
/// (tagging).</para>
/// <para>An encoder–decoder takes the source as <c>input_ids</c> and <c>attention_mask</c> <c>[batch, encoder_sequence]</c>
/// and the decoder's input as <c>decoder_input_ids</c> <c>[batch, decoder_sequence]</c> (the target shifted right behind
/// the begin id, as teacher forcing feeds it), with <c>decoder_attention_mask</c> when its decoder masks padding (this
/// project's models with a padding id; the Hugging Face encoder–decoders' decoders mask none, as transformers'), and
/// outputs <c>logits</c> <c>[batch, decoder_sequence, TargetVocab]</c> (every decoder position, no key/value cache) and
/// <c>encoder_last_hidden_state</c>. <see cref="OnnxExportOptions.Seq2SeqGraph"/> writes the encoder or the decoder
/// alone instead, under Hugging Face optimum's names, and <see cref="OnnxExportOptions.KeyValueCache"/> gives that decoder
/// its self- and cross-attention caches.</para>
/// <para>A position whose every key is masked (a row of padding only) has an output that the model does not define the
/// same way (the model gives 0, the graph the average value over the masked keys); it is padding either way.</para>
/// <para>Operators: LayerNormalization (opset 17; without its optional shift input where the model's norm has none, as
/// ModernBERT's), RMSNorm as Pow, ReduceMean, Add, Sqrt, Div and Mul (the pattern ONNX
/// Runtime fuses; Qwen3's q_norm and k_norm the same over each head's channels, before the rotation), GELU from Erf or
/// Tanh, attention as MatMul, Where and Softmax (grouped-query attention by a 5-D broadcast, never by copying keys),
/// rotary positions by Slice, Neg and Concat over cosine and sine tables computed as
/// the model computes them; T5's and MPNet's relative-position bias as a Gather of its table <c>[buckets, heads]</c> by the
/// bucket of each key − query distance, looked up in an int64 vector of the model's own buckets (one per distance the lengths
/// allow), computed once per stack and added to the scores of each self-attention (T5's unscaled, MPNet's after the 1/√D).
/// This project's interleaved rotary pairs are exported by permuting the query and key rows into the half-split order,
/// which leaves every score unchanged.</para>
/// <para>Weights of a graph over 2 GiB go to a data file beside it (<see cref="OnnxExportOptions.ExternalData"/>): ONNX's
/// external data, which ONNX Runtime loads from the graph's folder. The tensors are streamed to it as the graph is built,
/// never all held in memory; under <see cref="OnnxExternalData.Auto"/> they are read back into the graph when it fits one
/// message after all, and the data file is deleted.</para>
/// <para>Each file is written beside its target under a temporary name and flushed; only when both are complete are they
/// renamed over their targets, the data file first. A failure leaves no file.</para>
/// </remarks>
public static class OnnxExport
{
    /// <summary>The largest file protobuf writes as one message (2 GiB, less a margin): larger graphs need external data.</summary>
    internal const long MaxMessageBytes = int.MaxValue - (64 << 20);

    /// <summary>Writes <paramref name="model"/> to the ONNX file <paramref name="path"/>.</summary>
    /// <exception cref="NotSupportedException">The model has a part that no standard ONNX graph computes here (the message says why).</exception>
    /// <exception cref="ArgumentException">A family model without its config, or a config that contradicts the model's tensors.</exception>
    public static OnnxExportReport Save(TransformerModel model, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model switch
        {
            LanguageModel decoder => decoder.SaveOnnx(path, options),
            EncoderModel encoder => encoder.SaveOnnx(path, options),
            Seq2SeqModel seq2seq => seq2seq.SaveOnnx(path, options),
            _ => throw new NotSupportedException($"{model.Layout.Name} is a {model.GetType().Name}; the ONNX export covers LanguageModel, EncoderModel and Seq2SeqModel"),
        };
    }

    /// <summary>Writes the file from <paramref name="model"/>'s parameters, which must be in PyTorch's layout (the callers unpack them).</summary>
    internal static unsafe OnnxExportReport Write(TransformerModel model, string path, OnnxExportOptions? options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        options ??= new OnnxExportOptions();
        if (options.ExternalDataThreshold < 0) throw new ArgumentOutOfRangeException(nameof(options), options.ExternalDataThreshold, "ExternalDataThreshold is a number of bytes, 0 or more");
        if (model.WeightsPacked) throw new InvalidOperationException($"{model.Layout.Name}'s weights are in the kernels' panel layout; export through SaveOnnx, which unpacks them");
        OnnxArchitecture architecture = OnnxArchitecture.Of(model, options.Config);
        architecture.Check();
        if (architecture.Decoder is null && options.Seq2SeqGraph != OnnxSeq2SeqGraph.Full)
            throw new ArgumentException($"{model.Layout.Name} is not an encoder-decoder model; Seq2SeqGraph = {options.Seq2SeqGraph} has no graph to choose", nameof(options));
        if (options.KeyValueCache && architecture.Decoder is null && architecture.Encoder)
            throw new NotSupportedException($"{model.Layout.Name}: KeyValueCache is for a decoder; an encoder-only model has no cache, since every position attends to every other in one pass");
        if (options.KeyValueCache && architecture.Decoder is not null && options.Seq2SeqGraph != OnnxSeq2SeqGraph.Decoder)
            throw new NotSupportedException(options.Seq2SeqGraph == OnnxSeq2SeqGraph.Encoder
                ? $"{model.Layout.Name}: KeyValueCache is the decoder's; the encoder has no cache (it runs once per source): export the encoder without it"
                : $"{model.Layout.Name}: KeyValueCache is the decoder's; the whole graph would run the encoder again at every step: export Seq2SeqGraph = Encoder, and Seq2SeqGraph = Decoder with the cache");
        if (architecture.Decoder is not null && options.Seq2SeqGraph == OnnxSeq2SeqGraph.Encoder && options.LastPositionOnly)
            throw new ArgumentException($"{model.Layout.Name}: LastPositionOnly selects logits, and the encoder's graph has none", nameof(options));
        using OnnxExternalDataFile? external = options.ExternalData == OnnxExternalData.Never ? null : new OnnxExternalDataFile(path, options);
        Span<float> parameters = model.Parameters;
        fixed (float* pinned = parameters)
        {
            // The writer keeps the parameters as Memory for the length of Build, while they are pinned here: no copy of them.
            using var memory = new PinnedFloats(pinned, parameters.Length);
            var writer = new OnnxGraphWriter(architecture, memory.Memory, options, external);
            (ModelProto proto, List<OnnxValueInfo> inputs, List<OnnxValueInfo> outputs) = writer.Build();
            // Auto wrote the large tensors to the data file as Always does; they come back when the whole graph fits one message.
            if (options.ExternalData == OnnxExternalData.Auto && external!.Used && OnnxExternalDataFile.SizeInOneMessage(proto) <= options.MessageLimit)
                external.MoveBack(proto.Graph.Initializer);
            long size = proto.CalculateSize();
            if (size > options.MessageLimit)
                throw new NotSupportedException(external is null
                    ? $"{model.Layout.Name}'s graph is {size} bytes; one protobuf message holds under 2 GiB: export with ExternalData = Auto or Always"
                    : $"{model.Layout.Name}'s graph is {size} bytes even with its initializers of {options.ExternalDataThreshold} bytes or more in the data file; one protobuf message holds under 2 GiB");
            using AtomicFile graph = AtomicFile.Begin(path);
            proto.WriteTo(graph.Stream);
            long bytes = graph.Finish();
            external?.Finish();
            external?.Commit();
            graph.Commit();
            bool data = external is { Used: true };
            return new OnnxExportReport(inputs, outputs, OnnxGraphBuilder.Opset, writer.NodeCount, bytes,
                data ? external!.FullPath : null, data ? external!.Length : 0);
        }
    }

    /// <summary>Pinned floats as <see cref="Memory{T}"/>, for as long as the caller keeps them pinned.</summary>
    private sealed unsafe class PinnedFloats(float* pointer, int length) : MemoryManager<float>
    {
        public override Span<float> GetSpan() => new(pointer, length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
