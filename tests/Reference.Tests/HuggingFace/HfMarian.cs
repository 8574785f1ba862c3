using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>
/// <c>MarianMTModel</c> (<c>modeling_marian.py</c>, eager attention, dropout off) as <c>transformers</c> computes it: one
/// token table <c>model.shared.weight</c> for the encoder's and the decoder's inputs (×√d_model with
/// <c>scale_embedding</c>) and for the output (logits = h·sharedᵀ + <c>final_logits_bias</c>); fixed sinusoidal positions
/// added after the scaled embedding (sines in the first half of the channels, cosines in the second, not interleaved);
/// post-LN layers with no final or embedding norm; biases on every projection; attention scaled by head_dim^−½.
/// </summary>
/// <remarks>
/// <para>
/// Masks are transformers' additive ones, finfo(dtype).min where a key is hidden: the source padding (the tokenizer's
/// <c>attention_mask</c>) in the encoder's self-attention and the decoder's cross-attention; the causal mask alone in the
/// decoder's self-attention (transformers builds no decoder padding mask when <c>labels</c> are given, so the decoder
/// start token, which is the padding id in opus-mt, is an ordinary key).
/// </para>
/// <para>
/// <c>model.shared</c> is an <c>nn.Embedding</c> with <c>padding_idx</c> = pad: its lookup passes no gradient to the
/// padding row (that row still learns through the tied output head). <c>final_logits_bias</c> is a buffer in
/// transformers; here it is a parameter with a gradient, as the compiled models train it.
/// </para>
/// <para>
/// State order (a sharded file's split): the root's <c>final_logits_bias</c> first, then <c>model.shared.weight</c>, the
/// encoder (its position table, then each layer: <c>self_attn</c> k, v, q, out, <c>self_attn_layer_norm</c>,
/// <c>fc1</c>, <c>fc2</c>, <c>final_layer_norm</c>), then the decoder likewise with <c>encoder_attn</c> and
/// <c>encoder_attn_layer_norm</c> after <c>self_attn_layer_norm</c>. The position tables are buffers here: current
/// <c>save_pretrained</c> leaves them out (<c>_keys_to_ignore_on_save</c>), older converted files carry them.
/// </para>
/// <para>
/// The same class computes <c>BartForConditionalGeneration</c> (<c>modeling_bart.py</c>) and
/// <c>MBartForConditionalGeneration</c> (<c>modeling_mbart.py</c>), whose names and layers are Marian's: their positions
/// are learned, a table per stack of max_position_embeddings + 2 rows (position p reads row p + 2, the decoder's counted
/// on from the cache), and each stack's embedding sum goes through <c>layernorm_embedding</c>. BART's layers are post-LN
/// as Marian's; mBART's are pre-LN (x + f(LN(x))) and each stack ends with <c>layer_norm</c>, the encoder's applied to
/// what the cross-attention reads. Their tables and norms are parameters, registered where the modules register them:
/// <c>embed_positions</c> before a stack's layers, <c>layernorm_embedding</c> (and <c>layer_norm</c>) after them.
/// </para>
/// <para>
/// And <c>M2M100ForConditionalGeneration</c> (<c>modeling_m2m_100.py</c>, NLLB's class): mBART's pre-LN stacks with their
/// final <c>layer_norm</c>, but no <c>layernorm_embedding</c> and no <c>final_logits_bias</c> (the head is the tied table
/// alone). Its positions are fairseq's sinusoids (<see cref="FairseqSinusoids"/>), a non-persistent buffer that no file
/// holds, indexed as create_position_ids_from_input_ids numbers the tokens: the k-th non-padding token of a row (counting
/// on from the cache) reads row pad + k, a padding token reads row pad, which is zero.
/// </para>
/// </remarks>
internal sealed class HfMarian : HfTorchModel, IHfEncoderDecoder
{
    public const string EncoderPositions = "model.encoder.embed_positions.weight";
    public const string DecoderPositions = "model.decoder.embed_positions.weight";

