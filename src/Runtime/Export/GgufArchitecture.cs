using System.Collections.Generic;

namespace TransformerGen;

/// <summary>How a tensor's rows are reordered on the way into the GGUF file.</summary>
internal enum GgufRowOrder
{
    /// <summary>As the model holds them.</summary>
    Unchanged,
    /// <summary>
    /// Query rows for llama.cpp's <c>llama</c> architecture, whose rotary embedding (<c>LLAMA_ROPE_TYPE_NORM</c>) rotates
    /// adjacent pairs (2i, 2i+1), while Hugging Face's <c>rotate_half</c> rotates (i, i + D/2): within each head, row
    /// <c>2i + j</c> of the file is row <c>j·D/2 + i</c> of the model (j = 0, 1). Scores are unchanged, since queries and keys
    /// move alike (MODEL_FAMILIES.md §3.3; llama.cpp's Hugging Face converter applies the same permutation).
    /// </summary>
    RotaryPairsQueryHeads,
    /// <summary>The same for key rows, head by key/value head.</summary>
    RotaryPairsKeyValueHeads,
}

/// <summary>
/// One row of an architecture's name table: a model key pattern, its GGUF name pattern, how rows move, and whether the
/// file holds <c>1 + w</c> for the model's <c>w</c> (<paramref name="UnitOffset"/>: Gemma's RMSNorm scales by <c>1 + weight</c>,
/// llama.cpp's by the weight itself, so its converter adds 1 to every Gemma norm, <c>Gemma3Model.norm_shift</c>).
/// </summary>
internal sealed record GgufTensorName(string ModelKey, string GgufName, GgufRowOrder Rows = GgufRowOrder.Unchanged, bool UnitOffset = false);

/// <summary>
/// The llama.cpp architectures a decoder exports to, as data: the name of each tensor in the GGUF file (llama.cpp's
/// <c>LLM_TENSOR_NAMES</c>: <c>token_embd</c>, <c>blk.N.attn_q</c>, …) for each model key (the family's checkpoint name
/// without its prefix, see <see cref="CheckpointFamilyRules.KeyOf"/>), in a layer <c>{i}</c>.
/// </summary>
internal sealed class GgufArchitecture
{
    /// <summary>llama.cpp's architecture name (<c>general.architecture</c>, and the prefix of its hyperparameter keys).</summary>
    public required string Name { get; init; }

    /// <summary>True when the architecture uses rotary positions (and the file says their base and dimensions).</summary>
    public required bool Rotary { get; init; }

    /// <summary>The name table; a model tensor that no row names is an error.</summary>
    public required IReadOnlyList<GgufTensorName> Tensors { get; init; }

    /// <summary>Why a tensor the table does not name cannot be written, when there is more to say than that (the refusal's message).</summary>
    public string? Unplaced { get; init; }

    /// <summary>The key of the tensor whose layers count the blocks (the first norm of each layer).</summary>
    public required string LayerKey { get; init; }

    /// <summary>
    /// True when llama.cpp takes the attention's width from the hidden size (<c>phi3</c>: <c>attn_output</c> is
    /// <c>[hidden, hidden]</c> and <c>attn_qkv</c> is split at the hidden size), so heads × head size must equal it.
    /// </summary>
    public bool HeadsSpanHiddenSize { get; init; }

    /// <summary>True when the file says the attention window (<c>{arch}.attention.sliding_window</c>, 0 for none), as llama.cpp's converter writes it for this architecture.</summary>
    public bool SlidingWindow { get; init; }

