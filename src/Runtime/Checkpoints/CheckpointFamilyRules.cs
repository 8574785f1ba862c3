using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// How one Hugging Face family's checkpoint files name their tensors, written as data (as llama.cpp's
/// <c>LLM_TENSOR_NAMES</c> table): the optional prefix, legacy names, buffers that are not parameters, heads the model
/// does not use, and the tied output head. <see cref="HuggingFaceCheckpoint"/> reads this table and never a family's name.
/// </summary>
/// <remarks>
/// Every name and pattern in the table is a <em>key</em>: a name with the family's optional <see cref="Prefix"/>
/// taken off (<c>transformer.h.0.attn.bias</c>, <c>h.0.attn.bias</c> → <c>h.0.attn.bias</c>). The model's names and the
/// file's names are compared as keys, so either form on either side matches, as <c>from_pretrained</c> does
/// (MODEL_FAMILIES.md §0). In a pattern, <c>{i}</c> stands for a layer number and a final <c>*</c> for any ending.
/// Sources: MODEL_FAMILIES.md §1.1 (GPT-2), §2.1 (BERT), §3.1 (Llama, Qwen2).
/// </remarks>
internal sealed class CheckpointFamilyRules
{
    /// <summary>The family the table describes.</summary>
    public required CheckpointFamily Family { get; init; }

    /// <summary>The base model's prefix (<c>base_model_prefix</c> plus a dot), which files may or may not carry.</summary>
    public required string Prefix { get; init; }

    /// <summary>
    /// Other prefixes files put before the base model (longest first): the language model inside a multimodal one, as
    /// Gemma 3's Gemma3ForConditionalGeneration files have it (<c>language_model.model.</c>, and
    /// <c>model.language_model.</c> from transformers 4.52 on). Only a file's names carry them.
    /// </summary>
    public IReadOnlyList<string> OtherPrefixes { get; init; } = [];

    /// <summary>Old names still found in files, renamed on load by their ending (<c>_fix_state_dict_key_on_load</c>).</summary>
    public IReadOnlyList<LegacyRename> LegacyRenames { get; init; } = [];

    /// <summary>Tensors that are buffers, not parameters: skipped when name, dtype and shape all fit, refused otherwise.</summary>
    public IReadOnlyList<CheckpointBuffer> Buffers { get; init; } = [];

    /// <summary>Patterns of heads the model does not have (a pooler, pre-training heads): skipped and reported.</summary>
    public IReadOnlyList<string> UnusedHeads { get; init; } = [];

    /// <summary>
    /// Tensors that, when the model ties them to its token embedding, files may still carry as copies: the output head, and
    /// in Marian the encoder's and decoder's own names for the one shared table.
    /// </summary>
    public IReadOnlyList<TiedCopy> TiedCopies { get; init; } = [];

