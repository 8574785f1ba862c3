using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The progress bar is drawn only on a terminal: TinyLm run under util-linux's <c>script</c> (a pseudo-terminal) draws it
/// (escape codes, the bar's step/loss/held-out description) and still ends with final_loss=; redirected, the same run
/// prints plain lines (<see cref="TinyLmEvaluationTests"/> checks that no escape code appears there).
/// </summary>
public sealed class TrainingProgressTests
{
    [Fact]
    public void On_a_terminal_the_bar_is_drawn_and_the_last_line_is_still_final_loss()
    {
        using var folder = new TempFolder();
        string sample = SampleProcess.PathOf("TinyLmSample");
        string command = $"dotnet '{sample}' --steps 30 --eval-every 10 --length 5 --out '{folder.File("t.safetensors")}'";
        var start = new ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[] { "-q", "-e", "-c", command, "/dev/null" }) start.ArgumentList.Add(argument);
        start.Environment["COLUMNS"] = "160";
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(120_000), output);
        Assert.True(process.ExitCode == 0, output + process.StandardError.ReadToEnd());

        Assert.Contains('\u001b', output);                                // drawn, not printed
        Assert.Contains("step 30/30", output);                            // the bar's description at the end
        Assert.Contains("held-out ", output);
        Assert.Contains("tokens/s", output);
        Assert.DoesNotContain("step    25/30", output);                   // the plain progress lines are not printed on a terminal
        Assert.Contains("eval at step 30: held-out loss", output);        // evaluations are, above the bar
        string last = output.Replace("\r", "").Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Assert.Matches(@"^final_loss=\d+\.\d{4}$", last);
    }
}
