using System;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Hugging Face config.json texts (copies of tests/Reference.Tests/HuggingFace/Configs/*/config.json) and small helpers
/// to edit them and to run the generator with them as additional files, for <see cref="ConfigTests"/> and
/// <see cref="ConfigIncrementalTests"/>.
/// </summary>
internal static class ConfigFixtures
{
    public const string Gpt2 = """
        {
          "activation_function": "gelu_new",
          "architectures": ["GPT2LMHeadModel"],
          "attn_pdrop": 0.1,
          "bos_token_id": 50,
          "embd_pdrop": 0.1,
          "eos_token_id": 50,
          "initializer_range": 0.02,
          "layer_norm_epsilon": 1e-05,
          "model_type": "gpt2",
          "n_ctx": 24,
          "n_embd": 36,
          "n_head": 3,
          "n_inner": null,
          "n_layer": 2,
          "n_positions": 24,
          "reorder_and_upcast_attn": false,
          "resid_pdrop": 0.1,
          "scale_attn_by_inverse_layer_idx": false,
          "scale_attn_weights": true,
          "summary_activation": null,
          "summary_first_dropout": 0.1,
          "summary_proj_to_labels": true,
          "summary_type": "cls_index",
          "summary_use_proj": true,
          "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
          "torch_dtype": "float32",
          "transformers_version": "4.44.2",
          "use_cache": true,
          "vocab_size": 53
        }
        """;

    public const string Bert = """
        {
          "architectures": ["BertModel"],
          "attention_probs_dropout_prob": 0.1,
          "classifier_dropout": null,
          "gradient_checkpointing": false,
          "hidden_act": "gelu",
          "hidden_dropout_prob": 0.1,
          "hidden_size": 30,
          "initializer_range": 0.02,
          "intermediate_size": 37,
          "layer_norm_eps": 1e-12,
          "max_position_embeddings": 20,
          "model_type": "bert",
          "num_attention_heads": 3,
          "num_hidden_layers": 2,
          "pad_token_id": 0,
          "position_embedding_type": "absolute",
          "torch_dtype": "float32",
          "transformers_version": "4.44.2",
          "type_vocab_size": 2,
          "use_cache": true,
          "vocab_size": 41
        }
        """;

    public const string LlamaGqa = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "head_dim": 12,
          "hidden_act": "silu",
          "hidden_size": 40,
          "initializer_range": 0.02,
          "intermediate_size": 52,
          "max_position_embeddings": 32,
          "mlp_bias": false,
          "model_type": "llama",
          "num_attention_heads": 4,
          "num_hidden_layers": 2,
          "num_key_value_heads": 2,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_scaling": null,
          "rope_theta": 10000.0,
          "tie_word_embeddings": false,
          "torch_dtype": "float32",
          "transformers_version": "4.44.2",
          "use_cache": true,
          "vocab_size": 47
        }
        """;

    public const string LlamaMqa = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 1,
          "eos_token_id": 2,
          "hidden_act": "silu",
          "hidden_size": 30,
          "initializer_range": 0.02,
          "intermediate_size": 44,
          "max_position_embeddings": 40,
          "mlp_bias": false,
          "model_type": "llama",
          "num_attention_heads": 3,
          "num_hidden_layers": 3,
          "num_key_value_heads": 1,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_interleaved": false,
          "rope_scaling": null,
          "rope_theta": 100000.0,
          "tie_word_embeddings": true,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.44.2",
          "use_cache": true,
          "vocab_size": 45
        }
        """;

    public const string Qwen2 = """
        {
          "architectures": ["Qwen2ForCausalLM"],
          "attention_dropout": 0.0,
          "bos_token_id": 50,
          "eos_token_id": 50,
          "hidden_act": "silu",
          "hidden_size": 36,
          "initializer_range": 0.02,
          "intermediate_size": 44,
          "max_position_embeddings": 48,
          "max_window_layers": 2,
          "model_type": "qwen2",
          "num_attention_heads": 6,
          "num_hidden_layers": 2,
          "num_key_value_heads": 2,
          "rms_norm_eps": 1e-06,
          "rope_scaling": null,
          "rope_theta": 1000000.0,
          "sliding_window": 48,
          "tie_word_embeddings": true,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.44.2",
          "use_cache": true,
          "use_mrope": false,
          "use_sliding_window": false,
          "vocab_size": 51
        }
        """;

    private const string Scalar = "null|true|false|-?[0-9][0-9.eE+-]*|\"[^\"]*\"";

    /// <summary>The config with <paramref name="key"/> set to the JSON <paramref name="value"/>: replaced where it is, else added first.</summary>
    public static string Set(string json, string key, string value)
    {
        var existing = new Regex("\"" + Regex.Escape(key) + "\"\\s*:\\s*(" + Scalar + ")");
        if (existing.IsMatch(json)) return existing.Replace(json, "\"" + key + "\": " + value, 1);
        int open = json.IndexOf('{');
        return json.Substring(0, open + 1) + "\n  \"" + key + "\": " + value + "," + json.Substring(open + 1);
    }

    /// <summary>The config without <paramref name="key"/> (which must be there, followed by a comma).</summary>
    public static string Remove(string json, string key)
    {
        var member = new Regex("\"" + Regex.Escape(key) + "\"\\s*:\\s*(" + Scalar + ")\\s*,\\s*");
        Assert.Matches(member, json);
        return member.Replace(json, "", 1);
    }

    /// <summary>A model declared with <paramref name="arguments"/> in namespace Demo.</summary>
    public static string Model(string arguments, string name = "M") => $$"""
        using TransformerGen;
        namespace Demo;
        [TransformerModel({{arguments}})]
        public partial class {{name}} { }
        """;

    /// <summary>Runs the generator with the files as additional texts, requiring no generator error or warning and a compilation without warnings.</summary>
    public static GeneratorHarness.Result RunClean((string Path, string Text)[] files, params string[] sources) =>
        RunClean(files, System.Collections.Immutable.ImmutableDictionary<string, string>.Empty, sources);

    /// <summary>As <see cref="RunClean((string Path, string Text)[], string[])"/>, with the project's properties (<c>build_property.Name</c> keys).</summary>
    public static GeneratorHarness.Result RunClean((string Path, string Text)[] files, System.Collections.Immutable.ImmutableDictionary<string, string> globalOptions, params string[] sources)
    {
        GeneratorHarness.Result result = GeneratorHarness.RunWith(files, globalOptions, sources);
        var bad = result.Problems.Concat(result.CompilationDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning)).ToList();
        if (bad.Count > 0)
            throw new Xunit.Sdk.XunitException("expected clean output, got:\n" + string.Join("\n", bad) + "\n\n" + GeneratorHarness.Numbered(result.GeneratedSource));
        Assert.Contains(result.GeneratorDiagnostics, d => d.Id == "TG1000");
        return result;
    }

    /// <summary>
    /// Runs the generator and returns its one problem, checking it is an error that underlines exactly
    /// <paramref name="underlined"/> in <paramref name="source"/> and that no code was generated.
    /// </summary>
    public static Diagnostic SingleError((string Path, string Text)[] files, string source, string id, string underlined)
    {
        GeneratorHarness.Result result = GeneratorHarness.RunWith(files, source);
        var problems = result.Problems.ToList();
        Assert.True(problems.Count == 1, problems.Count == 0
            ? $"expected {id}, got no diagnostic: the model compiled ({result.Run.GeneratedTrees.Length} generated file(s))"
            : "expected one diagnostic, got:\n" + string.Join("\n", problems));
        Diagnostic d = problems[0];
        Assert.Equal(id, d.Id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.NotEqual(Location.None, d.Location);
        Assert.Equal(underlined, source.Substring(d.Location.SourceSpan.Start, d.Location.SourceSpan.Length));
        Assert.Empty(result.Run.GeneratedTrees);
        return d;
    }

    /// <summary>A public constant of the generated model type, read by reflection from the loaded assembly.</summary>
    public static object? Constant(Type type, string name) =>
        (type.GetField(name, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
         ?? throw new Xunit.Sdk.XunitException($"{type.Name} has no constant {name}")).GetRawConstantValue();
}
