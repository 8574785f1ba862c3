using System;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using TransformerGen.Samples.Tests.Support;
using TransformerGen.Tokenizers;
using TranslateSample;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// The Translate sample's program (<see cref="TranslateApp"/>) on the tiny Marian through a folder of random weights:
/// what it prints is the model's own translation of the tokenized text, decoded; sources longer than SeqLen are cut
/// keeping &lt;/s&gt;; and without a folder, or with another model's, it says what to do.
/// </summary>
public sealed class TranslateAppTests(ITestOutputHelper log)
{
    private const string Sentence = "the house is small.";

    [Fact]
    public void Prints_the_models_own_greedy_translation_of_each_text()
    {
        using TempFolder folder = TinyMarian.Folder(TinyMarian.Model(seed: 5));
        (int exit, string output, string error) = Run(TinyMarian.Spec, "--model", folder.Path, "--text", Sentence, "--text", "where is the train station?");
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        Assert.Contains($"model: tests/tiny-marian from {folder.Path} as TinyMarianModel: {TinyMarianModel.ParameterCount:N0} parameters; sources up to 12 tokens, translations up to 10", output);
        Assert.Matches(@"loaded in \d+\.\d\d s \(tokenizer \d+\.\d\d s, marian, 47 ids;", output);
        Assert.Contains("\ndecoding: greedy\n", output);

        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        TinyMarianModel model = TinyMarianModel.ForInference(folder.Path);
        int[] source = [.. tokenizer.Encode(Sentence)];
        Assert.Equal([Vocab("▁the"), Vocab("▁house"), Vocab("▁is"), Vocab("▁small"), Vocab("."), TinyMarian.Eos], source);
        var target = new int[TinyMarianModel.TargetSeqLen];
        int count = model.Translate(source, target);
        string expected = tokenizer.Decode(target.AsSpan(0, count));
        Assert.Contains($"\n[1] {Sentence}\n  → {expected}\n    6 source tokens, {count} target tokens in ", output);

        int[] second = [.. tokenizer.Encode("where is the train station?")];
        Assert.Equal(7, second.Length);
        int secondCount = model.Translate(second, target);
        Assert.Contains($"\n[2] where is the train station?\n  → {tokenizer.Decode(target.AsSpan(0, secondCount))}\n    7 source tokens, {secondCount} target tokens in ", output);
        Assert.Matches($@"\ntranslated 2 texts: 13 source tokens, {count + secondCount} target tokens in \d+\.\d{{3}} s \([\d,.]+ tokens/s\)", output);
    }

    [Fact]
    public void Beam_search_prints_the_models_own_beam_search()
    {
        using TempFolder folder = TinyMarian.Folder(TinyMarian.Model(seed: 8));
        (int exit, string output, string error) = Run(TinyMarian.Spec, "--model", folder.Path, "--text", Sentence, "--beam", "3", "--length-penalty", "1");
        Assert.True(exit == 0, error);
        Assert.Contains("\ndecoding: beam search, width 3, length penalty 1\n", output);

        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        TinyMarianModel model = TinyMarianModel.ForInference(folder.Path);
        var target = new int[TinyMarianModel.TargetSeqLen];
        int count = model.BeamSearch([.. tokenizer.Encode(Sentence)], target, beamWidth: 3, lengthPenalty: 1f);
        Assert.Contains($"\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    6 source tokens, {count} target tokens in ", output);
    }

