using System;
using System.Collections.Generic;
using System.Threading;

namespace TransformerGen.Generator
{
    // The Hugging Face families (GPT-2, BERT, Llama/Qwen2): the same operations as the attribute's models, chosen from the
    // FamilySpec's fields and named as each family's checkpoints name them. The one place that spells those names is the
    // FamilyNames table below; the loader in the runtime only adds what files may carry besides (prefixes, buffers).
    internal sealed partial class Lowerer
    {
        /// <summary>Each family's checkpoint names, with {0} for the layer index.</summary>
        private sealed record FamilyNames(
            string TokenEmbedding, string? Positions, string? TokenTypes, string? EmbeddingNorm,
            string AttentionNorm, string[] QueryKeyValue, string? QueryKeyValueBias, string Output, string FeedForwardNorm,
            string[] Up, string? UpBias, string Down, string FinalNorm, string NormWeight, string NormBias,
            string? QueryNorm = null, string? KeyNorm = null,
            string? CrossNorm = null, string? CrossQuery = null, string[]? CrossKeyValue = null, string? CrossOutput = null)
        {
            public static readonly FamilyNames Gpt2 = new(
                "wte.weight", "wpe.weight", null, null,
                "h.{0}.ln_1", ["h.{0}.attn.c_attn"], null, "h.{0}.attn.c_proj", "h.{0}.ln_2",
                ["h.{0}.mlp.c_fc"], null, "h.{0}.mlp.c_proj", "ln_f", "weight", "bias");

            public static readonly FamilyNames Bert = new(
                "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm",
                "encoder.layer.{0}.attention.output.LayerNorm",
                ["encoder.layer.{0}.attention.self.query", "encoder.layer.{0}.attention.self.key", "encoder.layer.{0}.attention.self.value"], null,
                "encoder.layer.{0}.attention.output.dense", "encoder.layer.{0}.output.LayerNorm",
                ["encoder.layer.{0}.intermediate.dense"], null, "encoder.layer.{0}.output.dense", "", "weight", "bias");

            // DistilBERT: BERT's post-LN layers under its own names, no token types.
            public static readonly FamilyNames DistilBert = new(
                "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", null, "embeddings.LayerNorm",
                "transformer.layer.{0}.sa_layer_norm",
                ["transformer.layer.{0}.attention.q_lin", "transformer.layer.{0}.attention.k_lin", "transformer.layer.{0}.attention.v_lin"], null,
                "transformer.layer.{0}.attention.out_lin", "transformer.layer.{0}.output_layer_norm",
                ["transformer.layer.{0}.ffn.lin1"], null, "transformer.layer.{0}.ffn.lin2", "", "weight", "bias");

            public static readonly FamilyNames Llama = new(
                "model.embed_tokens.weight", null, null, null,
                "model.layers.{0}.input_layernorm",
                ["model.layers.{0}.self_attn.q_proj", "model.layers.{0}.self_attn.k_proj", "model.layers.{0}.self_attn.v_proj"], null,
                "model.layers.{0}.self_attn.o_proj", "model.layers.{0}.post_attention_layernorm",
                ["model.layers.{0}.mlp.gate_proj", "model.layers.{0}.mlp.up_proj"], null, "model.layers.{0}.mlp.down_proj", "model.norm", "weight", "bias");

            public static readonly FamilyNames Qwen3 = Llama with
            {
                QueryNorm = "model.layers.{0}.self_attn.q_norm.weight", KeyNorm = "model.layers.{0}.self_attn.k_norm.weight",
            };

            // Gemma 3: Qwen3's names, the feed-forward's norm is pre_feedforward_layernorm, and post_attention_layernorm is the
            // attention's output norm (with post_feedforward_layernorm, Sandwich below).
            public static readonly FamilyNames Gemma3 = Qwen3 with { FeedForwardNorm = "model.layers.{0}.pre_feedforward_layernorm" };

            /// <summary>Gemma 3's norms of each sub-layer's output, before the residual sum.</summary>
            public const string PostAttentionNorm = "model.layers.{0}.post_attention_layernorm", PostFeedForwardNorm = "model.layers.{0}.post_feedforward_layernorm";

            // Phi-3: Llama's layers with the q/k/v projections fused into qkv_proj (rows Q | K | V) and gate/up into
            // gate_up_proj (rows gate | up), the packed layouts the compiler uses anyway.
            public static readonly FamilyNames Phi3 = Llama with
            {
                QueryKeyValue = ["model.layers.{0}.self_attn.qkv_proj"], Up = ["model.layers.{0}.mlp.gate_up_proj"],
            };

            // BART's encoder–decoder (BartForConditionalGeneration), whose names Marian and mBART keep: one token table,
            // "model.shared", for both stacks and the head.
            public static readonly FamilyNames BartEncoder = new(
                "model.shared.weight", null, null, null,
                "model.encoder.layers.{0}.self_attn_layer_norm",
                ["model.encoder.layers.{0}.self_attn.q_proj", "model.encoder.layers.{0}.self_attn.k_proj", "model.encoder.layers.{0}.self_attn.v_proj"], null,
                "model.encoder.layers.{0}.self_attn.out_proj", "model.encoder.layers.{0}.final_layer_norm",
                ["model.encoder.layers.{0}.fc1"], null, "model.encoder.layers.{0}.fc2", "", "weight", "bias");

            public static readonly FamilyNames BartDecoder = new(
                "model.shared.weight", null, null, null,
                "model.decoder.layers.{0}.self_attn_layer_norm",
                ["model.decoder.layers.{0}.self_attn.q_proj", "model.decoder.layers.{0}.self_attn.k_proj", "model.decoder.layers.{0}.self_attn.v_proj"], null,
                "model.decoder.layers.{0}.self_attn.out_proj", "model.decoder.layers.{0}.final_layer_norm",
                ["model.decoder.layers.{0}.fc1"], null, "model.decoder.layers.{0}.fc2", "", "weight", "bias",
                CrossNorm: "model.decoder.layers.{0}.encoder_attn_layer_norm", CrossQuery: "model.decoder.layers.{0}.encoder_attn.q_proj",
                CrossKeyValue: ["model.decoder.layers.{0}.encoder_attn.k_proj", "model.decoder.layers.{0}.encoder_attn.v_proj"],
                CrossOutput: "model.decoder.layers.{0}.encoder_attn.out_proj");

            // NomicBERT (nomic-embed-text): BERT's embeddings without positions, post-LN layers with a fused Wqkv and a SwiGLU
            // feed-forward whose gate is fc12 and whose up is fc11: packed gate | up as the compiler's SwiGLU reads them.
            public static readonly FamilyNames NomicBert = new(
                "embeddings.word_embeddings.weight", null, "embeddings.token_type_embeddings.weight", "emb_ln",
                "encoder.layers.{0}.norm1", ["encoder.layers.{0}.attn.Wqkv"], null,
                "encoder.layers.{0}.attn.out_proj", "encoder.layers.{0}.norm2",
                ["encoder.layers.{0}.mlp.fc12", "encoder.layers.{0}.mlp.fc11"], null, "encoder.layers.{0}.mlp.fc2", "", "weight", "bias");

            // MPNetModel: BERT's post-LN layers with the attention's projections under "attention.attn" and its LayerNorm one
            // level up; no token types; the relative-position table is the encoder's ("encoder.relative_attention_bias").
            public static readonly FamilyNames MPNet = new(
                "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", null, "embeddings.LayerNorm",
                "encoder.layer.{0}.attention.LayerNorm",
                ["encoder.layer.{0}.attention.attn.q", "encoder.layer.{0}.attention.attn.k", "encoder.layer.{0}.attention.attn.v"], null,
                "encoder.layer.{0}.attention.attn.o", "encoder.layer.{0}.output.LayerNorm",
                ["encoder.layer.{0}.intermediate.dense"], null, "encoder.layer.{0}.output.dense", "", "weight", "bias");

            // ModernBertModel (base prefix "model."): tok_embeddings and its LayerNorm, pre-norm layers whose Wqkv packs Q | K | V
            // and whose Wi packs input | gate (the activated half first, as the compiler's gated feed-forward reads it), then
            // final_norm. Layer 0 has no attn_norm (FamilySpec.BareFirstAttention).
            public static readonly FamilyNames ModernBert = new(
                "embeddings.tok_embeddings.weight", null, null, "embeddings.norm",
                "layers.{0}.attn_norm", ["layers.{0}.attn.Wqkv"], null,
                "layers.{0}.attn.Wo", "layers.{0}.mlp_norm",
                ["layers.{0}.mlp.Wi"], null, "layers.{0}.mlp.Wo", "final_norm", "weight", "bias");

            // T5ForConditionalGeneration: block N's sub-layers are layer.0 (self-attention), layer.1 (the decoder's cross-attention)
            // and the last (the feed-forward network), each with its own RMSNorm "layer_norm"; one token table "shared".
            public static FamilyNames T5(string side, bool gated)
            {
                string block = side + ".block.{0}.layer.", ffn = block + (side == "decoder" ? "2" : "1");
                string[] up = gated ? [ffn + ".DenseReluDense.wi_0", ffn + ".DenseReluDense.wi_1"] : [ffn + ".DenseReluDense.wi"];
                var names = new FamilyNames(
                    "shared.weight", null, null, null,
                    block + "0.layer_norm", [block + "0.SelfAttention.q", block + "0.SelfAttention.k", block + "0.SelfAttention.v"], null,
                    block + "0.SelfAttention.o", ffn + ".layer_norm", up, null, ffn + ".DenseReluDense.wo", side + ".final_layer_norm", "weight", "bias");
                return side != "decoder" ? names : names with
                {
                    CrossNorm = block + "1.layer_norm", CrossQuery = block + "1.EncDecAttention.q",
                    CrossKeyValue = [block + "1.EncDecAttention.k", block + "1.EncDecAttention.v"], CrossOutput = block + "1.EncDecAttention.o",
                };
            }

            public static FamilyNames Of(int kind) => kind switch
            {
                FamilySpec.Gpt2 => Gpt2,
                FamilySpec.Bert or FamilySpec.Roberta or FamilySpec.Electra => Bert,
                FamilySpec.DistilBert => DistilBert,
                FamilySpec.Qwen3 => Qwen3,
                FamilySpec.Gemma3 => Gemma3,
                FamilySpec.Phi3 => Phi3,
                FamilySpec.NomicBert => NomicBert,
                FamilySpec.MPNet => MPNet,
                FamilySpec.ModernBert => ModernBert,
                _ => Llama,
            };
        }