    public HfMarian(HfConfig config, long seed, ScalarType dtype) : base(config, seed, dtype)
    {
        long d = config.HiddenSize;
        // Nonzero so that a loader which drops it shows (transformers initializes it to zeros). M2M100 has none.
        if (config.FinalLogitsBias) Parameter("final_logits_bias", HfInit.Embedding, 1, config.VocabSize);
        Parameter("model.shared.weight", HfInit.Embedding, config.VocabSize, d);
        Positions(EncoderPositions);
        for (int i = 0; i < config.Layers; i++)
        {
            string layer = $"model.encoder.layers.{i}.";
            AttentionParameters(layer + "self_attn", d);
            LayerNormParameters(layer + "self_attn_layer_norm", d);
            Linear(layer + "fc1", d, config.IntermediateSize);
            Linear(layer + "fc2", config.IntermediateSize, d);
            LayerNormParameters(layer + "final_layer_norm", d);
        }
        StackNorms("model.encoder.");
        Positions(DecoderPositions);
        for (int i = 0; i < config.DecoderLayers; i++)
        {
            string layer = $"model.decoder.layers.{i}.";
            AttentionParameters(layer + "self_attn", d);
            LayerNormParameters(layer + "self_attn_layer_norm", d);
            AttentionParameters(layer + "encoder_attn", d);
            LayerNormParameters(layer + "encoder_attn_layer_norm", d);
            Linear(layer + "fc1", d, config.DecoderIntermediateSize);
            Linear(layer + "fc2", config.DecoderIntermediateSize, d);
            LayerNormParameters(layer + "final_layer_norm", d);
        }
        StackNorms("model.decoder.");
        PreNorm = config.PreNorm;
    }

    /// <summary>BART and mBART's rows before position 0 in each learned table (BartLearnedPositionalEmbedding.offset).</summary>
    public const int LearnedPositionOffset = 2;

    /// <summary>
    /// Where the layers' norms sit: before each sub-layer with a final norm per stack (mBART) or after each residual sum
    /// (Marian, BART). Settable for diagnosis only: the self-tests flip it to show the placement matters (flipped, the final
    /// norms apply where the model has them).
    /// </summary>
    public bool PreNorm { get; set; }

    // A stack's position table: Marian's sinusoids, a buffer some files carry; BART's learned one, a parameter of
    // max_position_embeddings + 2 rows (drawn like the token table, so that positions weigh as much as tokens); none for
    // M2M100, whose table is a non-persistent buffer computed in Embed.
    private void Positions(string name)
    {
        if (Config.LearnedPositions) Parameter(name, HfInit.Embedding, Config.MaxPositions + LearnedPositionOffset, Config.HiddenSize);
        else if (!Config.PositionsFromPadding) Buffer(name, () => SinusoidTable(Config.MaxPositions, Config.HiddenSize, ScalarType.Float32));
    }

    // Registered after a stack's layers, as BartEncoder/MBartEncoder register layernorm_embedding (and layer_norm) after them.
    private void StackNorms(string stack)
    {
        if (Config.LearnedPositions) LayerNormParameters(stack + "layernorm_embedding", Config.HiddenSize);
        if (Config.PreNorm) LayerNormParameters(stack + "layer_norm", Config.HiddenSize);
    }

    public override string TokenEmbeddingName => "model.shared.weight";

    /// <summary>
    /// For diagnosis only: true lets the padding row's lookups pass their gradient too (an <c>nn.Embedding</c> without
    /// <c>padding_idx</c>), which transformers does not do.
    /// </summary>
    public bool PaddingRowLearnsFromLookups { get; set; }

    /// <summary>The tied names some files still carry, each a copy of <c>model.shared.weight</c>.</summary>
    public override IReadOnlyList<string> TiedCopyNames { get; } =
        ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"];

    // modeling_marian registers k_proj, v_proj, q_proj, out_proj in that order.
    private void AttentionParameters(string prefix, long d)
    {
        foreach (string projection in new[] { "k_proj", "v_proj", "q_proj", "out_proj" }) Linear($"{prefix}.{projection}", d, d);
    }

    private void Linear(string prefix, long inputs, long outputs)
    {
        Parameter(prefix + ".weight", HfInit.Matrix, outputs, inputs);
        Parameter(prefix + ".bias", HfInit.Bias, outputs);
    }