    [Fact]
    public void Says_where_a_translation_ended()
    {
        using (TempFolder ends = TinyMarian.Folder(TinyMarian.Model(seed: 5, endBias: 50f)))
        {
            (int exit, string output, string error) = Run(TinyMarian.Spec, "--model", ends.Path, "--text", Sentence);
            Assert.True(exit == 0, error);
            Assert.Contains($"\n[1] {Sentence}\n  → \n    6 source tokens, 0 target tokens in ", output);
            Assert.Contains("); ended at </s>\n", output);
        }

        using TempFolder endless = TinyMarian.Folder(TinyMarian.Model(seed: 5, endBias: -50f));
        (int exit2, string output2, string error2) = Run(TinyMarian.Spec, "--model", endless.Path, "--text", Sentence);
        Assert.True(exit2 == 0, error2);
        Assert.Contains("    6 source tokens, 10 target tokens in ", output2);
        Assert.Contains("); stopped at TargetSeqLen (10 tokens)\n", output2);

        (int exit3, string output3, string error3) = Run(TinyMarian.Spec, "--model", endless.Path, "--text", Sentence, "--beam", "2", "--max-tokens", "4");
        Assert.True(exit3 == 0, error3);
        Assert.Contains("\ndecoding: beam search, width 2, length penalty 0.6; at most 4 tokens\n", output3);
        Assert.Contains("    6 source tokens, 4 target tokens in ", output3);
        Assert.Contains("); stopped at --max-tokens 4\n", output3);
    }