        private ModelGraph BuildFamily(FamilySpec f, CancellationToken cancellationToken)
        {
            if (_spec.IsEncoderDecoder) return BuildSeq2SeqFamily(f, cancellationToken);
            FamilyNames names = FamilyNames.Of(f.Kind);
            bool conv1D = f.Kind == FamilySpec.Gpt2;
            long c = _d.DModel;
            TokenStream stream = TokenStream.Input;

            // Embedding: tokens, then (BERT) segment 0's token type, then learned positions, then (BERT) LayerNorm; ELECTRA's
            // are narrower than the layers where embedding_size says so, and embeddings_project widens them.
            Stage embed = Stage.Embed;
            long e = f.EmbeddingWidth > 0 ? f.EmbeddingWidth : c;
            TensorDef tokenEmbedding = Parameter(names.TokenEmbedding, InitKind.Normal, InitStd, _d.Vocab, e);
            TensorDef x = Activation("embed.x", -1, e, stream);
            // transformers' nn.Embedding(padding_idx = pad_token_id): lookups of the padding row pass no gradient back.
            _ops.Add(new EmbeddingOp(embed, stream, tokenEmbedding, x, f.EmbeddingScale) { PaddingRow = f.LookupPaddingRow });
            if (names.TokenTypes is not null)
            {
                TensorDef types = Parameter(names.TokenTypes, InitKind.Normal, InitStd, f.TypeVocab, e);
                _ops.Add(new TokenTypeOp(embed, types, x));
            }
            if (names.Positions is not null)
            {
                // Position p is row PositionOffset + p of the table (RoBERTa's rows before it belong to the padding id).
                TensorDef positions = Parameter(names.Positions, InitKind.Normal, InitStd, f.MaxPositions, e);
                if (f.PositionOffset > 0) positions = TensorDef.View(positions, f.PositionOffset * e, f.UsablePositions, e);
                _ops.Add(new PositionalAddOp(embed, stream, positions, x, f.PositionOffset));
            }
            if (f.Rotary)
            {
                _rotaryCos = Constant("rotary_cos", _d.MaxLength, _d.HeadDim / 2L);
                _rotarySin = Constant("rotary_sin", _d.MaxLength, _d.HeadDim / 2L);
                // Gemma 3's sliding layers rotate with a base of their own.
                if (f.SlidingLayers.IndexOf('S') >= 0)
                {
                    _localRotaryCos = Constant("rotary_local_cos", _d.MaxLength, _d.HeadDim / 2L);
                    _localRotarySin = Constant("rotary_local_sin", _d.MaxLength, _d.HeadDim / 2L);
                }
            }
            if (f.EmbeddingNorm) x = FamilyNorm(f, embed, "embed.", "embedding LayerNorm", "norm", names.EmbeddingNorm!, x);
            x = Dropout(embed, "dropout on the embeddings", x, "embed.x_dropped", -1, stream);
            if (e != c)
            {
                TensorDef projectW = Parameter("embeddings_project.weight", InitKind.Normal, InitStd, c, e);
                TensorDef projectB = Parameter("embeddings_project.bias", InitKind.Zeros, 0f, c);
                TensorDef projected = Activation("embed.projected", -1, c, stream);
                _ops.Add(new LinearOp(embed, $"embedding projection ({e} to {c}, embeddings_project)", x, projectW, projectB, projected));
                x = projected;
            }
            if (f.RelativeAttention) RelativeBias(f, embed, stream, "embed", "encoder.relative_attention_bias.weight", bidirectional: true);

            bool encoder = _spec.IsEncoderOnly;
            int layers = encoder ? _d.EncoderLayers : _d.DecoderLayers;
            for (int layer = 0; layer < layers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Stage stage = encoder ? Stage.OfEncoderLayer(layer) : Stage.OfLayer(layer);
                x = FamilyLayer(f, names, stage, Index(layer), conv1D, TokenStream.Input, x, null, causal: !encoder, layers);
            }

            if (encoder)
            {
                // A pre-norm encoder (EmbeddingGemma, ModernBERT) ends with its final norm: last_hidden_state is after it.
                if (_spec.Norm.Value == EnumValues.PreNorm) x = FamilyNorm(f, Stage.Head, "head.", f.RmsNorm ? "final RMSNorm" : "final LayerNorm", "norm_f", names.FinalNorm, x);
                _hiddenState = x;
                ClassifierHead(x);
            }
            else
            {
                x = FamilyNorm(f, Stage.Head, "head.", f.RmsNorm ? "final RMSNorm" : "final LayerNorm", "norm_f", names.FinalNorm, x);
                _hiddenState = x;
                LanguageModelHead(x, tokenEmbedding, "", TokenStream.Input, finalNorm: false);
            }
            return new ModelGraph(_spec, _d, _tensors, _ops) { HiddenState = _hiddenState };
        }

