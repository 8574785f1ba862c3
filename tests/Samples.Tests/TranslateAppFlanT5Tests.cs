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
/// The Translate sample's Flan-T5 path (<see cref="TranslateApp"/> with the tiny T5 beside the tiny Marian and M2M100):
/// the folder's model_type t5 picks it; each text is written into the instruction ("translate English to German: …",
/// the languages from --from and --to, or --prompt's words), tokenized by the folder's spiece.model and closed by
/// &lt;/s&gt;; what is printed is the model's own greedy or beam-search output for those ids, ended at &lt;/s&gt;, decoded
/// by the tokenizer; language codes, --prompt with --from/--to, and --prompt for the other models are refused.
/// </summary>
public sealed class TranslateAppFlanT5Tests(ITestOutputHelper log)
{
    private const string Sentence = "the house is small.";

    private static readonly TranslationModelSpec[] All = [TinyMarian.Spec, TinyNllb.Spec, TinyFlanT5.Spec];

    // "translate English to German:" as the tiny spiece.model segments it.
    private static readonly int[] Instruction =
        [TinyFlanT5.Id("▁translate"), TinyFlanT5.Id("▁English"), TinyFlanT5.Id("▁to"), TinyFlanT5.Id("▁German"), TinyFlanT5.Id(":")];

    private static readonly int[] SentenceIds =
        [TinyFlanT5.Id("▁the"), TinyFlanT5.Id("▁house"), TinyFlanT5.Id("▁is"), TinyFlanT5.Id("▁small"), TinyFlanT5.Id(".")];

