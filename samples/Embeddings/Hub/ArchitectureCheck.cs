using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace TransformerGen.Samples.Hub;

/// <summary>
/// Compares a downloaded folder's config.json with the config a model was compiled from, on the keys that fix the
/// architecture (sizes, norms, activation, positions). The generated code has every size built in, so weights of
/// another shape cannot load, and a different eps, rope_theta or activation would load and compute wrong numbers;
/// this says which keys differ before any weights are read. Compiled into samples/Embeddings, samples/Chat and
/// samples/Translate.
/// </summary>
internal static class ArchitectureCheck
{
    /// <summary>A key and the value the family's config class gives it when config.json leaves it out.</summary>
    private sealed record Key(string Name, Func<JsonElement, string?> Default);

    private static Key Required(string name) => new(name, _ => null);

    private static Key Defaults(string name, string value) => new(name, _ => value);

    // Defaults as transformers' BertConfig, LlamaConfig/MistralConfig/Qwen2Config and GPT2Config declare them.
    private static readonly Key[] Bert =
    [
        Required("vocab_size"), Required("hidden_size"), Required("num_hidden_layers"), Required("num_attention_heads"),
        Required("intermediate_size"), Required("max_position_embeddings"), Defaults("type_vocab_size", "2"),
        Defaults("layer_norm_eps", Number(1e-12)), Defaults("hidden_act", "gelu"), Defaults("position_embedding_type", "absolute"),
        Defaults("pad_token_id", "0"),
    ];

    // ElectraConfig's: BERT's keys with its defaults, and the width of the embeddings (projected to hidden_size where they
    // differ), 128 by default (ELECTRA-small's). The summary_* keys are left out: they shape the multiple-choice head, and
    // the sequence classifier's head is a dense layer and GELU whatever they say.
    private static readonly Key[] Electra = [.. Bert, Defaults("embedding_size", "128")];

    private static readonly Key[] Llama =
    [
        Required("vocab_size"), Required("hidden_size"), Required("num_hidden_layers"), Required("num_attention_heads"),
        new("num_key_value_heads", config => Value(config, "num_attention_heads")),
        new("head_dim", HeadDimDefault),
        Required("intermediate_size"), Defaults("hidden_act", "silu"), Defaults("rms_norm_eps", Number(1e-6)),
        Defaults("rope_theta", Number(10000)), Defaults("rope_scaling", "null"), Defaults("tie_word_embeddings", "false"),
        Defaults("attention_bias", "false"), Defaults("mlp_bias", "false"),
    ];

    private static readonly Key[] Gpt2 =
    [
        Required("vocab_size"), Required("n_embd"), Required("n_layer"), Required("n_head"), Required("n_positions"),
        new("n_inner", config => Value(config, "n_embd") is string embd ? Number(4 * double.Parse(embd, CultureInfo.InvariantCulture)) : null),
        Defaults("activation_function", "gelu_new"), Defaults("layer_norm_epsilon", Number(1e-5)), Defaults("tie_word_embeddings", "true"),
    ];

    // MarianConfig's defaults for what opus-mt configs may leave out: one shared table (decoder_vocab_size = vocab_size),
    // gelu, no embedding scale, and the ids the decoder starts from, ends at and never produces.
    private static readonly Key[] Marian =
    [
        Required("vocab_size"), new("decoder_vocab_size", config => Value(config, "vocab_size")), Required("d_model"),
        Required("encoder_layers"), Required("decoder_layers"), Required("encoder_attention_heads"), Required("decoder_attention_heads"),
        Required("encoder_ffn_dim"), Required("decoder_ffn_dim"), Required("max_position_embeddings"),
        Defaults("activation_function", "gelu"), Defaults("scale_embedding", "false"), Defaults("share_encoder_decoder_embeddings", "true"),
        Defaults("tie_word_embeddings", "true"), Defaults("pad_token_id", "58100"), Defaults("decoder_start_token_id", "58100"),
        Defaults("eos_token_id", "0"),
    ];

    // M2M100Config's defaults (NLLB's configs are M2M100's): ReLU, the embedding scaled, fairseq's ids (<pad> 1, </s> 2
    // both the decoder's start and its end). Unlike Marian's, decoder_vocab_size is no key of M2M100Config.
    private static readonly Key[] M2M100 =
    [
        Required("vocab_size"), Required("d_model"),
        Required("encoder_layers"), Required("decoder_layers"), Required("encoder_attention_heads"), Required("decoder_attention_heads"),
        Required("encoder_ffn_dim"), Required("decoder_ffn_dim"), Required("max_position_embeddings"),
        Defaults("activation_function", "relu"), Defaults("scale_embedding", "true"), Defaults("tie_word_embeddings", "true"),
        Defaults("pad_token_id", "1"), Defaults("decoder_start_token_id", "2"), Defaults("eos_token_id", "2"),
    ];