        /// <summary>
        /// An encoder–decoder family (Marian, BART, mBART, M2M100): the encoder's layers over the source, then the decoder's
        /// layers over the target, each with cross-attention to the encoder's output, and the head tied to the one token table,
        /// plus <c>final_logits_bias</c> (not in M2M100). Positions are fixed sinusoids, one table for both stacks (Marian's
        /// split layout, M2M100's fairseq one) or a learned table of each stack's own, starting 2 rows in (BART, mBART), then
        /// BART's embedding LayerNorm. mBART's and M2M100's pre-LN stacks end with a LayerNorm each (the encoder's before the
        /// cross-attention reads it).
        /// </summary>
        private ModelGraph BuildSeq2SeqFamily(FamilySpec f, CancellationToken cancellationToken)
        {
            if (f.Kind == FamilySpec.T5) return BuildT5Family(f, cancellationToken);
            long c = _d.DModel;
            bool pre = _spec.Norm.Value == EnumValues.PreNorm;
            TensorDef tokenEmbedding = Parameter(FamilyNames.BartEncoder.TokenEmbedding, InitKind.Normal, InitStd, _d.Vocab, c);
            float scale = _spec.ScaleEmbeddings.Value ? (float)Math.Sqrt(_d.DModel) : 1f;
            TensorDef Embed(Stage stage, TokenStream stream, string prefix, string side)
            {
                TensorDef e = Activation(prefix + ".x", -1, c, stream);
                // transformers' nn.Embedding(padding_idx = pad): lookups of the padding id (Marian's decoder start) pass no gradient.
                _ops.Add(new EmbeddingOp(stage, stream, tokenEmbedding, e, scale) { PaddingRow = f.LookupPaddingRow });
                if (f.PositionOffset > 0)
                {
                    TensorDef table = Parameter($"model.{side}.embed_positions.weight", InitKind.Normal, InitStd, f.MaxPositions, c);
                    _ops.Add(new PositionalAddOp(stage, stream, TensorDef.View(table, f.PositionOffset * c, f.UsablePositions, c), e, f.PositionOffset));
                }
                else
                {
                    // transformers' MarianSinusoidalPositionalEmbedding: sin(p·ω_i) in columns i < d/2, cos(p·ω_i) in columns d/2 + i;
                    // M2M100SinusoidalPositionalEmbedding: fairseq's spacing of the ω_i, position p at row pad_token_id + 1 + p.
                    _sinusoids ??= Constant(f.Kind == FamilySpec.M2M100 ? "sinusoidal_positions_fairseq" : "sinusoidal_positions_split", _d.MaxLength, c);
                    _ops.Add(new PositionalAddOp(stage, stream, _sinusoids, e));
                }
                if (f.EmbeddingNorm) e = FamilyNorm(f, stage, prefix + ".", "embedding LayerNorm (layernorm_embedding)", "norm", $"model.{side}.layernorm_embedding", e);
                return Dropout(stage, "dropout on embeddings + positions", e, prefix + ".x_dropped", -1, stream);
            }

            TensorDef x = Embed(Stage.Embed, TokenStream.Input, "embed", "encoder");
            for (int layer = 0; layer < _d.EncoderLayers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                x = FamilyLayer(f, FamilyNames.BartEncoder, Stage.OfEncoderLayer(layer), Index(layer), conv1D: false, TokenStream.Input, x, null, causal: false, _d.EncoderLayers);
            }
            if (pre) x = FamilyNorm(f, Stage.EncoderOutput, "encoder.", "the encoder's final LayerNorm", "norm_f", "model.encoder.layer_norm", x);
            TensorDef y = Embed(Stage.TargetEmbed, TokenStream.Decoder, "target_embed", "decoder");
            for (int layer = 0; layer < _d.DecoderLayers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                y = FamilyLayer(f, FamilyNames.BartDecoder, Stage.OfDecoderLayer(layer), Index(layer), conv1D: false, TokenStream.Decoder, y, x, causal: true, _d.DecoderLayers);
            }
            if (pre) y = FamilyNorm(f, Stage.Head, "head.", "the decoder's final LayerNorm", "norm_f", "model.decoder.layer_norm", y);
            _hiddenState = y;
            TensorDef? bias = f.LogitsBias ? TensorDef.View(Parameter("final_logits_bias", InitKind.Zeros, 0f, 1, _d.TargetVocab), 0, _d.TargetVocab) : null;
            LanguageModelHead(y, tokenEmbedding, "", TokenStream.Decoder, finalNorm: false, bias);
            return new ModelGraph(_spec, _d, _tensors, _ops) { HiddenState = _hiddenState, EncoderState = x };
        }

