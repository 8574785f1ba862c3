using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
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
        using var vocabulary = new LlamaCppVocabulary(gguf);
        return vocabulary.Tokenize(text, addSpecial);
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

/// <summary>
/// A GGUF file's vocabulary as llama.cpp reads it (the file loaded with <c>vocab_only</c>): its tokenizer, its two ways
/// back to text, its special ids. One load serves many texts (a 128,256-token vocabulary takes a while to read).
/// </summary>
internal sealed class LlamaCppVocabulary : IDisposable
{
    private readonly LLamaWeights _weights;

    public LlamaCppVocabulary(string gguf) => _weights = LLamaWeights.LoadFromFile(new ModelParams(gguf) { GpuLayerCount = 0, VocabOnly = true });

    public void Dispose() => _weights.Dispose();

    /// <summary>
    /// llama_tokenize: with <paramref name="addSpecial"/> the begin and end tokens the file asks for (<c>add_bos_token</c>,
    /// <c>add_eos_token</c>); with <paramref name="parseSpecial"/> special tokens written in the text become their ids,
    /// without it they are tokenized as the text they are.
    /// </summary>
    public int[] Tokenize(string text, bool addSpecial = false, bool parseSpecial = true)
    {
        LLamaToken[] tokens = _weights.Tokenize(text, addSpecial, parseSpecial, Encoding.UTF8);
        var ids = new int[tokens.Length];
        for (int i = 0; i < ids.Length; i++) ids[i] = (int)tokens[i];
        return ids;
    }

    /// <summary>The tokens' pieces (llama_token_to_piece, special tokens written out) joined as bytes, then read as UTF-8.</summary>
    public string Pieces(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        var buffer = new byte[256];
        foreach (int id in ids)
        {
            uint length = _weights.NativeHandle.TokenToSpan(id, buffer, 0, true);
            if (length > buffer.Length) throw new InvalidOperationException($"token {id} is {length} bytes long");
            bytes.AddRange(buffer.AsSpan(0, (int)length));
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The text LLamaSharp's StreamingTokenDecoder makes of the ids, special tokens asked for (<c>DecodeSpecialTokens</c>), as a generation's text is made.</summary>
    public string Streamed(IEnumerable<int> ids)
    {
        var decoder = new StreamingTokenDecoder(Encoding.UTF8, _weights) { DecodeSpecialTokens = true };
        foreach (int id in ids) decoder.Add(id);
        return decoder.Read();
    }

    /// <summary>
    /// llama_detokenize, as llama.cpp's own tools turn ids into text: the pieces joined, then its <c>clean_spaces</c> pass
    /// where the file's pre-tokenizer sets it (llama-bpe does: a space before <c>? ! . ,</c> and some apostrophes is
    /// dropped); special tokens written out, none removed. LLamaSharp 0.30.0 keeps its binding internal, so the function is
    /// taken from the libllama.so LLamaSharp has loaded (dlopen by its soname finds the loaded one).
    /// </summary>
    public string Detokenize(int[] ids)
    {
        IntPtr library = NativeLibrary.Load("libllama.so");
        try
        {
            var getVocab = Marshal.GetDelegateForFunctionPointer<ModelGetVocab>(NativeLibrary.GetExport(library, "llama_model_get_vocab"));
            var detokenize = Marshal.GetDelegateForFunctionPointer<DetokenizeFunction>(NativeLibrary.GetExport(library, "llama_detokenize"));
            IntPtr vocab = getVocab(_weights.NativeHandle.DangerousGetHandle());
            var text = new byte[64 * ids.Length + 16];
            int length = detokenize(vocab, ids, ids.Length, text, text.Length, false, true);
            if (length < 0) throw new InvalidOperationException($"llama_detokenize needs {-length} bytes");
            return Encoding.UTF8.GetString(text, 0, length);
        }
        finally
        {
            NativeLibrary.Free(library);
        }
    }

    /// <summary>The file's begin id as llama.cpp reads it.</summary>
    public int Bos => (int)(_weights.NativeHandle.Vocab.BOS ?? throw new InvalidOperationException("no begin token"));

    /// <summary>The file's end id as llama.cpp reads it.</summary>
    public int Eos => (int)(_weights.NativeHandle.Vocab.EOS ?? throw new InvalidOperationException("no end token"));

    /// <summary>The end-of-turn id llama.cpp finds by its text, or -1.</summary>
    public int Eot => _weights.NativeHandle.Vocab.EOT is { } eot ? (int)eot : -1;

    /// <summary>Whether llama.cpp adds the begin token to a prompt.</summary>
    public bool AddsBos => _weights.NativeHandle.Vocab.ShouldAddBOS;

    /// <summary>Whether llama.cpp ends a generation at <paramref name="id"/>.</summary>
    public bool EndsGeneration(int id) => ((LLamaToken)id).IsEndOfGeneration(_weights.NativeHandle.Vocab);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr ModelGetVocab(IntPtr model);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int DetokenizeFunction(IntPtr vocab, int[] tokens, int count, [In, Out] byte[] text, int capacity,
        [MarshalAs(UnmanagedType.I1)] bool removeSpecial, [MarshalAs(UnmanagedType.I1)] bool unparseSpecial);
}
