using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using TransformerGen.Samples.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The TinyLm sample as a process (its Release build): run uninterrupted once; killed with SIGKILL in the middle of a
/// step and in the middle of writing a checkpoint, then resumed, it ends with the same lines.
/// </summary>
public sealed class TinyLmResumeTests(TinyLmResumeTests.Uninterrupted reference, ITestOutputHelper log) : IClassFixture<TinyLmResumeTests.Uninterrupted>
{
    private const int Steps = 60, Every = 10;

    /// <summary>The arguments of every run here but --out and --resume.</summary>
    private static readonly string[] Arguments = ["--steps", $"{Steps}", "--checkpoint-every", $"{Every}", "--length", "40"];

    /// <summary>The uninterrupted run, once for the class.</summary>
    public sealed class Uninterrupted : IDisposable
    {
        public TempFolder Folder { get; } = new();

        public Uninterrupted() => Result = Run([.. Arguments, "--out", Folder.File("a.safetensors")]);

        public SampleRun Result { get; }

        public void Dispose() => Folder.Dispose();
    }

    private static readonly string Sample = SampleProcess.PathOf("TinyLmSample");

    private static SampleRun Run(string[] arguments, Func<string, bool>? killAt = null, int delayMilliseconds = 0) =>
        SampleProcess.Run(Sample, arguments, killAt, delayMilliseconds);

    /// <summary>What must not depend on whether the run was interrupted: the held-out loss, the sample text and final_loss.</summary>
    private static string Outcome(SampleRun run) => run.From("held-out loss ", l => l.StartsWith("--- sample", StringComparison.Ordinal));

    private static string[] Temporaries(TempFolder folder, string name) => Directory.GetFiles(folder.Path, $".{name}.*.tmp");

    [Fact]
    public void The_uninterrupted_run_checkpoints_and_ends_with_final_loss()
    {
        SampleRun run = reference.Result;
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.Equal(Steps / Every - 1, run.Lines.Count(l => l.StartsWith("writing checkpoint at step ", StringComparison.Ordinal)));
        Assert.Matches(@"^final_loss=\d+\.\d{4}$", run.Lines[^1]);
        Assert.True(TrainingCheckpoint.IsTrainingCheckpoint(reference.Folder.File("a.safetensors")));
        Assert.Empty(Temporaries(reference.Folder, "a.safetensors"));
        log.WriteLine(run.Output);
    }

    [Fact]
    public void The_held_out_loss_with_8_bit_weights_is_within_1_percent_of_fp32()
    {
        SampleRun run = reference.Result;
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Match m = Regex.Match(run.Output, @"held-out loss decoding: fp32 (\d+\.\d+), int8 weights (\d+\.\d+) ");
        Assert.True(m.Success, run.Output);
        double fp32 = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int8 = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.InRange(fp32, 0.5, 3.5); // trained: a uniform guess over the alphabet is ln 64 = 4.16
        Assert.InRange(Math.Abs(int8 / fp32 - 1), 0, 0.01);

        // After prompts of 16-64 tokens, whose products an 8-bit instance takes in integers (activations rounded too).
        m = Regex.Match(run.Output, @"held-out loss after prompts: fp32 (\d+\.\d+), int8 weights (\d+\.\d+) ");
        Assert.True(m.Success, run.Output);
        fp32 = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        int8 = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.InRange(fp32, 0.5, 3.5);
        Assert.InRange(Math.Abs(int8 / fp32 - 1), 0, 0.01);
    }