        // T5 and MPNet: each stack's relative-position bias rows, which every self-attention layer of the stack adds to its scores.
        private readonly Dictionary<TokenStream, TensorDef> _relativeBias = new();

        /// <summary>
        /// T5 (T5ForConditionalGeneration; mT5, Flan-T5): pre-norm layers with RMSNorm and no biases, no positions in the
        /// embeddings but a relative-position bias per stack (its first layer's table, bidirectional buckets in the encoder and
        /// backward-only in the decoder) on unscaled scores, a final RMSNorm and dropout on each stack, and one token table
        /// "shared", which the head also reads (times d_model^−½) when tied, or a head of its own, "lm_head".
        /// </summary>
        private ModelGraph BuildT5Family(FamilySpec f, CancellationToken cancellationToken)
        {
            long c = _d.DModel;
            bool gated = f.GatedFeedForward;
            TensorDef shared = Parameter("shared.weight", InitKind.Normal, InitStd, _d.Vocab, c);
            TensorDef Embed(Stage stage, TokenStream stream, string prefix, string side, bool bidirectional)
            {
                TensorDef e = Activation(prefix + ".x", -1, c, stream);
                _ops.Add(new EmbeddingOp(stage, stream, shared, e, 1f));
                RelativeBias(f, stage, stream, prefix, $"{side}.block.0.layer.0.SelfAttention.relative_attention_bias.weight", bidirectional);
                return Dropout(stage, "dropout on the embeddings", e, prefix + ".x_dropped", -1, stream);
            }

            TensorDef x = Embed(Stage.Embed, TokenStream.Input, "embed", "encoder", bidirectional: true);
            FamilyNames encoder = FamilyNames.T5("encoder", gated), decoder = FamilyNames.T5("decoder", gated);
            for (int layer = 0; layer < _d.EncoderLayers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                x = FamilyLayer(f, encoder, Stage.OfEncoderLayer(layer), Index(layer), conv1D: false, TokenStream.Input, x, null, causal: false, _d.EncoderLayers);
            }
            x = FamilyNorm(f, Stage.EncoderOutput, "encoder.", "the encoder's final RMSNorm", "norm_f", encoder.FinalNorm, x);
            x = Dropout(Stage.EncoderOutput, "dropout on the encoder's output", x, "encoder.output_dropped", -1, TokenStream.Input);
            TensorDef y = Embed(Stage.TargetEmbed, TokenStream.Decoder, "target_embed", "decoder", bidirectional: false);
            for (int layer = 0; layer < _d.DecoderLayers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                y = FamilyLayer(f, decoder, Stage.OfDecoderLayer(layer), Index(layer), conv1D: false, TokenStream.Decoder, y, x, causal: true, _d.DecoderLayers);
            }
            y = FamilyNorm(f, Stage.Head, "head.", "the decoder's final RMSNorm", "norm_f", decoder.FinalNorm, y);
            y = Dropout(Stage.Head, "dropout on the decoder's output", y, "head.x_dropped", -1, TokenStream.Decoder);
            _hiddenState = y;
            if (_spec.TiedEmbeddings.Value)
            {
                TensorDef scaled = Activation("head.x_scaled", -1, c, TokenStream.Decoder);
                _ops.Add(new ScaleOp(Stage.Head, "× d_model^−½ before the head tied to the unscaled token table", y, scaled, (float)(1.0 / Math.Sqrt(c))));
                y = scaled;
            }
            LanguageModelHead(y, shared, "", TokenStream.Decoder, finalNorm: false);
            return new ModelGraph(_spec, _d, _tensors, _ops) { HiddenState = _hiddenState, EncoderState = x };
        }

