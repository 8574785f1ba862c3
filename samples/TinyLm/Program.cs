using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using TransformerGen;
using TransformerGen.Samples;
using TransformerGen.Tokenizers;

namespace TinyLmSample;

/// <summary>Trains <see cref="TinyLm"/> on the Book of Genesis, saves it, and generates text from a prompt.</summary>
public static class Program
{
    private sealed record Options(int Steps, ulong Seed, string Prompt, string Out, int Length, float LearningRate, float Temperature, string Data,
        int CheckpointEvery, bool Resume, int Accumulate, int EvalEvery, int EarlyStop, string? Plot);

    // The sample's own entries in a checkpoint's metadata: what a resumed run must share with the run that wrote it, and
    // the losses behind the running mean that final_loss prints.
    private const string AlphabetKey = "alphabet", StepsKey = "tinylm.steps", LearningRateKey = "tinylm.lr",
        AccumulateKey = "tinylm.accumulate", RecentLossesKey = "tinylm.recent_losses";

    public static int Main(string[] args)
    {
        var steps = SampleCommandLine.Count("--steps", "Optimizer steps to train.", 1000);
        var seed = new Option<ulong>("--seed") { Description = "Seeds the initial weights, the batches and the sampler.", HelpName = "S", DefaultValueFactory = _ => 1 };
        var prompt = new Option<string>("--prompt") { Description = "Text the generated sample continues.", HelpName = "TEXT", DefaultValueFactory = _ => "And God said" };
        prompt.Validators.Add(r => { if (string.IsNullOrEmpty(r.GetValueOrDefault<string>())) r.AddError("--prompt must not be empty."); });
        var output = new Option<string?>("--out")
        {
            Description = "Where the model (or, with --checkpoint-every, the training checkpoint) is written; a folder means tinylm.safetensors inside it "
                + "(tinylm-gpt2.safetensors with --tokenizer gpt2). Default: out/tinylm.safetensors, out/tinylm-gpt2.safetensors.",
            HelpName = "FILE|FOLDER",
        };
        var length = SampleCommandLine.Count("--length", "Characters to generate after training.", 300);
        var rate = SampleCommandLine.Number("--lr", "Peak learning rate of the warm-up + cosine schedule.", 3e-3f, 0f);
        var temperature = SampleCommandLine.Number("--temperature", "Sampling temperature of the generated text.", 0.8f, 0f, "T");
        var data = new Option<string>("--data")
        {
            Description = "The text to train on (the last tenth is held out).", HelpName = "FILE",
            DefaultValueFactory = _ => Path.Combine(AppContext.BaseDirectory, "data", "genesis.txt"),
        };
        var checkpointEvery = SampleCommandLine.Count("--checkpoint-every", "Write a training checkpoint to --out every N steps and at the end (0: only the model, at the end).", 0, minimum: 0);
        var resume = new Option<bool>("--resume") { Description = "Continue from the training checkpoint at --out, if there is one." };
        var accumulate = SampleCommandLine.Count("--accumulate", "Micro-batches of 16 windows per optimizer step (gradient accumulation).", 1, helpName: "K");
        var evalEvery = SampleCommandLine.Count("--eval-every", "Measure the held-out loss every N steps and at the end, keeping the best parameters in <out>.best.safetensors (0: never).", 0, minimum: 0);
        var earlyStop = SampleCommandLine.Count("--early-stop", "Stop after K evaluations without a lower held-out loss (0: never; needs --eval-every).", 0, minimum: 0, helpName: "K");
        var plot = new Option<string?>("--plot") { Description = "Write the training and held-out loss curves as a PNG here (a folder means loss.png inside it), at each evaluation and at the end.", HelpName = "FILE" };
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "char: the character model (TinyLm) on the text's characters; gpt2: Gpt2Lm on the text's GPT-2 BPE tokens, sampled from a memory-mapped token file.",
            DefaultValueFactory = _ => "char",
        };
        tokenizer.AcceptOnlyFromAmong("char", "gpt2");
        var prepare = new Option<string?>("--prepare") { Description = "Tokenize --data with GPT-2's BPE into this token file and exit (a folder means <data name>.tokens inside it).", HelpName = "FILE" };
        var tokensFile = new Option<string?>("--tokens") { Description = "With --tokenizer gpt2: train on this token file (from --prepare) instead of tokenizing --data.", HelpName = "FILE" };
        var command = new RootCommand("Trains TinyLm, a character-level language model, on the Book of Genesis, saves it and generates text from a prompt.")
        {
            steps, seed, prompt, output, length, rate, temperature, data, checkpointEvery, resume, accumulate, evalEvery, earlyStop, plot, tokenizer, prepare, tokensFile,
        };
        command.Validators.Add(r =>
        {
            if (r.GetValue(earlyStop) > 0 && r.GetValue(evalEvery) == 0) r.AddError("--early-stop counts evaluations: it needs --eval-every.");
            if (r.GetValue(tokensFile) is not null && r.GetValue(tokenizer) != "gpt2") r.AddError("--tokens holds GPT-2 tokens: it needs --tokenizer gpt2.");
            if (r.GetValue(tokenizer) == "gpt2" && r.GetValue(accumulate) > 1) r.AddError("--accumulate is for the character model; Gpt2Lm trains one batch per step.");
        });
        command.SetAction(parsed => parsed.GetValue(prepare) is { } prepared
            ? Prepare(parsed.GetValue(data)!, prepared)
            : parsed.GetValue(tokenizer) == "gpt2"
            ? TrainGpt2(parsed.GetValue(output), parsed.GetValue(plot), parsed.GetValue(data)!, parsed.GetValue(tokensFile), parsed.GetValue(seed), parsed.GetValue(steps),
                parsed.GetValue(rate), parsed.GetValue(checkpointEvery), parsed.GetValue(resume), parsed.GetValue(evalEvery), parsed.GetValue(earlyStop),
                parsed.GetValue(prompt)!, parsed.GetValue(length), parsed.GetValue(temperature))
            : Train(new Options(parsed.GetValue(steps), parsed.GetValue(seed), parsed.GetValue(prompt)!, parsed.GetValue(output) ?? Path.Combine("out", "tinylm.safetensors"),
            parsed.GetValue(length), parsed.GetValue(rate), parsed.GetValue(temperature), parsed.GetValue(data)!, parsed.GetValue(checkpointEvery),
            parsed.GetValue(resume), parsed.GetValue(accumulate), parsed.GetValue(evalEvery), parsed.GetValue(earlyStop), parsed.GetValue(plot))));
        return SampleCommandLine.Run(command, args);
    }

    /// <summary><c>--prepare</c>: the text's GPT-2 token file, then nothing else.</summary>
    private static int Prepare(string data, string output)
    {
        string path;
        try
        {
            path = SafeTensors.PrepareOutputPath(output, Path.GetFileNameWithoutExtension(data) + ".tokens");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--prepare: {e.Message}");
            return 2;
        }
        var clock = Stopwatch.StartNew();
        long count = Gpt2Training.Prepare(data, path, PretrainedTokenizer.Gpt2(), out long characters);
        Console.WriteLine($"prepared {path}: {characters:N0} characters of {data} → {count:N0} GPT-2 tokens ({(double)characters / count:F2} characters a token, {new FileInfo(path).Length:N0} bytes) in {clock.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    /// <summary><c>--tokenizer gpt2</c>: the output paths checked as for the character model, then <see cref="Gpt2Training"/>.</summary>
    private static int TrainGpt2(string? output, string? plot, string data, string? tokens, ulong seed, int steps, float rate, int checkpointEvery, bool resume,
        int evalEvery, int earlyStop, string prompt, int length, float temperature)
    {
        string outPath;
        string? plotPath = null;
        try
        {
            outPath = SafeTensors.PrepareOutputPath(output ?? Path.Combine("out", "tinylm-gpt2.safetensors"), "tinylm-gpt2.safetensors");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--out: {e.Message}");
            return 2;
        }
        try
        {
            if (plot is not null) plotPath = SafeTensors.PrepareOutputPath(plot, "loss.png");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--plot: {e.Message}");
            return 2;
        }
        if (plotPath is not null && (plotPath == outPath || Directory.Exists(outPath)))
        {
            Console.Error.WriteLine($"--plot: {plotPath} and --out {outPath} collide (the plot's folder is the model's path); give them different places");
            return 2;
        }
        if (tokens is not null && !File.Exists(tokens))
        {
            Console.Error.WriteLine($"--tokens: {tokens} does not exist (write one with --prepare)");
            return 2;
        }
        return Gpt2Training.Train(data, tokens, seed, steps, rate, outPath, plotPath, checkpointEvery, resume, evalEvery, earlyStop, prompt, length, temperature);
    }

    private static int Train(Options options)
    {
        // Where the model goes is checked before any training is spent on it: a folder means a file inside it.
        string outPath;
        string? plotPath = null;
        try
        {
            outPath = SafeTensors.PrepareOutputPath(options.Out, "tinylm.safetensors");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--out: {e.Message}");
            return 2;
        }
        try
        {
            if (options.Plot is not null) plotPath = SafeTensors.PrepareOutputPath(options.Plot, "loss.png");
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"--plot: {e.Message}");
            return 2;
        }
        if (plotPath is not null && (plotPath == outPath || Directory.Exists(outPath)))
        {
            Console.Error.WriteLine($"--plot: {plotPath} and --out {outPath} collide (the plot's folder is the model's path); give them different places");
            return 2;
        }

        string text = File.ReadAllText(options.Data).Replace("\r\n", "\n");
        CharTokenizer tokenizer = CharTokenizer.FromText(text);
        if (tokenizer.VocabSize > TinyLm.Vocab)
            throw new InvalidDataException($"{options.Data} has {tokenizer.VocabSize} distinct characters; TinyLm is declared with Vocab = {TinyLm.Vocab}");
        var ids = new int[text.Length];
        tokenizer.Encode(text, ids);
        int split = ids.Length * 9 / 10; // the last tenth is held out to measure generalization
        Console.WriteLine($"data: {options.Data}, {text.Length:N0} characters, {tokenizer.VocabSize} distinct; {split:N0} for training, {ids.Length - split:N0} held out");

        var model = new TinyLm(options.Seed);
        Console.WriteLine($"model: TinyLm, {TinyLm.ParameterCount:N0} parameters, {TinyLm.Layers} layers, DModel {TinyLm.DModel}, {TinyLm.Heads} heads, window {TinyLm.SeqLen}, batch {TinyLm.Batch}"
            + (options.Accumulate > 1 ? $" × {options.Accumulate} micro-batches per step (gradient accumulation)" : ""));

        var optimizer = new AdamW(model, learningRate: options.LearningRate, weightDecay: 0.01f, decayVectors: false);
        var schedule = new WarmupCosineSchedule(options.LearningRate, warmupSteps: Math.Max(1, options.Steps / 20), totalSteps: options.Steps, minLearningRate: options.LearningRate / 10);
        var rng = new Rng(options.Seed + 1);
        // Each step reads Accumulate micro-batches of Batch windows, one after another: the gradient of them all, as a
        // model declared with Accumulate·Batch would compute it.
        var tokens = new int[options.Accumulate * TinyLm.TokensPerStep];
        var targets = new int[options.Accumulate * TinyLm.TokensPerStep];
        var recent = new Queue<float>();
        var record = new TrainingRecord();
        string bestPath = TrainingRecord.BestPath(outPath);
        long start = 0;
        if (options.Resume && File.Exists(outPath))
        {
            string? refusal = Resume(outPath, options, tokenizer, model, optimizer, rng, recent, ref record, out start);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"--resume: {refusal}");
                return 2;
            }
            Console.WriteLine($"resuming from step {start} of {options.Steps} ({outPath})"
                + (record.HeldOut.Count > 0 ? $"; best held-out loss so far {record.BestLoss:F4} at step {record.BestStep}" : ""));
        }
        else if (options.Resume)
        {
            Console.WriteLine($"no checkpoint at {outPath} to resume from; starting at step 0");
        }
        var clock = Stopwatch.StartNew();
        long tokensSeen = 0;
        float finalLoss = recent.Count > 0 ? Average(recent) : float.NaN;
        // A run that stopped early and is resumed has nothing left to do, as one that ran all its steps.
        bool stopped = record.ShouldStop(options.EarlyStop);
        long last = start;

        TrainingProgress.Run(start, options.Steps, progress =>
        {
            for (long step = start + 1; step <= options.Steps && !stopped; step++)
            {
                SampleBatch(ids.AsSpan(0, split), rng, tokens, targets);
                optimizer.LearningRate = schedule.At(step);
                float loss = model.TrainStep(tokens, targets, options.Accumulate, optimizer, maxGradientNorm: 1f);
                tokensSeen += tokens.Length;
                recent.Enqueue(loss);
                if (recent.Count > 20) recent.Dequeue();
                finalLoss = Average(recent);
                last = step;
                progress.Step(step, finalLoss, tokensSeen / clock.Elapsed.TotalSeconds);
                if (step == 1 || step % 25 == 0 || step == options.Steps)
                {
                    double seconds = clock.Elapsed.TotalSeconds;
                    record.AddTrainLoss(step, finalLoss);
                    progress.PlainLine($"step {step,5}/{options.Steps}  loss {loss:F3}  (mean of last {recent.Count}: {finalLoss:F3})  lr {optimizer.LearningRate:E2}  {tokensSeen / seconds:N0} tokens/s");
                }
                if (options.EvalEvery > 0 && (step % options.EvalEvery == 0 || step == options.Steps))
                {
                    // The held-out windows are the same at every evaluation and drawn from a generator of their own, so
                    // evaluating neither moves the training data's generator nor changes what the losses are compared on.
                    float evaluated = HeldOutLoss(model, ids.AsSpan(split), options.Seed);
                    bool best = record.AddHeldOutLoss(step, evaluated);
                    progress.HeldOut(evaluated);
                    if (best) model.Save(bestPath, BestMetadata(tokenizer, record));
                    progress.Line($"eval at step {step}: held-out loss {evaluated:F4}" + (best
                        ? $", the best so far (saved {bestPath})"
                        : $", best {record.BestLoss:F4} at step {record.BestStep} ({record.EvaluationsSinceBest} evaluation(s) without improvement)"));
                    stopped = record.ShouldStop(options.EarlyStop);
                    if (stopped) progress.Line($"early stop at step {step}: {options.EarlyStop} evaluations without improving on step {record.BestStep}");
                    if (plotPath is not null) LossCurves.Write(plotPath, record, PlotTitle, "nats per character");
                }
                if (options.CheckpointEvery > 0 && step % options.CheckpointEvery == 0 && step < options.Steps && !stopped)
                {
                    progress.Line($"writing checkpoint at step {step} to {outPath}");
                    SaveCheckpoint(outPath, options, tokenizer, model, optimizer, rng, recent, record, step);
                }
            }
        });
        double trainSeconds = clock.Elapsed.TotalSeconds;
        long stepsRun = last - start;
        string speed = stepsRun > 0 ? $" ({tokensSeen / trainSeconds:N0} tokens/s)" : "";
        Console.WriteLine($"trained {stepsRun} steps{(start > 0 ? $" after step {start}" : "")} in {trainSeconds:F1} s{speed}");

        // A run that checkpoints ends with a training checkpoint too (written before the held-out batches move the data
        // generator), so that --resume after the end has nothing left to do; the model loaders read it like any other.
        if (options.CheckpointEvery > 0) SaveCheckpoint(outPath, options, tokenizer, model, optimizer, rng, recent, record, last);
        else model.Save(outPath, new Dictionary<string, string> { [AlphabetKey] = tokenizer.Alphabet });
        Console.WriteLine($"saved {outPath}");
        if (plotPath is not null)
        {
            LossCurves.Write(plotPath, record, PlotTitle, "nats per character");
            Console.WriteLine($"saved loss curves {plotPath}");
        }

        float heldOut = Evaluate(model, ids.AsSpan(split), rng);
        Console.WriteLine($"held-out loss {heldOut:F3}");
        if (record.HeldOut.Count > 0)
            Console.WriteLine($"best held-out loss {record.BestLoss:F4} at step {record.BestStep}: {bestPath}");

        // The held-out text again as the model is used after training: inference instances read the checkpoint and decode
        // one token at a time with the key/value cache, with fp32 and with 8-bit weight matrices.
        float decodedFp32 = DecodeLoss(TinyLm.ForInference(outPath, WeightType.Float32), ids.AsSpan(split));
        float decodedInt8 = DecodeLoss(TinyLm.ForInference(outPath, WeightType.Int8), ids.AsSpan(split));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"held-out loss decoding: fp32 {decodedFp32:F4}, int8 weights {decodedInt8:F4} ({(decodedInt8 / decodedFp32 - 1) * 100:+0.00;-0.00}%)"));
        // And after whole prompts of 16 tokens or more, whose products an 8-bit instance takes in integers
        // (TransformerModel.IntegerProducts): the activations are rounded too.
        float promptedFp32 = PromptLoss(TinyLm.ForInference(outPath, WeightType.Float32), ids.AsSpan(split));
        float promptedInt8 = PromptLoss(TinyLm.ForInference(outPath, WeightType.Int8), ids.AsSpan(split));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"held-out loss after prompts: fp32 {promptedFp32:F4}, int8 weights {promptedInt8:F4} ({(promptedInt8 / promptedFp32 - 1) * 100:+0.00;-0.00}%)"));

        var prompt = new int[options.Prompt.Length];
        tokenizer.Encode(options.Prompt, prompt);
        var generated = new int[options.Length];
        var sampler = new Sampler(options.Seed + 2, TinyLm.Vocab) { Temperature = options.Temperature, TopK = 20 };
        clock.Restart();
        model.Generate(prompt, generated, sampler);
        double generateSeconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"--- sample (temperature {options.Temperature}, top-k 20, {options.Length / generateSeconds:N0} tokens/s) ---");
        Console.WriteLine(options.Prompt + Decode(tokenizer, generated));
        Console.WriteLine("---");
        Console.WriteLine($"final_loss={finalLoss.ToString("F4", CultureInfo.InvariantCulture)}");
        return 0;
    }

    /// <summary>Writes a training checkpoint after <paramref name="step"/>, with what a resumed run checks and the recent losses.</summary>
    private static void SaveCheckpoint(string path, Options options, CharTokenizer tokenizer, TinyLm model, AdamW optimizer, Rng rng, Queue<float> recent,
        TrainingRecord record, long step)
    {
        var metadata = new Dictionary<string, string>
        {
            [AlphabetKey] = tokenizer.Alphabet,
            [StepsKey] = options.Steps.ToString(CultureInfo.InvariantCulture),
            [LearningRateKey] = options.LearningRate.ToString(CultureInfo.InvariantCulture),
            [AccumulateKey] = options.Accumulate.ToString(CultureInfo.InvariantCulture),
            [RecentLossesKey] = string.Join(" ", recent.Select(l => l.ToString("R", CultureInfo.InvariantCulture))),
        };
        record.WriteTo(metadata);
        TrainingCheckpoint.Save(path, model, optimizer, step, rng, metadata);
    }

    /// <summary>
    /// Restores the run from the checkpoint at <paramref name="path"/>; returns why it cannot (another text, other
    /// --steps or --lr, a file of parameters only) or null, with the step to continue after.
    /// </summary>
    private static string? Resume(string path, Options options, CharTokenizer tokenizer, TinyLm model, AdamW optimizer, Rng rng, Queue<float> recent,
        ref TrainingRecord record, out long step)
    {
        step = 0;
        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(path);
        if (!TrainingCheckpoint.IsTrainingCheckpoint(path))
            return $"{path} holds a model's parameters only (it was saved without --checkpoint-every), so training cannot continue from it; move it away or choose another --out";
        if (!metadata.TryGetValue(AlphabetKey, out string? alphabet) || alphabet != tokenizer.Alphabet)
            return $"{path} was trained on a text with another alphabet than {options.Data}";
        string steps = options.Steps.ToString(CultureInfo.InvariantCulture), rate = options.LearningRate.ToString(CultureInfo.InvariantCulture);
        if (!metadata.TryGetValue(StepsKey, out string? writtenSteps) || writtenSteps != steps)
            return $"{path} is from a run of --steps {writtenSteps ?? "?"}; resume with the same --steps (the schedule depends on it)";
        if (!metadata.TryGetValue(LearningRateKey, out string? writtenRate) || writtenRate != rate)
            return $"{path} is from a run of --lr {writtenRate ?? "?"}; resume with the same --lr";
        // Checkpoints written before --accumulate existed are from runs of one micro-batch per step.
        string accumulate = options.Accumulate.ToString(CultureInfo.InvariantCulture);
        string writtenAccumulate = metadata.TryGetValue(AccumulateKey, out string? written) ? written : "1";
        if (writtenAccumulate != accumulate)
            return $"{path} is from a run of --accumulate {writtenAccumulate}; resume with the same --accumulate (the batches drawn depend on it)";

        step = TrainingCheckpoint.Load(path, model, optimizer, rng).Step;
        record = TrainingRecord.ReadFrom(metadata);
        recent.Clear();
        if (metadata.TryGetValue(RecentLossesKey, out string? losses))
            foreach (string loss in losses.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                recent.Enqueue(float.Parse(loss, CultureInfo.InvariantCulture));
        return null;
    }

    /// <summary>
    /// Random windows of SeqLen + 1 characters, as many as <paramref name="tokens"/> holds (Batch per micro-batch): the model
    /// reads the first SeqLen and predicts each next one.
    /// </summary>
    private static void SampleBatch(ReadOnlySpan<int> ids, Rng rng, Span<int> tokens, Span<int> targets)
    {
        for (int b = 0; b < tokens.Length / TinyLm.SeqLen; b++)
        {
            int start = rng.NextInt(ids.Length - TinyLm.SeqLen - 1);
            ids.Slice(start, TinyLm.SeqLen).CopyTo(tokens.Slice(b * TinyLm.SeqLen, TinyLm.SeqLen));
            ids.Slice(start + 1, TinyLm.SeqLen).CopyTo(targets.Slice(b * TinyLm.SeqLen, TinyLm.SeqLen));
        }
    }

    /// <summary>The model's own parameters with what says where they came from: the alphabet, the step and its held-out loss.</summary>
    private static Dictionary<string, string> BestMetadata(CharTokenizer tokenizer, TrainingRecord record) => new()
    {
        [AlphabetKey] = tokenizer.Alphabet,
        ["best.step"] = record.BestStep.ToString(CultureInfo.InvariantCulture),
        ["best.held_out_loss"] = record.BestLoss.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Mean loss, dropout off, over the same <see cref="EvaluationBatches"/> batches of held-out windows at every call: drawn
    /// from a generator seeded apart from the training data's, which this leaves untouched.
    /// </summary>
    private static float HeldOutLoss(TinyLm model, ReadOnlySpan<int> ids, ulong seed)
    {
        var windows = new Rng(seed + 3);
        var tokens = new int[TinyLm.TokensPerStep];
        var targets = new int[TinyLm.TokensPerStep];
        model.Training = false;
        double sum = 0;
        for (int i = 0; i < EvaluationBatches; i++)
        {
            SampleBatch(ids, windows, tokens, targets);
            sum += model.Forward(tokens, targets);
        }
        model.Training = true;
        return (float)(sum / EvaluationBatches);
    }

    private const int EvaluationBatches = 10;

    private static readonly string PlotTitle = $"TinyLm ({TinyLm.ParameterCount:N0} parameters) on Genesis, characters";

    /// <summary>Mean loss over 20 random batches of held-out text, with dropout off.</summary>
    private static float Evaluate(TinyLm model, ReadOnlySpan<int> ids, Rng rng)
    {
        var tokens = new int[TinyLm.TokensPerStep];
        var targets = new int[TinyLm.TokensPerStep];
        model.Training = false;
        double sum = 0;
        const int batches = 20;
        for (int i = 0; i < batches; i++)
        {
            SampleBatch(ids, rng, tokens, targets);
            sum += model.Forward(tokens, targets);
        }
        model.Training = true;
        return (float)(sum / batches);
    }

    /// <summary>
    /// Mean next-token cross-entropy over 16 windows of SeqLen tokens spread evenly over <paramref name="ids"/>, each
    /// decoded one token at a time from an empty cache (<c>Append</c>): the loss of the model as it generates.
    /// </summary>
    private static float DecodeLoss(TinyLm model, ReadOnlySpan<int> ids)
    {
        const int windows = 16;
        double sum = 0;
        int count = 0;
        for (int w = 0; w < windows; w++)
        {
            int start = (int)((long)w * (ids.Length - TinyLm.SeqLen - 1) / (windows - 1));
            model.ResetCache();
            for (int i = 0; i < TinyLm.SeqLen; i++)
            {
                sum += NextTokenLoss(model.Append(ids.Slice(start + i, 1)), ids[start + i + 1]);
                count++;
            }
        }
        return (float)(sum / count);
    }

    // The loss of the token after each prompt of 16, 24, …, SeqLen tokens of 16 windows, each prompt appended at once.
    private static float PromptLoss(TinyLm model, ReadOnlySpan<int> ids)
    {
        const int windows = 16;
        double sum = 0;
        int count = 0;
        for (int w = 0; w < windows; w++)
        {
            int start = (int)((long)w * (ids.Length - TinyLm.SeqLen - 1) / (windows - 1));
            for (int length = 16; length <= TinyLm.SeqLen; length += 8)
            {
                model.ResetCache();
                sum += NextTokenLoss(model.Append(ids.Slice(start, length)), ids[start + length]);
                count++;
            }
        }
        return (float)(sum / count);
    }

    // −log softmax(logits)[target].
    private static double NextTokenLoss(ReadOnlySpan<float> logits, int target)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        double total = 0;
        foreach (float v in logits) total += Math.Exp(v - max);
        return max + Math.Log(total) - logits[target];
    }

    private static float Average(IEnumerable<float> values)
    {
        double sum = 0;
        int count = 0;
        foreach (float v in values) { sum += v; count++; }
        return (float)(sum / count);
    }

    private static string Decode(CharTokenizer tokenizer, ReadOnlySpan<int> ids)
    {
        var chars = new char[ids.Length];
        for (int i = 0; i < ids.Length; i++) chars[i] = ids[i] < tokenizer.VocabSize ? tokenizer.Decode(ids[i]) : '?';
        return new string(chars);
    }
}