    [Fact]
    public void Killed_in_the_middle_of_a_step_and_resumed_it_ends_as_the_uninterrupted_run()
    {
        using var folder = new TempFolder();
        string[] arguments = [.. Arguments, "--out", folder.File("b.safetensors")];

        // Killed as soon as step 25's progress line is out: in step 26, after the checkpoint of step 20.
        SampleRun killed = Run(arguments, line => line.StartsWith("step    25/", StringComparison.Ordinal));
        Assert.True(killed.Killed, killed.Output + killed.Error);
        Assert.DoesNotContain(killed.Lines, l => l.StartsWith("final_loss=", StringComparison.Ordinal));

        SampleRun resumed = Run([.. arguments, "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Output + resumed.Error);
        long from = resumed.ResumedFrom;
        Assert.True(from >= 20 && from < Steps && from % Every == 0, $"resumed from step {from}");
        Assert.Equal(Outcome(reference.Result), Outcome(resumed));
        Assert.Equal(reference.Result.Lines[^1], resumed.Lines[^1]);
        log.WriteLine($"resumed from step {from}; {resumed.Lines[^1]}");

        // A finished run resumed has nothing left to do and prints the same again.
        SampleRun again = Run([.. arguments, "--resume"]);
        Assert.Equal(Steps, again.ResumedFrom);
        Assert.Equal(Outcome(reference.Result), Outcome(again));
    }

    [Fact]
    public void Killed_while_writing_a_checkpoint_it_resumes_from_the_previous_one()
    {
        // The kill lands somewhere after "writing checkpoint at step 30" is printed; it counts only when the temporary file
        // is left behind, which shows the save was cut off after it began and before its rename. A few delays are tried.
        using var folder = new TempFolder();
        string[] arguments = [.. Arguments, "--out", folder.File("c.safetensors")];
        foreach (int delay in new[] { 0, 2, 5, 10, 20 })
        {
            foreach (string stale in Temporaries(folder, "c.safetensors")) File.Delete(stale);
            SampleRun killed = Run(arguments, line => line == $"writing checkpoint at step 30 to {folder.File("c.safetensors")}", delay);
            Assert.True(killed.Killed, killed.Output + killed.Error);
            string[] temporaries = Temporaries(folder, "c.safetensors");
            log.WriteLine($"killed {delay} ms after the line: {temporaries.Length} temporary file(s), {(temporaries.Length > 0 ? new FileInfo(temporaries[0]).Length : 0):N0} bytes");
            if (temporaries.Length == 0) continue;

            SampleRun resumed = Run([.. arguments, "--resume"]);
            Assert.True(resumed.ExitCode == 0, resumed.Output + resumed.Error);
            Assert.Equal(20, resumed.ResumedFrom);
            Assert.Equal(Outcome(reference.Result), Outcome(resumed));
            return;
        }
        Assert.Fail("no kill landed inside a save");
    }

    [Fact]
    public void An_output_folder_means_a_file_inside_it_and_an_unwritable_path_fails_before_training()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.File("models"));
        SampleRun run = Run(["--steps", "2", "--length", "5", "--out", folder.File("models")]);
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.Contains($"saved {Path.Combine(folder.File("models"), "tinylm.safetensors")}", run.Lines);
        Assert.True(File.Exists(Path.Combine(folder.File("models"), "tinylm.safetensors")));

        folder.Write("notes.txt", "a file, not a folder");
        SampleRun refused = Run(["--steps", "2", "--out", Path.Combine(folder.File("notes.txt"), "m.safetensors")]);
        Assert.Equal(2, refused.ExitCode);
        Assert.DoesNotContain(refused.Lines, l => l.StartsWith("step ", StringComparison.Ordinal));
        Assert.Contains("--out: the output path", refused.Error);
        Assert.Contains("cannot be created", refused.Error);

        // --resume on a file of parameters only is refused, and the file is left alone.
        string plain = Path.Combine(folder.File("models"), "tinylm.safetensors");
        byte[] before = File.ReadAllBytes(plain);
        SampleRun notResumable = Run(["--steps", "2", "--out", plain, "--resume"]);
        Assert.Equal(2, notResumable.ExitCode);
        Assert.Contains("holds a model's parameters only", notResumable.Error);
        Assert.Equal(before, File.ReadAllBytes(plain));
    }
}
