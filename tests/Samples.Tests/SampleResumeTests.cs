using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using TransformerGen.Samples.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Seq2Seq and Classifier samples as processes (Release builds): killed with SIGKILL partway and resumed, each ends as
/// the run that was never interrupted, down to the held-out examples it prints.
/// </summary>
public sealed partial class SampleResumeTests(ITestOutputHelper log)
{
    /// <summary>The lines that must not depend on an interruption: held-out examples, the held-out score (timing removed), the last line.</summary>
    private static string Outcome(SampleRun run) =>
        string.Join("\n", run.Lines.SkipWhile(l => !l.StartsWith("trained ", StringComparison.Ordinal)).Skip(1)
            .Where(l => l.StartsWith("  ", StringComparison.Ordinal) || l.StartsWith("held-out", StringComparison.Ordinal) || (l.Contains('=') && !l.StartsWith("saved ", StringComparison.Ordinal)))
            .Select(l => DecodingTime().Replace(l, "")));

    /// <summary>
    /// With held-out evaluations at every checkpoint (--eval-every), so that the best-so-far must survive the kill too: the
    /// resumed run names the same best step and loss, and its best checkpoint has the same bytes.
    /// </summary>
    [Theory]
    [InlineData("Seq2SeqSample", 300, 40, "step   100/300", 80, "reverser.best.safetensors")]
    [InlineData("ClassifierSample", 300, 60, "step   200/300", 180, ".best")]
    public void Killed_partway_and_resumed_it_ends_as_the_uninterrupted_run(string sampleKey, int steps, int every, string killLine, long expectedResume, string best)
    {
        string sample = SampleProcess.PathOf(sampleKey);
        using var folder = new TempFolder();
        string[] Arguments(string output) => ["--steps", $"{steps}", "--checkpoint-every", $"{every}", "--eval-every", $"{every}", "--out", folder.File(output)];
        // Seq2Seq's --out is a folder (the best checkpoint inside it), the Classifier's a file (the best one beside it).
        string BestOf(string output) => best.StartsWith('.') ? folder.File(output + best) : Path.Combine(folder.File(output), best);
        string BestLine(SampleRun run) => run.Lines.Single(l => l.StartsWith("best held-out loss ", StringComparison.Ordinal)).Replace(BestOf("a"), "", StringComparison.Ordinal).Replace(BestOf("b"), "", StringComparison.Ordinal);

        SampleRun straight = SampleProcess.Run(sample, Arguments("a"));
        Assert.True(straight.ExitCode == 0, straight.Output + straight.Error);

        SampleRun killed = SampleProcess.Run(sample, Arguments("b"), line => line.StartsWith(killLine, StringComparison.Ordinal));
        Assert.True(killed.Killed, killed.Output + killed.Error);

        SampleRun resumed = SampleProcess.Run(sample, [.. Arguments("b"), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Output + resumed.Error);
        Assert.Equal(expectedResume, resumed.ResumedFrom);
        Assert.Equal(Outcome(straight), Outcome(resumed));
        Assert.Equal(straight.Lines[^1], resumed.Lines[^1]);
        Assert.Equal(BestLine(straight), BestLine(resumed));
        Assert.Equal(File.ReadAllBytes(BestOf("a")), File.ReadAllBytes(BestOf("b")));
        Assert.Contains("; best held-out loss so far ", resumed.Output);
        if (sampleKey == "Seq2SeqSample")
        {
            // The cross-attention picture (ScottPlot): a whole PNG, wider for more input digits.
            (int width, int height) = PngFile.Check(Path.Combine(folder.File("a"), "cross_attention.png"));
            Assert.InRange(width, 300, 1000);
            Assert.InRange(height, 150, 1000);
        }
        log.WriteLine($"{sampleKey}: resumed from step {resumed.ResumedFrom}\n{Outcome(resumed)}");

        // Another seed cannot continue this run: its data would differ from what the checkpoint trained on.
        SampleRun otherSeed = SampleProcess.Run(sample, [.. Arguments("b"), "--resume", "--seed", "5"]);
        Assert.Equal(2, otherSeed.ExitCode);
        Assert.Contains("is from a run with another --seed", otherSeed.Error);
    }

    [Theory]
    [InlineData("Seq2SeqSample")]
    [InlineData("ClassifierSample")]
    public void An_output_path_that_cannot_be_written_fails_before_training(string sampleKey)
    {
        using var folder = new TempFolder();
        folder.Write("notes.txt", "a file, not a folder");
        SampleRun refused = SampleProcess.Run(SampleProcess.PathOf(sampleKey), ["--steps", "5", "--out", Path.Combine(folder.File("notes.txt"), "model")]);
        Assert.Equal(2, refused.ExitCode);
        Assert.DoesNotContain(refused.Lines, l => l.StartsWith("step ", StringComparison.Ordinal));
        Assert.Contains("--out: the output path", refused.Error);
    }

    [GeneratedRegex(@"; decoding took [\d.]+ s$")]
    private static partial Regex DecodingTime();
}
