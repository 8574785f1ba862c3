using System;
using Microsoft.Extensions.Configuration;
using TransformerGen;

namespace TransformerGen.Samples.Serving;

/// <summary>
/// The settings every sample server has, bound from ASP.NET Core's configuration: the command line (<c>--model folder
/// --threads 2</c>), environment variables or appsettings.json, under the names given by
/// <see cref="ConfigurationKeyNameAttribute"/>. Each server's options add their own.
/// </summary>
public abstract class ModelServerOptions
{
    /// <summary>The model folder as the Hub has it. Required.</summary>
    [ConfigurationKeyName("model")]
    public string? Model { get; set; }

    /// <summary>The model name responses give; the Hub repository when not set.</summary>
    [ConfigurationKeyName("model-name")]
    public string? ModelName { get; set; }

    /// <summary>Threads the kernels may use within one pass (<see cref="Parallelism.ThreadCount"/>); the runtime's default when not set.</summary>
    [ConfigurationKeyName("threads")]
    public int? Threads { get; set; }

    /// <summary>How the weight matrices are held: Float32, BFloat16 or Int8; the served model's default when not set (Float32 but for models too large for it to be the sensible choice).</summary>
    [ConfigurationKeyName("weights")]
    public WeightType? Weights { get; set; }

    /// <summary>Checks the settings above; throws <see cref="StartupException"/> naming the first wrong one.</summary>
    /// <param name="repository">The Hub repository the server was compiled for, named when no folder is given.</param>
    protected void ValidateModel(string repository)
    {
        if (string.IsNullOrWhiteSpace(Model))
            throw new StartupException($"No model folder given: start the server with --model <folder> (the files of {repository}).");
        if (Threads is < 1 or > Parallelism.MaxThreadCount) throw new StartupException($"--threads {Threads}: between 1 and {Parallelism.MaxThreadCount}.");
        if (Weights is { } weights && !Enum.IsDefined(weights)) throw new StartupException($"--weights {weights}: Float32, BFloat16 or Int8.");
    }
}
