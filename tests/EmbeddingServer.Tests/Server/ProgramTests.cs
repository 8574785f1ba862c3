using System;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// The program as a user starts it (<c>dotnet EmbeddingServer.dll --model … --urls …</c>, the build beside the tests), on
/// folders it must refuse: it prints why on standard error and exits with 3 before listening.
/// </summary>
public sealed class ProgramTests(TinyBertFolder folder) : IClassFixture<TinyBertFolder>
{
    private static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "EmbeddingServer.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync(), error = process.StandardError.ReadToEndAsync();
        using var timeout = new System.Threading.CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Started_on_another_models_folder_it_names_the_differing_keys_and_exits_3()
    {
        (int exit, _, string error) = await RunAsync("--model", folder.Path, "--urls", "http://127.0.0.1:0");
        Assert.True(exit == 3, error);
        Assert.StartsWith($"{Path.Combine(folder.Path, "config.json")} describes another model than the one this server was compiled for (sentence-transformers/all-MiniLM-L6-v2)", error);
        Assert.Contains("hidden_size: 48 in the folder, 384 compiled", error);
    }

    [Fact]
    public async Task Started_without_a_folder_it_says_how_to_start_and_exits_3()
    {
        (int exit, _, string error) = await RunAsync("--urls", "http://127.0.0.1:0");
        Assert.Equal(3, exit);
        Assert.StartsWith("No model folder given: start the server with --model <folder>", error);
    }
}
