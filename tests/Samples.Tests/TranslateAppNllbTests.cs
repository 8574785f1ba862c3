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
/// The Translate sample's NLLB path (<see cref="TranslateApp"/> with the tiny M2M100 beside the tiny Marian): the folder's
/// model_type picks the model; a source begins with its language code (--from) and each translation is the model's own
/// greedy translation after the target language's code (--to), decoded; unknown codes, and --from/--to for Marian, are
/// refused before anything loads.
/// </summary>
public sealed class TranslateAppNllbTests(ITestOutputHelper log)
{
    private const string Sentence = "the house is small.";

    // Where the codes sit in transformers' FAIRSEQ_LANGUAGE_CODES, after <s> <pad> </s> <unk> and the 67 pieces (ids 4 to 70).
    private const int FirstCode = 71;
    private const int DeuLatn = FirstCode + 41, EngLatn = FirstCode + 46, FraLatn = FirstCode + 56;

    private static readonly TranslationModelSpec[] Both = [TinyMarian.Spec, TinyNllb.Spec];

    [Fact]
    public void Prints_the_models_own_translation_after_the_target_language_code()
    {
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence, "--text", "where is the house?");
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        Assert.Contains($"model: tests/tiny-nllb from {folder.Path} as TinyNllbModel: {TinyNllbModel.ParameterCount:N0} parameters; sources up to 12 tokens, translations up to 9\n", output);
        Assert.Matches(@"loaded in \d+\.\d\d s \(tokenizer \d+\.\d\d s, nllb, 274 ids; weights \d+\.\d\d s, fp32, \d+ MB of buffers\)", output);
        Assert.Contains($"\nlanguages: eng_Latn → fra_Latn (each source begins with eng_Latn, id {EngLatn}; each translation is forced to begin with fra_Latn, id {FraLatn})\ndecoding: greedy\n", output);

        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        Assert.Equal(EngLatn, tokenizer.LanguageCodeId("eng_Latn"));
        Assert.Equal(FraLatn, tokenizer.LanguageCodeId("fra_Latn"));
        TinyNllbModel model = TinyNllbModel.ForInference(folder.Path);
        int[] source = [.. tokenizer.Encode(Sentence)];
        Assert.Equal([EngLatn, TinyNllb.Id("▁the"), TinyNllb.Id("▁house"), TinyNllb.Id("▁is"), TinyNllb.Id("▁small"), TinyNllb.Id("."), TinyNllb.Eos], source);
        var target = new int[TinyNllbModel.TargetSeqLen];
        int count = model.Translate(source, target, sampler: null, prefix: [FraLatn]);
        Assert.DoesNotContain(FraLatn, target[..count]);
        Assert.Contains($"\n[1] {Sentence}\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    7 source tokens, {count} target tokens in ", output);