        /// <summary>
        /// A stack's relative-position bias: the table <paramref name="tableName"/> <c>[buckets, heads]</c> gathered into rows
        /// of 2·L − 1 offsets per (sequence, head), which every self-attention layer over <paramref name="stream"/> adds to
        /// its scores (T5 keeps the table in its first layer, MPNet in the encoder).
        /// </summary>
        private void RelativeBias(FamilySpec f, Stage stage, TokenStream stream, string prefix, string tableName, bool bidirectional)
        {
            TensorDef table = Parameter(tableName, InitKind.Normal, InitStd, f.RelativeBuckets, _d.Heads);
            int span = _d.Length(stream);
            var bias = new TensorDef(prefix + ".position_bias", TensorKind.Activation, [(long)_d.Batch * _d.Heads, 2L * span - 1]) { IsPositionBias = true };
            _tensors.Add(bias);
            _ops.Add(new RelativeBiasOp(stage, table, bias, _d.Heads, span, bidirectional, f.RelativeBuckets, f.RelativeMaxDistance, _d.Batch));
            _relativeBias[stream] = bias;
        }

        private static string Index(int layer) => layer.ToString(System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>
        /// One pre-norm (GPT-2, Llama) or post-norm (BERT, Marian) layer of a family, with its names and projections, over
        /// <paramref name="stream"/>; with <paramref name="memory"/> (a decoder of an encoder–decoder), cross-attention to it
        /// between self-attention and the feed-forward network.
        /// </summary>
        private TensorDef FamilyLayer(FamilySpec f, FamilyNames names, Stage stage, string index, bool conv1D, TokenStream stream, TensorDef x, TensorDef? memory, bool causal, int layers)
        {
            long c = _d.DModel, hd = _d.HeadDim, qWidth = (long)_d.Heads * hd, kvWidth = _d.KeyValueWidth;
            int layer = stage.Layer;
            string a = stage.Kind switch { StageKind.EncoderLayer => "encoder.layers.", StageKind.DecoderLayer => "decoder.layers.", _ => "layers." } + index + ".";
            string Name(string pattern) => string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, index);
            float residualStd = InitStd / (float)Math.Sqrt(2.0 * layers);
            bool pre = _spec.Norm.Value == EnumValues.PreNorm;

            // Self-attention sub-layer: one packed projection to Q | K | V (the family's separate q/k/v weights laid out
            // back to back), rotary positions, attention, output projection, residual.
            // ModernBERT's first layer reads the embeddings' output (already normalized) without a norm of its own.
            bool attentionNorm = pre && !(f.BareFirstAttention && layer == 0);
            TensorDef attnIn = attentionNorm ? FamilyNorm(f, stage, a, f.RmsNorm ? "input RMSNorm" : "ln_1 (pre-LN)", "ln1", Name(names.AttentionNorm), x) : x;
            long[] qkvRows = names.QueryKeyValue.Length == 1 ? [qWidth + 2 * kvWidth] : [qWidth, kvWidth, kvWidth];
            (TensorDef qkvW, TensorDef? qkvB) = PackedLinear(names.QueryKeyValue, Name, qkvRows, c, f.QkvBias, InitStd, conv1D);
            TensorDef qkv = Activation(a + "qkv", layer, qWidth + 2 * kvWidth, stream, "qkv");
            if (f.QueryKeyNorm)
            {
                // Qwen3 and Gemma 3: the projection, then each query and key head RMS-normalized (before the rotation).
                TensorDef raw = Activation(a + "qkv_projected", layer, qWidth + 2 * kvWidth, stream, "qkv_projected");
                _ops.Add(new LinearOp(stage, "Q, K, V projections", attnIn, qkvW, qkvB, raw));
                TensorDef queryNorm = Parameter(Name(names.QueryNorm!), NormInit(f), 0f, hd);
                TensorDef keyNorm = Parameter(Name(names.KeyNorm!), NormInit(f), 0f, hd);
                TensorDef rstd = Activation(a + "qk_norm_rstd", layer, _d.Heads + _d.KeyValueHeads, stream, "qk_norm_rstd");
                _ops.Add(new HeadRmsNormOp(stage, raw, queryNorm, keyNorm, qkv, rstd, _d.Heads, _d.KeyValueHeads, (int)hd, f.NormEps) { UnitOffset = f.NormUnitOffset });
            }
            else _ops.Add(new LinearOp(stage, "Q, K, V projections", attnIn, qkvW, qkvB, qkv));
            bool sliding = f.IsSlidingLayer(layer);
            if (f.Rotary)
            {
                (TensorDef cos, TensorDef sin) = sliding ? (_localRotaryCos!, _localRotarySin!) : (_rotaryCos!, _rotarySin!);
                _ops.Add(new RotaryOp(stage, stream, qkv, cos, sin, _d.Heads, _d.HeadDim) { HalfSplit = true, KvHeads = _d.KeyValueHeads });
            }
            // Gemma 3's sliding layers: query i sees keys i − sliding_window < j ≤ i, the kernels' window sliding_window − 1
            // (EmbeddingGemma's: |i − j| < sliding_window, the same window either side); a window as long as the sequence
            // changes nothing.
            int window = sliding && f.SlidingWindow < _d.Length(stream) ? f.SlidingWindow - 1 : 0;
            TensorDef attended = Activation(a + "attention", layer, qWidth, stream, "attention");
            // An encoder's pass keeps each sequence's probabilities while it attends; a decoder's cached pass needs none. An
            // encoder–decoder's decoder masks no padding, as transformers' does not: its targets' pads come last, after every
            // real position under the causal mask, and its begin token is the padding id in Marian.
            (TensorDef? probabilities, TensorDef? statistics) = AttentionState(a, layer, _d.Length(stream), _d.Length(stream), trainingOnly: causal);
            bool maskPadding = _padding && stream == TokenStream.Input;
            string title = (causal ? "causal self-attention" : "self-attention") + (maskPadding ? " with padding mask" : "")
                + (f.RelativeAttention ? (f.UnscaledScores ? ", unscaled scores" : "") + " + relative-position bias" : "")
                + (_d.KvHeads > 0 ? $" ({_d.Heads} query heads on {_d.KeyValueHeads} key/value heads)" : "")
                + (window > 0 ? f.Bidirectional ? $", keys within {window} positions either side" : $", sliding window of {f.SlidingWindow} keys" : "")
                + (f.ScoreScale != 0f ? $", scores × query_pre_attn_scalar^−½" : "");
            _ops.Add(new AttentionOp(stage, title, qkv, 0, qkv, qWidth, qWidth + kvWidth, attended, probabilities, _d.Heads, _d.HeadDim,
                stream, stream, causal, window, maskPadding)
            {
                KvHeads = _d.KvHeads, Statistics = statistics,
                Unscaled = f.UnscaledScores, Scale = f.ScoreScale,
                PositionBias = f.RelativeAttention ? _relativeBias[stream] : null, BiasSpan = f.RelativeAttention ? _d.Length(stream) : 0,
            });
            (TensorDef outW, TensorDef? outB) = PackedLinear([names.Output], Name, [c], qWidth, f.OutBias, residualStd, conv1D);
            TensorDef projected = Activation(a + "attention_output", layer, c, stream, "attention_output");
            _ops.Add(new LinearOp(stage, "attention output projection", attended, outW, outB, projected));
            projected = Dropout(stage, "dropout on the attention sub-layer's output", projected, a + "attention_output_dropped", layer, stream);
            if (f.SandwichNorms) projected = FamilyNorm(f, stage, a, "post-attention RMSNorm (of the sub-layer's output)", "attention_output_normed", Name(FamilyNames.PostAttentionNorm), projected);
            TensorDef residual1 = Activation(a + (pre ? "residual1" : "sum1"), layer, c, stream, pre ? "residual1" : "sum1");
            _ops.Add(new AddOp(stage, "residual connection around self-attention", x, projected, residual1));
            if (!pre) residual1 = FamilyNorm(f, stage, a, "attention LayerNorm (post-LN)", "residual1", Name(names.AttentionNorm), residual1);
            if (memory is not null) residual1 = CrossAttention(f, names, stage, Name, a, residual1, memory, residualStd, pre);

            // Feed-forward sub-layer: up (or gate | up, packed), activation, down.
            string ffnNormTitle = f.SandwichNorms ? "pre-feed-forward RMSNorm" : f.RmsNorm ? "post-attention RMSNorm" : "ln_2 (pre-LN)";
            TensorDef ffnIn = pre ? FamilyNorm(f, stage, a, ffnNormTitle, "ln2", Name(names.FeedForwardNorm), residual1) : residual1;
            bool gated = f.GatedFeedForward;
            long[] upRows = !gated ? [_d.DFF] : names.Up.Length == 1 ? [2L * _d.DFF] : [_d.DFF, _d.DFF];
            (TensorDef upW, TensorDef? upB) = PackedLinear(names.Up, Name, upRows, c, f.FfnBias, InitStd, conv1D);
            TensorDef hidden = Activation(a + "ffn_hidden", layer, gated ? 2L * _d.DFF : _d.DFF, stream, "ffn_hidden");
            _ops.Add(new LinearOp(stage, gated ? "feed-forward gate and up projections" : "feed-forward up projection", ffnIn, upW, upB, hidden));
            TensorDef activated = Activation(a + "ffn_activated", layer, _d.DFF, stream, "ffn_activated");
            _ops.Add(gated
                ? new SwiGluOp(stage, hidden, activated, f.FeedForward switch { FamilySpec.GeGluTanh => GateActivation.GeluTanh, FamilySpec.GeGluErf => GateActivation.GeluErf, _ => GateActivation.Silu })
                : new ActivationOp(stage, f.FeedForward != FamilySpec.Relu, hidden, activated, tanh: f.FeedForward == FamilySpec.GeluTanh, silu: f.FeedForward == FamilySpec.Silu));
            (TensorDef downW, TensorDef? downB) = PackedLinear([names.Down], Name, [c], _d.DFF, f.FfnBias, residualStd, conv1D);
            TensorDef ffnOut = Activation(a + "ffn_output", layer, c, stream, "ffn_output");
            _ops.Add(new LinearOp(stage, "feed-forward down projection", activated, downW, downB, ffnOut));
            ffnOut = Dropout(stage, "dropout on the feed-forward sub-layer's output", ffnOut, a + "ffn_output_dropped", layer, stream);
            if (f.SandwichNorms) ffnOut = FamilyNorm(f, stage, a, "post-feed-forward RMSNorm (of the sub-layer's output)", "ffn_output_normed", Name(FamilyNames.PostFeedForwardNorm), ffnOut);
            TensorDef output = Activation(a + (pre ? "output" : "sum2"), layer, c, stream, pre ? "output" : "sum2");
            _ops.Add(new AddOp(stage, "residual connection around the feed-forward network", residual1, ffnOut, output));
            if (!pre) output = FamilyNorm(f, stage, a, "output LayerNorm (post-LN)", "output", Name(names.FeedForwardNorm), output);
            return output;
        }