    [Fact]
    public void A_source_longer_than_SeqLen_is_cut_keeping_its_end_and_the_output_says_so()
    {
        const string text = "the house is small, the house is small, the house is small.";
        using TempFolder folder = TinyMarian.Folder(TinyMarian.Model(seed: 5));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        int[] whole = [.. tokenizer.Encode(text)];
        Assert.Equal(16, whole.Length); // three times four words and a comma or a full stop, then </s>

        // What the encoder runs: the first 11 ids of the text, then </s>.
        TinyMarianModel model = TinyMarianModel.ForInference(folder.Path);
        Translation translation = new SentenceTranslator(model, tokenizer).Translate(text, new TranslationSettings());
        Assert.Equal([.. whole.Take(11), TinyMarian.Eos], translation.SourceTokens);
        Assert.Equal(16, translation.FullSourceLength);
        Assert.True(translation.Truncated);

        (int exit, string output, string error) = Run(TinyMarian.Spec, "--model", folder.Path, "--text", text, "--text", Sentence);
        Assert.True(exit == 0, error);
        var target = new int[TinyMarianModel.TargetSeqLen];
        int count = model.Translate(translation.SourceTokens, target);
        Assert.Equal(translation.Tokens, target[..count]);
        Assert.Contains($"\n[1] {text}\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    the source was cut to 12 of its 16 tokens (SeqLen), keeping its closing </s>\n    12 source tokens, {count} target tokens in ", output);
        // Only the long text is cut.
        Assert.Single(output.Split('\n'), line => line.Contains("was cut", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_a_folder_says_what_to_download_and_exits_2()
    {
        (int exit, string output, string error) = Run(TranslationModelSpec.OpusMtEnDe);
        Assert.Equal(TranslateApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download Helsinki-NLP/opus-mt-en-de config.json model.safetensors source.spm target.spm vocab.json tokenizer_config.json --local-dir models/opus-mt-en-de", error);
        foreach (string file in TranslationModelSpec.MarianFiles)
        {
            Assert.Contains($"https://huggingface.co/Helsinki-NLP/opus-mt-en-de/resolve/main/{file}", error);
        }

        Assert.Contains("dotnet run -c Release --project samples/Translate -- --model models/opus-mt-en-de", error);
        Assert.Contains("MarianMTModel.from_pretrained('models/opus-mt-en-de').save_pretrained('models/opus-mt-en-de', safe_serialization=True)", error);

        // The program's own entry takes the same path.
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(TranslateApp.ExitMissingModel, TranslateApp.Run(["--model", Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N"))], stdout, stderr));
        Assert.Contains("does not exist", stderr.ToString());
    }

    [Fact]
    public void Names_the_files_a_folder_of_the_compiled_model_lacks()
    {
        // The config.json opus-mt-en-de was compiled from passes the architecture check; the weights and target.spm are missing.
        using TempFolder folder = TinyMarian.Folder();
        folder.Write("config.json", TranslationModelSpec.OpusMtEnDe.CompiledConfig);
        File.Delete(folder.File("target.spm"));
        (int exit, string output, string error) = Run(TranslationModelSpec.OpusMtEnDe, "--model", folder.Path);
        Assert.Equal(TranslateApp.ExitMissingModel, exit);
        Assert.Equal("", output);
        Assert.StartsWith($"The model folder '{folder.Path}' lacks model.safetensors, target.spm.", error);
    }

    [Fact]
    public void Refuses_a_folder_of_another_model()
    {
        using TempFolder folder = TinyMarian.Folder();
        JsonNode config = JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!;
        config["decoder_layers"] = 3;
        config["scale_embedding"] = false;
        config.AsObject().Remove("activation_function"); // MarianConfig's default, gelu
        folder.Write("config.json", config.ToJsonString());
        (int exit, string output, string error) = Run(TinyMarian.Spec, "--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (tests/tiny-marian):", error);
        Assert.Contains("decoder_layers: 3 in the folder, 2 compiled", error);
        Assert.Contains("scale_embedding: false in the folder, true compiled", error);
        Assert.Contains("activation_function: gelu in the folder, swish compiled", error);
        Assert.Contains("copy its config.json over tests/Samples.Tests/Models/tiny-marian/config.json", error);

        // opus-mt-en-fr's sizes are en-de's but its vocabulary is not.
        folder.Write("config.json", TranslationModelSpec.OpusMtEnDe.CompiledConfig.Replace("58101", "59514", StringComparison.Ordinal).Replace("58100", "59513", StringComparison.Ordinal));
        (int exit2, _, string error2) = Run(TranslationModelSpec.OpusMtEnDe, "--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit2);
        Assert.Contains("vocab_size: 59514 in the folder, 58101 compiled", error2);
        Assert.Contains("decoder_vocab_size: 59514 in the folder, 58101 compiled", error2);
        Assert.Contains("pad_token_id: 59513 in the folder, 58100 compiled", error2);
        Assert.Contains("decoder_start_token_id: 59513 in the folder, 58100 compiled", error2);
    }

    [Fact]
    public void Rejects_bad_options()
    {
        (int exit, _, string error) = Run(TinyMarian.Spec, "--beam", "0", "--max-tokens", "0");
        Assert.Equal(1, exit);
        Assert.Contains("--beam must be at least 1.", error);
        Assert.Contains("--max-tokens must be at least 1.", error);
    }

    [Fact]
    public void OpusMtEnDe_is_compiled_from_the_config_the_program_embeds()
    {
        JsonNode config = JsonNode.Parse(TranslationModelSpec.OpusMtEnDe.CompiledConfig)!;
        Assert.Equal("marian", (string?)config["model_type"]);
        Assert.Equal((58101, 512, 6, 8, 2048), ((int)config["vocab_size"]!, (int)config["d_model"]!, (int)config["encoder_layers"]!, (int)config["encoder_attention_heads"]!, (int)config["encoder_ffn_dim"]!));
        Assert.Equal((58101, 512, 6, 8, 64, 2048, 256, 256, 58101),
            (OpusMtEnDe.Vocab, OpusMtEnDe.DModel, OpusMtEnDe.Layers, OpusMtEnDe.Heads, OpusMtEnDe.HeadDim, OpusMtEnDe.DFF, OpusMtEnDe.SeqLen, OpusMtEnDe.TargetSeqLen, OpusMtEnDe.TargetVocab));
        Assert.Equal(TranslationModelSpec.OpusMtEnDe.CompiledConfig.ReplaceLineEndings(), File.ReadAllText(Path.Combine(RepositoryRoot(), "samples/Translate/models/opus-mt-en-de/config.json")).ReplaceLineEndings());
    }

    private static int Vocab(string piece) => TinyMarian.Vocabulary.ToList().IndexOf(piece) is int id and >= 0 ? id : throw new ArgumentException(piece);

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Transformer.Gen.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("the repository root is not above the test's folder");
    }

    private static (int Exit, string Output, string Error) Run(TranslationModelSpec spec, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = TranslateApp.Run(args, output, error, spec);
        return (exit, output.ToString(), error.ToString());
    }
}