    /// <summary>
    /// llama.cpp's <c>llama</c> architecture for Hugging Face Llama, Mistral, SmolLM and Qwen2 weights: RMSNorm, SwiGLU,
    /// grouped-query attention, rotary positions on adjacent pairs, optional q/k/v/o and MLP biases, output tied when absent.
    /// </summary>
    public static readonly GgufArchitecture Llama = new()
    {
        Name = "llama",
        Rotary = true,
        LayerKey = "layers.{i}.input_layernorm.weight",
        Tensors =
        [
            new("embed_tokens.weight", "token_embd.weight"),
            new("norm.weight", "output_norm.weight"),
            new("lm_head.weight", "output.weight"),
            new("layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight"),
            new("layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", GgufRowOrder.RotaryPairsQueryHeads),
            new("layers.{i}.self_attn.q_proj.bias", "blk.{i}.attn_q.bias", GgufRowOrder.RotaryPairsQueryHeads),
            new("layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight", GgufRowOrder.RotaryPairsKeyValueHeads),
            new("layers.{i}.self_attn.k_proj.bias", "blk.{i}.attn_k.bias", GgufRowOrder.RotaryPairsKeyValueHeads),
            new("layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight"),
            new("layers.{i}.self_attn.v_proj.bias", "blk.{i}.attn_v.bias"),
            new("layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight"),
            new("layers.{i}.self_attn.o_proj.bias", "blk.{i}.attn_output.bias"),
            new("layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight"),
            new("layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight"),
            new("layers.{i}.mlp.gate_proj.bias", "blk.{i}.ffn_gate.bias"),
            new("layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight"),
            new("layers.{i}.mlp.up_proj.bias", "blk.{i}.ffn_up.bias"),
            new("layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight"),
            new("layers.{i}.mlp.down_proj.bias", "blk.{i}.ffn_down.bias"),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>qwen3</c> architecture for Hugging Face Qwen3 weights: <see cref="Llama"/>'s tensors plus each layer's
    /// <c>q_norm</c> and <c>k_norm</c> <c>[head_dim]</c> (<c>attn_q_norm</c>, <c>attn_k_norm</c>: an RMSNorm of each query and
    /// key head before the rotation), without biases: the released Qwen3 checkpoints have none (<c>attention_bias</c> false),
    /// and with <c>attention_bias</c> true Hugging Face's Qwen3 adds one to o_proj as well as to q, k and v, which llama.cpp's
    /// <c>qwen3</c> does not read (LLamaSharp 0.30.0's build takes optional q/k/v biases and refuses a file with o_proj's:
    /// "wrong number of tensors"), so such a model is refused.
    /// Rows stay in Hugging Face's order: <c>qwen3</c>'s rotary embedding is <c>LLAMA_ROPE_TYPE_NEOX</c>, which pairs
    /// (i, i + D/2) as <c>rotate_half</c> does, and llama.cpp's converter (<c>Qwen3Model</c>, a <c>Qwen2Model</c>) writes q_proj
    /// and k_proj unpermuted; permuting them would also move the channels the per-head norms scale.
    /// </summary>
    public static readonly GgufArchitecture Qwen3 = new()
    {
        Name = "qwen3",
        Rotary = true,
        Unplaced = "a Qwen3 with attention_bias has biases on q_proj, k_proj, v_proj and o_proj; llama.cpp's qwen3 reads none on o_proj, so none are written",
        LayerKey = "layers.{i}.input_layernorm.weight",
        Tensors =
        [
            new("embed_tokens.weight", "token_embd.weight"),
            new("norm.weight", "output_norm.weight"),
            new("lm_head.weight", "output.weight"),
            new("layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight"),
            new("layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight"),
            new("layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight"),
            new("layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight"),
            new("layers.{i}.self_attn.q_norm.weight", "blk.{i}.attn_q_norm.weight"),
            new("layers.{i}.self_attn.k_norm.weight", "blk.{i}.attn_k_norm.weight"),
            new("layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight"),
            new("layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight"),
            new("layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight"),
            new("layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight"),
            new("layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight"),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>phi3</c> architecture for Hugging Face Phi-3 weights: Llama's layers with the projections fused as
    /// Phi-3 holds them, and written so. <c>qkv_proj</c> (rows Q | K | V) is <c>attn_qkv</c>, which llama.cpp splits at
    /// H·D and H·D + KV·D as Phi3Attention does; <c>gate_up_proj</c> (rows gate | up, <c>2·intermediate</c>) is <c>ffn_up</c>
    /// with twice <c>feed_forward_length</c> rows and no <c>ffn_gate</c>, for which llama.cpp's SwiGLU computes silu of the
    /// first half times the second, Phi3MLP's <c>up · silu(gate)</c>. No biases (Phi-3 has none); output tied when absent.
    /// Rows stay in Hugging Face's order: <c>phi3</c>'s rotary embedding is <c>LLAMA_ROPE_TYPE_NEOX</c>, pairing (i, i + D/2)
    /// as <c>rotate_half</c> does, and llama.cpp's converter (<c>Phi3MiniModel</c>) writes both fused tensors unchanged.
    /// llama.cpp sizes the attention by the hidden size (<see cref="HeadsSpanHiddenSize"/>), as every released Phi-3 is shaped.
    /// </summary>
    public static readonly GgufArchitecture Phi3 = new()
    {
        Name = "phi3",
        Rotary = true,
        HeadsSpanHiddenSize = true,
        SlidingWindow = true,
        LayerKey = "layers.{i}.input_layernorm.weight",
        Tensors =
        [
            new("embed_tokens.weight", "token_embd.weight"),
            new("norm.weight", "output_norm.weight"),
            new("lm_head.weight", "output.weight"),
            new("layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight"),
            new("layers.{i}.self_attn.qkv_proj.weight", "blk.{i}.attn_qkv.weight"),
            new("layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight"),
            new("layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight"),
            new("layers.{i}.mlp.gate_up_proj.weight", "blk.{i}.ffn_up.weight"),
            new("layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight"),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>gemma3</c> architecture for Hugging Face Gemma 3 text weights (<c>Gemma3ForCausalLM</c>), named as
    /// llama.cpp's converter (<c>Gemma3Model</c>) writes them: Qwen3's attention tensors with <c>q_norm</c> and <c>k_norm</c>
    /// (<c>attn_q_norm</c>, <c>attn_k_norm</c>), the sandwich norms <c>input_layernorm</c> (<c>attn_norm</c>),
    /// <c>post_attention_layernorm</c> (<c>post_attention_norm</c>, the attention's output norm), <c>pre_feedforward_layernorm</c>
    /// (<c>ffn_norm</c>) and <c>post_feedforward_layernorm</c> (<c>post_ffw_norm</c>), GEGLU's <c>gate_proj</c>, <c>up_proj</c>,
    /// <c>down_proj</c>; output tied when absent. Every norm is written as <c>1 + w</c> (<see cref="GgufTensorName.UnitOffset"/>).
    /// Rows stay in Hugging Face's order: <c>gemma3</c>'s rotary embedding is <c>LLAMA_ROPE_TYPE_NEOX</c>, pairing (i, i + D/2)
    /// as <c>rotate_half</c> does, and the converter writes q_proj and k_proj unpermuted. llama.cpp scales the embeddings by
    /// √<c>embedding_length</c> itself. No biases: llama.cpp's <c>gemma3</c> reads none (a model with <c>attention_bias</c> is refused).
    /// </summary>
    public static readonly GgufArchitecture Gemma3 = new()
    {
        Name = "gemma3",
        Rotary = true,
        SlidingWindow = true,
        Unplaced = "a Gemma 3 with attention_bias has biases on q_proj, k_proj, v_proj and o_proj; llama.cpp's gemma3 reads none",
        LayerKey = "layers.{i}.input_layernorm.weight",
        Tensors =
        [
            new("embed_tokens.weight", "token_embd.weight"),
            new("norm.weight", "output_norm.weight", UnitOffset: true),
            new("lm_head.weight", "output.weight"),
            new("layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", UnitOffset: true),
            new("layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight"),
            new("layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight"),
            new("layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight"),
            new("layers.{i}.self_attn.q_norm.weight", "blk.{i}.attn_q_norm.weight", UnitOffset: true),
            new("layers.{i}.self_attn.k_norm.weight", "blk.{i}.attn_k_norm.weight", UnitOffset: true),
            new("layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight"),
            new("layers.{i}.post_attention_layernorm.weight", "blk.{i}.post_attention_norm.weight", UnitOffset: true),
            new("layers.{i}.pre_feedforward_layernorm.weight", "blk.{i}.ffn_norm.weight", UnitOffset: true),
            new("layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight"),
            new("layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight"),
            new("layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight"),
            new("layers.{i}.post_feedforward_layernorm.weight", "blk.{i}.post_ffw_norm.weight", UnitOffset: true),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>gpt2</c> architecture for Hugging Face GPT-2 weights: learned positions, pre-LN LayerNorm with biases,
    /// one q|k|v product, tanh GELU, output tied when absent. The model holds the Conv1D weights as <c>[out, in]</c>
    /// already, which is what the file wants (ggml <c>ne = [in, out]</c>).
    /// </summary>
    public static readonly GgufArchitecture Gpt2 = new()
    {
        Name = "gpt2",
        Rotary = false,
        LayerKey = "h.{i}.ln_1.weight",
        Tensors =
        [
            new("wte.weight", "token_embd.weight"),
            new("wpe.weight", "position_embd.weight"),
            new("ln_f.weight", "output_norm.weight"),
            new("ln_f.bias", "output_norm.bias"),
            new("lm_head.weight", "output.weight"),
            new("h.{i}.ln_1.weight", "blk.{i}.attn_norm.weight"),
            new("h.{i}.ln_1.bias", "blk.{i}.attn_norm.bias"),
            new("h.{i}.attn.c_attn.weight", "blk.{i}.attn_qkv.weight"),
            new("h.{i}.attn.c_attn.bias", "blk.{i}.attn_qkv.bias"),
            new("h.{i}.attn.c_proj.weight", "blk.{i}.attn_output.weight"),
            new("h.{i}.attn.c_proj.bias", "blk.{i}.attn_output.bias"),
            new("h.{i}.ln_2.weight", "blk.{i}.ffn_norm.weight"),
            new("h.{i}.ln_2.bias", "blk.{i}.ffn_norm.bias"),
            new("h.{i}.mlp.c_fc.weight", "blk.{i}.ffn_up.weight"),
            new("h.{i}.mlp.c_fc.bias", "blk.{i}.ffn_up.bias"),
            new("h.{i}.mlp.c_proj.weight", "blk.{i}.ffn_down.weight"),
            new("h.{i}.mlp.c_proj.bias", "blk.{i}.ffn_down.bias"),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>modern-bert</c> architecture for Hugging Face ModernBERT weights (<c>ModernBertModel</c>'s names without
    /// its <c>model.</c> prefix), named as llama.cpp's converter (<c>ModernBertModel</c>, a <c>BertModel</c>) writes them: the
    /// token table and its norm (<c>token_embd</c>, <c>token_embd_norm</c>), per layer <c>attn_norm</c> (none in layer 0, whose
    /// attention reads the embeddings' norm as it is, as llama.cpp allows), <c>Wqkv</c> (rows Q | K | V) as <c>attn_qkv</c>,
    /// <c>attn.Wo</c> as <c>attn_output</c>, <c>mlp_norm</c> as <c>ffn_norm</c>, <c>Wi</c> (rows input | gate) whole as
    /// <c>ffn_up</c> with twice <c>feed_forward_length</c> rows (llama.cpp's gated activation of one tensor takes the first
    /// half through the activation and multiplies by the second, as ModernBertMLP does), <c>mlp.Wo</c> as <c>ffn_down</c>,
    /// <c>final_norm</c> as <c>output_norm</c>. Rows stay in Hugging Face's order: <c>modern-bert</c>'s rotary embedding is
    /// <c>LLAMA_ROPE_TYPE_NEOX</c>, pairing (i, i + D/2) as <c>rotate_half</c> does. llama.cpp's LayerNorms here take no
    /// shift and its projections no bias, so a model with <c>norm_bias</c>, <c>attention_bias</c> or <c>mlp_bias</c> is refused.
    /// </summary>
    public static readonly GgufArchitecture ModernBert = new()
    {
        Name = "modern-bert",
        Rotary = true,
        SlidingWindow = true,
        Unplaced = "llama.cpp's modern-bert reads no biases (its LayerNorms have no shift, its projections no bias), no classifier head and no sentence-transformers Dense layer",
        LayerKey = "layers.{i}.mlp_norm.weight",
        Tensors =
        [
            new("embeddings.tok_embeddings.weight", "token_embd.weight"),
            new("embeddings.norm.weight", "token_embd_norm.weight"),
            new("final_norm.weight", "output_norm.weight"),
            new("layers.{i}.attn_norm.weight", "blk.{i}.attn_norm.weight"),
            new("layers.{i}.attn.Wqkv.weight", "blk.{i}.attn_qkv.weight"),
            new("layers.{i}.attn.Wo.weight", "blk.{i}.attn_output.weight"),
            new("layers.{i}.mlp_norm.weight", "blk.{i}.ffn_norm.weight"),
            new("layers.{i}.mlp.Wi.weight", "blk.{i}.ffn_up.weight"),
            new("layers.{i}.mlp.Wo.weight", "blk.{i}.ffn_down.weight"),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>bert</c> architecture for Hugging Face BERT weights (<c>BertModel</c>'s names without its <c>bert.</c>
    /// prefix), named as llama.cpp's converter (<c>BertModel</c>) writes them: the token, position and token-type tables
    /// (<c>token_embd</c>, <c>position_embd</c>, <c>token_types</c>) and the embeddings' LayerNorm (<c>token_embd_norm</c>);
    /// per post-LN layer the separate query, key and value projections with their biases (<c>attn_q</c>, <c>attn_k</c>,
    /// <c>attn_v</c>), <c>attention.output.dense</c> as <c>attn_output</c>, its LayerNorm as <c>attn_output_norm</c>,
    /// <c>intermediate.dense</c> as <c>ffn_up</c>, <c>output.dense</c> as <c>ffn_down</c> and the layer's last LayerNorm as
    /// <c>layer_output_norm</c>. No rotary positions, so rows stay as the model holds them. llama.cpp's optional
    /// <c>cls</c>/<c>cls_output</c> tensors (its ranking head) are never written: a classifier is refused.
    /// </summary>
    public static readonly GgufArchitecture Bert = new()
    {
        Name = "bert",
        Rotary = false,
        Unplaced = "llama.cpp's bert embeddings end at the pooled last hidden state: it has no place for a pooler, a classifier or a sentence-transformers Dense layer",
        LayerKey = "encoder.layer.{i}.attention.output.LayerNorm.weight",
        Tensors =
        [
            new("embeddings.word_embeddings.weight", "token_embd.weight"),
            new("embeddings.position_embeddings.weight", "position_embd.weight"),
            new("embeddings.token_type_embeddings.weight", "token_types.weight"),
            new("embeddings.LayerNorm.weight", "token_embd_norm.weight"),
            new("embeddings.LayerNorm.bias", "token_embd_norm.bias"),
            new("encoder.layer.{i}.attention.self.query.weight", "blk.{i}.attn_q.weight"),
            new("encoder.layer.{i}.attention.self.query.bias", "blk.{i}.attn_q.bias"),
            new("encoder.layer.{i}.attention.self.key.weight", "blk.{i}.attn_k.weight"),
            new("encoder.layer.{i}.attention.self.key.bias", "blk.{i}.attn_k.bias"),
            new("encoder.layer.{i}.attention.self.value.weight", "blk.{i}.attn_v.weight"),
            new("encoder.layer.{i}.attention.self.value.bias", "blk.{i}.attn_v.bias"),
            new("encoder.layer.{i}.attention.output.dense.weight", "blk.{i}.attn_output.weight"),
            new("encoder.layer.{i}.attention.output.dense.bias", "blk.{i}.attn_output.bias"),
            new("encoder.layer.{i}.attention.output.LayerNorm.weight", "blk.{i}.attn_output_norm.weight"),
            new("encoder.layer.{i}.attention.output.LayerNorm.bias", "blk.{i}.attn_output_norm.bias"),
            new("encoder.layer.{i}.intermediate.dense.weight", "blk.{i}.ffn_up.weight"),
            new("encoder.layer.{i}.intermediate.dense.bias", "blk.{i}.ffn_up.bias"),
            new("encoder.layer.{i}.output.dense.weight", "blk.{i}.ffn_down.weight"),
            new("encoder.layer.{i}.output.dense.bias", "blk.{i}.ffn_down.bias"),
            new("encoder.layer.{i}.output.LayerNorm.weight", "blk.{i}.layer_output_norm.weight"),
            new("encoder.layer.{i}.output.LayerNorm.bias", "blk.{i}.layer_output_norm.bias"),
        ],
    };

    /// <summary>
    /// llama.cpp's <c>t5</c> architecture for Hugging Face T5, T5 v1.1, Flan-T5 and mT5 weights (<c>T5ForConditionalGeneration</c>'s
    /// names, as llama.cpp's converter maps them): one token table, an encoder (<c>enc.</c>) and a decoder (<c>dec.</c>) of
    /// RMSNorm pre-norm blocks without biases, block 0's relative-position table <c>[buckets, heads]</c> per stack
    /// (<c>attn_rel_b</c>; llama.cpp reuses it in every block), cross-attention in <c>cross_attn_*</c>, a ReLU
    /// <c>wi</c> (<c>ffn_up</c>) or gated <c>wi_0</c> (<c>ffn_gate</c>, through GELU) and <c>wi_1</c> (<c>ffn_up</c>).
    /// <c>lm_head</c> is <c>output</c>; a tied head is written as an <c>output</c> of its own (see <see cref="GgufExport"/>).
    /// </summary>
    public static readonly GgufArchitecture T5 = new()
    {
        Name = "t5",
        Rotary = false,
        LayerKey = "encoder.block.{i}.layer.0.layer_norm.weight",
        Tensors =
        [
            new("shared.weight", "token_embd.weight"),
            new("lm_head.weight", "output.weight"),
            new("encoder.final_layer_norm.weight", "enc.output_norm.weight"),
            new("decoder.final_layer_norm.weight", "dec.output_norm.weight"),
            new("encoder.block.{i}.layer.0.layer_norm.weight", "enc.blk.{i}.attn_norm.weight"),
            new("encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight", "enc.blk.{i}.attn_rel_b.weight"),
            new("encoder.block.{i}.layer.0.SelfAttention.q.weight", "enc.blk.{i}.attn_q.weight"),
            new("encoder.block.{i}.layer.0.SelfAttention.k.weight", "enc.blk.{i}.attn_k.weight"),
            new("encoder.block.{i}.layer.0.SelfAttention.v.weight", "enc.blk.{i}.attn_v.weight"),
            new("encoder.block.{i}.layer.0.SelfAttention.o.weight", "enc.blk.{i}.attn_o.weight"),
            new("encoder.block.{i}.layer.1.layer_norm.weight", "enc.blk.{i}.ffn_norm.weight"),
            new("encoder.block.{i}.layer.1.DenseReluDense.wi.weight", "enc.blk.{i}.ffn_up.weight"),
            new("encoder.block.{i}.layer.1.DenseReluDense.wi_0.weight", "enc.blk.{i}.ffn_gate.weight"),
            new("encoder.block.{i}.layer.1.DenseReluDense.wi_1.weight", "enc.blk.{i}.ffn_up.weight"),
            new("encoder.block.{i}.layer.1.DenseReluDense.wo.weight", "enc.blk.{i}.ffn_down.weight"),
            new("decoder.block.{i}.layer.0.layer_norm.weight", "dec.blk.{i}.attn_norm.weight"),
            new("decoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight", "dec.blk.{i}.attn_rel_b.weight"),
            new("decoder.block.{i}.layer.0.SelfAttention.q.weight", "dec.blk.{i}.attn_q.weight"),
            new("decoder.block.{i}.layer.0.SelfAttention.k.weight", "dec.blk.{i}.attn_k.weight"),
            new("decoder.block.{i}.layer.0.SelfAttention.v.weight", "dec.blk.{i}.attn_v.weight"),
            new("decoder.block.{i}.layer.0.SelfAttention.o.weight", "dec.blk.{i}.attn_o.weight"),
            new("decoder.block.{i}.layer.1.layer_norm.weight", "dec.blk.{i}.cross_attn_norm.weight"),
            new("decoder.block.{i}.layer.1.EncDecAttention.q.weight", "dec.blk.{i}.cross_attn_q.weight"),
            new("decoder.block.{i}.layer.1.EncDecAttention.k.weight", "dec.blk.{i}.cross_attn_k.weight"),
            new("decoder.block.{i}.layer.1.EncDecAttention.v.weight", "dec.blk.{i}.cross_attn_v.weight"),
            new("decoder.block.{i}.layer.1.EncDecAttention.o.weight", "dec.blk.{i}.cross_attn_o.weight"),
            new("decoder.block.{i}.layer.2.layer_norm.weight", "dec.blk.{i}.ffn_norm.weight"),
            new("decoder.block.{i}.layer.2.DenseReluDense.wi.weight", "dec.blk.{i}.ffn_up.weight"),
            new("decoder.block.{i}.layer.2.DenseReluDense.wi_0.weight", "dec.blk.{i}.ffn_gate.weight"),
            new("decoder.block.{i}.layer.2.DenseReluDense.wi_1.weight", "dec.blk.{i}.ffn_up.weight"),
            new("decoder.block.{i}.layer.2.DenseReluDense.wo.weight", "dec.blk.{i}.ffn_down.weight"),
        ],
    };
}