    // NomicBertConfig's keys (GPT-2's names), with the defaults the compiler reads for absent ones (ConfigReader.NomicBert):
    // biases on, rotary base 1000, NTK factor 1.0, eps 1e-5, no vocabulary padding.
    private static readonly Key[] NomicBert =
    [
        Required("vocab_size"), Defaults("pad_vocab_size_multiple", "1"), Required("n_embd"), Required("n_layer"), Required("n_head"),
        Required("n_inner"), Defaults("activation_function", "gelu"), Defaults("layer_norm_epsilon", Number(1e-5)),
        Defaults("type_vocab_size", "2"), Defaults("rotary_emb_base", Number(1000)), Required("rotary_emb_fraction"),
        Defaults("rotary_emb_interleaved", "false"), Defaults("rotary_emb_scale_base", "null"), Defaults("rotary_scaling_factor", Number(1)),
        Defaults("max_trained_positions", "2048"), Defaults("qkv_proj_bias", "true"), Defaults("mlp_fc1_bias", "true"),
        Defaults("mlp_fc2_bias", "true"), Defaults("prenorm", "false"),
    ];

    // MPNetConfig's defaults (microsoft/mpnet-base's sizes): eps 1e-12, 32 relative buckets, padding id 1 (MPNetEmbeddings
    // counts positions from it whatever the key says; the compiler refuses another).
    private static readonly Key[] MPNet =
    [
        Defaults("vocab_size", "30527"), Defaults("hidden_size", "768"), Defaults("num_hidden_layers", "12"),
        Defaults("num_attention_heads", "12"), Defaults("intermediate_size", "3072"), Defaults("max_position_embeddings", "514"),
        Defaults("layer_norm_eps", Number(1e-12)), Defaults("hidden_act", "gelu"), Defaults("relative_attention_num_buckets", "32"),
        Defaults("pad_token_id", "1"),
    ];

    // Gemma3TextConfig's defaults (the keys the compiler reads, ConfigReader.Gemma3): which layers slide is layer_types,
    // or every sliding_window_pattern-th layer full when it is absent; transformers 5 writes the rotations under
    // rope_parameters, compared here as the rope_theta, rope_local_base_freq and rope_scaling they stand for.
    private static readonly Key[] Gemma3 =
    [
        Required("vocab_size"), Required("hidden_size"), Required("num_hidden_layers"), Required("num_attention_heads"),
        Defaults("num_key_value_heads", "4"), Defaults("head_dim", "256"), Required("intermediate_size"),
        Defaults("hidden_activation", "gelu_pytorch_tanh"), Defaults("rms_norm_eps", Number(1e-6)),
        new("rope_theta", config => RopeParameter(config, "full_attention", "rope_theta") ?? Number(1e6)),
        new("rope_local_base_freq", config => RopeParameter(config, "sliding_attention", "rope_theta") ?? Number(1e4)),
        new("rope_scaling", RopeScalingOfFullLayers), Defaults("sliding_window", "4096"),
        new("layer_types", LayerTypes), Defaults("query_pre_attn_scalar", "256"), Defaults("tie_word_embeddings", "true"),
        Defaults("attention_bias", "false"), Defaults("attn_logit_softcapping", "null"), Defaults("final_logit_softcapping", "null"),
        Defaults("use_bidirectional_attention", "false"),
    ];

    // ModernBertConfig's defaults (answerdotai/ModernBERT-base's sizes) for the keys the compiler reads (ConfigReader.ModernBert):
    // LayerNorms and projections without bias, GEGLU with the erf GELU, every third layer global. transformers 5 writes
    // the two rotary bases under rope_parameters and the layer kinds under layer_types; they are compared as the
    // global_rope_theta, local_rope_theta and layer kinds they stand for. The classifier_* keys are left out: the
    // sentence embedder has no classifier.
    private static readonly Key[] ModernBert =
    [
        Defaults("vocab_size", "50368"), Defaults("hidden_size", "768"), Defaults("num_hidden_layers", "22"),
        Defaults("num_attention_heads", "12"), Defaults("intermediate_size", "1152"), Defaults("max_position_embeddings", "8192"),
        Defaults("hidden_activation", "gelu"), Defaults("norm_eps", Number(1e-5)), Defaults("norm_bias", "false"),
        Defaults("attention_bias", "false"), Defaults("mlp_bias", "false"), Defaults("global_attn_every_n_layers", "3"),
        Defaults("local_attention", "128"),
        new("global_rope_theta", config => RopeParameter(config, "full_attention", "rope_theta") ?? Number(160000)),
        new("local_rope_theta", config => RopeParameter(config, "sliding_attention", "rope_theta") ?? Number(10000)),
        new("rope_scaling", RopeScalingOfFullLayers), new("layer_types", ModernBertLayerTypes), Defaults("pad_token_id", "50283"),
    ];