    /// <summary>The table of <paramref name="family"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="family"/> is <see cref="CheckpointFamily.Native"/> (it has no rules: names match exactly) or unknown.</exception>
    public static CheckpointFamilyRules For(CheckpointFamily family) => family switch
    {
        CheckpointFamily.Gpt2 => Gpt2,
        CheckpointFamily.Bert => Bert,
        CheckpointFamily.Llama => Llama,
        CheckpointFamily.Qwen2 => Qwen2,
        CheckpointFamily.Roberta => Roberta,
        CheckpointFamily.Qwen3 => Qwen3,
        CheckpointFamily.DistilBert => DistilBert,
        CheckpointFamily.Phi3 => Phi3,
        CheckpointFamily.Marian => Marian,
        CheckpointFamily.Bart => Bart,
        CheckpointFamily.MBart => MBart,
        CheckpointFamily.M2M100 => M2M100,
        CheckpointFamily.NomicBert => NomicBert,
        CheckpointFamily.T5 => T5,
        CheckpointFamily.MPNet => MPNet,
        CheckpointFamily.Gemma3 => Gemma3,
        CheckpointFamily.ModernBert => ModernBert,
        CheckpointFamily.Electra => Electra,
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "not a Hugging Face checkpoint family"),
    };

    private static readonly string[] FloatTypes = ["F32", "F16", "BF16"];

    // GPT2LMHeadModel: base prefix "transformer."; lm_head tied to wte. The causal mask is saved by the versions that
    // kept it persistent: F32 in openai-community/gpt2, bool or uint8 from others.
    private static readonly CheckpointFamilyRules Gpt2 = new()
    {
        Family = CheckpointFamily.Gpt2,
        Prefix = "transformer.",
        Buffers =
        [
            new("h.{i}.attn.bias", ["F32", "F16", "BF16", "BOOL", "U8"], "the causal mask [1, 1, P, P], P = the rows of wpe.weight",
                static (shape, table, _) => shape is [1, 1, var p, var q] && p == q && p == table.Dim("wpe.weight", 0)),
            new("h.{i}.attn.masked_bias", FloatTypes, "a scalar, shape [] or [1]",
                static (shape, _, _) => shape is [] or [1]),
        ],
        TiedCopies = [new("lm_head.weight", "wte.weight")],
    };

    // BertModel: base prefix "bert."; TF-converted files (bert-base-uncased) keep LayerNorm gamma/beta; BertForPreTraining
    // files add the MLM and NSP heads under "cls.", and every BertModel file has the pooler, which mean pooling ignores.
    private static readonly CheckpointFamilyRules Bert = new()
    {
        Family = CheckpointFamily.Bert,
        Prefix = "bert.",
        LegacyRenames = [new(".LayerNorm.gamma", ".LayerNorm.weight"), new(".LayerNorm.beta", ".LayerNorm.bias")],
        Buffers =
        [
            new("embeddings.position_ids", ["I64"], "[1, P], P = the rows of embeddings.position_embeddings.weight",
                static (shape, table, _) => shape is [1, var p] && p == table.Dim("embeddings.position_embeddings.weight", 0)),
        ],
        UnusedHeads = ["pooler.dense.weight", "pooler.dense.bias", "cls.*"],
    };

    // RobertaModel and XLMRobertaModel: base prefix "roberta."; BERT's names otherwise. RobertaForMaskedLM files add the
    // MLM head under "lm_head."; RobertaModel files have the pooler. Files from transformers 4.x before 4.31 keep the
    // position_ids buffer.
    private static readonly CheckpointFamilyRules Roberta = new()
    {
        Family = CheckpointFamily.Roberta,
        Prefix = "roberta.",
        Buffers =
        [
            new("embeddings.position_ids", ["I64"], "[1, P], P = the rows of embeddings.position_embeddings.weight",
                static (shape, table, _) => shape is [1, var p] && p == table.Dim("embeddings.position_embeddings.weight", 0)),
        ],
        UnusedHeads = ["pooler.dense.weight", "pooler.dense.bias", "lm_head.*"],
    };

    // ElectraModel: base prefix "electra."; ElectraForPreTraining files add the discriminator's head, ElectraForMaskedLM
    // files the generator's (its lm_head reads the generator's own table); some keep the position_ids buffer.
    private static readonly CheckpointFamilyRules Electra = new()
    {
        Family = CheckpointFamily.Electra,
        Prefix = "electra.",
        Buffers =
        [
            new("embeddings.position_ids", ["I64"], "[1, P], P = the rows of embeddings.position_embeddings.weight",
                static (shape, table, _) => shape is [1, var p] && p == table.Dim("embeddings.position_embeddings.weight", 0)),
        ],
        UnusedHeads = ["discriminator_predictions.*", "generator_predictions.*", "generator_lm_head.*"],
    };

    // LlamaForCausalLM: base prefix "model."; lm_head absent or a copy when tied; Llama-2-era files keep the rotary inverse
    // frequencies, [D/2] for head size D. The table does not know D, so the rule asks that D divide the query and key rows
    // (H·D and KV·D).
    private static readonly CheckpointBuffer RotaryInverseFrequencies =
        new("layers.{i}.self_attn.rotary_emb.inv_freq", FloatTypes, "[D/2], D the head size (2·D/2 divides the rows of q_proj and k_proj)",
            static (shape, table, layer) => shape is [var half] && half > 0
                && table.Dim($"layers.{layer}.self_attn.q_proj.weight", 0) is var q and > 0 && q % (2 * half) == 0
                && table.Dim($"layers.{layer}.self_attn.k_proj.weight", 0) is var k and > 0 && k % (2 * half) == 0);

    private static readonly CheckpointFamilyRules Llama = new()
    {
        Family = CheckpointFamily.Llama,
        Prefix = "model.",
        Buffers = [RotaryInverseFrequencies],
        TiedCopies = [new("lm_head.weight", "embed_tokens.weight")],
    };

    // Qwen2ForCausalLM: Llama's names (the Q, K and V biases are ordinary parameters of the model's table).
    private static readonly CheckpointFamilyRules Qwen2 = new()
    {
        Family = CheckpointFamily.Qwen2,
        Prefix = "model.",
        Buffers = [RotaryInverseFrequencies],
        TiedCopies = [new("lm_head.weight", "embed_tokens.weight")],
    };

    // DistilBertModel: base prefix "distilbert."; DistilBertForMaskedLM files add the MLM head (vocab_transform,
    // vocab_layer_norm, vocab_projector); files from before transformers 4.31 keep the position_ids buffer.
    private static readonly CheckpointFamilyRules DistilBert = new()
    {
        Family = CheckpointFamily.DistilBert,
        Prefix = "distilbert.",
        Buffers =
        [
            new("embeddings.position_ids", ["I64"], "[1, P], P = the rows of embeddings.position_embeddings.weight",
                static (shape, table, _) => shape is [1, var p] && p == table.Dim("embeddings.position_embeddings.weight", 0)),
        ],
        UnusedHeads = ["vocab_transform.*", "vocab_layer_norm.*", "vocab_projector.*"],
    };

    // Phi3ForCausalLM: base prefix "model."; qkv_proj and gate_up_proj are ordinary parameters of the model's table, and
    // its rotary inverse frequencies were never saved (a non-persistent buffer).
    private static readonly CheckpointFamilyRules Phi3 = new()
    {
        Family = CheckpointFamily.Phi3,
        Prefix = "model.",
        TiedCopies = [new("lm_head.weight", "embed_tokens.weight")],
    };

    // Qwen3ForCausalLM: Llama's names plus self_attn.q_norm and k_norm, ordinary parameters of the model's table.
    private static readonly CheckpointFamilyRules Qwen3 = new()
    {
        Family = CheckpointFamily.Qwen3,
        Prefix = "model.",
        Buffers = [RotaryInverseFrequencies],
        TiedCopies = [new("lm_head.weight", "embed_tokens.weight")],
    };

    // Declared before the families that use it: static fields are initialized in order.
    /// <summary>The BART-shaped encoder–decoders' one token table, <c>model.shared</c>, under the names of its other users.</summary>
    private static readonly TiedCopy[] SharedTableCopies =
        [new("lm_head.weight", "shared.weight"), new("encoder.embed_tokens.weight", "shared.weight"), new("decoder.embed_tokens.weight", "shared.weight")];

    // MarianMTModel: base prefix "model."; final_logits_bias and lm_head.weight sit outside it. The encoder, the decoder and
    // the head all use "model.shared"; files written before transformers dropped tied copies also hold them under the
    // encoder's, the decoder's and the head's names. The fixed sinusoid tables [max_position_embeddings, d_model] were saved
    // by older versions (current ones list them in _keys_to_ignore_on_save).
    private static readonly CheckpointFamilyRules Marian = new()
    {
        Family = CheckpointFamily.Marian,
        Prefix = "model.",
        Buffers =
        [
            new("encoder.embed_positions.weight", FloatTypes, "[P, d_model], d_model = the columns of model.shared.weight",
                static (shape, table, _) => shape is [> 0, var d] && d == table.Dim("shared.weight", 1)),
            new("decoder.embed_positions.weight", FloatTypes, "[P, d_model], d_model = the columns of model.shared.weight",
                static (shape, table, _) => shape is [> 0, var d] && d == table.Dim("shared.weight", 1)),
        ],
        TiedCopies = SharedTableCopies,
    };

    // BartForConditionalGeneration and MBartForConditionalGeneration: Marian's prefix and tied copies; their learned position
    // tables are parameters.
    private static readonly CheckpointFamilyRules Bart = new() { Family = CheckpointFamily.Bart, Prefix = "model.", TiedCopies = SharedTableCopies };

    private static readonly CheckpointFamilyRules MBart = new() { Family = CheckpointFamily.MBart, Prefix = "model.", TiedCopies = SharedTableCopies };

    // M2M100ForConditionalGeneration (NLLB too): its sinusoid tables are non-persistent buffers, never in the files.
    private static readonly CheckpointFamilyRules M2M100 = new() { Family = CheckpointFamily.M2M100, Prefix = "model.", TiedCopies = SharedTableCopies };

    // NomicBertModel (nomic-embed-text): its files hold the bare model; NomicBertForPreTraining's put it under "bert." and add
    // the MLM head under "cls."; a pooler may be saved, which mean pooling never reads. Its rotary frequencies are a
    // non-persistent buffer.
    private static readonly CheckpointFamilyRules NomicBert = new()
    {
        Family = CheckpointFamily.NomicBert,
        Prefix = "bert.",
        UnusedHeads = ["pooler.dense.weight", "pooler.dense.bias", "cls.*"],
    };

    // T5ForConditionalGeneration and MT5ForConditionalGeneration: base prefix "transformer." (never in their files); the
    // encoder, the decoder and (when tied) the head use "shared", under whose other names older files keep copies. Files
    // written by transformers before 4.0 hold a relative-position table in the decoder's first cross-attention, which no
    // version reads (_keys_to_ignore_on_load_unexpected).
    private static readonly CheckpointFamilyRules T5 = new()
    {
        Family = CheckpointFamily.T5,
        Prefix = "transformer.",
        UnusedHeads = ["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"],
        TiedCopies = SharedTableCopies,
    };

    // Gemma3ForCausalLM: base prefix "model."; the head is the token table, whose copy older files keep as lm_head; the
    // rotary frequencies are non-persistent buffers. Gemma3ForConditionalGeneration (gemma-3-4b and larger) holds the same
    // language model under "language_model.model." (its head copy as "language_model.lm_head."), or from transformers 4.52
    // on under "model.language_model.", beside a vision tower and a projector that a text model does not read.
    private static readonly CheckpointFamilyRules Gemma3 = new()
    {
        Family = CheckpointFamily.Gemma3,
        Prefix = "model.",
        OtherPrefixes = ["model.language_model.", "language_model.model."],
        UnusedHeads = ["vision_tower.*", "multi_modal_projector.*"],
        TiedCopies = [new("lm_head.weight", "embed_tokens.weight"), new("language_model.lm_head.weight", "embed_tokens.weight")],
    };

    // MPNetModel (sentence-transformers' all-mpnet-base-v2 holds it bare): base prefix "mpnet."; MPNetForMaskedLM files add the
    // MLM head under "lm_head."; MPNetModel files have the pooler, which mean pooling ignores; older files keep the
    // position_ids buffer.
    private static readonly CheckpointFamilyRules MPNet = new()
    {
        Family = CheckpointFamily.MPNet,
        Prefix = "mpnet.",
        Buffers =
        [
            new("embeddings.position_ids", ["I64"], "[1, P], P = the rows of embeddings.position_embeddings.weight",
                static (shape, table, _) => shape is [1, var p] && p == table.Dim("embeddings.position_embeddings.weight", 0)),
        ],
        UnusedHeads = ["pooler.dense.weight", "pooler.dense.bias", "lm_head.*"],
    };

    // ModernBertModel (sentence-transformers' embedders hold it bare): base prefix "model."; ModernBertForMaskedLM files add
    // the MLM head ("head.dense", "head.norm") and the decoder's bias (its weight is the token table, not saved); the rotary
    // frequencies are non-persistent buffers.
    private static readonly CheckpointFamilyRules ModernBert = new()
    {
        Family = CheckpointFamily.ModernBert,
        Prefix = "model.",
        UnusedHeads = ["head.*", "decoder.*"],
    };

    /// <summary>The key of a model's name: the name without <see cref="Prefix"/>.</summary>
    public string KeyOf(string name) => name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..] : name;

    /// <summary>The key of a file's name: without <see cref="Prefix"/> (or one of <see cref="OtherPrefixes"/>), and with a legacy ending renamed.</summary>
    public string FileKeyOf(string name)
    {
        string key = KeyOf(name);
        foreach (string prefix in OtherPrefixes)
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                key = name[prefix.Length..];
                break;
            }
        foreach (LegacyRename rename in LegacyRenames)
            if (key.EndsWith(rename.Ending, StringComparison.Ordinal))
                return string.Concat(key.AsSpan(0, key.Length - rename.Ending.Length), rename.Replacement);
        return key;
    }

    /// <summary>The buffer whose pattern <paramref name="key"/> matches, with the layer number it names (empty if none).</summary>
    public CheckpointBuffer? FindBuffer(string key, out string layer)
    {
        foreach (CheckpointBuffer buffer in Buffers)
            if (NamePattern.Matches(buffer.Pattern, key, out layer)) return buffer;
        layer = "";
        return null;
    }

    /// <summary>True when <paramref name="key"/> is one of the <see cref="UnusedHeads"/>.</summary>
    public bool IsUnusedHead(string key)
    {
        foreach (string pattern in UnusedHeads)
            if (NamePattern.Matches(pattern, key, out _)) return true;
        return false;
    }
}

