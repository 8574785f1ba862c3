using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace TransformerGen.Samples.Hub;

/// <summary>
/// A model repository on the Hugging Face Hub, the files of it a sample reads, and what to tell a user whose folder
/// lacks them. Compiled into samples/Embeddings and samples/Chat (the Chat project links this file).
/// </summary>
/// <param name="repository">The Hub repository, <c>owner/name</c>.</param>
/// <param name="files">The files to download, in the order they are listed.</param>
/// <param name="runCommand">The command that runs the sample on the downloaded folder, written with <c>{folder}</c> for the folder.</param>
/// <param name="optionalFiles">Files the instructions download too, which the sample reads where they are but does not need.</param>
internal sealed class HubModel(string repository, IReadOnlyList<string> files, string runCommand, IReadOnlyList<string>? optionalFiles = null)
{
    /// <summary>The weights file; a sharded checkpoint's index stands in for it.</summary>
    public const string Weights = "model.safetensors";

    /// <summary>The index of a sharded checkpoint, which the loaders read instead of <see cref="Weights"/>.</summary>
    public const string WeightsIndex = "model.safetensors.index.json";

    public string Repository { get; } = repository;

    public IReadOnlyList<string> Files { get; } = files;

    /// <summary>Files downloaded beside <see cref="Files"/> that a folder may lack.</summary>
    public IReadOnlyList<string> OptionalFiles { get; } = optionalFiles ?? [];

    /// <summary>The folder the instructions download into: <c>models/</c> and the repository's name.</summary>
    public string SuggestedFolder => "models/" + Repository[(Repository.IndexOf('/') + 1)..];

    /// <summary>The files of <see cref="Files"/> that <paramref name="folder"/> lacks (none when it has them all).</summary>
    public IReadOnlyList<string> MissingFiles(string folder) =>
        Files.Where(file => !File.Exists(Path.Combine(folder, file))
                            && !(file == Weights && File.Exists(Path.Combine(folder, WeightsIndex))))
             .ToList();

    /// <summary>Writes why the sample cannot run, then how to get the files: the CLI command and each file's URL.</summary>
    public void WriteDownloadInstructions(TextWriter writer, string why)
    {
        string[] all = [.. Files, .. OptionalFiles];
        string files = string.Join(' ', all);
        writer.WriteLine(why);
        writer.WriteLine();
        writer.WriteLine($"This sample runs {Repository} (https://huggingface.co/{Repository}). Download these files into one folder:");
        writer.WriteLine();
        writer.WriteLine($"  huggingface-cli download {Repository} {files} --local-dir {SuggestedFolder}");
        writer.WriteLine();
        writer.WriteLine("or fetch each file:");
        writer.WriteLine();
        foreach (string file in all)
        {
            writer.WriteLine($"  https://huggingface.co/{Repository}/resolve/main/{file}");
        }

        writer.WriteLine();
        writer.WriteLine("then run:");
        writer.WriteLine();
        writer.WriteLine("  " + runCommand.Replace("{folder}", SuggestedFolder, StringComparison.Ordinal));
    }
}