    // T5Config's and MT5Config's defaults (the keys the compiler reads, ConfigReader.T5): T5 has relu and a tied head, mT5
    // gated-gelu and lm_head; num_decoder_layers is num_layers, the decoder starts from the padding id. dense_act_fn and
    // is_gated_act are derived from feed_forward_proj ("gated-gelu" is gelu_new), but saved ones override the derivation.
    private static Key[] T5(bool mt5) =>
    [
        Defaults("vocab_size", mt5 ? "250112" : "32128"), Defaults("d_model", "512"), Defaults("d_kv", "64"),
        Defaults("d_ff", mt5 ? "1024" : "2048"), Defaults("num_layers", mt5 ? "8" : "6"),
        new("num_decoder_layers", config => Value(config, "num_layers") ?? (mt5 ? "8" : "6")),
        Defaults("num_heads", mt5 ? "6" : "8"), Defaults("relative_attention_num_buckets", "32"),
        Defaults("relative_attention_max_distance", "128"), Defaults("layer_norm_epsilon", Number(1e-6)),
        Defaults("feed_forward_proj", mt5 ? "gated-gelu" : "relu"),
        new("dense_act_fn", config => (Value(config, "feed_forward_proj") ?? (mt5 ? "gated-gelu" : "relu")) switch
        {
            "gated-gelu" => "gelu_new",
            string projection => projection.StartsWith("gated-", StringComparison.Ordinal) ? projection["gated-".Length..] : projection,
        }),
        new("is_gated_act", config => (Value(config, "feed_forward_proj") ?? (mt5 ? "gated-gelu" : "relu")).StartsWith("gated-", StringComparison.Ordinal) ? "true" : "false"),
        Defaults("tie_word_embeddings", mt5 ? "false" : "true"), Defaults("pad_token_id", "0"), Defaults("eos_token_id", "1"),
        new("decoder_start_token_id", config => Value(config, "pad_token_id") ?? "0"),
    ];

    /// <summary>
    /// The differences between the folder's config and the compiled one, one line each
    /// (<c>hidden_size: 768 in the folder, 384 compiled</c>); empty when the folder holds the compiled architecture.
    /// </summary>
    /// <param name="compiledConfig">The text of the config.json the model was compiled from.</param>
    /// <param name="folderConfigPath">The downloaded folder's config.json.</param>
    /// <exception cref="InvalidDataException">The folder's config.json is not a JSON object.</exception>
    public static IReadOnlyList<string> Differences(string compiledConfig, string folderConfigPath)
    {
        using JsonDocument compiled = JsonDocument.Parse(compiledConfig);
        using JsonDocument found = ParseFile(folderConfigPath);
        string? compiledType = Value(compiled.RootElement, "model_type"), foundType = Value(found.RootElement, "model_type");
        if (compiledType != foundType)
        {
            return [Line("model_type", foundType, compiledType)];
        }

        Key[] keys = compiledType switch
        {
            "bert" => Bert,
            "electra" => Electra,
            "nomic_bert" => NomicBert,
            "gemma3_text" => Gemma3,
            "mpnet" => MPNet,
            "modernbert" => ModernBert,
            "llama" or "mistral" or "qwen2" => Llama,
            "gpt2" => Gpt2,
            "marian" => Marian,
            "m2m_100" => M2M100,
            "t5" => T5(mt5: false),
            "mt5" => T5(mt5: true),
            _ => throw new InvalidOperationException($"the compiled config has model_type {compiledType}, which this check has no keys for"),
        };
        var differences = new List<string>();
        foreach (Key key in keys)
        {
            string? expected = Value(compiled.RootElement, key.Name) ?? key.Default(compiled.RootElement);
            string? actual = Value(found.RootElement, key.Name) ?? key.Default(found.RootElement);
            if (expected != actual)
            {
                differences.Add(Line(key.Name, actual, expected));
            }
        }

        return differences;
    }

    /// <summary>
    /// True when the folder's config.json describes the compiled model; otherwise writes which keys differ (or why the
    /// file cannot be read) and what to do, and returns false.
    /// </summary>
    /// <param name="compiledConfig">The text of the config.json the model was compiled from.</param>
    /// <param name="folderConfigPath">The downloaded folder's config.json.</param>
    /// <param name="repository">The Hub repository the sample runs.</param>
    /// <param name="sourceConfigPath">Where the compiled config.json is in the repository, to copy another model's over.</param>
    /// <param name="error">Receives the refusal.</param>
    public static bool Accepts(string compiledConfig, string folderConfigPath, string repository, string sourceConfigPath, TextWriter error)
    {
        IReadOnlyList<string> differences;
        try
        {
            differences = Differences(compiledConfig, folderConfigPath);
        }
        catch (InvalidDataException e)
        {
            error.WriteLine(e.Message);
            return false;
        }

        if (differences.Count == 0)
        {
            return true;
        }

        error.WriteLine($"{folderConfigPath} describes another model than the one this program was compiled for ({repository}):");
        foreach (string difference in differences)
        {
            error.WriteLine("  " + difference);
        }

        error.WriteLine($"The generated code has the compiled sizes built in, so it cannot run these weights. Download {repository},");
        error.WriteLine($"or compile the sample for this model: copy its config.json over {sourceConfigPath} and build again.");
        return false;
    }