    /// <summary>
    /// MarianSinusoidalPositionalEmbedding's table <c>[positions, d]</c>: for position p and i &lt; d/2, column i holds
    /// sin(p / 10000^(2i/d)) and column d/2 + i holds cos of the same angle, computed in float64 (numpy) and then
    /// converted to <paramref name="dtype"/>.
    /// </summary>
    public static Tensor SinusoidTable(int positions, int d, ScalarType dtype)
    {
        if (d % 2 != 0) throw new NotSupportedException("an odd d_model puts the extra sine column first; not implemented");
        var table = new double[positions * d];
        for (int p = 0; p < positions; p++)
            for (int i = 0; i < d / 2; i++)
            {
                double angle = p / Math.Pow(10000.0, 2.0 * i / d);
                table[p * d + i] = Math.Sin(angle);
                table[p * d + d / 2 + i] = Math.Cos(angle);
            }
        return tensor(table, new long[] { positions, d }).to(dtype);
    }

    /// <summary>
    /// M2M100SinusoidalPositionalEmbedding.get_embedding(<paramref name="rows"/>, <paramref name="d"/>, <paramref name="pad"/>)
    /// <c>[rows, d]</c>, float32, with libtorch's own float32 operations in get_embedding's order: h = d/2, the frequencies
    /// exp(i·(−ln 10⁴/(h − 1))) for i &lt; h (the step a double rounded to float, as a Python float scaling a float tensor),
    /// each row p the float p times them, then [sin | cos] side by side, a zero column when d is odd, and row
    /// <paramref name="pad"/> zeroed.
    /// </summary>
    public static Tensor FairseqSinusoids(int rows, int d, int pad)
    {
        int half = d / 2;
        if (half < 2) throw new ArgumentException("get_embedding divides by d/2 − 1: d must be 4 or more", nameof(d));
        double step = Math.Log(10000.0) / (half - 1);
        Tensor frequencies = (arange(half, ScalarType.Int64).to(ScalarType.Float32) * -step).exp();
        Tensor angles = arange(rows, ScalarType.Int64).to(ScalarType.Float32).unsqueeze(1) * frequencies.unsqueeze(0);
        Tensor table = cat(new[] { angles.sin(), angles.cos() }, 1);
        if (d % 2 == 1) table = cat(new[] { table, zeros(rows, 1, ScalarType.Float32) }, 1);
        table[pad] = zeros(d, ScalarType.Float32);
        return table;
    }

    /// <summary>
    /// create_position_ids_from_input_ids: for ids <c>[B, T]</c> read after <paramref name="past"/> cached positions, the
    /// table row of each: (running count of non-padding ids in the row + past)·(id ≠ pad) + pad.
    /// </summary>
    public static Tensor PositionIdsFromPadding(Tensor ids, int pad, int past)
    {
        Tensor real = ids.ne(pad).to(ScalarType.Int64);
        return (real.cumsum(1) + past) * real + pad;
    }

    /// <summary>The encoder's output <c>[B, S, E]</c>.</summary>
    public override Tensor LastHiddenState(Tensor ids, Tensor? attentionMask) => Encode(ids, attentionMask);

    /// <summary>
    /// MarianEncoder: embed·√d (when scaled) + positions 0…S−1, then the layers. <paramref name="sourceMask"/> is the
    /// 0/1 <c>attention_mask</c> <c>[B, S]</c> (null: every token visible).
    /// </summary>
    public Tensor Encode(Tensor ids, Tensor? sourceMask)
    {
        long batch = ids.shape[0], length = ids.shape[1];
        Tensor x = Embed(ids, 0, "model.encoder.");
        Tensor? mask = KeyMask(sourceMask, batch, length);
        for (int i = 0; i < Config.Layers; i++)
        {
            string layer = $"model.encoder.layers.{i}.";
            x = Residual(x, layer + "self_attn_layer_norm", h => Attention(layer + "self_attn", h, Heads(layer + "self_attn.k_proj", h, Config.Heads), Heads(layer + "self_attn.v_proj", h, Config.Heads), mask, Config.Heads));
            x = Residual(x, layer + "final_layer_norm", h => FeedForward(layer, h));
        }
        return FinalNorm(x, "model.encoder.");
    }

