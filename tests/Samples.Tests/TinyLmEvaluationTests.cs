using System;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// TinyLm's held-out evaluation (--eval-every), the best checkpoint beside the last, and early stopping (--early-stop), as
/// a process: evaluating does not change what training computes, and a killed run resumed keeps its best-so-far.
/// </summary>
public sealed class TinyLmEvaluationTests(ITestOutputHelper log)
{
    private const int Steps = 60;
    private static readonly string Sample = SampleProcess.PathOf("TinyLmSample");
    private static readonly string[] Common = ["--steps", $"{Steps}", "--checkpoint-every", "10", "--length", "20"];

    private static string Line(SampleRun run, string prefix) =>
        run.Lines.SingleOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException($"no line '{prefix}…':\n{run.Output}\n{run.Error}");

    [Fact]
    public void Evaluating_leaves_training_alone_and_a_resumed_run_keeps_its_best_checkpoint()
    {
        using var folder = new TempFolder();
        SampleRun plain = SampleProcess.Run(Sample, [.. Common, "--out", folder.File("plain.safetensors")]);
        Assert.True(plain.ExitCode == 0, plain.Output + plain.Error);
        Assert.DoesNotContain(plain.Lines, l => l.StartsWith("eval at step", StringComparison.Ordinal));
        Assert.False(File.Exists(folder.File("plain.best.safetensors")));

        string[] evaluated = [.. Common, "--eval-every", "20"];
        SampleRun a = SampleProcess.Run(Sample, [.. evaluated, "--out", folder.File("a.safetensors"), "--plot", folder.File("plots") + Path.DirectorySeparatorChar]);
        Assert.True(a.ExitCode == 0, a.Output + a.Error);
        Assert.Equal(3, a.Lines.Count(l => l.StartsWith("eval at step", StringComparison.Ordinal)));
        Assert.DoesNotContain(a.Lines, l => l.Contains('\u001b')); // redirected: plain lines, no progress bar
        Assert.Equal(plain.Lines[^1], a.Lines[^1]); // the same final_loss= with and without evaluations
        Assert.Equal(Line(plain, "held-out loss decoding"), Line(a, "held-out loss decoding"));
        string best = Line(a, "best held-out loss ");
        Assert.EndsWith(folder.File("a.best.safetensors"), best);
        Assert.True(File.Exists(folder.File("a.best.safetensors")));
        Assert.False(TrainingCheckpoint.IsTrainingCheckpoint(folder.File("a.best.safetensors"))); // the parameters only
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));
        // --plot: a folder means loss.png inside it, a whole PNG of the size asked for.
        Assert.Contains($"saved loss curves {Path.Combine(folder.File("plots"), "loss.png")}", a.Lines);
        Assert.Equal((900, 540), PngFile.Check(Path.Combine(folder.File("plots"), "loss.png")));
        Assert.Empty(Directory.GetFiles(folder.File("plots"), "*.tmp"));

        // Killed at step 50's progress line, before its checkpoint: resumed from step 40, whose checkpoint holds the evaluations of steps 20 and 40.
        string[] b = [.. evaluated, "--out", folder.File("b.safetensors")];
        SampleRun killed = SampleProcess.Run(Sample, b, line => line.StartsWith("step    50/", StringComparison.Ordinal));
        Assert.True(killed.Killed, killed.Output + killed.Error);
        SampleRun resumed = SampleProcess.Run(Sample, [.. b, "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Output + resumed.Error);
        Assert.Equal(40, resumed.ResumedFrom);
        Assert.Contains("; best held-out loss so far ", Line(resumed, "resuming from step "));
        Assert.Equal(a.Lines[^1], resumed.Lines[^1]);
        Assert.Equal(best.Replace("a.best", "b.best", StringComparison.Ordinal), Line(resumed, "best held-out loss "));
        Assert.Equal(File.ReadAllBytes(folder.File("a.best.safetensors")), File.ReadAllBytes(folder.File("b.best.safetensors")));
        log.WriteLine(string.Join("\n", resumed.Lines.Where(l => l.StartsWith("eval", StringComparison.Ordinal) || l.StartsWith("best", StringComparison.Ordinal))));
    }

    [Fact]
    public void Early_stopping_ends_after_K_evaluations_without_improvement_and_stays_stopped_on_resume()
    {
        // At learning rate 0 the parameters never move, so the held-out loss repeats exactly and never improves after the
        // first evaluation: with --early-stop 2 the run stops at the third, step 15.
        using var folder = new TempFolder();
        string[] arguments = ["--steps", "40", "--lr", "0", "--eval-every", "5", "--early-stop", "2", "--checkpoint-every", "10", "--length", "5",
            "--out", folder.File("s.safetensors")];
        SampleRun run = SampleProcess.Run(Sample, arguments);
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.Contains("early stop at step 15: 2 evaluations without improving on step 5", run.Lines);
        Assert.DoesNotContain(run.Lines, l => l.StartsWith("step    25/", StringComparison.Ordinal));
        Assert.Contains("trained 15 steps in ", Line(run, "trained "));
        Assert.Matches(@"^final_loss=\d+\.\d{4}$", run.Lines[^1]);

        SampleRun again = SampleProcess.Run(Sample, [.. arguments, "--resume"]);
        Assert.True(again.ExitCode == 0, again.Output + again.Error);
        Assert.Equal(15, again.ResumedFrom);
        Assert.StartsWith("trained 0 steps after step 15", Line(again, "trained "));
        Assert.Equal(run.Lines[^1], again.Lines[^1]);

        SampleRun refused = SampleProcess.Run(Sample, ["--steps", "5", "--early-stop", "2", "--out", folder.File("x.safetensors")]);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--early-stop", refused.Error);

        // A plot inside a folder named as the model file would turn the model's path into a folder: refused before training.
        SampleRun collision = SampleProcess.Run(Sample, ["--steps", "5", "--out", folder.File("m"), "--plot", Path.Combine(folder.File("m"), "loss.png")]);
        Assert.Equal(2, collision.ExitCode);
        Assert.Contains("collide", collision.Error);
        Assert.DoesNotContain(collision.Lines, l => l.StartsWith("step ", StringComparison.Ordinal));
    }
}