    [Fact]
    public void Prints_the_models_own_output_for_the_instructed_text()
    {
        // Seed 6 is a model whose output depends on its source: the two texts, and the first without the instruction, differ.
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 6));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence, "--text", "where is the house?");
        log.WriteLine(output);
        Assert.True(exit == 0, error);
        Assert.Equal("", error);
        Assert.Contains($"model: tests/tiny-flan-t5 from {folder.Path} as TinyFlanT5Model: {TinyFlanT5Model.ParameterCount:N0} parameters; sources up to 16 tokens, translations up to 10\n", output);
        Assert.Matches(@"loaded in \d+\.\d\d s \(tokenizer \d+\.\d\d s, t5, 54 ids; weights \d+\.\d\d s, fp32, \d+ MB of buffers\)", output);
        Assert.Contains($"\nprompt: \"translate English to German: {{text}}\" (each source begins with the instruction's 5 tokens ({string.Join(", ", Instruction)}), closed by </s>, id 1)\ndecoding: greedy\n", output);
        Assert.DoesNotContain("languages:", output);

        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        Assert.Equal(PretrainedTokenizer.T5Kind, tokenizer.Kind);
        int[] source = [.. tokenizer.Encode("translate English to German: " + Sentence)];
        Assert.Equal([.. Instruction, .. SentenceIds, TinyFlanT5.Eos], source);

        // The model decodes from <pad> (its decoder_start_token_id) without a forced prefix.
        TinyFlanT5Model model = TinyFlanT5Model.ForInference(folder.Path);
        Assert.Equal((TinyFlanT5.Pad, TinyFlanT5.Eos), (model.Layout.BosToken, model.Layout.EosToken));
        var target = new int[TinyFlanT5Model.TargetSeqLen];
        int count = model.Translate(source, target);
        Assert.DoesNotContain(TinyFlanT5.Eos, target[..count]);
        Assert.Contains($"\n[1] {Sentence}\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, count))}    11 source tokens, {count} target tokens in ", output);

        // The instruction is part of the source: the text alone gives this model another output.
        var alone = new int[TinyFlanT5Model.TargetSeqLen];
        int aloneCount = model.Translate([.. SentenceIds, TinyFlanT5.Eos], alone);
        Assert.NotEqual(target[..count], alone[..aloneCount]);

        int[] second = [.. tokenizer.Encode("translate English to German: where is the house?")];
        Assert.Equal([.. Instruction, TinyFlanT5.Id("▁where"), TinyFlanT5.Id("▁is"), TinyFlanT5.Id("▁the"), TinyFlanT5.Id("▁house"), TinyFlanT5.Id("?"), TinyFlanT5.Eos], second);
        int[] first = target[..count];
        int secondCount = model.Translate(second, target);
        Assert.NotEqual(first, target[..secondCount]);
        Assert.Contains($"\n[2] where is the house?\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, secondCount))}    11 source tokens, {secondCount} target tokens in ", output);
        Assert.Matches($@"\ntranslated 2 texts: 22 source tokens, {count + secondCount} target tokens in \d+\.\d{{3}} s", output);
    }

    [Fact]
    public void Beam_search_prints_the_models_own_beam_search_of_the_instructed_text()
    {
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 1));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence, "--beam", "3", "--length-penalty", "0.4");
        Assert.True(exit == 0, error);
        Assert.Contains("\ndecoding: beam search, width 3, length penalty 0.4\n", output);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        var target = new int[TinyFlanT5Model.TargetSeqLen];
        TinyFlanT5Model model = TinyFlanT5Model.ForInference(folder.Path);
        int count = model.BeamSearch([.. Instruction, .. SentenceIds, TinyFlanT5.Eos], target, 3, 0.4f);
        var greedy = new int[TinyFlanT5Model.TargetSeqLen];
        int greedyCount = model.Translate([.. Instruction, .. SentenceIds, TinyFlanT5.Eos], greedy);
        Assert.NotEqual(greedy[..greedyCount], target[..count]); // this model's beams find another output than greedy decoding
        Assert.Contains($"\n[1] {Sentence}\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, count))}    11 source tokens, {count} target tokens in ", output);
    }

    [Fact]
    public void From_and_to_write_the_languages_into_the_instruction()
    {
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", folder.Path, "--to", "French", "--text", Sentence);
        Assert.True(exit == 0, error);
        int[] instruction = [TinyFlanT5.Id("▁translate"), TinyFlanT5.Id("▁English"), TinyFlanT5.Id("▁to"), TinyFlanT5.Id("▁French"), TinyFlanT5.Id(":")];
        Assert.Contains($"\nprompt: \"translate English to French: {{text}}\" (each source begins with the instruction's 5 tokens ({string.Join(", ", instruction)}), closed by </s>, id 1)\n", output);

        var target = new int[TinyFlanT5Model.TargetSeqLen];
        int count = TinyFlanT5Model.ForInference(folder.Path).Translate([.. instruction, .. SentenceIds, TinyFlanT5.Eos], target);
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        Assert.Contains($"\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, count))}    11 source tokens, {count} target tokens in ", output);

        // --from alone keeps German; a name the tiny tokenizer has no piece for is still written (as letters and <unk>).
        (int exit2, string output2, string error2) = Run("--model", folder.Path, "--from", "German", "--text", "das Haus ist klein.");
        Assert.True(exit2 == 0, error2);
        Assert.Contains("\nprompt: \"translate German to German: {text}\" (", output2);
        (int exit3, string output3, string error3) = Run("--model", folder.Path, "--to", "Romanian", "--text", Sentence);
        Assert.True(exit3 == 0, error3);
        Assert.Contains("\nprompt: \"translate English to Romanian: {text}\" (", output3);
    }

    [Fact]
    public void A_prompt_replaces_the_instruction()
    {
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 6));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        TinyFlanT5Model model = TinyFlanT5Model.ForInference(folder.Path);
        var target = new int[TinyFlanT5Model.TargetSeqLen];

        // Words before the text: "summarize:" is followed by the text after a space, as "summarize: " would be.
        foreach (string prompt in new[] { "summarize: ", "summarize:" })
        {
            (int exit, string output, string error) = Run("--model", folder.Path, "--prompt", prompt, "--text", Sentence);
            Assert.True(exit == 0, error);
            Assert.Contains($"\nprompt: \"summarize: {{text}}\" (each source begins with the instruction's 2 tokens ({TinyFlanT5.Id("▁summarize")}, {TinyFlanT5.Id(":")}), closed by </s>, id 1)\n", output);
            int count = model.Translate([TinyFlanT5.Id("▁summarize"), TinyFlanT5.Id(":"), .. SentenceIds, TinyFlanT5.Eos], target);
            Assert.Contains($"\n[1] {Sentence}\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, count))}    8 source tokens, {count} target tokens in ", output);
        }

        // Words around the text, where {text} places it.
        (int exit2, string output2, string error2) = Run("--model", folder.Path, "--prompt", "question: {text} answer:", "--text", "where is the house?");
        Assert.True(exit2 == 0, error2);
        Assert.Contains($"\nprompt: \"question: {{text}} answer:\" (each source begins with the instruction's 2 tokens ({TinyFlanT5.Id("▁question")}, {TinyFlanT5.Id(":")}), the text followed by 'answer:', closed by </s>, id 1)\n", output2);
        int[] question =
        [
            TinyFlanT5.Id("▁question"), TinyFlanT5.Id(":"), TinyFlanT5.Id("▁where"), TinyFlanT5.Id("▁is"), TinyFlanT5.Id("▁the"), TinyFlanT5.Id("▁house"),
            TinyFlanT5.Id("?"), TinyFlanT5.Id("▁answer"), TinyFlanT5.Id(":"), TinyFlanT5.Eos,
        ];
        Assert.Equal(question, tokenizer.Encode("question: where is the house? answer:"));
        int questionCount = model.Translate(question, target);
        Assert.Contains($"\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, questionCount))}    10 source tokens, {questionCount} target tokens in ", output2);

        // An empty prompt gives the text alone.
        (int exit3, string output3, string error3) = Run("--model", folder.Path, "--prompt", "", "--text", Sentence);
        Assert.True(exit3 == 0, error3);
        Assert.Contains("\nprompt: \"{text}\" (each source is the text, closed by </s>, id 1)\n", output3);
        int aloneCount = model.Translate([.. SentenceIds, TinyFlanT5.Eos], target);
        Assert.Contains($"\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, aloneCount))}    6 source tokens, {aloneCount} target tokens in ", output3);
        int[] textAlone = target[..aloneCount];
        int instructedCount = model.Translate([.. Instruction, .. SentenceIds, TinyFlanT5.Eos], target);
        Assert.NotEqual(textAlone, target[..instructedCount]); // so the empty prompt did leave the instruction out
    }

    [Fact]
    public void Decoding_stops_at_the_end_of_sentence_and_the_tokenizer_decodes_the_ids()
    {
        // <pad> → ▁das → ▁Haus → </s>: two tokens, then the model's </s>.
        int das = TinyFlanT5.Id("▁das"), haus = TinyFlanT5.Id("▁Haus");
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Scripted(seed: 5, (TinyFlanT5.Pad, das), (das, haus), (haus, TinyFlanT5.Eos)));
        TinyFlanT5Model model = TinyFlanT5Model.ForInference(folder.Path);
        var target = new int[TinyFlanT5Model.TargetSeqLen];
        Assert.Equal(2, model.Translate([.. Instruction, .. SentenceIds, TinyFlanT5.Eos], target));
        Assert.Equal([das, haus], target[..2]);

        foreach (string beam in new[] { "1", "3" })
        {
            (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence, "--beam", beam);
            log.WriteLine(output);
            Assert.True(exit == 0, error);
            Assert.Contains($"\n[1] {Sentence}\n  → das Haus\n    11 source tokens, 2 target tokens in ", output);
            Assert.Contains("); ended at </s>\n", output);
            Assert.Matches(@"\ntranslated 1 text: 11 source tokens, 2 target tokens in ", output);
        }
    }

    [Fact]
    public void Says_where_a_translation_that_never_ends_stopped()
    {
        int klein = TinyFlanT5.Id("▁klein");
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Scripted(seed: 5, (TinyFlanT5.Pad, klein), (klein, klein)));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence);
        Assert.True(exit == 0, error);
        Assert.Contains($"\n  → {string.Join(' ', Enumerable.Repeat("klein", 10))}\n    11 source tokens, 10 target tokens in ", output);
        Assert.Contains("); stopped at TargetSeqLen (10 tokens)\n", output);

        (int exit2, string output2, string error2) = Run("--model", folder.Path, "--text", Sentence, "--max-tokens", "3");
        Assert.True(exit2 == 0, error2);
        Assert.Contains("\ndecoding: greedy; at most 3 tokens\n", output2);
        Assert.Contains("\n  → klein klein klein\n    11 source tokens, 3 target tokens in ", output2);
        Assert.Contains("); stopped at --max-tokens 3\n", output2);
    }

    [Fact]
    public void Ids_past_the_tokenizer_have_no_text_and_are_counted()
    {
        // Row 55 of the model's 57 is no token: the tokenizer's ids end at 53 (<extra_id_0>).
        const int noToken = 55;
        int das = TinyFlanT5.Id("▁das");
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Scripted(seed: 5, (TinyFlanT5.Pad, das), (das, noToken)));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        Assert.Equal(TinyFlanT5.TokenizerIds, tokenizer.VocabSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([das, noToken]));

        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence);
        Assert.True(exit == 0, error);
        Assert.Contains("\n  → das\n    1 of its ids is past the tokenizer's 54 (rows of the model's 57 that are no token) and have no text\n    11 source tokens, 2 target tokens in ", output);
        Assert.Contains("); ended at </s>\n", output);
    }

    [Fact]
    public void A_source_longer_than_SeqLen_keeps_its_instruction_and_end()
    {
        const string longer = "the house is small, the house is small, where is the house?";
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 5));
        PretrainedTokenizer tokenizer = PretrainedTokenizer.FromFolder(folder.Path);
        int[] all = [.. tokenizer.Encode("translate English to German: " + longer)];
        Assert.Equal(21, all.Length); // the instruction's 5 tokens, the text's 15, </s>
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", longer);
        Assert.True(exit == 0, error);
        int[] cut = [.. all.Take(15), TinyFlanT5.Eos];
        Assert.Equal(Instruction, cut[..5]);
        var target = new int[TinyFlanT5Model.TargetSeqLen];
        int count = TinyFlanT5Model.ForInference(folder.Path).Translate(cut, target);
        Assert.Contains($"\n{TinyFlanT5.Printed(tokenizer, target.AsSpan(0, count))}    the source was cut to 16 of its 21 tokens (SeqLen), keeping its closing </s>\n    16 source tokens, {count} target tokens in ", output);
    }

    [Fact]
    public void Refuses_language_codes_and_a_prompt_with_languages_before_loading_the_weights()
    {
        // No model.safetensors: the refusals must come before the weights would be read.
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 5));
        File.Delete(folder.File("model.safetensors"));
        folder.Write("model.safetensors.index.json", "{}"); // the index stands in for the weights in the missing-file check only

        (int exit, string output, string error) = Run("--model", folder.Path, "--to", "de");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal("--to 'de' is no language name: tests/tiny-flan-t5 reads the languages as words in its instruction (translate {from} to {to}: {text}), so give --to German.\n", error);

        (int exit2, _, string error2) = Run("--model", folder.Path, "--from", "eng_Latn");
        Assert.Equal(1, exit2);
        Assert.Equal("--from 'eng_Latn' is no language name: tests/tiny-flan-t5 reads the languages as words in its instruction (translate {from} to {to}: {text}), so give --from English.\n", error2);

        (int exit3, _, string error3) = Run("--model", folder.Path, "--to", "xx");
        Assert.Equal(1, exit3);
        Assert.EndsWith("so give the language's English name (German, French, …).\n", error3);

        (int exit4, _, string error4) = Run("--model", folder.Path, "--prompt", "summarize: ", "--to", "French");
        Assert.Equal(1, exit4);
        Assert.Equal("--prompt replaces the instruction that --from and --to fill in (translate {from} to {to}: {text}), so they are not taken with it: write the languages into the prompt.\n", error4);
    }

    [Fact]
    public void The_other_models_refuse_a_prompt()
    {
        using TempFolder marian = TinyMarian.Folder(TinyMarian.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", marian.Path, "--prompt", "summarize: ");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal("tests/tiny-marian translates the text it is given, so --prompt is not taken: it is the instruction of a model that follows one (Flan-T5).\n", error);

        using TempFolder nllb = TinyNllb.Folder(TinyNllb.Model(seed: 5));
        (int exit2, _, string error2) = Run("--model", nllb.Path, "--prompt", "");
        Assert.Equal(1, exit2);
        Assert.StartsWith("tests/tiny-nllb translates the text it is given, so --prompt is not taken", error2);
    }

    [Fact]
    public void The_folders_model_type_t5_chooses_Flan_T5_and_its_sizes_are_checked()
    {
        using TempFolder folder = TinyFlanT5.Folder(TinyFlanT5.Model(seed: 5));
        (int exit, string output, string error) = Run("--model", folder.Path, "--text", Sentence);
        Assert.True(exit == 0, error);
        Assert.Contains($"model: tests/tiny-flan-t5 from {folder.Path} as TinyFlanT5Model: ", output);

        // Another T5's config: each key that differs is named, T5Config's defaults standing in for absent ones.
        JsonNode config = JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!;
        config["num_heads"] = 3;
        config["feed_forward_proj"] = "relu";
        config.AsObject().Remove("dense_act_fn"); // derived from feed_forward_proj: relu
        config.AsObject().Remove("is_gated_act"); // and false
        config.AsObject().Remove("tie_word_embeddings"); // T5Config's default is true
        folder.Write("config.json", config.ToJsonString());
        (int exit2, string output2, string error2) = Run("--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit2);
        Assert.Equal("", output2);
        Assert.Contains("describes another model than the one this program was compiled for (tests/tiny-flan-t5):\n", error2);
        string[] differences = [.. error2.Split('\n').Where(line => line.StartsWith("  ", StringComparison.Ordinal)).Select(line => line.Trim())];
        Assert.Equal(
            [
                "num_heads: 3 in the folder, 2 compiled", "feed_forward_proj: relu in the folder, gated-gelu compiled",
                "dense_act_fn: relu in the folder, gelu_new compiled", "is_gated_act: false in the folder, true compiled",
                "tie_word_embeddings: true in the folder, false compiled",
            ],
            differences);
        Assert.Contains("copy its config.json over tests/Samples.Tests/Models/tiny-flan-t5/config.json", error2);

        // flan-t5-small's own config passes its model's check and fails the tiny one's on sizes.
        folder.Write("config.json", TranslationModelSpec.FlanT5Small.CompiledConfig);
        (int exit3, _, string error3) = Run("--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit3);
        Assert.Contains("vocab_size: 32128 in the folder, 57 compiled", error3);
        Assert.Contains("d_model: 512 in the folder, 16 compiled", error3);
        Assert.Contains("relative_attention_num_buckets: 32 in the folder, 8 compiled", error3);

        // mT5 is another model_type, refused by name.
        config["model_type"] = "mt5";
        folder.Write("config.json", config.ToJsonString());
        (int exit4, _, string error4) = Run("--model", folder.Path);
        Assert.Equal(TranslateApp.ExitWrongModel, exit4);
        Assert.StartsWith($"{folder.File("config.json")} has model_type mt5; this program runs marian (tests/tiny-marian), m2m_100 (tests/tiny-nllb), t5 (tests/tiny-flan-t5).\n", error4);
    }

    [Fact]
    public void Without_a_folder_names_what_to_download_for_Flan_T5()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(TranslateApp.ExitMissingModel, TranslateApp.Run([], stdout, stderr));
        string error = stderr.ToString();
        Assert.Equal("", stdout.ToString());
        Assert.Contains("\nOr, for a folder whose config.json has model_type t5:\n", error);
        Assert.Contains("This sample runs google/flan-t5-small (https://huggingface.co/google/flan-t5-small). Download these files into one folder:", error);
        Assert.Contains("  huggingface-cli download google/flan-t5-small config.json model.safetensors spiece.model tokenizer_config.json special_tokens_map.json --local-dir models/flan-t5-small\n", error);
        foreach (string file in TranslationModelSpec.T5Files)
        {
            Assert.Contains($"  https://huggingface.co/google/flan-t5-small/resolve/main/{file}\n", error);
        }

        Assert.Contains("  dotnet run -c Release --project samples/Translate -- --model models/flan-t5-small --from English --to German\n", error);
        Assert.Contains("T5ForConditionalGeneration.from_pretrained('models/flan-t5-small').save_pretrained('models/flan-t5-small', safe_serialization=True)", error);

        // A folder with flan-t5-small's config and nothing else is told its files only.
        using TempFolder folder = new();
        folder.Write("config.json", TranslationModelSpec.FlanT5Small.CompiledConfig);
        stderr = new StringWriter();
        Assert.Equal(TranslateApp.ExitMissingModel, TranslateApp.Run(["--model", folder.Path], new StringWriter(), stderr));
        Assert.StartsWith($"The model folder '{folder.Path}' lacks model.safetensors, spiece.model, tokenizer_config.json, special_tokens_map.json.", stderr.ToString());
        Assert.DoesNotContain("opus-mt", stderr.ToString());
        Assert.DoesNotContain("nllb", stderr.ToString());
    }

    [Fact]
    public void Flan_t5_small_is_compiled_from_the_config_the_program_embeds()
    {
        JsonNode config = JsonNode.Parse(TranslationModelSpec.FlanT5Small.CompiledConfig)!;
        Assert.Equal("t5", TranslationModelSpec.FlanT5Small.ModelType);
        Assert.Equal((32128, 512, 64, 1024, 8, 8, 6), ((int)config["vocab_size"]!, (int)config["d_model"]!, (int)config["d_kv"]!, (int)config["d_ff"]!, (int)config["num_layers"]!, (int)config["num_decoder_layers"]!, (int)config["num_heads"]!));
        Assert.Equal(("gated-gelu", "gelu_new", false, 32, 128), ((string?)config["feed_forward_proj"], (string?)config["dense_act_fn"], (bool)config["tie_word_embeddings"]!, (int)config["relative_attention_num_buckets"]!, (int)config["relative_attention_max_distance"]!));
        Assert.Equal((0, 1, 0), ((int)config["pad_token_id"]!, (int)config["eos_token_id"]!, (int)config["decoder_start_token_id"]!));
        Assert.Equal((32128, 512, 8, 6, 64, 1024, 512, 256, 32128),
            (FlanT5Small.Vocab, FlanT5Small.DModel, FlanT5Small.Layers, FlanT5Small.Heads, FlanT5Small.HeadDim, FlanT5Small.DFF, FlanT5Small.SeqLen, FlanT5Small.TargetSeqLen, FlanT5Small.TargetVocab));
        Assert.Equal(TranslationModelSpec.FlanT5Small.CompiledConfig.ReplaceLineEndings(), File.ReadAllText(Path.Combine(RepositoryRoot(), "samples/Translate/models/flan-t5-small/config.json")).ReplaceLineEndings());
        Assert.Equal("translate {from} to {to}: {text}", TranslationModelSpec.FlanT5Small.Instruction);
        Assert.Equal(new TranslationLanguages("English", "German"), TranslationModelSpec.FlanT5Small.Languages);
    }

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
        int exit = TranslateApp.Run(args, output, error, All);
        return (exit, output.ToString(), error.ToString());
    }
}
