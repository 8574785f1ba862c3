using System;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.Samples.Tests;

/// <summary>The training samples' command lines (System.CommandLine): --help lists every option, and a wrong one exits with 2 before any training.</summary>
public sealed class SampleCommandLineTests
{
    [Theory]
    [InlineData("TinyLmSample", "--steps --seed --prompt --out --length --lr --temperature --data --checkpoint-every --resume --accumulate --eval-every --early-stop --plot --tokenizer --prepare --tokens")]
    [InlineData("Seq2SeqSample", "--steps --seed --out --checkpoint-every --resume --eval-every --early-stop --plot")]
    [InlineData("ClassifierSample", "--steps --seed --out --checkpoint-every --resume --eval-every --early-stop --plot")]
    public void Help_lists_every_option_and_a_wrong_value_exits_with_2(string sampleKey, string options)
    {
        string sample = SampleProcess.PathOf(sampleKey);
        SampleRun help = SampleProcess.Run(sample, ["--help"]);
        Assert.Equal(0, help.ExitCode);
        foreach (string option in options.Split(' '))
            Assert.Matches($@"(?m)^\s+{option}\b", help.Output);

        SampleRun zero = SampleProcess.Run(sample, ["--steps", "0"]);
        Assert.Equal(2, zero.ExitCode);
        Assert.Contains("--steps needs an integer of at least 1, got 0", zero.Error);
        Assert.DoesNotContain(zero.Lines, l => l.StartsWith("step ", StringComparison.Ordinal));

        SampleRun unknown = SampleProcess.Run(sample, ["--no-such-option"]);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("--no-such-option", unknown.Error);

        SampleRun patience = SampleProcess.Run(sample, ["--early-stop", "3"]);
        Assert.Equal(2, patience.ExitCode);
        Assert.Contains("--early-stop counts evaluations: it needs --eval-every", patience.Error);
    }
}
