using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using TransformerGen;
using TransformerGen.Samples;
using TransformerGen.Tokenizers;

namespace TinyLmSample;

/// <summary>
/// <c>--tokenizer gpt2</c> and <c>--prepare</c>: the text tokenized with GPT-2's byte-level BPE into a token file, and
/// <see cref="Gpt2Lm"/> trained on batches sampled from that file through a memory map, so the same loop trains on a
/// corpus of any size (<c>--tokens FILE</c>). Held-out loss is reported per token and per character of the text the
/// tokens stand for, which is what compares with the character model.
/// </summary>
internal static class Gpt2Training
{
    private const string TokenizerKey = "tinylm.tokenizer", TokensKey = "tinylm.tokens", StepsKey = "tinylm.steps", LearningRateKey = "tinylm.lr",
        LastLossKey = "tinylm.last_loss";
    private const int EvaluationBatches = 10;
    private static readonly string PlotTitle = $"Gpt2Lm ({Gpt2Lm.ParameterCount:N0} parameters), GPT-2 BPE tokens";

    /// <summary>
    /// Writes the token file of <paramref name="textPath"/> to <paramref name="tokensPath"/>: the text read and encoded a
    /// piece at a time (about a megabyte, cut after a line break that a non-space follows, where GPT-2's pre-tokenizer
    /// splits anyway, so the ids are those of the whole text), the ids appended as they come. Returns the token count.
    /// </summary>
    public static long Prepare(string textPath, string tokensPath, PretrainedTokenizer tokenizer, out long characters)
    {
        using var reader = new StreamReader(textPath, Encoding.UTF8);
        using var writer = new TokenFileWriter(tokensPath, tokenizer.VocabSize);
        var buffer = new char[1 << 20];
        var pending = new StringBuilder();
        long count = 0;
        int read;
        while ((read = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            pending.Append(buffer, 0, read);
            string text = pending.ToString().Replace("\r\n", "\n");
            int cut = LastSafeCut(text);
            if (cut <= 0) continue;
            count += Encode(writer, tokenizer, text[..cut]);
            pending.Clear().Append(text, cut, text.Length - cut);
        }
        count += Encode(writer, tokenizer, pending.ToString().Replace("\r\n", "\n"));
        writer.Complete();
        characters = count;
        return writer.Count;
    }

    /// <summary>Appends the ids of <paramref name="piece"/>; returns its length in characters.</summary>
    private static int Encode(TokenFileWriter writer, PretrainedTokenizer tokenizer, string piece)
    {
        if (piece.Length > 0) writer.Append(tokenizer.Encode(piece, addSpecialTokens: false).ToArray());
        return piece.Length;
    }

    /// <summary>The position after the last line break followed by a character that is not white space (0: none).</summary>
    private static int LastSafeCut(string text)
    {
        for (int i = text.Length - 2; i >= 0; i--)
            if (text[i] == '\n' && !char.IsWhiteSpace(text[i + 1])) return i + 1;
        return 0;
    }

    /// <summary>Trains <see cref="Gpt2Lm"/> as the character model is trained, on the token file's first nine tenths.</summary>
    public static int Train(string data, string? tokensOption, ulong seed, int steps, float learningRate, string outPath, string? plotPath,
        int checkpointEvery, bool resume, int evalEvery, int earlyStop, string prompt, int length, float temperature)
    {
        PretrainedTokenizer tokenizer = PretrainedTokenizer.Gpt2();
        string tokensPath = tokensOption ?? Path.ChangeExtension(outPath, ".tokens");
        if (tokensOption is null)
        {
            var clock0 = Stopwatch.StartNew();
            long made = Prepare(data, tokensPath, tokenizer, out long characters);
            Console.WriteLine($"tokenized {data}: {characters:N0} characters → {made:N0} GPT-2 tokens ({(double)characters / made:F2} characters a token) in {clock0.Elapsed.TotalSeconds:F1} s, written to {tokensPath}");
        }
        using TokenFile file = TokenFile.Open(tokensPath);
        if (file.VocabSize > Gpt2Lm.Vocab)
        {
            Console.Error.WriteLine($"--tokens: {tokensPath} has ids from a vocabulary of {file.VocabSize:N0}; Gpt2Lm is declared with Vocab = {Gpt2Lm.Vocab:N0}");
            return SampleCommandLine.UsageError;
        }
        long split = file.Count * 9 / 10; // the last tenth is held out
        Console.WriteLine($"data: {tokensPath}, {file.Count:N0} tokens of {file.BytesPerToken} bytes, memory-mapped; {split:N0} for training, {file.Count - split:N0} held out");
        var training = new TokenBatchSampler(file, Gpt2Lm.SeqLen, 0, split);
        var heldOut = new TokenBatchSampler(file, Gpt2Lm.SeqLen, split, file.Count);

        var model = new Gpt2Lm(seed);
        Console.WriteLine($"model: Gpt2Lm, {Gpt2Lm.ParameterCount:N0} parameters, {Gpt2Lm.Layers} layers, DModel {Gpt2Lm.DModel}, {Gpt2Lm.Heads} heads, window {Gpt2Lm.SeqLen}, batch {Gpt2Lm.Batch}, vocabulary {Gpt2Lm.Vocab:N0}");
        var optimizer = new AdamW(model, learningRate: learningRate, weightDecay: 0.01f, decayVectors: false);
        var schedule = new WarmupCosineSchedule(learningRate, warmupSteps: Math.Max(1, steps / 20), totalSteps: steps, minLearningRate: learningRate / 10);
        var rng = new Rng(seed + 1);
        var tokens = new int[Gpt2Lm.TokensPerStep];
        var targets = new int[Gpt2Lm.TokensPerStep];
        var record = new TrainingRecord();
        string bestPath = TrainingRecord.BestPath(outPath);
        var metadata = new Dictionary<string, string>
        {
            [TokenizerKey] = "gpt2",
            [TokensKey] = file.Count.ToString(CultureInfo.InvariantCulture),
            [StepsKey] = steps.ToString(CultureInfo.InvariantCulture),
            [LearningRateKey] = learningRate.ToString(CultureInfo.InvariantCulture),
        };
        long start = 0;
        float loss = float.NaN;
        if (resume && File.Exists(outPath))
        {
            string? refusal = Resume(outPath, metadata, model, optimizer, rng, ref record, out start, out loss);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"--resume: {refusal}");
                return SampleCommandLine.UsageError;
            }
            Console.WriteLine($"resuming from step {start} of {steps} ({outPath})"
                + (record.HeldOut.Count > 0 ? $"; best held-out loss so far {record.BestLoss:F4} at step {record.BestStep}" : ""));
        }