        /// <summary>
        /// A decoder layer's cross-attention sub-layer: queries from the decoder's stream, keys and values (one packed product of
        /// the family's k and v projections, run once per source at inference) from the encoder's output, the output
        /// projection, and the residual connection with its norm before (pre-LN) or after (post-LN) it.
        /// </summary>
        private TensorDef CrossAttention(FamilySpec f, FamilyNames names, Stage stage, Func<string, string> name, string a, TensorDef x, TensorDef memory, float residualStd, bool pre)
        {
            long c = _d.DModel, qWidth = (long)_d.Heads * _d.HeadDim, kvWidth = _d.KeyValueWidth;
            int layer = stage.Layer;
            string norm = name(names.CrossNorm!);
            TensorDef crossIn = pre ? FamilyNorm(f, stage, a, "cross-attention LayerNorm (pre-LN)", "ln_cross", norm, x) : x;
            (TensorDef queryW, TensorDef? queryB) = PackedLinear([names.CrossQuery!], name, [qWidth], c, f.QkvBias, InitStd, conv1D: false);
            TensorDef q = Activation(a + "cross_q", layer, qWidth, TokenStream.Decoder, "cross_q");
            _ops.Add(new LinearOp(stage, "cross-attention query projection", crossIn, queryW, queryB, q));
            (TensorDef kvW, TensorDef? kvB) = PackedLinear(names.CrossKeyValue!, name, [kvWidth, kvWidth], c, f.QkvBias, InitStd, conv1D: false);
            var kv = new TensorDef(a + "cross_kv", TensorKind.Activation, [_d.Tokens, 2 * kvWidth], layer, "cross_kv") { PerToken = true, Stream = TokenStream.Input, InCache = true };
            _tensors.Add(kv);
            _ops.Add(new LinearOp(stage, "cross-attention key and value projections of the encoder output", memory, kvW, kvB, kv) { InferenceStage = Stage.EncoderOutput });
            TensorDef attended = Activation(a + "cross_attention", layer, qWidth, TokenStream.Decoder, "cross_attention");
            (TensorDef? probabilities, TensorDef? statistics) = AttentionState(a, layer, _d.TargetSeqLen, _d.SeqLen, trainingOnly: true, cross: true);
            _ops.Add(new AttentionOp(stage, "cross-attention to the encoder output" + (_padding ? " with source padding mask" : ""), q, 0, kv, 0, kvWidth,
                attended, probabilities, _d.Heads, _d.HeadDim, TokenStream.Decoder, TokenStream.Input, causal: false, window: 0, keyPadding: _padding)
            {
                KvHeads = _d.KvHeads, Statistics = statistics, Unscaled = f.UnscaledScores,
            });
            (TensorDef outW, TensorDef? outB) = PackedLinear([names.CrossOutput!], name, [c], qWidth, f.OutBias, residualStd, conv1D: false);
            TensorDef projected = Activation(a + "cross_attention_output", layer, c, TokenStream.Decoder, "cross_attention_output");
            _ops.Add(new LinearOp(stage, "cross-attention output projection", attended, outW, outB, projected));
            projected = Dropout(stage, "dropout on the cross-attention sub-layer's output", projected, a + "cross_attention_output_dropped", layer, TokenStream.Decoder);
            TensorDef sum = Activation(a + (pre ? "residual_cross" : "sum_cross"), layer, c, TokenStream.Decoder, pre ? "residual_cross" : "sum_cross");
            _ops.Add(new AddOp(stage, "residual connection around cross-attention", x, projected, sum));
            return pre ? sum : FamilyNorm(f, stage, a, "cross-attention LayerNorm (post-LN)", "residual_cross", norm, sum);
        }

