using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;

namespace TransformerGen.Reference.Tests.HuggingFace;

// ModernBERT's part of the config: the fields only it reads and its reader. The shared fields it fills: RopeTheta (the
// global layers' θ), RopeLocalTheta (the local layers'), SlidingLayers (true for a local layer), QkvBias and OutputBias
// (both attention_bias: Wqkv and Wo), MlpBias (Wi and Wo), Activation (hidden_activation), NormEps (norm_eps),
// PadTokenId (the token table's padding row), EncoderHead and Labels (architectures[0], id2label / num_labels).
internal sealed partial record HfConfig
{
    /// <summary>
    /// ModernBERT <c>local_attention</c>: the whole width of a local layer's window. Key j is visible from query i iff
    /// |i − j| ≤ <c>local_attention // 2</c> (64 on either side for the released 128).
    /// </summary>
    public int LocalAttention { get; init; }

    /// <summary>ModernBERT <c>norm_bias</c>: every LayerNorm (the embeddings', the layers', the final one and the head's) has a bias.</summary>
    public bool NormBias { get; init; }

    /// <summary>ModernBERT <c>classifier_pooling</c>: what ModernBertForSequenceClassification pools, token 0 (<c>"cls"</c>) or the masked mean.</summary>
    public HfPooling ClassifierPooling { get; init; } = HfPooling.Cls;

    /// <summary>ModernBERT <c>classifier_bias</c>: a bias on the prediction head's <c>dense</c> (the classifier itself always has one).</summary>
    public bool ClassifierBias { get; init; }

    /// <summary>ModernBERT <c>classifier_activation</c>: the prediction head's activation between <c>dense</c> and <c>norm</c>.</summary>
    public string ClassifierActivation { get; init; } = "gelu";

    /// <summary>ModernBERT <c>decoder_bias</c>: ModernBertForMaskedLM's <c>decoder.bias</c> (its weight is the token table).</summary>
    public bool DecoderBias { get; init; } = true;

    /// <summary>The activations <see cref="HfActivations"/> computes, the only ones a ModernBERT config may name.</summary>
    private static readonly HashSet<string> KnownActivations = ["gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish"];

    // configuration_modernbert.py (ModernBertConfig, ModernBERT-base's sizes): vocab 50368, hidden 768, intermediate 1152,
    // 22 layers of 12 heads, erf gelu, 8192 positions (informational: the positions are rotary), norm_eps 1e-5, no biases
    // anywhere but decoder_bias, pad 50283, θ 160000 on the global layers and 10000 on the local ones, every third layer
    // global (i % 3 == 0), local_attention 128, classifier_pooling "cls", gelu in the head, tied decoder. Two forms of the
    // layer kinds and the θ: transformers 4.48's global_attn_every_n_layers, global_rope_theta and local_rope_theta (a null
    // local_rope_theta meaning the global θ on every layer, as ModernBertAttention read it), and transformers 5's layer_types
    // with rope_parameters keyed by layer kind (a kind without rope_theta takes the old key or its default, as
    // convert_rope_params_to_dict does). layer_norm_eps, position_embedding_type, reference_compile,
    // deterministic_flash_attn, sparse_prediction, repad_logits_with_grad, the dropouts and the init keys change nothing
    // in an eval-mode eager pass and are ignored. Refused: rope types other than "default" (and rope_scaling), a
    // classifier_pooling other than "cls"/"mean" (transformers refuses it too), heads that do not divide the width or give
    // an odd head_dim, and the task heads other than sequence classification (token classification, QA, multiple choice).
    private static HfConfig ModernBert(JsonObject json)
    {
        int hidden = Int(json, "hidden_size") ?? 768, heads = Int(json, "num_attention_heads") ?? 12, layers = Int(json, "num_hidden_layers") ?? 22;
        int headDim = Divide(hidden, heads);
        if (headDim % 2 != 0) throw new InvalidDataException($"head_dim {headDim} is odd: rotary positions rotate channel pairs");
        int vocab = Int(json, "vocab_size") ?? 50368;

        bool[] local;
        if (json["layer_types"] is JsonArray types)
        {
            local = types.Select(t => t?.GetValue<string>() switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                string other => throw new InvalidDataException($"layer type '{other}' is not sliding_attention or full_attention"),
                null => throw new InvalidDataException("a null layer type"),
            }).ToArray();
            if (local.Length != layers) throw new InvalidDataException($"{local.Length} layer_types for {layers} layers");
        }
        else
        {
            int every = Int(json, "global_attn_every_n_layers") ?? 3;
            if (every < 1) throw new InvalidDataException($"global_attn_every_n_layers {every}");
            local = Enumerable.Range(0, layers).Select(i => i % every != 0).ToArray();
        }