        var clock = Stopwatch.StartNew();
        bool stopped = record.ShouldStop(earlyStop);
        long last = start, tokensSeen = 0;
        TrainingProgress.Run(start, steps, progress =>
        {
            for (long step = start + 1; step <= steps && !stopped; step++)
            {
                training.Sample(rng, tokens, targets);
                optimizer.LearningRate = schedule.At(step);
                loss = model.TrainStep(tokens, targets, optimizer, maxGradientNorm: 1f);
                tokensSeen += tokens.Length;
                last = step;
                progress.Step(step, loss, tokensSeen / clock.Elapsed.TotalSeconds);
                if (step == 1 || step % 25 == 0 || step == steps)
                {
                    record.AddTrainLoss(step, loss);
                    progress.PlainLine($"step {step,5}/{steps}  loss {loss:F3}  lr {optimizer.LearningRate:E2}  {tokensSeen / clock.Elapsed.TotalSeconds:N0} tokens/s");
                }
                if (evalEvery > 0 && (step % evalEvery == 0 || step == steps))
                {
                    (float perToken, float perCharacter) = HeldOutLoss(model, heldOut, tokenizer, seed);
                    bool best = record.AddHeldOutLoss(step, perToken);
                    progress.HeldOut(perToken);
                    if (best) model.Save(bestPath, new Dictionary<string, string> { [TokenizerKey] = "gpt2", ["best.step"] = step.ToString(CultureInfo.InvariantCulture) });
                    progress.Line($"eval at step {step}: held-out loss {perToken:F4} ({perCharacter:F4} nats per character)" + (best
                        ? $", the best so far (saved {bestPath})"
                        : $", best {record.BestLoss:F4} at step {record.BestStep} ({record.EvaluationsSinceBest} evaluation(s) without improvement)"));
                    stopped = record.ShouldStop(earlyStop);
                    if (stopped) progress.Line($"early stop at step {step}: {earlyStop} evaluations without improving on step {record.BestStep}");
                    if (plotPath is not null) LossCurves.Write(plotPath, record, PlotTitle);
                }
                if (checkpointEvery > 0 && step % checkpointEvery == 0 && step < steps && !stopped)
                {
                    progress.Line($"writing checkpoint at step {step} to {outPath}");
                    SaveCheckpoint(outPath, metadata, model, optimizer, rng, record, loss, step);
                }
            }
        });
        double seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"trained {last - start} steps{(start > 0 ? $" after step {start}" : "")} in {seconds:F1} s{(last > start ? $" ({tokensSeen / seconds:N0} tokens/s)" : "")}");
        if (checkpointEvery > 0) SaveCheckpoint(outPath, metadata, model, optimizer, rng, record, loss, last);
        else model.Save(outPath, new Dictionary<string, string> { [TokenizerKey] = "gpt2" });
        Console.WriteLine($"saved {outPath}");
        if (plotPath is not null)
        {
            LossCurves.Write(plotPath, record, PlotTitle);
            Console.WriteLine($"saved loss curves {plotPath}");
        }

        (float tokenLoss, float characterLoss) = HeldOutLoss(model, heldOut, tokenizer, seed);
        Console.WriteLine($"held-out loss {tokenLoss:F3} nats per token, {characterLoss:F3} nats per character");
        if (record.HeldOut.Count > 0) Console.WriteLine($"best held-out loss {record.BestLoss:F4} at step {record.BestStep}: {bestPath}");

        int[] promptIds = tokenizer.Encode(prompt, addSpecialTokens: false).ToArray();
        var generated = new int[length];
        var sampler = new Sampler(seed + 2, Gpt2Lm.Vocab) { Temperature = temperature, TopK = 20 };
        model.Generate(promptIds, generated, sampler);
        Console.WriteLine($"--- sample (temperature {temperature}, top-k 20) ---");
        Console.WriteLine(prompt + tokenizer.Decode(generated));
        Console.WriteLine("---");
        // Per character is what compares with the character model, whose losses are per character already; final_loss
        // stays the last training step's loss, per token.
        Console.WriteLine($"held_out_nats_per_character={characterLoss.ToString("F4", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"final_loss={loss.ToString("F4", CultureInfo.InvariantCulture)}");
        return 0;
    }

    /// <summary>
    /// Mean loss over the same <see cref="EvaluationBatches"/> batches of held-out windows at every call (a generator of
    /// their own), per token and per character: the summed loss over the targets divided by the length of the text the
    /// target tokens decode to.
    /// </summary>
    private static (float PerToken, float PerCharacter) HeldOutLoss(Gpt2Lm model, TokenBatchSampler heldOut, PretrainedTokenizer tokenizer, ulong seed)
    {
        var windows = new Rng(seed + 3);
        var tokens = new int[Gpt2Lm.TokensPerStep];
        var targets = new int[Gpt2Lm.TokensPerStep];
        model.Training = false;
        double nats = 0;
        long characters = 0;
        for (int i = 0; i < EvaluationBatches; i++)
        {
            heldOut.Sample(windows, tokens, targets);
            nats += (double)model.Forward(tokens, targets) * targets.Length;
            for (int row = 0; row < Gpt2Lm.Batch; row++)
                characters += tokenizer.Decode(targets.AsSpan(row * Gpt2Lm.SeqLen, Gpt2Lm.SeqLen), skipSpecialTokens: false).Length;
        }
        model.Training = true;
        return ((float)(nats / (EvaluationBatches * targets.Length)), (float)(nats / characters));
    }

    private static void SaveCheckpoint(string path, Dictionary<string, string> run, Gpt2Lm model, AdamW optimizer, Rng rng, TrainingRecord record, float loss, long step)
    {
        var metadata = new Dictionary<string, string>(run) { [LastLossKey] = loss.ToString("R", CultureInfo.InvariantCulture) };
        record.WriteTo(metadata);
        TrainingCheckpoint.Save(path, model, optimizer, step, rng, metadata);
    }

    private static string? Resume(string path, Dictionary<string, string> run, Gpt2Lm model, AdamW optimizer, Rng rng, ref TrainingRecord record, out long step, out float loss)
    {
        step = 0;
        loss = float.NaN;
        if (!TrainingCheckpoint.IsTrainingCheckpoint(path))
            return $"{path} holds a model's parameters only (it was saved without --checkpoint-every), so training cannot continue from it; move it away or choose another --out";
        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(path);
        foreach ((string key, string value) in run)
        {
            string written = metadata.GetValueOrDefault(key, "?");
            if (written != value)
                return $"{path} is from a run with {key} = {written}, this one has {value}; resume with the same tokens, --steps and --lr";
        }
        step = TrainingCheckpoint.Load(path, model, optimizer, rng).Step;
        record = TrainingRecord.ReadFrom(metadata);
        loss = float.Parse(metadata.GetValueOrDefault(LastLossKey, "NaN"), CultureInfo.InvariantCulture);
        return null;
    }
}