/// <summary>A legacy name ending and what it is called now.</summary>
internal sealed record LegacyRename(string Ending, string Replacement);

/// <summary>The tensor <paramref name="Copy"/> (a key: an output head, say) that a tied model takes from <paramref name="Embedding"/> (a key).</summary>
internal sealed record TiedCopy(string Copy, string Embedding);

/// <summary>
/// A buffer files carry beside the parameters: its key <paramref name="Pattern"/>, the dtypes it may have, and its
/// shape, as words for messages (<paramref name="ShapeDescription"/>) and as a test (<paramref name="Accepts"/>).
/// </summary>
internal sealed record CheckpointBuffer(string Pattern, string[] DTypes, string ShapeDescription, BufferShapeRule Accepts);

/// <summary>Whether a buffer of shape <paramref name="shape"/> in layer <paramref name="layer"/> fits the model described by <paramref name="table"/>.</summary>
internal delegate bool BufferShapeRule(long[] shape, CheckpointTable table, string layer);

/// <summary>Matches the key patterns of <see cref="CheckpointFamilyRules"/>: literal text, at most one <c>{i}</c> (a layer number), an optional final <c>*</c>.</summary>
internal static class NamePattern
{
    private const string Layer = "{i}";

    /// <summary>True when <paramref name="key"/> fits <paramref name="pattern"/>; <paramref name="layer"/> is the number <c>{i}</c> stood for, or empty.</summary>
    public static bool Matches(string pattern, string key, out string layer)
    {
        layer = "";
        if (pattern.EndsWith('*')) return key.AsSpan().StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal);
        int at = pattern.IndexOf(Layer, StringComparison.Ordinal);
        if (at < 0) return key == pattern;
        ReadOnlySpan<char> before = pattern.AsSpan(0, at), after = pattern.AsSpan(at + Layer.Length);
        if (key.Length <= before.Length + after.Length || !key.AsSpan().StartsWith(before, StringComparison.Ordinal) || !key.AsSpan().EndsWith(after, StringComparison.Ordinal))
            return false;
        ReadOnlySpan<char> number = key.AsSpan(before.Length, key.Length - before.Length - after.Length);
        foreach (char c in number)
            if (!char.IsAsciiDigit(c)) return false;
        layer = number.ToString();
        return true;
    }
}