    private static string Line(string key, string? found, string? compiled) =>
        $"{key}: {found ?? "(not given)"} in the folder, {compiled ?? "(not given)"} compiled";

    private static JsonDocument ParseFile(string path)
    {
        try
        {
            JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document;
            }

            document.Dispose();
            throw new InvalidDataException($"{path} is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>A key's value as text that compares equal when the values are equal: numbers by value (1e-05 = 0.00001), JSON null as "null", absent as null.</summary>
    private static string? Value(JsonElement config, string key)
    {
        if (!config.TryGetProperty(key, out JsonElement value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.Number => Number(value.GetDouble()),
            JsonValueKind.String => value.GetString(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Null => "null",
            JsonValueKind.Array => "[" + string.Join(",", value.EnumerateArray().Select(item => item.ValueKind == JsonValueKind.String ? item.GetString() : item.GetRawText())) + "]",
            // An object as its members in order of name, each value compared as above (rope_scaling's {"factor": 8.0, …}).
            JsonValueKind.Object => "{" + string.Join(",", value.EnumerateObject().OrderBy(member => member.Name, StringComparer.Ordinal).Select(member => member.Name + "=" + Value(value, member.Name))) + "}",
            _ => value.GetRawText(),
        };
    }

    /// <summary>A value of one layer kind's rotation in transformers 5's <c>rope_parameters</c>, or null.</summary>
    private static string? RopeParameter(JsonElement config, string kind, string key) =>
        config.TryGetProperty("rope_parameters", out JsonElement parameters) && parameters.ValueKind == JsonValueKind.Object
            && parameters.TryGetProperty(kind, out JsonElement rope) && rope.ValueKind == JsonValueKind.Object
            ? Value(rope, key)
            : null;

    /// <summary>Gemma 3's rope_scaling from transformers 5's full-attention rope_parameters: null for the default rotation, else its type and factor.</summary>
    private static string? RopeScalingOfFullLayers(JsonElement config)
    {
        string? type = RopeParameter(config, "full_attention", "rope_type");
        if (type is null or "default") return "null";
        return "{" + string.Join(",", new[] { "factor=" + RopeParameter(config, "full_attention", "factor"), "rope_type=" + type }) + "}";
    }

    /// <summary>Gemma 3's layer kinds when config.json does not list them: every sliding_window_pattern-th layer full (6 by default).</summary>
    private static string? LayerTypes(JsonElement config)
    {
        if (Value(config, "num_hidden_layers") is not string count) return null;
        int layers = int.Parse(count, CultureInfo.InvariantCulture);
        int pattern = Value(config, "sliding_window_pattern") is string given ? int.Parse(given, CultureInfo.InvariantCulture) : 6;
        return "[" + string.Join(",", Enumerable.Range(0, layers).Select(i => (i + 1) % pattern == 0 ? "full_attention" : "sliding_attention")) + "]";
    }

    /// <summary>ModernBERT's layer kinds when config.json does not list them: global where the index is a multiple of global_attn_every_n_layers (3 by default), from the first.</summary>
    private static string? ModernBertLayerTypes(JsonElement config)
    {
        if (!double.TryParse(Value(config, "num_hidden_layers") ?? "22", NumberStyles.Float, CultureInfo.InvariantCulture, out double layers)
            || !double.TryParse(Value(config, "global_attn_every_n_layers") ?? "3", NumberStyles.Float, CultureInfo.InvariantCulture, out double every))
        {
            return null; // not numbers: the two keys themselves differ from the compiled ones
        }

        int count = (int)Math.Clamp(layers, 0, 10000), period = (int)Math.Clamp(every, 0, 10000);
        return "[" + string.Join(",", Enumerable.Range(0, count).Select(i => period > 0 && i % period == 0 ? "full_attention" : "sliding_attention")) + "]";
    }

    private static string? HeadDimDefault(JsonElement config) =>
        Value(config, "hidden_size") is string hidden && Value(config, "num_attention_heads") is string heads
            ? Number(Math.Floor(double.Parse(hidden, CultureInfo.InvariantCulture) / double.Parse(heads, CultureInfo.InvariantCulture)))
            : null;

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