    /// <summary>
    /// MarianDecoder: <paramref name="ids"/> <c>[B, T]</c> at positions past…past+T−1 (past = what <paramref name="cache"/>
    /// holds, 0 without one), causal self-attention, cross-attention over <paramref name="memory"/> <c>[B, S, E]</c> with
    /// the source mask. With a cache, each layer's self-attention keys and values are appended to it and the
    /// cross-attention ones computed once (as transformers' EncoderDecoderCache does).
    /// </summary>
    public Tensor Decode(Tensor ids, Tensor memory, Tensor? sourceMask, EncoderDecoderCache? cache = null)
    {
        long batch = ids.shape[0], length = ids.shape[1];
        int past = cache?.Length ?? 0, heads = Config.DecoderHeads;
        Tensor y = Embed(ids, past, "model.decoder.");
        // Query at past + q sees keys 0 … past + q.
        Tensor causal = triu(full(length, past + length, MinValue, Dtype), diagonal: past + 1).view(1, 1, length, past + length);
        Tensor? crossMask = KeyMask(sourceMask, batch, memory.shape[1]);
        for (int i = 0; i < Config.DecoderLayers; i++)
        {
            string layer = $"model.decoder.layers.{i}.";
            // Pre-LN: the self-attention's keys and values come from the normed input, as its queries do.
            Tensor attended = PreNorm ? LayerNorm(y, layer + "self_attn_layer_norm") : y;
            Tensor keys = Heads(layer + "self_attn.k_proj", attended, heads), values = Heads(layer + "self_attn.v_proj", attended, heads);
            Tensor crossKeys, crossValues;
            if (cache is null)
            {
                crossKeys = Heads(layer + "encoder_attn.k_proj", memory, heads);
                crossValues = Heads(layer + "encoder_attn.v_proj", memory, heads);
            }
            else
            {
                (keys, values) = cache.AppendSelf(i, keys, values);
                (crossKeys, crossValues) = cache.Cross(i, () => (Heads(layer + "encoder_attn.k_proj", memory, heads), Heads(layer + "encoder_attn.v_proj", memory, heads)));
            }
            y = Residual(y, layer + "self_attn_layer_norm", h => Attention(layer + "self_attn", h, keys, values, causal, heads));
            y = Residual(y, layer + "encoder_attn_layer_norm", h => Attention(layer + "encoder_attn", h, crossKeys, crossValues, crossMask, heads));
            y = Residual(y, layer + "final_layer_norm", h => FeedForward(layer, h));
        }
        if (cache is not null) cache.Length += (int)length;
        return FinalNorm(y, "model.decoder.");
    }

    /// <summary><c>lm_head(h) + final_logits_bias</c> (M2M100: <c>lm_head(h)</c>): <c>[…, V]</c>, the head tied to <c>model.shared</c>.</summary>
    public Tensor TranslationLogits(Tensor hidden)
    {
        Tensor logits = F.linear(hidden, this["model.shared.weight"]);
        return Config.FinalLogitsBias ? logits + this["final_logits_bias"] : logits;
    }

    /// <summary>
    /// shift_tokens_right: the decoder reads a start token then the labels but the last, an ignored label (−100) read as
    /// the padding id. <paramref name="labels"/> <c>[B·T]</c>, &lt; 0 for −100. The start token is
    /// <c>decoder_start_token_id</c> (Marian, BART), or for mBART (whose shift_tokens_right takes no start id) the label at
    /// index (count of non-padding labels − 1), meant as the last one before trailing padding: the language code that ends
    /// mBART-cc25's targets, or &lt;/s&gt; where a target ends with it.
    /// </summary>
    public long[] ShiftRight(int[] labels, int batch, int length)
    {
        var input = new long[batch * length];
        for (int b = 0; b < batch; b++)
        {
            int Read(int t) => labels[b * length + t] < 0 ? Config.PadTokenId : labels[b * length + t];
            int start = Config.DecoderStartTokenId;
            if (Config.ModelType == "mbart")
            {
                int kept = Enumerable.Range(0, length).Count(t => Read(t) != Config.PadTokenId);
                start = Read(kept > 0 ? kept - 1 : length - 1); // all padding: gather at −1 reads the last
            }
            input[b * length] = start;
            for (int t = 1; t < length; t++) input[b * length + t] = Read(t - 1);
        }
        return input;
    }

