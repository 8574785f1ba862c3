using System;
using System.IO;
using System.Linq;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>TinyLm's GPT-2 path as a process: --prepare writes the text's BPE token file, --tokenizer gpt2 trains on it through a memory map and resumes exactly.</summary>
public sealed class TinyLmGpt2Tests(ITestOutputHelper log)
{
    private static readonly string Sample = SampleProcess.PathOf("TinyLmSample");
    private static readonly string Genesis = Path.Combine(Path.GetDirectoryName(Sample)!, "data", "genesis.txt");

    [Fact]
    public void Prepare_writes_the_ids_of_the_whole_text_even_when_it_reads_it_in_pieces()
    {
        // Six copies of Genesis, 1.2 MB: more than the megabyte --prepare encodes at a time, so the pieces are joined.
        using var folder = new TempFolder();
        string text = string.Concat(Enumerable.Repeat(File.ReadAllText(Genesis).Replace("\r\n", "\n"), 6));
        folder.Write("six.txt", text);
        SampleRun run = SampleProcess.Run(Sample, ["--prepare", folder.Path, "--data", folder.File("six.txt")]);
        Assert.True(run.ExitCode == 0, run.Output + run.Error);
        Assert.StartsWith($"prepared {folder.File("six.tokens")}: {text.Length:N0} characters", run.Lines[^1]);

        int[] expected = PretrainedTokenizer.Gpt2().Encode(text, addSpecialTokens: false).ToArray();
        using TokenFile file = TokenFile.Open(folder.File("six.tokens"));
        Assert.Equal((2, 50257, (long)expected.Length), (file.BytesPerToken, file.VocabSize, file.Count));
        var ids = new int[expected.Length];
        file.CopyTo(0, ids);
        Assert.Equal(expected, ids);
        log.WriteLine(run.Lines[^1]);
    }

    [Fact]
    public void Gpt2_training_reports_nats_per_character_and_resumes_exactly()
    {
        using var folder = new TempFolder();
        SampleRun prepared = SampleProcess.Run(Sample, ["--prepare", folder.File("genesis.tokens")]);
        Assert.True(prepared.ExitCode == 0, prepared.Output + prepared.Error);

        string[] Arguments(string name) => ["--tokenizer", "gpt2", "--tokens", folder.File("genesis.tokens"), "--steps", "30", "--checkpoint-every", "10",
            "--eval-every", "10", "--length", "10", "--out", folder.File(name)];
        SampleRun a = SampleProcess.Run(Sample, Arguments("a.safetensors"));
        Assert.True(a.ExitCode == 0, a.Output + a.Error);
        Assert.Contains(a.Lines, l => l.StartsWith("data: ", StringComparison.Ordinal) && l.Contains("memory-mapped", StringComparison.Ordinal));
        Assert.Matches(@"^final_loss=\d+\.\d{4}$", a.Lines[^1]);
        string perCharacter = a.Lines[^2];
        Assert.StartsWith("held_out_nats_per_character=", perCharacter);
        double nats = double.Parse(perCharacter.Split('=')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(nats, 0.5, Math.Log(50257) / 3); // trained: below a uniform guess over the vocabulary spread over ~3.9 characters a token

        SampleRun killed = SampleProcess.Run(Sample, Arguments("b.safetensors"), line => line.StartsWith("step    25/", StringComparison.Ordinal));
        Assert.True(killed.Killed, killed.Output + killed.Error);
        SampleRun resumed = SampleProcess.Run(Sample, [.. Arguments("b.safetensors"), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Output + resumed.Error);
        Assert.Equal(20, resumed.ResumedFrom);
        Assert.Equal(a.Lines.TakeLast(2), resumed.Lines.TakeLast(2));
        Assert.Equal(File.ReadAllBytes(folder.File("a.best.safetensors")), File.ReadAllBytes(folder.File("b.best.safetensors")));

        // A checkpoint of the character model is not a Gpt2Lm run to continue.
        SampleRun character = SampleProcess.Run(Sample, ["--steps", "2", "--checkpoint-every", "1", "--length", "2", "--out", folder.File("c.safetensors")]);
        Assert.True(character.ExitCode == 0, character.Output + character.Error);
        SampleRun refused = SampleProcess.Run(Sample, [.. Arguments("c.safetensors"), "--resume"]);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("tinylm.tokenizer", refused.Error);
        log.WriteLine(string.Join("\n", a.Lines.Where(l => !l.StartsWith("step", StringComparison.Ordinal))));
    }
}
