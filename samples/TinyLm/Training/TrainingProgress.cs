using System;
using System.Diagnostics;
using Spectre.Console;

namespace TransformerGen.Samples;

/// <summary>
/// How a training loop shows its progress. On a terminal, a Spectre.Console progress bar with the step, the loss, the
/// last held-out loss, tokens per second and the time left, and the loop's messages (evaluations, checkpoints) printed
/// above it. When the output is redirected (a file, a pipe, CI, the tests), plain lines only, exactly those the samples
/// printed before there was a bar, so that scripts and the last-line contract see nothing new.
/// </summary>
public sealed class TrainingProgress
{
    private readonly ProgressTask? _task;
    private readonly long _totalSteps;
    private readonly Stopwatch _sinceUpdate = Stopwatch.StartNew();
    private float _heldOut = float.NaN, _loss = float.NaN;
    private long _step;
    private double _tokensPerSecond;

    private TrainingProgress(ProgressTask? task, long totalSteps)
    {
        _task = task;
        _totalSteps = totalSteps;
    }

    /// <summary>True when progress is drawn as a live bar: standard output is a terminal that Spectre.Console can redraw.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="loop"/> (steps <paramref name="startStep"/> + 1 to <paramref name="totalSteps"/>) with a live bar on a terminal, or as it is otherwise.</summary>
    public static void Run(long startStep, long totalSteps, Action<TrainingProgress> loop)
    {
        if (!Interactive)
        {
            loop(new TrainingProgress(null, totalSteps));
            return;
        }
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                ProgressTask task = context.AddTask(Markup.Escape($"step {startStep}/{totalSteps}"), maxValue: totalSteps);
                task.Value = startStep;
                loop(new TrainingProgress(task, totalSteps));
                task.StopTask();
            });
    }

    /// <summary>A message that belongs in the log either way: an evaluation, a checkpoint written, an early stop.</summary>
    public void Line(string text)
    {
        if (_task is null) Console.WriteLine(text);
        else AnsiConsole.WriteLine(text);
    }

    /// <summary>The periodic progress line of plain output; on a terminal the bar says it instead.</summary>
    public void PlainLine(string text)
    {
        if (_task is null) Console.WriteLine(text);
    }

    /// <summary>The held-out loss of the last evaluation, shown on the bar from now on.</summary>
    public void HeldOut(float loss)
    {
        _heldOut = loss;
        Render();
    }

    /// <summary>Moves the bar to <paramref name="step"/> (redrawn at most ten times a second, and at the last step).</summary>
    public void Step(long step, float loss, double tokensPerSecond)
    {
        (_step, _loss, _tokensPerSecond) = (step, loss, tokensPerSecond);
        if (_task is null || (_sinceUpdate.ElapsedMilliseconds < 100 && step < _totalSteps)) return;
        _sinceUpdate.Restart();
        Render();
    }

    private void Render()
    {
        if (_task is null) return;
        string heldOut = float.IsNaN(_heldOut) ? "" : $"  held-out {_heldOut:F3}";
        _task.Description = Markup.Escape($"step {_step}/{_totalSteps}  loss {_loss:F3}{heldOut}  {_tokensPerSecond:N0} tokens/s");
        _task.Value = _step;
    }
}