        /// <summary>
        /// The weight (and bias) of a linear layer made of one or more of the family's projections stacked by rows: each
        /// is a parameter of its own under its checkpoint name, laid out back to back, and the layer reads one view over
        /// them all. Conv1D weights (GPT-2) are kept <c>[out, in]</c> in memory and marked as stored transposed.
        /// </summary>
        private (TensorDef Weight, TensorDef? Bias) PackedLinear(string[] patterns, Func<string, string> name, long[] rows, long inFeatures, bool bias, float std, bool conv1D)
        {
            var weights = new List<TensorDef>();
            long total = 0;
            for (int i = 0; i < patterns.Length; i++)
            {
                var t = new TensorDef(name(patterns[i]) + ".weight", TensorKind.Parameter, [rows[i], inFeatures])
                {
                    Init = InitKind.Normal, InitScale = std, PackedWithNext = i < patterns.Length - 1, StoredTransposed = conv1D,
                };
                _tensors.Add(t);
                weights.Add(t);
                total += rows[i];
            }
            TensorDef? b = null;
            if (bias)
            {
                for (int i = 0; i < patterns.Length; i++)
                {
                    var t = new TensorDef(name(patterns[i]) + ".bias", TensorKind.Parameter, [rows[i]]) { Init = InitKind.Zeros, PackedWithNext = i < patterns.Length - 1 };
                    _tensors.Add(t);
                    b ??= t;
                }
                if (patterns.Length > 1) b = TensorDef.View(b!, 0, total);
            }
            TensorDef w = patterns.Length == 1 ? weights[0] : TensorDef.View(weights[0], 0, total, inFeatures);
            return (w, b);
        }

