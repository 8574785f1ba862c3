using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.ML.OnnxRuntime;
using TransformerGen.Serving;

namespace TransformerGen.EmbeddingServer.Bench;

/// <summary>Something many clients ask for one sentence's embedding at a time.</summary>
internal interface IEngine : IAsyncDisposable
{
    string Name { get; }

    Task<float[]> EmbedAsync(int[] ids);

    /// <summary>Processor time the engine has used so far: this process's (clients included), and the server's for HTTP.</summary>
    TimeSpan ProcessorTime()
    {
        using Process self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }
}

/// <summary>
/// Ours: an <see cref="EncoderBatcher"/> over <c>workers</c> instances of the server's model, all over one copy of the
/// weights, as the server runs it (batches of up to 16 sentences and 2,048 tokens, 1 ms wait).
/// </summary>
internal sealed class BatcherEngine(string name, EncoderBatcher batcher) : IEngine
{
    public string Name { get; } = name;

    public static BatcherEngine Create(string name, ModelWeights weights, int workers, TimeSpan maxWait, int maxTokens) =>
        new(name, new EncoderBatcher(
            Enumerable.Range(0, workers).Select(_ => (EncoderModel)ServedMiniLm.ForInference(weights)).ToArray(),
            new EncoderBatcherOptions { MaxWait = maxWait, MaxTokens = maxTokens }));

    public Task<float[]> EmbedAsync(int[] ids) => batcher.PredictAsync(ids);

    public ValueTask DisposeAsync() => batcher.DisposeAsync();
}

/// <summary>
/// ONNX Runtime: one <see cref="InferenceSession"/> shared by every client, each call one sentence at its own length (ORT
/// runs the shapes it is given), with one intra-op thread per call and at most <c>threads</c> calls running at once, so that
/// it uses the same number of cores as ours.
/// </summary>
internal sealed class OrtEngine : IEngine
{
    private readonly InferenceSession _session;
    private readonly SemaphoreSlim _running;
    private readonly RunOptions _runOptions = new();
    private readonly string[] _outputNames = ["sentence_embedding"];
    private readonly bool _tokenTypes;

    public OrtEngine(string name, string path, int threads)
    {
        Name = name;
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        _session = new InferenceSession(path, options);
        _running = new SemaphoreSlim(threads, threads);
        _tokenTypes = _session.InputNames.Contains("token_type_ids");
    }

    public string Name { get; }

    public async Task<float[]> EmbedAsync(int[] ids)
    {
        await _running.WaitAsync().ConfigureAwait(false);
        try
        {
            return Run(ids);
        }
        finally
        {
            _running.Release();
        }
    }

    private float[] Run(int[] ids)
    {
        long[] shape = [1, ids.Length];
        long[] inputIds = Array.ConvertAll(ids, id => (long)id);
        long[] mask = new long[ids.Length];
        mask.AsSpan().Fill(1);
        var names = new List<string> { "input_ids", "attention_mask" };
        using OrtValue idsValue = OrtValue.CreateTensorValueFromMemory(inputIds, shape);
        using OrtValue maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using OrtValue typesValue = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);
        var values = new List<OrtValue> { idsValue, maskValue };
        if (_tokenTypes)
        {
            names.Add("token_type_ids");
            values.Add(typesValue);
        }
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(_runOptions, names, values, _outputNames);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public ValueTask DisposeAsync()
    {
        _runOptions.Dispose();
        _session.Dispose();
        _running.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The server over loopback HTTP: POST /v1/embeddings with one sentence a request.</summary>
internal sealed class HttpEngine(string name, HttpClient client, Func<int[], string> text, Process server) : IEngine
{
    public string Name { get; } = name;

    public TimeSpan ProcessorTime()
    {
        server.Refresh();
        using Process self = Process.GetCurrentProcess();
        return self.TotalProcessorTime + server.TotalProcessorTime;
    }

    public async Task<float[]> EmbedAsync(int[] ids)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync("/v1/embeddings", new { input = text(ids) }).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        using JsonDocument body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync().ConfigureAwait(false)).ConfigureAwait(false);
        JsonElement embedding = body.RootElement.GetProperty("data")[0].GetProperty("embedding");
        var vector = new float[embedding.GetArrayLength()];
        int i = 0;
        foreach (JsonElement v in embedding.EnumerateArray()) vector[i++] = v.GetSingle();
        return vector;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