        int[] second = [.. tokenizer.Encode("where is the house?")];
        Assert.Equal([EngLatn, TinyNllb.Id("▁where"), TinyNllb.Id("▁is"), TinyNllb.Id("▁the"), TinyNllb.Id("▁house"), TinyNllb.Id("?"), TinyNllb.Eos], second);
        int secondCount = model.Translate(second, target, sampler: null, prefix: [FraLatn]);
        Assert.Contains($"\n[2] where is the house?\n  → {tokenizer.Decode(target.AsSpan(0, secondCount))}\n    7 source tokens, {secondCount} target tokens in ", output);
        Assert.Matches($@"\ntranslated 2 texts: 14 source tokens, {count + secondCount} target tokens in \d+\.\d{{3}} s", output);
    }

    /// <summary>Beam search reads the forced target code too: the sample prints the model's own BeamSearch with that prefix.</summary>
    [Fact]
    public void Beam_search_prints_the_models_own_beam_search_after_the_target_language_code()
    {
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence, "--beam", "3", "--length-penalty", "0.4");
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Contains("\ndecoding: beam search, width 3, length penalty 0.4\n", output);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        var target = new int[TinyNllbModel.TargetSeqLen];
        int count = TinyNllbModel.ForInference(folder.Path).BeamSearch([.. tokenizer.Encode(Sentence)], target, 3, 0.4f, [FraLatn]);
        Assert.DoesNotContain(FraLatn, target[..count]);
        Assert.Contains($"\n[1] {Sentence}\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    7 source tokens, {count} target tokens in ", output);
    }

    [Fact]
    public void From_and_to_choose_the_source_code_and_the_forced_target_code()
    {
        const string french = "la maison est petite.";
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 6));
        (int exit, string output, string error) = Run("--model", folder.Path, "--from", "fra_Latn", "--to", "deu_Latn", "--text", french);
        Assert.True(exit == 0, error);
        Assert.Contains($"\nlanguages: fra_Latn → deu_Latn (each source begins with fra_Latn, id {FraLatn}; each translation is forced to begin with deu_Latn, id {DeuLatn})\n", output);

        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path).WithSourceLanguage("fra_Latn");
        int[] source = [.. tokenizer.Encode(french)];
        Assert.Equal([FraLatn, TinyNllb.Id("▁la"), TinyNllb.Id("▁maison"), TinyNllb.Id("▁est"), TinyNllb.Id("▁petite"), TinyNllb.Id("."), TinyNllb.Eos], source);
        TinyNllbModel model = TinyNllbModel.ForInference(folder.Path);
        var target = new int[TinyNllbModel.TargetSeqLen];
        int count = model.Translate(source, target, sampler: null, prefix: [DeuLatn]);
        Assert.Contains($"\n[1] {french}\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    7 source tokens, {count} target tokens in ", output);
    }

    [Fact]
    public void The_tokenizer_configs_src_lang_and_tgt_lang_are_the_defaults()
    {
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 5), srcLang: "fra_Latn", tgtLang: "deu_Latn");
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", "la maison.");
        Assert.True(exit == 0, error);
        Assert.Contains($"\nlanguages: fra_Latn → deu_Latn (each source begins with fra_Latn, id {FraLatn}; each translation is forced to begin with deu_Latn, id {DeuLatn})\n", output);

        // --to alone keeps the folder's source language.
        (int exit2, string output2, string error2) = Run("--model", folder.Path, "--to", "eng_Latn", "--text", "la maison.");
        Assert.True(exit2 == 0, error2);
        Assert.Contains($"\nlanguages: fra_Latn → eng_Latn (each source begins with fra_Latn, id {FraLatn}; each translation is forced to begin with eng_Latn, id {EngLatn})\n", output2);
    }

    [Fact]
    public void Refuses_a_language_code_the_tokenizer_lacks_before_loading_the_weights()
    {
        // No model.safetensors: the refusal must come before the weights would be read.
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 5));
        File.Delete(folder.File("model.safetensors"));
        folder.Write(HubModelIndex, "{}"); // the index stands in for the weights in the missing-file check only

        (int exit, string output, string error) = Run("--model", folder.Path, "--to", "fr");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal("Unknown --to language 'fr': the tokenizer knows 202 language codes, each a language and its script (ace_Arab, ace_Latn, acm_Arab, …, zul_Latn). Did you mean fra_Latn?\n", error);

        (int exit2, _, string error2) = Run("--model", folder.Path, "--from", "English", "--to", "deu_Latn");
        Assert.Equal(1, exit2);
        Assert.StartsWith("Unknown --from language 'English': the tokenizer knows 202 language codes", error2);
        Assert.Contains("Did you mean eng_Latn?", error2);

        (int exit3, _, string error3) = Run("--model", folder.Path, "--from", "eng_Latn", "--to", "xx_Yyyy");
        Assert.Equal(1, exit3);
        Assert.StartsWith("Unknown --to language 'xx_Yyyy':", error3);
        Assert.DoesNotContain("Did you mean", error3);
    }

    [Fact]
    public void Marian_refuses_from_and_to()
    {
        using TempFolder marian = TinyMarian.Folder(TinyMarian.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", marian.Path, "--to", "fra_Latn");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal("tests/tiny-marian translates one language pair, so --from and --to are not taken: they choose the languages of a many-to-many model (NLLB, Flan-T5).\n", error);
    }

    [Fact]
    public void The_folders_model_type_chooses_the_model()
    {
        using TempFolder marian = TinyMarian.Folder(TinyMarian.Model(seed: 5));
        using TempFolder nllb = TinyNllb.Folder(TinyNllb.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", marian.Path, "--text", "the house is small.");
        Assert.True(exit == 0, error);
        Assert.Contains($"model: tests/tiny-marian from {marian.Path} as TinyMarianModel: ", output);
        Assert.Contains(", marian, 47 ids;", output);
        Assert.DoesNotContain("languages:", output);

        // The Marian test's own expectation holds with both models compiled in.
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(marian.Path);
        var target = new int[TinyMarianModel.TargetSeqLen];
        int count = TinyMarianModel.ForInference(marian.Path).Translate([.. tokenizer.Encode("the house is small.")], target);
        Assert.Contains($"\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    6 source tokens, {count} target tokens in ", output);

        (int exit2, string output2, string error2) = Run("--model", nllb.Path, "--text", "the house is small.");
        Assert.True(exit2 == 0, error2);
        Assert.Contains($"model: tests/tiny-nllb from {nllb.Path} as TinyNllbModel: ", output2);

        // A model_type neither model has is refused by name, before any file is looked for.
        JsonNode config = JsonNode.Parse(File.ReadAllText(nllb.File("config.json")))!;
        config["model_type"] = "mbart";
        nllb.Write("config.json", config.ToJsonString());
        (int exit3, string output3, string error3) = Run("--model", nllb.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit3);
        Assert.Equal("", output3);
        Assert.StartsWith($"{nllb.File("config.json")} has model_type mbart; this program runs marian (tests/tiny-marian), m2m_100 (tests/tiny-nllb).\n", error3);

        config.AsObject().Remove("model_type");
        nllb.Write("config.json", config.ToJsonString());
        (int exit4, _, string error4) = Run("--model", nllb.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit4);
        Assert.StartsWith($"{nllb.File("config.json")} gives no model_type; this program runs ", error4);
    }

    [Fact]
    public void Refuses_an_M2M100_folder_of_other_sizes_with_the_keys_that_differ()
    {
        using TempFolder folder = TinyNllb.Folder();
        JsonNode config = JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!;
        config["decoder_layers"] = 3;
        config["activation_function"] = "gelu";
        config["vocab_size"] = 256206;
        config.AsObject().Remove("scale_embedding"); // M2M100Config's default is true, as compiled
        config.AsObject().Remove("pad_token_id"); // and 1
        folder.Write("config.json", config.ToJsonString());
        (int exit, string output, string error) = Run("--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit);
        Assert.Equal("", output);
        Assert.Contains("describes another model than the one this program was compiled for (tests/tiny-nllb):\n", error);
        string[] differences = [.. error.Split('\n').Where(line => line.StartsWith("  ", StringComparison.Ordinal)).Select(line => line.Trim())];
        Assert.Equal(
            ["vocab_size: 256206 in the folder, 274 compiled", "decoder_layers: 3 in the folder, 2 compiled", "activation_function: gelu in the folder, relu compiled"],
            differences);
        Assert.Contains("copy its config.json over tests/Samples.Tests/Models/tiny-nllb/config.json", error);

        // The real model's config passes its own check and fails the tiny one's on sizes.
        folder.Write("config.json", TranslationModelSpec.Nllb200Distilled600M.CompiledConfig);
        (int exit2, _, string error2) = Run("--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit2);
        Assert.Contains("d_model: 1024 in the folder, 16 compiled", error2);
        Assert.Contains("max_position_embeddings: 1024 in the folder, 32 compiled", error2);
    }

    [Fact]
    public void Says_where_a_translation_ended_counting_the_forced_code()
    {
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Repeating(seed: 5, "▁maison"));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence);
        Assert.True(exit == 0, error);
        Assert.Contains($"\n[1] {Sentence}\n  → {string.Join(' ', Enumerable.Repeat("maison", 9))}\n    7 source tokens, 9 target tokens in ", output);
        Assert.Contains("); stopped at TargetSeqLen (9 tokens after the forced language code)\n", output);

        (int exit2, string output2, string error2) = Run("--model", folder.Path, "--text", Sentence, "--max-tokens", "4");
        Assert.True(exit2 == 0, error2);
        Assert.Contains("\ndecoding: greedy; at most 4 tokens\n", output2);
        Assert.Contains("\n  → maison maison maison maison\n    7 source tokens, 4 target tokens in ", output2);
        Assert.Contains("); stopped at --max-tokens 4\n", output2);
    }

    [Fact]
    public void A_source_longer_than_SeqLen_keeps_its_language_code_and_end()
    {
        const string text = "the house is small, the house is small, the house is small.";
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 5));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        int[] whole = [.. tokenizer.Encode(text)];
        Assert.Equal(17, whole.Length); // eng_Latn, three times four words and a comma or a full stop, </s>

        (int exit, string output, string error) = Run("--model", folder.Path, "--text", text);
        Assert.True(exit == 0, error);
        int[] cut = [.. whole.Take(11), TinyNllb.Eos];
        Assert.Equal(EngLatn, cut[0]);
        var target = new int[TinyNllbModel.TargetSeqLen];
        int count = TinyNllbModel.ForInference(folder.Path).Translate(cut, target, sampler: null, prefix: [FraLatn]);
        Assert.Contains($"\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    the source was cut to 12 of its 17 tokens (SeqLen), keeping its language code and closing </s>\n    12 source tokens, {count} target tokens in ", output);
    }

    [Fact]
    public void Int8_weights_translate_as_the_model_held_in_int8()
    {
        using TempFolder folder = TinyNllb.Folder(TinyNllb.Model(seed: 7));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence, "--weights", "int8");
        Assert.True(exit == 0, error);
        // The tiny model's matrices are too small to free whole pages: nothing is said to be given back.
        Assert.Matches(@"weights \d+\.\d\d s, int8, \d+ MB of buffers\)", output);

        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        var target = new int[TinyNllbModel.TargetSeqLen];
        int count = TinyNllbModel.ForInference(folder.Path, WeightType.Int8).Translate([.. tokenizer.Encode(Sentence)], target, sampler: null, prefix: [FraLatn]);
        Assert.Contains($"\n  → {tokenizer.Decode(target.AsSpan(0, count))}\n    7 source tokens, {count} target tokens in ", output);

        (int exit2, _, string error2) = Run("--model", folder.Path, "--weights", "fp16");
        Assert.Equal(1, exit2);
        Assert.Contains("fp16", error2);
    }

    [Fact]
    public void Without_a_folder_names_what_to_download_for_each_model()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(TranslateApp.ExitMissingModel, TranslateApp.Run([], stdout, stderr));
        string error = stderr.ToString();
        Assert.Equal("", stdout.ToString());
        Assert.StartsWith("No model folder given (--model).", error);
        Assert.Contains("huggingface-cli download Helsinki-NLP/opus-mt-en-de config.json model.safetensors source.spm target.spm vocab.json tokenizer_config.json --local-dir models/opus-mt-en-de", error);
        Assert.Contains("\nOr, for a folder whose config.json has model_type m2m_100:\n", error);
        Assert.Contains("huggingface-cli download facebook/nllb-200-distilled-600M config.json model.safetensors sentencepiece.bpe.model tokenizer_config.json special_tokens_map.json --local-dir models/nllb-200-distilled-600M", error);
        foreach (string file in TranslationModelSpec.NllbFiles)
        {
            Assert.Contains($"https://huggingface.co/facebook/nllb-200-distilled-600M/resolve/main/{file}", error);
        }

        Assert.Contains("dotnet run -c Release --project samples/Translate -- --model models/nllb-200-distilled-600M --from eng_Latn --to fra_Latn", error);
        Assert.Contains("python -c \"from transformers import AutoModelForSeq2SeqLM; AutoModelForSeq2SeqLM.from_pretrained('models/nllb-200-distilled-600M').save_pretrained('models/nllb-200-distilled-600M', safe_serialization=True)\"", error);

        // A folder with NLLB's config and nothing else is told NLLB's files only.
        using TempFolder folder = new();
        folder.Write("config.json", TranslationModelSpec.Nllb200Distilled600M.CompiledConfig);
        stderr = new StringWriter();
        Assert.Equal(TranslateApp.ExitMissingModel, TranslateApp.Run(["--model", folder.Path], new StringWriter(), stderr));
        Assert.StartsWith($"The model folder '{folder.Path}' lacks model.safetensors, sentencepiece.bpe.model, tokenizer_config.json, special_tokens_map.json.", stderr.ToString());
        Assert.DoesNotContain("opus-mt", stderr.ToString());

        // Without config.json there is no telling which: both are named.
        File.Delete(folder.File("config.json"));
        stderr = new StringWriter();
        Assert.Equal(TranslateApp.ExitMissingModel, TranslateApp.Run(["--model", folder.Path], new StringWriter(), stderr));
        Assert.StartsWith($"The model folder '{folder.Path}' lacks config.json, which says which model it holds.", stderr.ToString());
        Assert.Contains("facebook/nllb-200-distilled-600M", stderr.ToString());
        Assert.Contains("Helsinki-NLP/opus-mt-en-de", stderr.ToString());
    }

    [Fact]
    public void Nllb_200_distilled_600M_is_compiled_from_the_config_the_program_embeds()
    {
        JsonNode config = JsonNode.Parse(TranslationModelSpec.Nllb200Distilled600M.CompiledConfig)!;
        Assert.Equal("m2m_100", (string?)config["model_type"]);
        Assert.Equal("m2m_100", TranslationModelSpec.Nllb200Distilled600M.ModelType);
        Assert.Equal((256206, 1024, 12, 12, 16, 4096, 1024), ((int)config["vocab_size"]!, (int)config["d_model"]!, (int)config["encoder_layers"]!, (int)config["decoder_layers"]!, (int)config["encoder_attention_heads"]!, (int)config["encoder_ffn_dim"]!, (int)config["max_position_embeddings"]!));
        Assert.Equal((256206, 1024, 12, 16, 64, 4096, 256, 256, 256206),
            (Nllb200Distilled600M.Vocab, Nllb200Distilled600M.DModel, Nllb200Distilled600M.Layers, Nllb200Distilled600M.Heads, Nllb200Distilled600M.HeadDim, Nllb200Distilled600M.DFF, Nllb200Distilled600M.SeqLen, Nllb200Distilled600M.TargetSeqLen, Nllb200Distilled600M.TargetVocab));
        Assert.Equal(TranslationModelSpec.Nllb200Distilled600M.CompiledConfig.ReplaceLineEndings(), File.ReadAllText(Path.Combine(RepositoryRoot(), "samples/Translate/models/nllb-200-distilled-600M/config.json")).ReplaceLineEndings());
        Assert.Equal(["marian", "m2m_100", "t5"], TranslationModelSpec.All.Select(spec => spec.ModelType));
    }

    private const string HubModelIndex = "model.safetensors.index.json";

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Transformer.Gen.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("the repository root is not above the test's folder");
    }

    private static (int Exit, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = TranslateApp.Run(args, output, error, Both);
        return (exit, output.ToString(), error.ToString());
    }
}
