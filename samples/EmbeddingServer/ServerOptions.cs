using System;
using Microsoft.Extensions.Configuration;
using TransformerGen;
using TransformerGen.Samples.Serving;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// The server's settings, bound from ASP.NET Core's configuration: the command line (<c>--model folder --workers 2</c>),
/// environment variables or appsettings.json, under the names given by <see cref="ConfigurationKeyNameAttribute"/>.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>The model folder as the Hub has it (config.json, model.safetensors, vocab.txt, tokenizer_config.json). Required.</summary>
    [ConfigurationKeyName("model")]
    public string? Model { get; set; }

    /// <summary>The model name responses give; the Hub repository when not set.</summary>
    [ConfigurationKeyName("model-name")]
    public string? ModelName { get; set; }

    /// <summary>Model instances, each running batches on its own thread over the one copy of the weights. Default: the processor count.</summary>
    [ConfigurationKeyName("workers")]
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>Threads the kernels may use within one batch (<see cref="Parallelism.ThreadCount"/>); the runtime's default when not set.</summary>
    [ConfigurationKeyName("threads")]
    public int? Threads { get; set; }

    /// <summary>How the weight matrices are held: Float32, BFloat16 or Int8.</summary>
    [ConfigurationKeyName("weights")]
    public WeightType Weights { get; set; } = WeightType.Float32;

    /// <summary>Sentences one request may hold (more: 413). Default 2048, as OpenAI's API.</summary>
    [ConfigurationKeyName("max-inputs")]
    public int MaxInputs { get; set; } = 2048;

    /// <summary>Sentences per batch at most; the model's Batch when not set.</summary>
    [ConfigurationKeyName("max-batch")]
    public int? MaxBatch { get; set; }

    /// <summary>Tokens per batch at most (SeqLen to Batch·SeqLen). Default 2048.</summary>
    [ConfigurationKeyName("max-batch-tokens")]
    public int? MaxBatchTokens { get; set; } = 2048;

    /// <summary>How long a free worker waits for more sentences before running a batch that is not full, in milliseconds. Default 1.</summary>
    [ConfigurationKeyName("max-wait-ms")]
    public double MaxWaitMilliseconds { get; set; } = 1;

    /// <summary>
    /// Cut a sentence longer than SeqLen tokens as sentence-transformers does (the first SeqLen − 1 ids and [SEP]) and say so
    /// in <c>usage</c> (default), or refuse the request with 413 when false.
    /// </summary>
    [ConfigurationKeyName("truncate")]
    public bool Truncate { get; set; } = true;

    /// <summary>Checks the values that need no model; throws <see cref="StartupException"/> naming the first wrong one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Model))
            throw new StartupException("No model folder given: start the server with --model <folder> (the files of sentence-transformers/all-MiniLM-L6-v2).");
        if (Workers < 1) throw new StartupException($"--workers {Workers}: at least one worker is needed.");
        if (Threads is < 1 or > Parallelism.MaxThreadCount) throw new StartupException($"--threads {Threads}: between 1 and {Parallelism.MaxThreadCount}.");
        if (MaxInputs < 1) throw new StartupException($"--max-inputs {MaxInputs}: at least 1.");
        if (!(MaxWaitMilliseconds >= 0)) throw new StartupException($"--max-wait-ms {MaxWaitMilliseconds}: not negative.");
        if (!Enum.IsDefined(Weights)) throw new StartupException($"--weights {Weights}: Float32, BFloat16 or Int8.");
    }
}
