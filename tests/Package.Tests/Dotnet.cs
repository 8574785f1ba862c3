using System;
using System.Collections;
using System.Diagnostics;
using System.Text;

namespace TransformerGen.Package.Tests;

/// <summary>Runs the <c>dotnet</c> command line as a user would, and captures what it prints.</summary>
public static class Dotnet
{
    /// <summary>The exit code and the interleaved standard output and error of one command.</summary>
    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed);

    /// <summary>
    /// Runs <c>dotnet <paramref name="arguments"/></c> in <paramref name="directory"/>; kills the process tree
    /// and fails after <paramref name="timeout"/>.
    /// </summary>
    /// <remarks>
    /// MSBuild's own environment variables (set when the test host runs under <c>dotnet test</c>) are removed, so
    /// the command resolves its SDK as a fresh shell would. No build server or reused node may outlive the command:
    /// such a process inherits the output pipes and keeps them open after the command has exited.
    /// </remarks>
    public static Result Run(string directory, TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            string name = (string)variable.Key;
            if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
                start.Environment.Remove(name);
        }
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["UseSharedCompilation"] = "false";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";

        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"dotnet {string.Join(' ', arguments)} did not finish within {timeout.TotalSeconds:F0} s; it printed:\n{output}");
        }
        process.WaitForExit(); // drains the asynchronous readers
        lock (output) return new Result(process.ExitCode, output.ToString(), clock.Elapsed);
    }
}