    /// <summary>
    /// A stack's input <c>[B, T, E]</c>: token rows (×√d when scaled) plus positions firstPosition…; with learned positions,
    /// rows firstPosition + 2… of the stack's table, then its <c>layernorm_embedding</c>; M2M100's rows numbered from the
    /// padding (<see cref="PositionIdsFromPadding"/>) in a table grown past max_position_embeddings + 2 rows when a
    /// sequence needs more, as M2M100SinusoidalPositionalEmbedding grows its own.
    /// </summary>
    internal Tensor Embed(Tensor ids, int firstPosition, string stack)
    {
        long batch = ids.shape[0], length = ids.shape[1], d = Config.HiddenSize;
        if (!Config.PositionsFromPadding && firstPosition + length > Config.MaxPositions)
            throw new ArgumentException($"positions up to {firstPosition + length - 1}, the model has {Config.MaxPositions}");
        // nn.Embedding(padding_idx = pad): the padding row's value is read, but its lookup passes no gradient back.
        int pad = Config.PadTokenId;
        Tensor tokens = Lookup("model.shared.weight", ids, PaddingRowLearnsFromLookups ? -1 : pad).view(batch, length, d);
        if (Config.ScaleEmbedding) tokens = tokens * Math.Sqrt(d);
        if (Config.PositionsFromPadding)
        {
            int rows = Math.Max(Config.MaxPositions + LearnedPositionOffset, pad + 1 + firstPosition + (int)length);
            Tensor rowIds = PositionIdsFromPadding(ids, pad, firstPosition);
            return tokens + FairseqSinusoids(rows, (int)d, pad).to(Dtype).index_select(0, rowIds.flatten()).view(batch, length, d);
        }
        if (!Config.LearnedPositions) return tokens + SinusoidTable(Config.MaxPositions, (int)d, Dtype).narrow(0, firstPosition, length);
        Tensor positions = this[stack + "embed_positions.weight"].narrow(0, firstPosition + LearnedPositionOffset, length);
        return LayerNorm(tokens + positions, stack + "layernorm_embedding");
    }

    // mBART's norm at the end of a stack; none post-LN, nor where the model has none (BART flipped to pre-LN).
    private Tensor FinalNorm(Tensor x, string stack) =>
        PreNorm && Contains(stack + "layer_norm.weight") ? LayerNorm(x, stack + "layer_norm") : x;

    // A sub-layer with its residual: LN(x + f(x)) post-LN, x + f(LN(x)) pre-LN.
    private Tensor Residual(Tensor x, string norm, Func<Tensor, Tensor> sublayer) =>
        PreNorm ? x + sublayer(LayerNorm(x, norm)) : LayerNorm(x + sublayer(x), norm);

    // _prepare_4d_attention_mask: [B, 1, 1, S], finfo.min where the mask is 0.
    private Tensor? KeyMask(Tensor? mask, long batch, long length) =>
        mask is null ? null : (1.0 - mask.to(Dtype).view(batch, 1, 1, length)) * MinValue;

    // A projection split into heads: [B, T, E] → [B, H, T, D].
    private Tensor Heads(string projection, Tensor x, int heads)
    {
        long batch = x.shape[0], length = x.shape[1];
        return F.linear(x, this[projection + ".weight"], this[projection + ".bias"]).view(batch, length, heads, -1).transpose(1, 2);
    }

    // eager_attention_forward then out_proj: (q·kᵀ)·head_dim^−½ + mask, softmax, ·v.
    private Tensor Attention(string prefix, Tensor x, Tensor keys, Tensor values, Tensor? mask, int heads)
    {
        long batch = x.shape[0], length = x.shape[1];
        Tensor queries = Heads(prefix + ".q_proj", x, heads);
        double scaling = Math.Pow(Config.HiddenSize / heads, -0.5);
        Tensor scores = queries.matmul(keys.transpose(2, 3)) * scaling;
        if (mask is not null) scores = scores + mask;
        Tensor output = F.softmax(scores, -1).matmul(values).transpose(1, 2).contiguous().reshape(batch, length, -1);
        return F.linear(output, this[prefix + ".out_proj.weight"], this[prefix + ".out_proj.bias"]);
    }

    private Tensor FeedForward(string layer, Tensor x)
    {
        Tensor inner = HfActivations.Apply(Config.Activation, F.linear(x, this[layer + "fc1.weight"], this[layer + "fc1.bias"]));
        return F.linear(inner, this[layer + "fc2.weight"], this[layer + "fc2.bias"]);
    }

    private Tensor LayerNorm(Tensor x, string prefix) =>
        F.layer_norm(x, new[] { (long)Config.HiddenSize }, this[prefix + ".weight"], this[prefix + ".bias"], Config.NormEps);
}
