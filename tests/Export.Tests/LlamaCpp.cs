using System;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.Export.Tests;

/// <summary>Runs a GGUF file in llama.cpp through LLamaSharp and returns its logits.</summary>
internal static class LlamaCpp
{
    /// <summary>
    /// llama.cpp's token ids for <paramref name="text"/>, tokenized with the file's vocabulary, special tokens parsed; with
    /// <paramref name="addSpecial"/> the begin and end tokens the file asks for (<c>add_bos_token</c>, <c>add_eos_token</c>), else none.
    /// </summary>
    public static int[] Tokenize(string gguf, string text, bool addSpecial = false)
    {
        var parameters = new ModelParams(gguf) { GpuLayerCount = 0, VocabOnly = true };
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        LLamaToken[] tokens = weights.Tokenize(text, addSpecial, true, System.Text.Encoding.UTF8);
        var ids = new int[tokens.Length];
        for (int i = 0; i < ids.Length; i++) ids[i] = (int)tokens[i];
        return ids;
    }

    /// <summary>
    /// llama.cpp's logits <c>[tokens, vocab]</c> for <paramref name="tokens"/> at positions 0, 1, …, in one batch, on one
    /// thread, with an F32 key/value cache and without flash attention (its default F16 cache would round every key and value).
    /// </summary>
    public static float[][] Logits(string gguf, int[] tokens)
    {
        var parameters = new ModelParams(gguf)
        {
            ContextSize = 64,
            BatchSize = 64,
            UBatchSize = 64,
            Threads = 1,
            BatchThreads = 1,
            GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        using LLamaContext context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, true);
        DecodeResult result = context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not decode: {result}");
        var logits = new float[tokens.Length][];
        for (int i = 0; i < tokens.Length; i++) logits[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
        return logits;
    }

    /// <summary>The context parameters of every run here: one thread, an F32 key/value cache, no flash attention.</summary>
    private static ModelParams Parameters(string gguf) => new(gguf)
    {
        ContextSize = 64,
        BatchSize = 64,
        UBatchSize = 64,
        Threads = 1,
        BatchThreads = 1,
        GpuLayerCount = 0,
        TypeK = GGMLType.GGML_TYPE_F32,
        TypeV = GGMLType.GGML_TYPE_F32,
        FlashAttention = false,
    };

    /// <summary>
    /// An encoder–decoder file (llama.cpp's <c>t5</c>) run as llama.cpp's own examples run it: <c>llama_encode</c> on
    /// <paramref name="source"/> (one batch), then <c>llama_decode</c> on <paramref name="decoderInputs"/> at positions 0, 1, …
    /// (teacher forcing, one batch); the logits <c>[decoder tokens, vocab]</c>, and the decoder start id the file declares.
    /// </summary>
    public static (float[][] Logits, int DecoderStart) Seq2SeqLogits(string gguf, int[] source, int[] decoderInputs)
    {
        ModelParams parameters = Parameters(gguf);
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        if (!weights.NativeHandle.HasEncoder) throw new InvalidOperationException($"llama.cpp reads '{gguf}' as a model without an encoder");
        using LLamaContext context = weights.CreateContext(parameters);
        Encode(context, source);
        var batch = new LLamaBatch();
        for (int i = 0; i < decoderInputs.Length; i++) batch.Add(decoderInputs[i], i, LLamaSeqId.Zero, true);
        DecodeResult result = context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not decode: {result}");
        var logits = new float[decoderInputs.Length][];
        for (int i = 0; i < logits.Length; i++) logits[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
        return (logits, DecoderStart(weights));
    }

    /// <summary>
    /// Greedy decoding in llama.cpp: encode <paramref name="source"/>, start from the file's decoder start id, then feed back
    /// the most likely id (never one of <paramref name="excluded"/>) one step at a time until <paramref name="end"/> or
    /// <paramref name="limit"/> ids; the ids without the start and the end.
    /// </summary>
    public static int[] Translate(string gguf, int[] source, int end, int limit, params int[] excluded)
    {
        ModelParams parameters = Parameters(gguf);
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        using LLamaContext context = weights.CreateContext(parameters);
        Encode(context, source);
        var output = new System.Collections.Generic.List<int>();
        int token = DecoderStart(weights);
        for (int position = 0; output.Count < limit; position++)
        {
            var batch = new LLamaBatch();
            batch.Add(token, position, LLamaSeqId.Zero, true);
            DecodeResult result = context.NativeHandle.Decode(batch);
            if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not decode: {result}");
            Span<float> logits = context.NativeHandle.GetLogitsIth(0);
            foreach (int id in excluded) logits[id] = float.NegativeInfinity;
            token = 0;
            for (int id = 1; id < logits.Length; id++) if (logits[id] > logits[token]) token = id;
            if (token == end) break;
            output.Add(token);
        }
        return output.ToArray();
    }

    private static int DecoderStart(LLamaWeights weights) =>
        (int)(weights.NativeHandle.Vocab.DecoderStartToken ?? throw new InvalidOperationException("the file declares no decoder start id"));

    private static void Encode(LLamaContext context, int[] source)
    {
        var batch = new LLamaBatch();
        for (int i = 0; i < source.Length; i++) batch.Add(source[i], i, LLamaSeqId.Zero, false);
        DecodeResult result = context.NativeHandle.Encode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not encode: {result}");
    }
}
