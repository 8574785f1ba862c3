using System.Collections.Generic;
using System.IO;
using TransformerGen.Samples.Hub;

namespace TransformerGen.Samples.Serving;

/// <summary>The check a server makes of its model folder at start, before any weights are read.</summary>
internal static class ModelFolder
{
    /// <summary>
    /// Refuses a folder that does not exist, whose config.json describes another architecture than the compiled one
    /// (naming the differing keys, with <see cref="ArchitectureCheck"/>), or that lacks any of <paramref name="files"/>.
    /// </summary>
    /// <param name="folder">The folder the server was given.</param>
    /// <param name="repository">The Hub repository the model was compiled for.</param>
    /// <param name="files">The files the server reads from it (a sharded checkpoint's index stands for model.safetensors).</param>
    /// <param name="compiledConfig">The text of the config.json the model was compiled from.</param>
    /// <param name="sourceConfigPath">Where that config.json is in the repository (named in the refusal of another model's folder).</param>
    /// <exception cref="StartupException">The folder cannot be served; the message says why.</exception>
    public static void Check(string folder, string repository, IReadOnlyList<string> files, string compiledConfig, string sourceConfigPath)
    {
        if (!Directory.Exists(folder)) throw new StartupException($"The model folder '{folder}' does not exist.");
        string config = Path.Combine(folder, "config.json");
        if (File.Exists(config))
        {
            IReadOnlyList<string> differences;
            try
            {
                differences = ArchitectureCheck.Differences(compiledConfig, config);
            }
            catch (InvalidDataException e)
            {
                throw new StartupException(e.Message, e);
            }
            if (differences.Count > 0)
            {
                throw new StartupException(
                    $"{config} describes another model than the one this server was compiled for ({repository}): {string.Join("; ", differences)}. " +
                    $"The generated code has the compiled sizes built in; serve {repository}, or copy this config.json over {sourceConfigPath} and build again.");
            }
        }

        IReadOnlyList<string> missing = new HubModel(repository, files, runCommand: "").MissingFiles(folder);
        if (missing.Count > 0)
            throw new StartupException($"The model folder '{folder}' lacks {string.Join(", ", missing)} (download them from https://huggingface.co/{repository}).");
    }
}
