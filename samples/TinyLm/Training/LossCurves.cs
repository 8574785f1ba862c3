using System;
using System.IO;
using System.Linq;
using ScottPlot;

namespace TransformerGen.Samples;

/// <summary>The training and held-out loss curves of a <see cref="TrainingRecord"/> as a PNG (ScottPlot 5).</summary>
public static class LossCurves
{
    /// <summary>Picture size in pixels.</summary>
    public const int Width = 900, Height = 540;

    /// <summary>
    /// Draws the curves and writes them to <paramref name="path"/>: beside it first, then renamed over it, so a reader (or a
    /// kill) never sees half a picture. A resumed run's record holds the curves from step 1, so its plot does too.
    /// </summary>
    /// <param name="path">The PNG to write.</param>
    /// <param name="record">The curves.</param>
    /// <param name="title">The plot's title (the model).</param>
    /// <param name="unit">What the loss is measured in, for the vertical axis.</param>
    public static void Write(string path, TrainingRecord record, string title, string unit = "nats per token")
    {
        var plot = new Plot();
        if (record.Train.Count > 0)
        {
            var train = plot.Add.Scatter(record.Train.Select(p => (double)p.Step).ToArray(), record.Train.Select(p => (double)p.Loss).ToArray());
            train.LegendText = "training";
            train.MarkerSize = record.Train.Count > 60 ? 0 : 4;
        }
        if (record.HeldOut.Count > 0)
        {
            var heldOut = plot.Add.Scatter(record.HeldOut.Select(p => (double)p.Step).ToArray(), record.HeldOut.Select(p => (double)p.Loss).ToArray());
            heldOut.LegendText = "held-out";
            heldOut.MarkerSize = 6;
            var best = plot.Add.Marker(record.BestStep, record.BestLoss, MarkerShape.OpenCircle, size: 16);
            best.LegendText = $"best held-out {record.BestLoss:F3} (step {record.BestStep})";
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel($"loss ({unit})");
        plot.ShowLegend(Alignment.UpperRight);
        SaveAtomically(plot, path);
    }

    /// <summary>Renders <paramref name="plot"/> to a temporary PNG beside <paramref name="path"/> and renames it over the target.</summary>
    public static void SaveAtomically(Plot plot, string path, int width = Width, int height = Height)
    {
        string full = Path.GetFullPath(path);
        string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            plot.SavePng(temporary, width, height);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