        /// <summary>
        /// The family's norm: LayerNorm with its eps and a bias (none where the family's norms have none: ModernBERT's), or
        /// RMSNorm with a weight only (Gemma's scaling by 1 + weight).
        /// </summary>
        private TensorDef FamilyNorm(FamilySpec f, Stage stage, string prefix, string title, string role, string parameterPrefix, TensorDef input)
        {
            TensorDef weight = Parameter(parameterPrefix + ".weight", NormInit(f), 0f, input.Width);
            if (!f.RmsNorm)
            {
                TensorDef? bias = f.NormBias ? Parameter(parameterPrefix + ".bias", InitKind.Zeros, 0f, input.Width) : null;
                return Norm(stage, prefix, f.NormBias ? title : title + ", no bias", role, input, weight, bias, input.Stream, f.NormEps);
            }
            TensorDef output = Activation(prefix + role, stage.Layer, input.Width, input.Stream, role);
            TensorDef rstd = Activation(prefix + role + "_rstd", stage.Layer, 1, input.Stream, role + "_rstd", vector: true);
            _ops.Add(new RmsNormOp(stage, f.NormUnitOffset ? title + " × (1 + weight)" : title, input, weight, output, rstd, f.NormEps) { UnitOffset = f.NormUnitOffset });
            return output;
        }

        /// <summary>A norm weight's start: ones, or zeros where the norm scales by 1 + weight (Gemma), the same identity.</summary>
        private static InitKind NormInit(FamilySpec f) => f.NormUnitOffset ? InitKind.Zeros : InitKind.Ones;
    }
}
