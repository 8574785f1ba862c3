using System;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using static TransformerGen.Generator.Tests.ConfigFixtures;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// The config.json front end (<c>Config = "…/config.json"</c>): one test per diagnostic TG0040–TG0044 with its id,
/// severity, the argument it underlines and its full message; valid configs of each family compile cleanly with the
/// right sizes and checkpoint names; and the path in the attribute finds the right additional file.
/// </summary>
public partial class ConfigTests
{
    /// <summary>One config file at /repo/models/{folder}/config.json, named in the attribute as models/{folder}/config.json.</summary>
    private static (string, string)[] At(string folder, string json) => [($"/repo/models/{folder}/config.json", json)];

    private static string Declared(string folder, string more = "", int seqLen = 8) =>
        Model($"Config = \"models/{folder}/config.json\", SeqLen = {seqLen}, Batch = 2{more}");

    private static string ConfigArgument(string folder) => $"Config = \"models/{folder}/config.json\"";

    /// <summary>The one TG0042 a config gives, underlining the Config argument.</summary>
    private static string Unsupported(string folder, string json, string more = "")
    {
        Diagnostic d = SingleError(At(folder, json), Declared(folder, more), "TG0042", ConfigArgument(folder));
        return d.GetMessage();
    }

    // ----- TG0040: the config is not part of the build -----

    [Fact]
    public void TG0040_a_config_that_is_not_among_the_additional_files_lists_those_found()
    {
        string source = Declared("gpt2-medium");
        (string, string)[] files = [("/repo/models/gpt2/config.json", Gpt2), ("/repo/models/bert/config.json", Bert), ("/repo/obj/transformergen/w.safetensors.header.json", "{}")];
        Diagnostic d = SingleError(files, source, "TG0040", ConfigArgument("gpt2-medium"));
        Assert.Equal("Config = \"models/gpt2-medium/config.json\" names no file of this project; add <TransformerConfig Include=\"models/gpt2-medium/config.json\" /> "
            + "(config files found: /repo/models/bert/config.json, /repo/models/gpt2/config.json)", d.GetMessage());
    }

    [Fact]
    public void TG0040_without_any_config_says_none_and_a_checkpoint_header_is_not_a_config()
    {
        string source = Declared("tiny");
        Diagnostic d = SingleError([("/repo/obj/transformergen/tiny.safetensors.header.json", "{\"__metadata__\":{}}")], source, "TG0040", ConfigArgument("tiny"));
        Assert.Equal("Config = \"models/tiny/config.json\" names no file of this project; add <TransformerConfig Include=\"models/tiny/config.json\" /> (config files found: none)", d.GetMessage());
    }

    // ----- TG0041: the config cannot be read -----

    [Fact]
    public void TG0041_malformed_json()
    {
        const string truncated = "{\"model_type\": \"gpt2\", \"n_embd\": 36,";
        Diagnostic d = SingleError(At("broken", truncated), Declared("broken"), "TG0041", ConfigArgument("broken"));
        Assert.Equal("broken/config.json is not a JSON object: expected a member name at offset 36", d.GetMessage());
    }

    [Fact]
    public void TG0041_a_top_level_array()
    {
        string json = "[" + Gpt2 + "]";
        Diagnostic d = SingleError(At("listed", json), Declared("listed"), "TG0041", ConfigArgument("listed"));
        Assert.Equal("listed/config.json is not a JSON object: the top level is not an object", d.GetMessage());
    }

    // ----- TG0042: the config describes something the compiler cannot build -----

    [Fact]
    public void TG0042_unknown_model_type()
    {
        string message = Unsupported("umt5-small", Set(Gpt2, "model_type", "\"umt5\""));
        Assert.Equal("umt5-small/config.json: \"model_type\": umt5 cannot be compiled: only gpt2, bert, roberta, xlm-roberta, electra, distilbert, nomic_bert, mpnet, modernbert, llama, mistral, phi3, qwen2, qwen3, gemma3_text, gemma3, marian, bart, mbart, m2m_100, t5 and mt5 are known", message);
    }

    [Fact]
    public void TG0042_qwen2_sliding_window_attention()
    {
        string message = Unsupported("qwen2-swa", Set(Qwen2, "use_sliding_window", "true"));
        Assert.Equal("qwen2-swa/config.json: \"use_sliding_window\": true cannot be compiled: sliding-window attention is not implemented", message);
    }

    [Fact]
    public void TG0042_mistral_window_shorter_than_SeqLen()
    {
        string json = Set(Set(LlamaMqa, "model_type", "\"mistral\""), "sliding_window", "4");
        string message = Unsupported("mistral", json);
        Assert.Equal("mistral/config.json: \"sliding_window\": 4 cannot be compiled: a window shorter than SeqLen = 8 is not implemented (one at least as long has no effect)", message);
    }