        if (json["rope_scaling"] is JsonNode) throw new NotSupportedException("ModernBERT rope_scaling is not implemented (only the default rope)");
        double globalTheta = Double(json, "global_rope_theta") ?? 160_000.0;
        // 4.48: local_rope_theta null → the layer keeps global_rope_theta.
        double localTheta = json.ContainsKey("local_rope_theta") ? Double(json, "local_rope_theta") ?? globalTheta : 10_000.0;
        if (json["rope_parameters"] is JsonObject rope)
        {
            foreach ((string kind, JsonNode? _) in rope)
                if (kind is not ("full_attention" or "sliding_attention"))
                    throw new InvalidDataException($"rope_parameters key '{kind}': ModernBERT's are per layer kind (full_attention, sliding_attention)");
            globalTheta = Theta(rope, "full_attention", globalTheta);
            localTheta = Theta(rope, "sliding_attention", Double(json, "local_rope_theta") ?? 10_000.0);
        }

        string activation = String(json, "hidden_activation") ?? "gelu", classifierActivation = String(json, "classifier_activation") ?? "gelu";
        foreach (string name in new[] { activation, classifierActivation })
            if (!KnownActivations.Contains(name)) throw new NotSupportedException($"activation '{name}' is not implemented");
        HfPooling classifierPooling = (String(json, "classifier_pooling") ?? "cls") switch
        {
            "cls" => HfPooling.Cls,
            "mean" => HfPooling.Mean,
            string other => throw new InvalidDataException($"classifier_pooling '{other}' is neither \"cls\" nor \"mean\""),
        };
        HfEncoderHead head = (json["architectures"] as JsonArray)?.FirstOrDefault()?.GetValue<string>() switch
        {
            null or "ModernBertModel" or "ModernBertForMaskedLM" => HfEncoderHead.None,
            "ModernBertForSequenceClassification" => HfEncoderHead.SequenceClassification,
            "ModernBertForTokenClassification" => HfEncoderHead.TokenClassification,
            string other => throw new NotSupportedException($"{other} has no reference here (ModernBertModel, …ForMaskedLM's encoder, …ForSequenceClassification, …ForTokenClassification)"),
        };
        // nn.Embedding(padding_idx = pad_token_id) refuses a row outside the table; null: no padding row.
        int pad = json.ContainsKey("pad_token_id") ? Int(json, "pad_token_id") ?? -1 : 50283;
        if (pad >= vocab) throw new InvalidDataException($"pad_token_id {pad} is outside the {vocab}-row token table");
        int localAttention = Int(json, "local_attention") ?? 128;
        if (localAttention < 0) throw new InvalidDataException($"local_attention {localAttention}");

        bool attentionBias = Bool(json, "attention_bias") ?? false;
        return new HfConfig
        {
            ModelType = "modernbert",
            Family = HfFamily.ModernBert,
            VocabSize = vocab,
            HiddenSize = hidden,
            Layers = layers,
            Heads = heads,
            KeyValueHeads = heads,
            HeadDim = headDim,
            IntermediateSize = Int(json, "intermediate_size") ?? 1152,
            MaxPositions = Int(json, "max_position_embeddings") ?? 8192,
            Activation = activation,
            NormEps = Double(json, "norm_eps") ?? 1e-5,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings") ?? true,
            PadTokenId = pad,
            EosTokenId = Int(json, "eos_token_id") ?? 50282,
            EncoderHead = head,
            Labels = json["id2label"] is JsonObject labels ? labels.Count : Int(json, "num_labels") ?? 2,
            RopeTheta = globalTheta,
            RopeLocalTheta = localTheta,
            SlidingLayers = local,
            LocalAttention = localAttention,
            QkvBias = attentionBias,
            OutputBias = attentionBias,
            MlpBias = Bool(json, "mlp_bias") ?? false,
            NormBias = Bool(json, "norm_bias") ?? false,
            ClassifierPooling = classifierPooling,
            ClassifierBias = Bool(json, "classifier_bias") ?? false,
            ClassifierActivation = classifierActivation,
            DecoderBias = Bool(json, "decoder_bias") ?? true,
        };

        // One layer kind's entry of rope_parameters: the default rope only, its rope_theta or the fallback.
        static double Theta(JsonObject rope, string kind, double fallback)
        {
            if (rope[kind] is not JsonObject parameters) return fallback;
            string type = String(parameters, "rope_type") ?? String(parameters, "type") ?? "default";
            if (type != "default") throw new NotSupportedException($"rope_type '{type}' ({kind}) is not implemented (only default)");
            if (Double(parameters, "partial_rotary_factor") is double partial && partial != 1.0) throw new NotSupportedException("partial_rotary_factor is not implemented");
            return Double(parameters, "rope_theta") ?? fallback;
        }
    }
}
