using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Xunit;

namespace TransformerGen.Samples.Tests.Support;

/// <summary>What a sample run as a process printed, and how it ended.</summary>
public sealed partial record SampleRun(int ExitCode, IReadOnlyList<string> Lines, string Error, bool Killed)
{
    public string Output => string.Join("\n", Lines);

    /// <summary>The step a resumed run says it continues from.</summary>
    public long ResumedFrom
    {
        get
        {
            Match match = ResumingLine().Match(Output);
            Assert.True(match.Success, Output + Error);
            return long.Parse(match.Groups[1].Value);
        }
    }

    /// <summary>The lines from the first that starts with <paramref name="prefix"/> to the end, without those that <paramref name="varies"/> says hold timings.</summary>
    public string From(string prefix, Func<string, bool>? varies = null)
    {
        int first = Lines.ToList().FindIndex(l => l.StartsWith(prefix, StringComparison.Ordinal));
        Assert.True(first >= 0, $"no line starts with '{prefix}':\n{Output}\n{Error}");
        return string.Join("\n", Lines.Skip(first).Where(l => varies is null || !varies(l)));
    }

    [GeneratedRegex(@"^resuming from step (\d+) of \d+ ", RegexOptions.Multiline)]
    private static partial Regex ResumingLine();
}

/// <summary>
/// Runs a sample's Release build (built by the test project's reference to it) as a process, and can SIGKILL it when a
/// line appears.
/// </summary>
public static class SampleProcess
{
    /// <summary>The path of a sample's built dll, from the test assembly's metadata named <paramref name="key"/>.</summary>
    public static string PathOf(string key) =>
        typeof(SampleProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    /// <summary>Runs the sample; <paramref name="killAt"/> sees each line as it is printed and returns true to SIGKILL the process there (after <paramref name="delayMilliseconds"/>).</summary>
    public static SampleRun Run(string sample, IEnumerable<string> arguments, Func<string, bool>? killAt = null, int delayMilliseconds = 0)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(sample);
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var error = process.StandardError.ReadToEndAsync();
        var lines = new List<string>();
        bool killed = false;
        while (process.StandardOutput.ReadLine() is { } line)
        {
            lines.Add(line);
            if (killAt is not null && killAt(line))
            {
                if (delayMilliseconds > 0) System.Threading.Thread.Sleep(delayMilliseconds);
                process.Kill(); // SIGKILL on Linux and macOS: no handler and no finally block runs
                killed = true;
                break;
            }
        }
        if (!process.WaitForExit(180_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{sample} did not finish in 3 minutes:\n{string.Join("\n", lines)}");
        }
        return new SampleRun(process.ExitCode, lines, error.Result, killed);
    }
}