    [Theory]
    [InlineData("4096")]
    [InlineData("8")] // as long as SeqLen: every position still sees every earlier one
    [InlineData("null")]
    public void A_mistral_window_at_least_SeqLen_compiles_as_a_llama(string window)
    {
        string json = Set(Set(LlamaMqa, "model_type", "\"mistral\""), "sliding_window", window);
        var result = RunClean(At("mistral", json), Declared("mistral"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Llama,", result.GeneratedSource);
        Assert.Contains("public const int KvHeads = 1;", result.GeneratedSource);
    }

    [Fact]
    public void TG0042_partial_rotary_factor()
    {
        string message = Unsupported("phi-like", Set(LlamaGqa, "partial_rotary_factor", "0.5"));
        Assert.Equal("phi-like/config.json: \"partial_rotary_factor\": 0.5 cannot be compiled: only whole-head rotation is implemented", message);
    }

    [Fact]
    public void TG0042_an_activation_without_a_kernel()
    {
        string message = Unsupported("gelu10", Set(LlamaGqa, "hidden_act", "\"gelu_10\""));
        Assert.Equal("gelu10/config.json: \"hidden_act\": gelu_10 cannot be compiled: the gated feed-forward down(act(gate)·up) has a kernel for silu (SwiGLU) only", message);

        string gpt2 = Unsupported("gpt2-gelu10", Set(Gpt2, "activation_function", "\"gelu_10\""));
        Assert.Equal("gpt2-gelu10/config.json: \"activation_function\": gelu_10 cannot be compiled: this family's feed-forward has kernels for gelu, gelu_new (gelu_pytorch_tanh, gelu_fast), relu and silu (swish)", gpt2);
    }

    /// <summary>
    /// transformers' GPT-2 MLP and BERT intermediate apply ACT2FN[act] to one projection (no gate), so "silu" (or its old
    /// name "swish", Marian's) there is a plain SiLU, x·σ(x), forward and backward: not the gated SwiGLU of Llama.
    /// </summary>
    [Theory]
    [InlineData("gpt2", "activation_function", "", "silu")]
    [InlineData("bert", "hidden_act", ", Head = EncoderHead.SentenceEmbedding", "swish")]
    public void Silu_in_an_ungated_family_is_a_plain_silu(string family, string key, string more, string name)
    {
        string json = Set(family == "gpt2" ? Gpt2 : Bert, key, $"\"{name}\"");
        var result = RunClean(At(family + "-silu", json), Declared(family + "-silu", more));
        Assert.Contains("Activations.SiluForward(", result.GeneratedSource);
        Assert.Contains("Activations.SiluBackward(", result.GeneratedSource);
        Assert.DoesNotContain("SwiGlu", result.GeneratedSource);
    }

    /// <summary>
    /// LlamaMLP computes down(ACT2FN[hidden_act](gate(x)) · up(x)): with "gelu" or "relu" that is GeGLU or ReGLU, not
    /// SwiGLU. Compiling SwiGLU anyway would give other numbers than the checkpoint was trained with.
    /// </summary>
    [Theory]
    [InlineData("gelu")]
    [InlineData("relu")]
    public void TG0042_a_llama_gated_by_another_activation_than_silu(string activation)
    {
        string message = Unsupported("llama-" + activation, Set(LlamaGqa, "hidden_act", $"\"{activation}\""));
        Assert.StartsWith($"llama-{activation}/config.json: \"hidden_act\": {activation} cannot be compiled: ", message);
    }

    [Fact]
    public void TG0042_key_value_heads_that_do_not_divide_the_heads()
    {
        string message = Unsupported("gqa3", Set(LlamaGqa, "num_key_value_heads", "3"));
        Assert.Equal("gqa3/config.json: \"num_key_value_heads\": 3 cannot be compiled: it must divide num_attention_heads = 4", message);
    }

    [Fact]
    public void TG0042_an_odd_head_dim()
    {
        string message = Unsupported("odd", Set(LlamaGqa, "head_dim", "11"));
        Assert.Equal("odd/config.json: \"head_dim\": 11 cannot be compiled: rotary positions need an even head size", message);
    }

    [Fact]
    public void TG0042_gpt2_scores_scaled_by_inverse_layer_index()
    {
        string message = Unsupported("gpt2-inv", Set(Gpt2, "scale_attn_by_inverse_layer_idx", "true"));
        Assert.Equal("gpt2-inv/config.json: \"scale_attn_by_inverse_layer_idx\": true cannot be compiled: scores also divided by layer index + 1 is not implemented", message);
    }

    [Fact]
    public void TG0042_bert_relative_positions()
    {
        string message = Unsupported("bert-rel", Set(Bert, "position_embedding_type", "\"relative_key\""), ", Head = EncoderHead.SentenceEmbedding");
        Assert.Equal("bert-rel/config.json: \"position_embedding_type\": relative_key cannot be compiled: only absolute learned positions are compiled", message);
    }

    [Fact]
    public void TG0042_bert_without_the_sentence_embedding_head_is_located_on_Config()
    {
        string message = Unsupported("minilm", Bert);
        Assert.Equal("minilm/config.json: \"architectures\": BertModel with EncoderHead.Classification cannot be compiled: "
            + "the checkpoint holds no classifier; declare Head = EncoderHead.SentenceEmbedding", message);
    }

    [Fact]
    public void TG0042_bert_with_a_classification_head_is_located_on_Head()
    {
        string source = Declared("minilm", ", Head = EncoderHead.Classification");
        Diagnostic d = SingleError(At("minilm", Bert), source, "TG0042", "Head = EncoderHead.Classification");
        Assert.Equal("minilm/config.json: \"architectures\": BertModel with EncoderHead.Classification cannot be compiled: "
            + "the checkpoint holds no classifier; declare Head = EncoderHead.SentenceEmbedding", d.GetMessage());
    }

    private static string BertClassifier(string architecture, string labels) =>
        Set(Bert.Replace("\"BertModel\"", $"\"{architecture}\""), "id2label", labels);

    [Fact]
    public void A_bert_sequence_classifier_takes_its_classes_from_id2label_and_reads_the_pooler()
    {
        string json = BertClassifier("BertForSequenceClassification", "{\"0\": \"no\", \"1\": \"maybe\", \"2\": \"yes\"}");
        Type m = Compile(At("sst", json), Declared("sst", seqLen: 12), out string source);
        Assert.Equal(3, Constant(m, "Classes"));
        Assert.Contains("new(\"pooler.dense.weight\", new[] { 30, 30 }", source);
        Assert.Contains("new(\"classifier.weight\", new[] { 3, 30 }", source);
        Assert.Contains("Pooling.FirstForward(", source);
        Assert.Contains("Activations.TanhForward(", source);
        Assert.Contains("Activations.TanhBackward(", source);
        Assert.Contains("Pooling = global::TransformerGen.Pooling.FirstToken,", source);

        // Classes that contradict id2label, mean pooling, or the wrong head are each an error at their argument.
        Diagnostic d = SingleError(At("sst", json), Declared("sst", ", Classes = 2", seqLen: 12), "TG0043", "Classes = 2");
        Assert.Equal("Classes = 2 contradicts sst/config.json's \"id2label\": the classifier has 3 labels; leave Classes out to take the config's value", d.GetMessage());
        d = SingleError(At("sst", json), Declared("sst", ", Pooling = Pooling.Mean", seqLen: 12), "TG0043", "Pooling = Pooling.Mean");
        Assert.Equal("Pooling = Pooling.Mean contradicts sst/config.json's \"architectures\": its classifier reads the pooled [CLS] token; leave Pooling out to take the config's value", d.GetMessage());
        d = SingleError(At("sst", json), Declared("sst", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), "TG0042", "Head = EncoderHead.SentenceEmbedding");
        Assert.Equal("sst/config.json: \"architectures\": BertForSequenceClassification with EncoderHead.SentenceEmbedding cannot be compiled: "
            + "the checkpoint holds a sequence classifier; declare Head = EncoderHead.Classification (the default)", d.GetMessage());
    }

    [Fact]
    public void A_bert_token_classifier_and_a_roberta_classifier_name_their_heads_as_transformers_does()
    {
        string tagger = BertClassifier("BertForTokenClassification", "{\"0\": \"O\", \"1\": \"B-PER\", \"2\": \"I-PER\", \"3\": \"B-LOC\"}");
        Type m = Compile(At("ner", tagger), Declared("ner", ", Head = EncoderHead.Tagging", seqLen: 12), out string source);
        Assert.Equal(4, Constant(m, "Classes"));
        Assert.Contains("new(\"classifier.weight\", new[] { 4, 30 }", source);
        Assert.DoesNotContain("pooler.dense", source);

        string roberta = Set(Set(Set(Set(BertClassifier("RobertaForSequenceClassification", "{\"0\": \"LABEL_0\", \"1\": \"LABEL_1\"}"),
            "model_type", "\"roberta\""), "pad_token_id", "1"), "type_vocab_size", "1"), "max_position_embeddings", "22");
        Compile(At("roberta-sst", roberta), Declared("roberta-sst", seqLen: 12), out source);
        Assert.Contains("new(\"classifier.dense.weight\", new[] { 30, 30 }", source);
        Assert.Contains("new(\"classifier.out_proj.weight\", new[] { 2, 30 }", source);
        Assert.DoesNotContain("pooler.dense", source);

        // One label (a cross-encoder's score): no loss of its own, the caller's gradient of the scores seeds Backward.
        string score = Set(Bert.Replace("\"BertModel\"", "\"BertForSequenceClassification\""), "num_labels", "1");
        m = Compile(At("score", score), Declared("score", seqLen: 12), out source);
        Assert.Equal(1, Constant(m, "Classes"));
        Assert.Contains("SeededOutput = true,", source);
        Assert.DoesNotContain("CrossEntropy.", source);
        Assert.Contains("return 0f; // no loss of its own", source);
        // problem_type multi_label_classification (BCE on scores, as go_emotions models are trained): scores, no loss.
        m = Compile(At("multi", Set(BertClassifier("BertForSequenceClassification", "{\"0\": \"joy\", \"1\": \"anger\", \"2\": \"fear\"}"),
            "problem_type", "\"multi_label_classification\"")), Declared("multi", seqLen: 12), out source);
        Assert.Equal(3, Constant(m, "Classes"));
        Assert.Contains("SeededOutput = true,", source);
        Assert.Contains("a linear head gives 3 scores.", source);
        Assert.Equal("odd/config.json: \"problem_type\": ranking cannot be compiled: only single_label_classification, regression and multi_label_classification are known",
            Unsupported("odd", Set(BertClassifier("BertForSequenceClassification", "{\"0\": \"a\", \"1\": \"b\"}"), "problem_type", "\"ranking\""), ", Head = EncoderHead.Classification"));
        Assert.Equal("qa/config.json: \"architectures\": BertForQuestionAnswering cannot be compiled: only the sequence and token classification heads are compiled (or no head: sentence embeddings)",
            Unsupported("qa", Bert.Replace("\"BertModel\"", "\"BertForQuestionAnswering\""), ", Head = EncoderHead.SentenceEmbedding"));
        Assert.Equal("one/config.json: \"num_labels\": 1 cannot be compiled: a token classifier needs 2 labels or more",
            Unsupported("one", Set(Bert.Replace("\"BertModel\"", "\"BertForTokenClassification\""), "num_labels", "1"), ", Head = EncoderHead.Tagging"));
    }

    /// <summary>A size of the wrong JSON type is one problem (TG0042 naming it), not also a missing key (TG0044).</summary>
    [Fact]
    public void A_size_given_as_a_string_is_reported_once()
    {
        string message = Unsupported("quoted", Set(LlamaGqa, "hidden_size", "\"40\""));
        Assert.StartsWith("quoted/config.json: \"hidden_size\": ", message);
        Assert.EndsWith("cannot be compiled: an integer is expected", message);
    }

    /// <summary>Llama 3 configs list several end-of-sequence ids ("eos_token_id": [128001, 128008, 128009]); that is a valid config.</summary>
    [Fact]
    public void A_list_of_eos_token_ids_compiles()
    {
        string json = Set(LlamaGqa, "eos_token_id", "[2, 3]");
        RunClean(At("llama-3", json), Declared("llama-3"));
    }

    // ----- TG0043: an attribute argument contradicts the config -----

    [Fact]
    public void TG0043_DModel_contradicts_hidden_size()
    {
        string source = Declared("llama", ", DModel = 64");
        Diagnostic d = SingleError(At("llama", LlamaGqa), source, "TG0043", "DModel = 64");
        Assert.Equal("DModel = 64 contradicts llama/config.json's \"hidden_size\": 40; leave DModel out to take the config's value", d.GetMessage());
    }

    [Fact]
    public void TG0043_DModel_contradicts_gpt2_n_embd_and_an_agreeing_DModel_is_fine()
    {
        string source = Declared("gpt2", ", DModel = 64");
        Diagnostic d = SingleError(At("gpt2", Gpt2), source, "TG0043", "DModel = 64");
        Assert.Equal("DModel = 64 contradicts gpt2/config.json's \"n_embd\": 36; leave DModel out to take the config's value", d.GetMessage());

        RunClean(At("gpt2", Gpt2), Declared("gpt2", ", DModel = 36, Heads = 3, Layers = 2, Vocab = 53, DFF = 144"));
    }

    [Fact]
    public void TG0043_SeqLen_beyond_max_position_embeddings()
    {
        string source = Declared("qwen", seqLen: 49);
        Diagnostic d = SingleError(At("qwen", Qwen2), source, "TG0043", "SeqLen = 49");
        Assert.Equal("SeqLen = 49 contradicts qwen/config.json's \"max_position_embeddings\": the model knows 48 positions; leave SeqLen out to take the config's value", d.GetMessage());
    }

    [Fact]
    public void TG0043_SeqLen_beyond_gpt2_n_positions_and_exactly_n_positions_compiles()
    {
        string source = Declared("gpt2", seqLen: 25);
        Diagnostic d = SingleError(At("gpt2", Gpt2), source, "TG0043", "SeqLen = 25");
        Assert.Equal("SeqLen = 25 contradicts gpt2/config.json's \"n_positions\": the model knows 24 positions; leave SeqLen out to take the config's value", d.GetMessage());

        var result = RunClean(At("gpt2", Gpt2), Declared("gpt2", seqLen: 24));
        Assert.Contains("public const int SeqLen = 24;", result.GeneratedSource);
    }

    [Fact]
    public void TG0043_TiedEmbeddings_contradicts_tie_word_embeddings()
    {
        string source = Declared("llama", ", TiedEmbeddings = true");
        Diagnostic d = SingleError(At("llama", LlamaGqa), source, "TG0043", "TiedEmbeddings = true");
        Assert.Equal("TiedEmbeddings = true contradicts llama/config.json's \"tie_word_embeddings\": false; leave TiedEmbeddings out to take the config's value", d.GetMessage());
    }

    [Fact]
    public void TG0043_TiedEmbeddings_contradicts_gpt2s_default_of_tied()
    {
        string source = Declared("gpt2", ", TiedEmbeddings = false");
        Diagnostic d = SingleError(At("gpt2", Gpt2), source, "TG0043", "TiedEmbeddings = false");
        Assert.Equal("TiedEmbeddings = false contradicts gpt2/config.json's \"tie_word_embeddings\": true; leave TiedEmbeddings out to take the config's value", d.GetMessage());
    }

    [Fact]
    public void TG0043_Positional_set_against_the_family_is_located_on_it()
    {
        string source = Declared("gpt2", ", Positional = Positional.Rotary");
        Diagnostic d = SingleError(At("gpt2", Gpt2), source, "TG0043", "Positional = Positional.Rotary");
        Assert.EndsWith("contradicts gpt2/config.json's \"model_type\": the family fixes how positions enter; leave Positional out to take the config's value", d.GetMessage());

        // The same value as the family's is no contradiction.
        RunClean(At("gpt2", Gpt2), Declared("gpt2", ", Positional = Positional.Learned"));
    }

    /// <summary>The message repeats an argument as it was written (an enum member by name, a number by value), as TG0002–TG0005 do.</summary>
    [Theory]
    [InlineData("Positional = Positional.Rotary", "Positional", "model_type", "the family fixes how positions enter")]
    [InlineData("Norm = NormPlacement.Post", "Norm", "model_type", "the family fixes where the norms sit")]
    [InlineData("Activation = Activation.Relu", "Activation", "activation_function", "GELU (tanh approximation, gelu_new)")]
    [InlineData("Classes = 3", "Classes", "model_type", "the config fixes the architecture")]
    public void TG0043_names_the_argument_as_written(string argument, string name, string key, string meaning)
    {
        string source = Declared("gpt2", ", " + argument);
        Diagnostic d = SingleError(At("gpt2", Gpt2), source, "TG0043", argument);
        Assert.Equal($"{argument} contradicts gpt2/config.json's \"{key}\": {meaning}; leave {name} out to take the config's value", d.GetMessage());
    }

    // ----- TG0044: the config lacks a key the architecture needs -----

    [Fact]
    public void TG0044_a_llama_without_hidden_size()
    {
        Diagnostic d = SingleError(At("llama", Remove(LlamaGqa, "hidden_size")), Declared("llama"), "TG0044", ConfigArgument("llama"));
        Assert.Equal("llama/config.json has no \"hidden_size\", which a llama model needs", d.GetMessage());
    }

    [Fact]
    public void TG0044_a_gpt2_without_n_embd_or_hidden_size()
    {
        Diagnostic d = SingleError(At("gpt2", Remove(Gpt2, "n_embd")), Declared("gpt2"), "TG0044", ConfigArgument("gpt2"));
        Assert.Equal("gpt2/config.json has no \"n_embd\", which a gpt2 model needs", d.GetMessage());
    }

    [Fact]
    public void TG0044_a_config_without_model_type()
    {
        Diagnostic d = SingleError(At("anon", Remove(Qwen2, "model_type")), Declared("anon"), "TG0044", ConfigArgument("anon"));
        Assert.Equal("anon/config.json has no \"model_type\", which a Hugging Face model needs", d.GetMessage());
    }

    // ----- valid configs of each family -----

    private static Type Compile((string, string)[] files, string source, out string generated)
    {
        GeneratorHarness.Result result = RunClean(files, source);
        generated = result.GeneratedSource;
        return GeneratorHarness.Load(result).GetType("Demo.M") ?? throw new Xunit.Sdk.XunitException("no Demo.M in the output");
    }

    private static void Sizes(Type m, int vocab, int dModel, int heads, int headDim, int layers, int dff, int parameters)
    {
        Assert.Equal(vocab, Constant(m, "Vocab"));
        Assert.Equal(dModel, Constant(m, "DModel"));
        Assert.Equal(heads, Constant(m, "Heads"));
        Assert.Equal(headDim, Constant(m, "HeadDim"));
        Assert.Equal(layers, Constant(m, "Layers"));
        Assert.Equal(dff, Constant(m, "DFF"));
        Assert.Equal((long)parameters, Constant(m, "ParameterCount"));
    }

    [Fact]
    public void Gpt2_compiles_with_conv1d_names_tanh_gelu_and_learned_positions()
    {
        Type m = Compile(At("gpt2", Gpt2), Declared("gpt2", seqLen: 16), out string source);
        // wte 53·36 + wpe 24·36 + 2 × (ln_1 72 + c_attn 36·108+108 + c_proj 36·36+36 + ln_2 72 + c_fc 36·144+144 + c_proj 144·36+36) + ln_f 72
        Sizes(m, vocab: 53, dModel: 36, heads: 3, headDim: 12, layers: 2, dff: 144, parameters: 1908 + 864 + 2 * 16020 + 72);
        Assert.Null(m.GetField("KvHeads"));
        Assert.Equal(16, Constant(m, "SeqLen"));
        Assert.Contains("new(\"wpe.weight\", new[] { 24, 36 }", source);
        Assert.Contains("new(\"h.0.attn.c_attn.weight\", new[] { 108, 36 }, ", source);
        Assert.Contains("new(\"h.1.mlp.c_proj.weight\", new[] { 36, 144 }, ", source);
        foreach (string line in source.Split('\n').Where(l => l.Contains("new(\"h.") && l.Contains(".weight\"") && !l.Contains("ln_")))
            Assert.EndsWith("{ StoredTransposed = true },", line.TrimEnd());
        Assert.Contains("new(\"ln_f.bias\", new[] { 36 }", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Gpt2,", source);
        Assert.Contains("BosToken = 50, EosToken = 50,", source);
        Assert.Contains("Activations.GeluTanhForward(", source);
        Assert.DoesNotContain("RotaryTables", source);
        Assert.DoesNotContain("kvHeads:", source);
        Assert.DoesNotContain("lm_head", source);
    }

    [Fact]
    public void Gpt2_variant_with_n_inner_erf_gelu_and_its_own_epsilon()
    {
        string json = Set(Set(Set(Set(Gpt2, "n_inner", "100"), "activation_function", "\"gelu\""), "layer_norm_epsilon", "1e-06"), "n_layer", "1");
        Type m = Compile(At("gpt2-variant", json), Declared("gpt2-variant"), out string source);
        Sizes(m, vocab: 53, dModel: 36, heads: 3, headDim: 12, layers: 1, dff: 100, parameters: 1908 + 864 + (72 + 3996 + 1332 + 72 + 3700 + 3636) + 72);
        Assert.Contains("new(\"h.0.mlp.c_fc.weight\", new[] { 100, 36 }", source);
        Assert.DoesNotContain("\"h.1.", source);
        Assert.Contains("Activations.GeluForward(", source);
        Assert.DoesNotContain("GeluTanh", source);
        Assert.Contains(", 16, 36, 1E-06f);", source); // the LayerNorm calls carry the config's eps
    }

    [Fact]
    public void Bert_compiles_as_a_post_norm_encoder_with_token_types_and_mean_pooling()
    {
        Type m = Compile(At("bert", Bert), Declared("bert", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), out string source);
        // word 41·30 + types 2·30 + positions 20·30 + LN 60 + 2 × (q,k,v 3·930 + out 930 + LN 60 + 30·37+37 + 37·30+30 + LN 60)
        Sizes(m, vocab: 41, dModel: 30, heads: 3, headDim: 10, layers: 2, dff: 37, parameters: 1230 + 60 + 600 + 60 + 2 * 6127);
        Assert.Contains("new(\"embeddings.token_type_embeddings.weight\", new[] { 2, 30 }", source);
        Assert.Contains("new(\"embeddings.position_embeddings.weight\", new[] { 20, 30 }", source);
        Assert.Contains("new(\"encoder.layer.0.attention.self.key.weight\", new[] { 30, 30 }", source);
        Assert.Contains("new(\"encoder.layer.1.output.LayerNorm.bias\", new[] { 30 }", source);
        Assert.DoesNotContain("StoredTransposed", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Bert,", source);
        Assert.Contains("PadToken = 0,", source);
        Assert.Contains(", 1E-12f);", source);
        Assert.Contains("Activations.GeluForward(", source);
        Assert.Contains("Pooling.MeanForward(", source);
        Assert.Contains("after each residual add", source);
    }

    [Theory]
    [InlineData("roberta")]
    [InlineData("xlm-roberta")]
    public void Roberta_compiles_as_bert_with_positions_after_the_padding_id(string modelType)
    {
        // RoBERTa's config: pad 1, one token type, 22 rows of positions of which 2..21 are used (SeqLen at most 20).
        string json = Set(Set(Set(Set(Bert, "model_type", $"\"{modelType}\""), "pad_token_id", "1"), "type_vocab_size", "1"), "max_position_embeddings", "22");
        Type m = Compile(At(modelType, json), Declared(modelType, ", Head = EncoderHead.SentenceEmbedding", seqLen: 20), out string source);
        Assert.Equal(1230L + 30 + 660 + 60 + 2 * 6127, Constant(m, "ParameterCount"));
        Assert.Contains("new(\"embeddings.position_embeddings.weight\", new[] { 22, 30 }", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Roberta,", source);
        Assert.Contains("PadToken = 1,", source);
        // Position p reads row 2 + p: the positional add starts 2 rows (60 floats) into the table.
        int offset = int.Parse(System.Text.RegularExpressions.Regex.Match(source, @"new\(""embeddings\.position_embeddings\.weight"", new\[\] \{ 22, 30 \}, (\d+),").Groups[1].Value);
        Assert.Contains($"Positional.Add(a.Slice(0, 1200), p.Slice({offset + 60}, 600), 2, 20, 30);", source);

        Diagnostic d = SingleError(At(modelType, json), Declared(modelType, ", Head = EncoderHead.SentenceEmbedding", seqLen: 21), "TG0043", "SeqLen = 21");
        Assert.Equal($"SeqLen = 21 contradicts {modelType}/config.json's \"max_position_embeddings\": the model knows 20 positions (22 rows, positions counted from pad_token_id + 1 = 2); "
            + "leave SeqLen out to take the config's value", d.GetMessage());
    }

    [Fact]
    public void A_sentence_embedding_pools_by_the_mean_unless_told_to_take_the_cls_token()
    {
        Compile(At("bert", Bert), Declared("bert", ", Head = EncoderHead.SentenceEmbedding, Pooling = Pooling.FirstToken", seqLen: 12), out string source);
        Assert.Contains("Pooling.FirstForward(", source);
        Assert.DoesNotContain("Pooling.MeanForward(", source);
        Assert.Contains("Pooling = global::TransformerGen.Pooling.FirstToken,", source);
        Assert.Contains("The sequence is pooled (first token) and L2-normalized into a sentence embedding.", source);
        Compile(At("bert", Bert), Declared("bert", ", Head = EncoderHead.SentenceEmbedding", seqLen: 12), out source);
        Assert.Contains("Pooling = global::TransformerGen.Pooling.Mean,", source);
    }

    [Fact]
    public void Bert_variant_with_three_token_types_and_tanh_gelu()
    {
        string json = Set(Set(Bert, "type_vocab_size", "3"), "hidden_act", "\"gelu_new\"");
        Type m = Compile(At("bert-variant", json), Declared("bert-variant", ", Head = EncoderHead.SentenceEmbedding"), out string source);
        Assert.Equal(1230L + 90 + 600 + 60 + 2 * 6127, Constant(m, "ParameterCount"));
        Assert.Contains("new(\"embeddings.token_type_embeddings.weight\", new[] { 3, 30 }", source);
        Assert.Contains("Activations.GeluTanhForward(", source);
    }

    [Fact]
    public void Llama_with_grouped_query_attention_and_an_explicit_head_dim()
    {
        Type m = Compile(At("llama-gqa", LlamaGqa), Declared("llama-gqa", seqLen: 13), out string source);
        // embed 47·40 + 2 × (40 + q 48·40 + k 24·40 + v 24·40 + o 40·48 + 40 + 3 · 52·40) + norm 40 + lm_head 47·40
        Sizes(m, vocab: 47, dModel: 40, heads: 4, headDim: 12, layers: 2, dff: 52, parameters: 1880 + 2 * 12080 + 40 + 1880);
        Assert.Equal(2, Constant(m, "KvHeads"));
        Assert.Contains("public const int KvHeads = 2;", source);
        Assert.Contains("new(\"model.layers.1.self_attn.q_proj.weight\", new[] { 48, 40 }", source);
        Assert.Contains("new(\"model.layers.1.self_attn.k_proj.weight\", new[] { 24, 40 }", source);
        Assert.Contains("new(\"model.layers.1.self_attn.o_proj.weight\", new[] { 40, 48 }", source);
        Assert.Contains("new(\"model.layers.0.mlp.gate_proj.weight\", new[] { 52, 40 }", source);
        Assert.Contains("new(\"lm_head.weight\", new[] { 47, 40 }", source);
        Assert.DoesNotContain(".bias\"", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Llama,", source);
        Assert.Contains("BosToken = 1, EosToken = 2,", source);
        Assert.Contains(", 13, 12, 10000f);", source); // RotaryTables(cos, sin, SeqLen, HeadDim, theta)
        Assert.Contains("RotaryTables(", source);
        Assert.Contains("kvHeads: 2);", source);
        Assert.Contains(", 1E-05f);", source);
        Assert.Contains("RmsNorm.Forward(", source);
        Assert.DoesNotContain("LayerNorm.Forward(", source);
    }

    [Fact]
    public void A_compiled_llama_runs_forward_and_backward()
    {
        Type m = Compile(At("llama-gqa", LlamaGqa), Declared("llama-gqa", seqLen: 4), out _);
        var model = (TransformerModel)Activator.CreateInstance(m, 3UL)!;
        int[] tokens = [1, 5, 9, 13, 17, 21, 25, 29], targets = [5, 9, 13, 17, 21, 25, 29, 33];
        float loss = model.Forward(tokens, targets);
        Assert.InRange(loss, MathF.Log(47) - 0.3f, MathF.Log(47) + 0.3f);
        model.ZeroGrad();
        model.Backward();
        Assert.Contains(model.Gradients.ToArray(), g => g != 0);
    }

    [Fact]
    public void Llama_with_multi_query_attention_tied_embeddings_and_theta_1e5()
    {
        Type m = Compile(At("llama-mqa", LlamaMqa), Declared("llama-mqa", seqLen: 10), out string source);
        // embed 45·30 + 3 × (30 + q 900 + k 300 + v 300 + o 900 + 30 + 3 · 44·30) + norm 30, tied head
        Sizes(m, vocab: 45, dModel: 30, heads: 3, headDim: 10, layers: 3, dff: 44, parameters: 1350 + 3 * 6420 + 30);
        Assert.Equal(1, Constant(m, "KvHeads"));
        Assert.Contains("new(\"model.layers.2.self_attn.v_proj.weight\", new[] { 10, 30 }", source);
        Assert.DoesNotContain("lm_head", source);
        Assert.Contains(", 10, 10, 100000f);", source);
        Assert.Contains("kvHeads: 1);", source);
    }

    [Fact]
    public void Llama_variant_without_head_dim_with_biases_and_theta_in_rope_parameters()
    {
        string json = Remove(Remove(LlamaGqa, "head_dim"), "rope_theta");
        json = Set(Set(Set(json, "attention_bias", "true"), "mlp_bias", "true"), "rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}");
        Type m = Compile(At("llama-bias", json), Declared("llama-bias"), out string source);
        // head_dim = 40 / 4 = 10; every projection has a bias
        Sizes(m, vocab: 47, dModel: 40, heads: 4, headDim: 10, layers: 2, dff: 52,
            parameters: 1880 + 2 * (40 + 1640 + 820 + 820 + 1640 + 40 + 2132 + 2132 + 2120) + 40 + 1880);
        Assert.Contains("new(\"model.layers.0.self_attn.k_proj.bias\", new[] { 20 }", source);
        Assert.Contains("new(\"model.layers.0.self_attn.o_proj.bias\", new[] { 40 }", source);
        Assert.Contains("new(\"model.layers.1.mlp.down_proj.bias\", new[] { 40 }", source);
        Assert.Contains(", 8, 10, 500000f);", source);
    }

    [Fact]
    public void Qwen2_has_qkv_biases_only_and_theta_1e6()
    {
        Type m = Compile(At("qwen2", Qwen2), Declared("qwen2", seqLen: 12), out string source);
        // embed 51·36 + 2 × (36 + q 36·36+36 + k 12·36+12 + v 12·36+12 + o 36·36 + 36 + 3 · 44·36) + norm 36, tied
        Sizes(m, vocab: 51, dModel: 36, heads: 6, headDim: 6, layers: 2, dff: 44, parameters: 1836 + 2 * 8340 + 36);
        Assert.Equal(2, Constant(m, "KvHeads"));
        Assert.Contains("new(\"model.layers.0.self_attn.q_proj.bias\", new[] { 36 }", source);
        Assert.Contains("new(\"model.layers.0.self_attn.v_proj.bias\", new[] { 12 }", source);
        Assert.DoesNotContain("o_proj.bias", source);
        Assert.DoesNotContain("mlp.down_proj.bias", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Qwen2,", source);
        Assert.Contains(", 12, 6, 1000000f);", source);
        Assert.Contains("kvHeads: 2);", source);
        Assert.Contains(", 1E-06f);", source);
    }

    private const string DistilBertConfig = """
        {
          "activation": "gelu",
          "architectures": ["DistilBertForSequenceClassification"],
          "dim": 26,
          "hidden_dim": 41,
          "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
          "max_position_embeddings": 17,
          "model_type": "distilbert",
          "n_heads": 2,
          "n_layers": 2,
          "pad_token_id": 0,
          "sinusoidal_pos_embds": false,
          "vocab_size": 37
        }
        """;

    [Fact]
    public void DistilBert_compiles_with_its_own_names_no_token_types_and_a_relu_pre_classifier()
    {
        Type m = Compile(At("sst2", DistilBertConfig), Declared("sst2", seqLen: 12), out string source);
        Assert.Equal(2, Constant(m, "Classes"));
        Assert.Contains("new(\"transformer.layer.1.attention.q_lin.weight\", new[] { 26, 26 }", source);
        Assert.Contains("new(\"transformer.layer.0.sa_layer_norm.weight\", new[] { 26 }", source);
        Assert.Contains("new(\"transformer.layer.0.ffn.lin1.weight\", new[] { 41, 26 }", source);
        Assert.Contains("new(\"pre_classifier.weight\", new[] { 26, 26 }", source);
        Assert.DoesNotContain("token_type", source);
        Assert.Contains("Activations.ReluForward(", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.DistilBert,", source);
        Assert.Contains(", 1E-12f);", source);

        Diagnostic d = SingleError(At("sst2", DistilBertConfig), Declared("sst2", ", DModel = 32", seqLen: 12), "TG0043", "DModel = 32");
        Assert.Equal("DModel = 32 contradicts sst2/config.json's \"dim\": 26; leave DModel out to take the config's value", d.GetMessage());
        Assert.Equal("sin/config.json: \"sinusoidal_pos_embds\": true cannot be compiled: a fixed sinusoidal position table is not implemented",
            Unsupported("sin", Set(DistilBertConfig, "sinusoidal_pos_embds", "true")));
    }

    [Fact]
    public void Phi3_reads_its_fused_projections_and_refuses_a_window_shorter_than_SeqLen()
    {
        // Llama's GQA fixture as Phi-3 names it: one qkv_proj (Q | K | V rows) and one gate_up_proj (gate | up rows).
        string json = Set(Set(Set(LlamaGqa, "model_type", "\"phi3\""), "sliding_window", "13"), "original_max_position_embeddings", "64");
        Compile(At("phi3", json), Declared("phi3", seqLen: 13), out string source);
        Assert.Contains("new(\"model.layers.1.self_attn.qkv_proj.weight\", new[] { 96, 40 }", source); // 48 + 24 + 24 rows
        Assert.Contains("new(\"model.layers.1.mlp.gate_up_proj.weight\", new[] { 104, 40 }", source); // 2 × 52 rows
        Assert.DoesNotContain("q_proj", source.Replace("qkv_proj", ""));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Phi3,", source);
        Assert.Contains("Activations.SwiGluForward(", source);
        Assert.Contains(", 1E-05f);", source); // the fixture's own eps
        Compile(At("phi3-default", json.Replace("\"rms_norm_eps\": 1e-05,", "")), Declared("phi3-default", seqLen: 13), out source);
        Assert.Contains(", 1E-05f);", source); // Phi3Config's default, not Llama's 1e-6

        Assert.Equal("phi3/config.json: \"sliding_window\": 7 cannot be compiled: a window shorter than SeqLen = 8 is not implemented (one at least as long has no effect)",
            Unsupported("phi3", Set(json, "sliding_window", "7")));
    }

    [Fact]
    public void Qwen3_normalizes_each_query_and_key_head_before_the_rotation()
    {
        // Qwen2's fixture as Qwen3 declares it: no q/k/v biases (attention_bias false), an explicit head_dim 8 (6·8 ≠ 36).
        string json = Set(Set(Set(Qwen2, "model_type", "\"qwen3\""), "head_dim", "8"), "attention_bias", "false");
        Type m = Compile(At("qwen3", json), Declared("qwen3", seqLen: 12), out string source);
        // embed 51·36 + 2 × (36 + q 48·36 + k 16·36 + v 16·36 + o 36·48 + q_norm 8 + k_norm 8 + 36 + 3 · 44·36) + norm 36, tied
        Sizes(m, vocab: 51, dModel: 36, heads: 6, headDim: 8, layers: 2, dff: 44, parameters: 1836 + 2 * (36 + 1728 + 576 + 576 + 1728 + 16 + 36 + 4752) + 36);
        Assert.Contains("new(\"model.layers.1.self_attn.q_norm.weight\", new[] { 8 }", source);
        Assert.Contains("new(\"model.layers.1.self_attn.k_norm.weight\", new[] { 8 }", source);
        Assert.DoesNotContain("q_proj.bias", source);
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Qwen3,", source);
        // Forward, backward and the cached pass each normalize the heads between the projection and the rotation.
        // Two layers × (forward, cached pass), each call right before its layer's rotation; one backward call per layer.
        Assert.Equal(4, System.Text.RegularExpressions.Regex.Matches(source, @"RmsNorm\.HeadsForward\([^;]*, 6, 2, 8, 1E-06f\);\s*// layer \d · rotary").Count);
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(source, @"RmsNorm\.HeadsBackward\(").Count);

        Assert.Equal("qwen3/config.json: \"use_sliding_window\": true cannot be compiled: sliding-window attention is not implemented",
            Unsupported("qwen3", Set(json, "use_sliding_window", "true")));
    }

    /// <summary>
    /// The config's folder is written into the model's XML &lt;remarks&gt;; a project that builds documentation
    /// (GenerateDocumentationFile, so DocumentationMode.Diagnose) must not get CS1570 from a folder such as "R&amp;D".
    /// </summary>
    [Fact]
    public void A_config_folder_with_xml_characters_keeps_the_documentation_well_formed()
    {
        var parseOptions = new CSharpParseOptions(LanguageVersion.Latest, DocumentationMode.Diagnose);
        string source = "using TransformerGen;\nnamespace Demo;\n/// <summary>A model.</summary>\n[TransformerModel(Config = \"models/R&D/config.json\", SeqLen = 8)]\npublic partial class M { }\n";
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation()
            .AddSyntaxTrees(CSharpSyntaxTree.ParseText(source, parseOptions, path: "Model0.cs"));
        GeneratorDriver driver = CSharpGeneratorDriver.Create([new TransformerModelGenerator().AsSourceGenerator()],
            additionalTexts: [new Text("/repo/models/R&D/config.json", Gpt2)], parseOptions: parseOptions);
        driver.RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        Assert.Empty(diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    // ----- which additional file a Config path names -----

    private static readonly (string, string)[] TwoConfigs =
    [
        ("/any/root/configs/a/config.json", Gpt2),
        ("/any/root/configs/b/config.json", Set(Gpt2, "n_embd", "48")),
    ];

    [Theory]
    [InlineData("\"configs/a/config.json\"", 36)]
    [InlineData("\"configs/b/config.json\"", 48)]
    [InlineData("\"configs\\\\b\\\\config.json\"", 48)] // backslashes, escaped
    [InlineData("@\"configs\\a\\config.json\"", 36)] // backslashes, verbatim
    [InlineData("\"./configs/b/config.json\"", 48)]
    [InlineData("\"/any/root/configs/a/config.json\"", 36)]
    public void A_config_path_picks_its_own_folder_among_files_of_the_same_name(string literal, int dModel)
    {
        var result = RunClean(TwoConfigs, Model($"Config = {literal}, SeqLen = 4"));
        Assert.Contains($"public const int DModel = {dModel};", result.GeneratedSource);
    }

    [Fact]
    public void Two_models_in_one_project_each_read_their_own_config()
    {
        string first = Model("Config = \"configs/a/config.json\", SeqLen = 4", "A");
        string second = Model("Config = \"configs/b/config.json\", SeqLen = 4", "B");
        var result = RunClean(TwoConfigs, first, second);
        string a = result.Run.GeneratedTrees.Single(t => t.FilePath.Contains("Demo.A")).ToString();
        string b = result.Run.GeneratedTrees.Single(t => t.FilePath.Contains("Demo.B")).ToString();
        Assert.Contains("public const int DModel = 36;", a);
        Assert.Contains("public const int DModel = 48;", b);
    }

    [Fact]
    public void An_additional_file_with_windows_separators_matches()
    {
        var result = RunClean([("C:\\src\\proj\\configs\\a\\config.json", Qwen2)], Model("Config = \"configs/a/config.json\", SeqLen = 4"));
        Assert.Contains("Family = global::TransformerGen.CheckpointFamily.Qwen2,", result.GeneratedSource);
    }

    [Theory]
    [InlineData("configs/c/config.json")] // another folder, same file name
    [InlineData("a/config.json")] // only a whole folder name matches: not /any/root/configs/xa/
    public void A_config_in_another_folder_does_not_match(string path)
    {
        (string, string)[] files = [("/any/root/configs/b/config.json", Gpt2), ("/any/root/configs/xa/config.json", Gpt2)];
        string source = Model($"Config = \"{path}\", SeqLen = 4");
        Diagnostic d = SingleError(files, source, "TG0040", $"Config = \"{path}\"");
        Assert.Equal($"Config = \"{path}\" names no file of this project; add <TransformerConfig Include=\"{path}\" /> "
            + "(config files found: /any/root/configs/b/config.json, /any/root/configs/xa/config.json)", d.GetMessage());
    }

    /// <summary>Only "./" and "../" segments are relative markers; the dot of a dot-folder is part of its name.</summary>
    [Fact]
    public void A_dot_folder_is_not_the_folder_without_the_dot()
    {
        string source = Model("Config = \".cache/a/config.json\", SeqLen = 4");
        Diagnostic d = SingleError([("/any/root/cache/a/config.json", Gpt2)], source, "TG0040", "Config = \".cache/a/config.json\"");
        Assert.StartsWith("Config = \".cache/a/config.json\" names no file of this project", d.GetMessage());
    }

    private sealed class Text(string path, string text) : AdditionalText
    {
        public override string Path => path;

        public override Microsoft.CodeAnalysis.Text.SourceText GetText(System.Threading.CancellationToken cancellationToken = default) =>
            Microsoft.CodeAnalysis.Text.SourceText.From(text, Encoding.UTF8);
    }
}
