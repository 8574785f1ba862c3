using System;
using System.Collections.Generic;
using System.IO;
using Xunit;

namespace TransformerGen.Model.Tests;

// Dropout on in all three architectures, so that the dropout masks are part of what a resumed run must repeat.

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 3,
    EncoderLayers = 2, DecoderLayers = 1, DFF = 20, SeqLen = 6, TargetSeqLen = 5, Batch = 2,
    PadToken = 0, BosToken = 1, EosToken = 2, Positional = Positional.Learned, Norm = NormPlacement.Pre,
    Dropout = 0.2f, LabelSmoothing = 0.1f)]
public partial class DropoutSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 11, Classes = 3, DModel = 12, Heads = 3, Layers = 2, DFF = 20,
    SeqLen = 6, Batch = 3, PadToken = 0, Pooling = Pooling.Mean, Norm = NormPlacement.Post, Dropout = 0.2f)]
public partial class DropoutClassifier { }

public sealed class ResumeTests : IDisposable
{
    private const int Steps = 12, StopAt = 5;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "tg-resume-" + Guid.NewGuid().ToString("N"));

    public ResumeTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static IEnumerable<object[]> Architectures() =>
    [
        ["decoder-only", "adamw"], ["encoder-decoder", "adamw"], ["encoder-only", "adamw"],
        ["decoder-only", "sgd"], ["encoder-decoder", "sgd-nesterov"], ["encoder-only", "sgd-plain"],
    ];

    private static TransformerModel NewModel(string architecture, ulong seed) => architecture switch
    {
        "decoder-only" => new WithDropout(seed),
        "encoder-decoder" => new DropoutSeq2Seq(seed),
        "encoder-only" => new DropoutClassifier(seed),
        _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
    };

    private static IOptimizer NewOptimizer(string kind, TransformerModel model) => kind switch
    {
        "adamw" => new AdamW(model, learningRate: 1e-2f, weightDecay: 0.05f, decayVectors: false),
        "sgd" => new Sgd(model, learningRate: 5e-2f, momentum: 0.9f, weightDecay: 1e-3f),
        "sgd-nesterov" => new Sgd(model, learningRate: 5e-2f, momentum: 0.8f, nesterov: true),
        "sgd-plain" => new Sgd(model, learningRate: 5e-2f),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static readonly ILearningRateSchedule Schedule = new WarmupCosineSchedule(1f, warmupSteps: 3, totalSteps: Steps, minLearningRate: 0.1f);

    /// <summary>A batch drawn from <paramref name="data"/>: ids in [1, Vocab), targets in range with about one in eight ignored.</summary>
    private static void Sample(TransformerModel model, Rng data, int[] tokens, int[] targets)
    {
        for (int i = 0; i < tokens.Length; i++) tokens[i] = 1 + data.NextInt(model.Layout.Vocab - 1);
        for (int i = 0; i < targets.Length; i++) targets[i] = data.NextInt(8) == 0 ? -1 : data.NextInt(model.Layout.TargetVocab);
    }

    /// <summary>Steps <paramref name="from"/> + 1 … <paramref name="to"/>, with the schedule scaling the optimizer's base rate.</summary>
    private static void Train(TransformerModel model, IOptimizer optimizer, float baseRate, Rng data, long from, long to, Action<long>? after = null)
    {
        var tokens = new int[model.Layout.TokensPerStep];
        var targets = new int[model.Layout.TargetLength];
        for (long step = from + 1; step <= to; step++)
        {
            Sample(model, data, tokens, targets);
            optimizer.LearningRate = baseRate * Schedule.At(optimizer.StepCount + 1);
            model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
            after?.Invoke(step);
        }
    }

    private static float[] StateOf(IOptimizer optimizer) => optimizer switch
    {
        AdamW adam => [.. adam.FirstMoment, .. adam.SecondMoment],
        Sgd sgd => sgd.MomentumBuffer.ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(optimizer)),
    };

    private static void AssertBits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}[{i}]: {expected[i]:R} uninterrupted, {actual[i]:R} resumed");
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Resuming_gives_the_parameters_of_a_run_that_never_stopped(string architecture, string optimizerKind)
    {
        string checkpoint = Path.Combine(_folder, "run.safetensors");

        // The uninterrupted run, which writes a checkpoint after step StopAt on its way.
        TransformerModel straight = NewModel(architecture, 7);
        IOptimizer straightOptimizer = NewOptimizer(optimizerKind, straight);
        float baseRate = straightOptimizer.LearningRate;
        var straightData = new Rng(70);
        Train(straight, straightOptimizer, baseRate, straightData, 0, Steps,
            step => { if (step == StopAt) TrainingCheckpoint.Save(checkpoint, straight, straightOptimizer, step, straightData); });

        // The resumed run starts from another seed everywhere: whatever it does not restore shows as a difference.
        TransformerModel resumed = NewModel(architecture, 99);
        IOptimizer resumedOptimizer = NewOptimizer(optimizerKind, resumed);
        var resumedData = new Rng(990);
        TrainingCheckpointInfo info = TrainingCheckpoint.Load(checkpoint, resumed, resumedOptimizer, resumedData);
        Assert.Equal(StopAt, info.Step);
        Assert.Equal(StopAt, info.OptimizerStep);
        Assert.Equal(StopAt, resumedOptimizer.StepCount);
        Train(resumed, resumedOptimizer, baseRate, resumedData, info.Step, Steps);

        AssertBits(straight.Parameters, resumed.Parameters, "parameters");
        AssertBits(StateOf(straightOptimizer), StateOf(resumedOptimizer), "optimizer state");
        Assert.Equal(straightOptimizer.StepCount, resumedOptimizer.StepCount);
        Assert.Equal(straight.DropoutState, resumed.DropoutState);
        Assert.Equal(straightData.State, resumedData.State);
    }

    [Theory]
    [InlineData("decoder-only")]
    [InlineData("encoder-decoder")]
    [InlineData("encoder-only")]
    public void Without_the_dropout_state_the_resumed_run_differs(string architecture)
    {
        // The control for the test above: dropout really draws masks in these models, so restoring the parameters,
        // the optimizer and the data but not the dropout generator's state gives other parameters.
        string checkpoint = Path.Combine(_folder, "run.safetensors");
        TransformerModel straight = NewModel(architecture, 7);
        IOptimizer straightOptimizer = NewOptimizer("adamw", straight);
        var straightData = new Rng(70);
        Train(straight, straightOptimizer, 1e-2f, straightData, 0, Steps,
            step => { if (step == StopAt) TrainingCheckpoint.Save(checkpoint, straight, straightOptimizer, step, straightData); });

        TransformerModel resumed = NewModel(architecture, 7);
        IOptimizer resumedOptimizer = NewOptimizer("adamw", resumed);
        var resumedData = new Rng(70);
        RngState fresh = resumed.DropoutState;
        long step = TrainingCheckpoint.Load(checkpoint, resumed, resumedOptimizer, resumedData).Step;
        Assert.NotEqual(fresh, resumed.DropoutState);
        resumed.DropoutState = fresh;
        Train(resumed, resumedOptimizer, 1e-2f, resumedData, step, Steps);
        Assert.False(straight.Parameters.SequenceEqual(resumed.Parameters));
    }

    [Fact]
    public void The_inference_loaders_read_a_training_checkpoint_and_skip_its_state()
    {
        string checkpoint = Path.Combine(_folder, "run.safetensors");
        var model = new WithDropout(3);
        var optimizer = new AdamW(model, learningRate: 1e-2f);
        Train(model, optimizer, 1e-2f, new Rng(4), 0, 3);
        TrainingCheckpoint.Save(checkpoint, model, optimizer, 3, metadata: new Dictionary<string, string> { ["alphabet"] = "abc" });
        Assert.True(TrainingCheckpoint.IsTrainingCheckpoint(checkpoint));

        WithDropout inference = WithDropout.ForInference(checkpoint);
        AssertBits(model.Parameters, inference.Parameters, "ForInference parameters");

        var loaded = new WithDropout(5);
        loaded.Load(checkpoint);
        AssertBits(model.Parameters, loaded.Parameters, "Load parameters");

        SafeTensorsLoadReport report = new WithDropout(6).Load(checkpoint, strict: false);
        Assert.True(report.IsExactMatch, report.ToString());
        Assert.Equal(2 * model.ParameterTensors.Count, report.Skipped.Count); // exp_avg and exp_avg_sq of every tensor
        Assert.All(report.Skipped, s => Assert.Equal(SafeTensorsSkipReason.TrainingState, s.Reason));
        Assert.Contains(report.Skipped, s => s.Name == "__training__.exp_avg_sq.token_embedding.weight");

        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(checkpoint);
        Assert.Equal("abc", metadata["alphabet"]);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal("3", metadata["training.step"]);
        Assert.Equal("AdamW", metadata["training.optimizer"]);
    }

    [Fact]
    public void A_parameters_only_file_or_another_optimizer_is_refused_and_nothing_changes()
    {
        string plain = Path.Combine(_folder, "plain.safetensors"), checkpoint = Path.Combine(_folder, "run.safetensors");
        var model = new WithDropout(3);
        var optimizer = new AdamW(model, learningRate: 1e-2f, weightDecay: 0.01f);
        Train(model, optimizer, 1e-2f, new Rng(4), 0, 2);
        model.Save(plain);
        TrainingCheckpoint.Save(checkpoint, model, optimizer, 2);
        Assert.False(TrainingCheckpoint.IsTrainingCheckpoint(plain));

        var target = new WithDropout(8);
        float[] before = target.Parameters.ToArray();
        RngState dropout = target.DropoutState;

        var adam = new AdamW(target, learningRate: 1e-3f, weightDecay: 0.01f);
        var e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(plain, target, adam));
        Assert.Contains("parameters only", e.Message);

        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(checkpoint, target, new Sgd(target, 0.1f, momentum: 0.9f)));
        Assert.Contains("holds the state of AdamW, but the optimizer is SGD", e.Message);

        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(checkpoint, target, new AdamW(target, weightDecay: 0.1f)));
        Assert.Contains("weight_decay = 0.01, but this optimizer has weight_decay = 0.1", e.Message);

        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(checkpoint, target, adam, new Rng(1)));
        Assert.Contains("no state of a data generator", e.Message);

        AssertBits(before, target.Parameters, "parameters after refused loads");
        Assert.Equal(dropout, target.DropoutState);
        Assert.Equal(0, adam.StepCount);
        Assert.Equal(1e-3f, adam.LearningRate);
        Assert.True(adam.FirstMoment.IndexOfAnyExcept(0f) < 0);

        Assert.Throws<ArgumentException>(() => TrainingCheckpoint.Save(checkpoint, model, optimizer, 2,
            metadata: new Dictionary<string, string> { ["training.step"] = "9" }));
        var e2 = Assert.Throws<ArgumentException>(() => TrainingCheckpoint.Save(checkpoint, model, new Sgd(new DropoutClassifier(1), 0.1f, momentum: 0.5f), 2));
        Assert.Contains("it is not this model's optimizer", e2.Message);
    }

    [Fact]
    public void A_save_that_fails_before_the_rename_leaves_the_previous_checkpoint_loadable()
    {
        string checkpoint = Path.Combine(_folder, "run.safetensors");
        var model = new WithDropout(3);
        var optimizer = new AdamW(model, learningRate: 1e-2f);
        var data = new Rng(4);
        Train(model, optimizer, 1e-2f, data, 0, 2);
        TrainingCheckpoint.Save(checkpoint, model, optimizer, 2, data);
        float[] atTwo = model.Parameters.ToArray();
        Train(model, optimizer, 1e-2f, data, 2, 4);

        string? temporary = null;
        var e = Assert.Throws<IOException>(() => TrainingCheckpoint.Save(checkpoint, model, optimizer, 4, data, metadata: null,
            beforeCommit: path => { temporary = path; throw new IOException("simulated kill before the rename"); }));
        Assert.Equal("simulated kill before the rename", e.Message);
        Assert.NotNull(temporary);
        Assert.False(File.Exists(temporary));
        Assert.Single(Directory.GetFiles(_folder));

        var restored = new WithDropout(5);
        var restoredOptimizer = new AdamW(restored, learningRate: 1e-2f);
        Assert.Equal(2, TrainingCheckpoint.Load(checkpoint, restored, restoredOptimizer, new Rng(0)).Step);
        AssertBits(atTwo, restored.Parameters, "parameters of the previous checkpoint");
    }
}
