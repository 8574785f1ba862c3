using System;
using LLama;
using LLama.Common;
using LLama.Native;

namespace TransformerGen.Export.Tests;

/// <summary>Runs a GGUF file in llama.cpp through LLamaSharp and returns its logits.</summary>
internal static class LlamaCpp
{
    /// <summary>llama.cpp's token ids for <paramref name="text"/>, tokenized with the file's vocabulary (no begin token; special tokens parsed).</summary>
    public static int[] Tokenize(string gguf, string text)
    {
        var parameters = new ModelParams(gguf) { GpuLayerCount = 0, VocabOnly = true };
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        LLamaToken[] tokens = weights.Tokenize(text, false, true, System.Text.Encoding.UTF8);
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
}
