using System;
using System.Collections.Generic;
using System.Threading;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 3: turns a valid declaration into the graph of operations of its forward pass, with PyTorch's
    /// parameter names, then checks every operation's shapes. One builder serves the three architectures: they
    /// share the embedding, the self-attention layer and the head, and differ in which stacks they have.
    /// </summary>
    internal sealed partial class Lowerer
    {
        /// <summary>GPT-2's initialization: weights drawn from N(0, 0.02²); projections into the residual stream scaled by 1/√(2·layers).</summary>
        private const float InitStd = 0.02f;

        private readonly ModelSpec _spec;
        private readonly ModelDims _d;
        private readonly List<TensorDef> _tensors = new();
        private readonly List<Op> _ops = new();
        private readonly bool _dropout;
        private readonly bool _padding;
        private TensorDef? _rotaryCos, _rotarySin, _localRotaryCos, _localRotarySin, _sinusoids;
        // The last hidden state (the head's input), exposed after a forward pass as LastHiddenState.
        private TensorDef? _hiddenState;

        private Lowerer(ModelSpec spec)
        {
            _spec = spec;
            int dModel = spec.DModel.Value, heads = spec.Heads.Value;
            _d = new ModelDims(spec.Vocab.Value, dModel, heads, spec.Family?.HeadDim ?? dModel / heads, spec.Layers.Value, spec.DFF.Value, spec.SeqLen.Value, spec.Batch.Value,
                spec.EncoderLayerCount, spec.DecoderLayerCount, spec.TargetVocabSize, spec.TargetLength, spec.Classes.Value,
                spec.Family is { } family && family.KvHeads != heads ? family.KvHeads : 0) { CacheSlots = spec.IsDecoderOnly ? spec.CacheSlots : 1 };
            _dropout = spec.Dropout.Value > 0f;
            _padding = spec.PadToken.Value >= 0;
        }

        public static ModelGraph Lower(ModelSpec spec, CancellationToken cancellationToken)
        {
            var lowerer = new Lowerer(spec);
            ModelGraph graph = lowerer.Build(cancellationToken);
            ShapeCheck.Verify(graph);
            return graph;
        }

        private bool PreNorm => _spec.Norm.Value == EnumValues.PreNorm;

        private ModelGraph Build(CancellationToken cancellationToken)
        {
            if (_spec.Family is { } family) return BuildFamily(family, cancellationToken);
            long c = _d.DModel;
            if (_spec.IsDecoderOnly)
            {
                TensorDef tokenEmbedding = Parameter("token_embedding.weight", InitKind.Normal, InitStd, _d.Vocab, c);
                TensorDef x = EmbedStage(Stage.Embed, TokenStream.Input, "embed", tokenEmbedding, "pos_embedding.weight");
                for (int layer = 0; layer < _d.DecoderLayers; layer++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    x = SelfAttentionLayer(Stage.OfLayer(layer), $"decoder.layers.{layer}.", $"layers.{layer}.", TokenStream.Input, causal: true, x, null, _d.DecoderLayers);
                }
                LanguageModelHead(x, tokenEmbedding, "norm_f", TokenStream.Input);
            }
            else if (_spec.IsEncoderOnly)
            {
                TensorDef tokenEmbedding = Parameter("token_embedding.weight", InitKind.Normal, InitStd, _d.Vocab, c);
                TensorDef x = EmbedStage(Stage.Embed, TokenStream.Input, "embed", tokenEmbedding, "pos_embedding.weight");
                for (int layer = 0; layer < _d.EncoderLayers; layer++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    x = SelfAttentionLayer(Stage.OfEncoderLayer(layer), $"encoder.layers.{layer}.", $"encoder.layers.{layer}.", TokenStream.Input, causal: false, x, null, _d.EncoderLayers);
                }
                ClassifierHead(x);
            }
            else
            {
                TensorDef sourceEmbedding = Parameter("source_embedding.weight", InitKind.Normal, InitStd, _d.Vocab, c);
                TensorDef x = EmbedStage(Stage.Embed, TokenStream.Input, "embed", sourceEmbedding, "source_pos_embedding.weight");
                for (int layer = 0; layer < _d.EncoderLayers; layer++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    x = SelfAttentionLayer(Stage.OfEncoderLayer(layer), $"encoder.layers.{layer}.", $"encoder.layers.{layer}.", TokenStream.Input, causal: false, x, null, _d.EncoderLayers);
                }
                TensorDef memory = PreNorm ? FinalNorm(Stage.EncoderOutput, "encoder.norm", "encoder.output", x) : x;

                TensorDef targetEmbedding = Parameter("target_embedding.weight", InitKind.Normal, InitStd, _d.TargetVocab, c);
                TensorDef y = EmbedStage(Stage.TargetEmbed, TokenStream.Decoder, "target_embed", targetEmbedding, "target_pos_embedding.weight");
                for (int layer = 0; layer < _d.DecoderLayers; layer++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    y = SelfAttentionLayer(Stage.OfDecoderLayer(layer), $"decoder.layers.{layer}.", $"decoder.layers.{layer}.", TokenStream.Decoder, causal: true, y, memory, _d.DecoderLayers);
                }
                LanguageModelHead(y, targetEmbedding, "decoder.norm", TokenStream.Decoder);
                return new ModelGraph(_spec, _d, _tensors, _ops) { EncoderState = memory };
            }
            return new ModelGraph(_spec, _d, _tensors, _ops);
        }

        /// <summary>Token embedding (optionally × √DModel), positions (added, or rotary tables for the attention), dropout.</summary>
        private TensorDef EmbedStage(Stage stage, TokenStream stream, string prefix, TensorDef tokenEmbedding, string learnedName)
        {
            long c = _d.DModel;
            TensorDef x = Activation(prefix + ".x", -1, c, stream);
            float scale = _spec.ScaleEmbeddings.Value ? (float)Math.Sqrt(_d.DModel) : 1f;
            _ops.Add(new EmbeddingOp(stage, stream, tokenEmbedding, x, scale));
            switch (_spec.Positional.Value)
            {
                case EnumValues.Learned:
                    _ops.Add(new PositionalAddOp(stage, stream, Parameter(learnedName, InitKind.Normal, InitStd, _d.Length(stream), c), x));
                    break;
                case EnumValues.Sinusoidal:
                    _sinusoids ??= Constant("sinusoidal_positions", _d.MaxLength, c);
                    _ops.Add(new PositionalAddOp(stage, stream, _sinusoids, x));
                    break;
                case EnumValues.Rotary:
                    _rotaryCos ??= Constant("rotary_cos", _d.MaxLength, _d.HeadDim / 2L);
                    _rotarySin ??= Constant("rotary_sin", _d.MaxLength, _d.HeadDim / 2L);
                    break;
            }
            return Dropout(stage, "dropout on embeddings + positions", x, prefix + ".x_dropped", -1, stream);
        }

        /// <summary>
        /// One Transformer layer: self-attention, then (when <paramref name="memory"/> is given, in a decoder of an
        /// encoder–decoder) cross-attention to the encoder's output, then the feed-forward network, each sub-layer in a
        /// residual connection with LayerNorm before (pre-LN) or after (post-LN) it.
        /// </summary>
        private TensorDef SelfAttentionLayer(Stage stage, string p, string activationPrefix, TokenStream stream, bool causal, TensorDef x, TensorDef? memory, int layers)
        {
            long c = _d.DModel;
            int layer = stage.Layer;
            float residualStd = InitStd / (float)Math.Sqrt(2.0 * layers);
            TensorDef inProjW = Parameter(p + "self_attn.in_proj_weight", InitKind.Normal, InitStd, 3 * c, c);
            TensorDef inProjB = Parameter(p + "self_attn.in_proj_bias", InitKind.Zeros, 0f, 3 * c);
            TensorDef outProjW = Parameter(p + "self_attn.out_proj.weight", InitKind.Normal, residualStd, c, c);
            TensorDef outProjB = Parameter(p + "self_attn.out_proj.bias", InitKind.Zeros, 0f, c);
            TensorDef? crossW = null, crossB = null, crossOutW = null, crossOutB = null;
            if (memory is not null)
            {
                crossW = Parameter(p + "multihead_attn.in_proj_weight", InitKind.Normal, InitStd, 3 * c, c);
                crossB = Parameter(p + "multihead_attn.in_proj_bias", InitKind.Zeros, 0f, 3 * c);
                crossOutW = Parameter(p + "multihead_attn.out_proj.weight", InitKind.Normal, residualStd, c, c);
                crossOutB = Parameter(p + "multihead_attn.out_proj.bias", InitKind.Zeros, 0f, c);
            }
            TensorDef linear1W = Parameter(p + "linear1.weight", InitKind.Normal, InitStd, _d.DFF, c);
            TensorDef linear1B = Parameter(p + "linear1.bias", InitKind.Zeros, 0f, _d.DFF);
            TensorDef linear2W = Parameter(p + "linear2.weight", InitKind.Normal, residualStd, c, _d.DFF);
            TensorDef linear2B = Parameter(p + "linear2.bias", InitKind.Zeros, 0f, c);
            TensorDef norm1W = Parameter(p + "norm1.weight", InitKind.Ones, 0f, c);
            TensorDef norm1B = Parameter(p + "norm1.bias", InitKind.Zeros, 0f, c);
            TensorDef norm2W = Parameter(p + "norm2.weight", InitKind.Ones, 0f, c);
            TensorDef norm2B = Parameter(p + "norm2.bias", InitKind.Zeros, 0f, c);
            TensorDef? norm3W = null, norm3B = null;
            if (memory is not null)
            {
                norm3W = Parameter(p + "norm3.weight", InitKind.Ones, 0f, c);
                norm3B = Parameter(p + "norm3.bias", InitKind.Zeros, 0f, c);
            }

            string a = activationPrefix;
            // Self-attention sub-layer.
            TensorDef attnIn = PreNorm ? Norm(stage, a, "norm1 (pre-LN)", "ln1", x, norm1W, norm1B, stream) : x;
            TensorDef qkv = Activation(a + "qkv", layer, 3 * c, stream, "qkv");
            _ops.Add(new LinearOp(stage, "Q, K, V projections", attnIn, inProjW, inProjB, qkv));
            if (_rotaryCos is not null) _ops.Add(new RotaryOp(stage, stream, qkv, _rotaryCos, _rotarySin!, _d.Heads, _d.HeadDim));
            TensorDef attended = Activation(a + "attention", layer, c, stream, "attention");
            (TensorDef? probabilities, TensorDef? statistics) = AttentionState(a, layer, _d.Length(stream), _d.Length(stream), trainingOnly: !stage.IsEncoderSide);
            string title = (causal ? "causal self-attention" : "self-attention") + (_padding ? " with padding mask" : "") + (_spec.AttentionWindow.Value > 0 ? $" within ±{_spec.AttentionWindow.Value}" : "");
            _ops.Add(new AttentionOp(stage, title, qkv, 0, qkv, c, 2 * c, attended, probabilities, _d.Heads, _d.HeadDim, stream, stream,
                causal, _spec.AttentionWindow.Value, _padding) { Statistics = statistics });
            TensorDef projected = Activation(a + "attention_output", layer, c, stream, "attention_output");
            _ops.Add(new LinearOp(stage, "attention output projection", attended, outProjW, outProjB, projected));
            projected = Dropout(stage, "dropout on the attention sub-layer's output", projected, a + "attention_output_dropped", layer, stream);
            TensorDef residual1 = Activation(a + (PreNorm ? "residual1" : "sum1"), layer, c, stream, PreNorm ? "residual1" : "sum1");
            _ops.Add(new AddOp(stage, "residual connection around self-attention", x, projected, residual1));
            if (!PreNorm) residual1 = Norm(stage, a, "norm1 (post-LN)", "residual1", residual1, norm1W, norm1B, stream);

            // Cross-attention sub-layer (decoder of an encoder–decoder): queries from the decoder, keys and values
            // from the encoder's output, through the two parts of one stacked in_proj_weight, as PyTorch stores it.
            TensorDef ffnResidual = residual1;
            if (memory is not null)
            {
                TensorDef crossIn = PreNorm ? Norm(stage, a, "norm2 (pre-LN)", "ln2", residual1, norm2W, norm2B, stream) : residual1;
                TensorDef q = Activation(a + "cross_q", layer, c, stream, "cross_q");
                _ops.Add(new LinearOp(stage, "cross-attention query projection", crossIn, TensorDef.View(crossW!, 0, c, c), TensorDef.View(crossB!, 0, c), q));
                var kv = new TensorDef(a + "cross_kv", TensorKind.Activation, [_d.Tokens, 2 * c], layer, "cross_kv") { PerToken = true, Stream = TokenStream.Input, InCache = true };
                _tensors.Add(kv);
                _ops.Add(new LinearOp(stage, "cross-attention key and value projections of the encoder output", memory,
                    TensorDef.View(crossW!, c * c, 2 * c, c), TensorDef.View(crossB!, c, 2 * c), kv) { InferenceStage = Stage.EncoderOutput });
                TensorDef crossAttended = Activation(a + "cross_attention", layer, c, stream, "cross_attention");
                (TensorDef? crossProbabilities, TensorDef? crossStatistics) = AttentionState(a, layer, _d.TargetSeqLen, _d.SeqLen, trainingOnly: true, cross: true);
                _ops.Add(new AttentionOp(stage, "cross-attention to the encoder output" + (_padding ? " with source padding mask" : ""), q, 0, kv, 0, c,
                    crossAttended, crossProbabilities, _d.Heads, _d.HeadDim, TokenStream.Decoder, TokenStream.Input, causal: false, window: 0, keyPadding: _padding) { Statistics = crossStatistics });
                TensorDef crossProjected = Activation(a + "cross_attention_output", layer, c, stream, "cross_attention_output");
                _ops.Add(new LinearOp(stage, "cross-attention output projection", crossAttended, crossOutW!, crossOutB!, crossProjected));
                crossProjected = Dropout(stage, "dropout on the cross-attention sub-layer's output", crossProjected, a + "cross_attention_output_dropped", layer, stream);
                TensorDef residual2 = Activation(a + (PreNorm ? "residual2" : "sum2"), layer, c, stream, PreNorm ? "residual2" : "sum2");
                _ops.Add(new AddOp(stage, "residual connection around cross-attention", residual1, crossProjected, residual2));
                if (!PreNorm) residual2 = Norm(stage, a, "norm2 (post-LN)", "residual2", residual2, norm2W, norm2B, stream);
                ffnResidual = residual2;
            }

            // Feed-forward sub-layer; its norm is norm2, or norm3 in a decoder layer with cross-attention.
            (TensorDef ffnNormW, TensorDef ffnNormB, string ffnNormName) = memory is null ? (norm2W, norm2B, "norm2") : (norm3W!, norm3B!, "norm3");
            string ffnIndex = memory is null ? "2" : "3";
            TensorDef ffnIn = PreNorm ? Norm(stage, a, ffnNormName + " (pre-LN)", "ln" + ffnIndex, ffnResidual, ffnNormW, ffnNormB, stream) : ffnResidual;
            TensorDef hidden = Activation(a + "ffn_hidden", layer, _d.DFF, stream, "ffn_hidden");
            _ops.Add(new LinearOp(stage, "feed-forward linear1", ffnIn, linear1W, linear1B, hidden));
            TensorDef activated = Activation(a + "ffn_activated", layer, _d.DFF, stream, "ffn_activated");
            _ops.Add(new ActivationOp(stage, _spec.Activation.Value == EnumValues.Gelu, hidden, activated));
            TensorDef ffnOut = Activation(a + "ffn_output", layer, c, stream, "ffn_output");
            _ops.Add(new LinearOp(stage, "feed-forward linear2", activated, linear2W, linear2B, ffnOut));
            ffnOut = Dropout(stage, "dropout on the feed-forward sub-layer's output", ffnOut, a + "ffn_output_dropped", layer, stream);
            TensorDef output = Activation(a + (PreNorm ? "output" : "sum" + ffnIndex), layer, c, stream, PreNorm ? "output" : "sum" + ffnIndex);
            _ops.Add(new AddOp(stage, "residual connection around the feed-forward network", ffnResidual, ffnOut, output));
            if (!PreNorm) output = Norm(stage, a, ffnNormName + " (post-LN)", "output", output, ffnNormW, ffnNormB, stream);
            return output;
        }

        /// <summary>Final norm (pre-LN), projection to the vocabulary (tied or not, with the BART-shaped families' final_logits_bias or none), softmax and cross-entropy.</summary>
        private void LanguageModelHead(TensorDef x, TensorDef tokenEmbedding, string normName, TokenStream stream, bool finalNorm = true, TensorDef? bias = null)
        {
            Stage stage = Stage.Head;
            int vocab = stream == TokenStream.Input ? _d.Vocab : _d.TargetVocab;
            if (PreNorm && finalNorm) x = FinalNorm(stage, normName, "head.norm_f", x);
            TensorDef weight = _spec.TiedEmbeddings.Value
                ? tokenEmbedding
                : Parameter("lm_head.weight", InitKind.Normal, InitStd, vocab, _d.DModel);
            TensorDef logits = Activation("head.logits", -1, vocab, stream);
            string title = (_spec.TiedEmbeddings.Value ? "LM head (tied to the token embedding)" : "LM head") + (bias is null ? "" : " + final_logits_bias");
            _ops.Add(new LinearOp(stage, title, x, weight, bias, logits));
            _ops.Add(new CrossEntropyOp(stage, logits, _spec.LabelSmoothing.Value));
        }

        /// <summary>
        /// An encoder-only model's head: final norm (pre-LN), then a sentence embedding (pooling, L2 norm), or pooling for
        /// classification (with a Hugging Face classifier's dense layer and tanh or ReLU), a linear layer to the classes
        /// and cross-entropy, except for a classifier of scores, whose caller's loss seeds the backward pass.
        /// </summary>
        /// <summary>
        /// A sentence-transformers Dense module on the pooled rows: <c>{path}.linear</c> (with or without its bias), then
        /// tanh or nothing (Identity).
        /// </summary>
        private TensorDef DenseModule(Stage stage, DenseLayer dense, TensorDef x)
        {
            string name = "head." + dense.Path;
            TensorDef weight = Parameter(dense.WeightName, InitKind.Normal, InitStd, dense.Out, dense.In);
            TensorDef? bias = dense.Bias ? Parameter(dense.BiasName, InitKind.Zeros, 0f, dense.Out) : null;
            var projected = new TensorDef(name + (dense.Tanh ? "_linear" : ""), TensorKind.Activation, [_d.Batch, dense.Out]);
            _tensors.Add(projected);
            _ops.Add(new LinearOp(stage, $"sentence-transformers Dense layer {dense.Path} ({dense.In} → {dense.Out}{(dense.Bias ? "" : ", no bias")}{(dense.Tanh ? ", tanh" : "")})", x, weight, bias, projected));
            if (!dense.Tanh) return projected;
            var activated = new TensorDef(name, TensorKind.Activation, [_d.Batch, dense.Out]);
            _tensors.Add(activated);
            _ops.Add(new TanhOp(stage, projected, activated));
            return activated;
        }

        private void ClassifierHead(TensorDef x)
        {
            Stage stage = Stage.Head;
            // A family's final norm (a pre-norm encoder's) is its own, applied before the head by the family's builder.
            if (PreNorm && _spec.Family is null) x = FinalNorm(stage, "norm_f", "head.norm_f", x);
            if (_spec.Head.Value == EnumValues.SentenceEmbedding)
            {
                // sentence-transformers: the mean over non-padding positions (or the first token, [CLS]), the folder's
                // Dense layers if any, then unit L2 norm (unless the folder's modules.json lists no Normalize module: the
                // vectors as they are, copied to the output); the caller's loss seeds backward.
                TensorDef pooled = new("head.pooled", TensorKind.Activation, [_d.Batch, _d.DModel]);
                _tensors.Add(pooled);
                _ops.Add(new PoolOp(stage, _spec.Pooling.Value == EnumValues.MeanPooling, x, pooled, _d.Batch, _d.SeqLen));
                TensorDef projected = pooled;
                if (_spec.Family is { } family)
                    foreach (DenseLayer dense in family.Dense) projected = DenseModule(stage, dense, projected);
                long width = projected.Shape[1];
                TensorDef embeddings = new("head.embeddings", TensorKind.Activation, [_d.Batch, width]) { SeededGradient = true };
                _tensors.Add(embeddings);
                if (_spec.Family is { UnnormalizedEmbeddings: true })
                {
                    _ops.Add(new ScaleOp(stage, "the sentence embeddings, not normalized (the folder has no Normalize module)", projected, embeddings, 1f));
                    return;
                }
                TensorDef norms = new("head.embedding_norms", TensorKind.Activation, [_d.Batch]);
                _tensors.Add(norms);
                _ops.Add(new L2NormalizeOp(stage, projected, embeddings, norms));
                return;
            }
            // Hugging Face's BERT-like classifiers: BertForSequenceClassification's pooler (dense + tanh on [CLS]) before
            // "classifier"; RobertaClassificationHead's (and MPNetClassificationHead's) "classifier.dense" + tanh before "classifier.out_proj";
            // DistilBertForSequenceClassification's "pre_classifier" + ReLU before "classifier".
            // ElectraClassificationHead: RoBERTa's names, GELU where RoBERTa's has tanh.
            bool electra = _spec.Family?.Kind == FamilySpec.Electra;
            bool roberta = _spec.Family is { IsRobertaLike: true } || electra, distil = _spec.Family?.Kind == FamilySpec.DistilBert;
            bool pooler = _spec.Family is { IsBertLike: true } && _spec.Head.Value == EnumValues.Classification;
            bool predictionHead = _spec.Family?.Kind == FamilySpec.ModernBert;
            string classifier = pooler && roberta ? "classifier.out_proj" : "classifier";
            TensorDef features = x;
            if (_spec.Head.Value == EnumValues.Classification)
            {
                features = new TensorDef("head.pooled", TensorKind.Activation, [_d.Batch, _d.DModel]);
                _tensors.Add(features);
                _ops.Add(new PoolOp(stage, _spec.Pooling.Value == EnumValues.MeanPooling, x, features, _d.Batch, _d.SeqLen));
            }
            if (pooler)
            {
                string dense = roberta ? "classifier.dense" : distil ? "pre_classifier" : "pooler.dense";
                TensorDef denseW = Parameter(dense + ".weight", InitKind.Normal, InitStd, _d.DModel, _d.DModel);
                TensorDef denseB = Parameter(dense + ".bias", InitKind.Zeros, 0f, _d.DModel);
                var projected = new TensorDef("head.pooler_dense", TensorKind.Activation, [_d.Batch, _d.DModel]);
                var activated = new TensorDef("head.pooler_output", TensorKind.Activation, [_d.Batch, _d.DModel]);
                _tensors.Add(projected);
                _tensors.Add(activated);
                _ops.Add(new LinearOp(stage, roberta ? "classification head's dense layer" : distil ? "pre-classifier" : "pooler dense layer", features, denseW, denseB, projected));
                _ops.Add(distil || electra ? new ActivationOp(stage, gelu: electra, projected, activated) : new TanhOp(stage, projected, activated));
                features = activated;
            }
            if (predictionHead) features = PredictionHead(stage, _spec.Family!, features);
            TensorDef weight = Parameter(classifier + ".weight", InitKind.Normal, InitStd, _d.Classes, _d.DModel);
            TensorDef bias = Parameter(classifier + ".bias", InitKind.Zeros, 0f, _d.Classes);
            // A Hugging Face sequence classifier of scores (one label: a cross-encoder's; problem_type regression or
            // multi_label_classification) has no loss of its own here: the caller's loss (MSE, BCE) seeds its backward pass.
            bool seeded = (pooler || predictionHead) && _spec.Head.Value == EnumValues.Classification && _spec.Family!.ScoreHead;
            TensorDef logits = features.PerToken
                ? Activation("head.logits", -1, _d.Classes, TokenStream.Input)
                : new TensorDef("head.logits", TensorKind.Activation, [_d.Batch, _d.Classes]) { SeededGradient = seeded };
            if (!features.PerToken) _tensors.Add(logits);
            _ops.Add(new LinearOp(stage, features.PerToken ? "tagging head" : seeded ? "score head (one output)" : "classification head", features, weight, bias, logits));
            if (seeded) return;
            _ops.Add(new CrossEntropyOp(stage, logits, _spec.LabelSmoothing.Value));
        }

        /// <summary>
        /// ModernBERT's ModernBertPredictionHead before its classifier, on the pooled rows of a sequence classifier or on every
        /// token of a token classifier: <c>head.norm(act(head.dense(x)))</c>, the dense layer's bias and the norm's as the
        /// config says (<c>classifier_bias</c>, <c>norm_bias</c>).
        /// </summary>
        private TensorDef PredictionHead(Stage stage, FamilySpec f, TensorDef x)
        {
            long c = _d.DModel;
            // A tensor of x's rows (per token, or one per sequence), of width c or (vector) one float per row.
            TensorDef Rows(string name, bool vector = false)
            {
                if (x.PerToken) return Activation(name, -1, c, TokenStream.Input, vector: vector);
                var t = new TensorDef(name, TensorKind.Activation, vector ? [_d.Batch] : [_d.Batch, c]);
                _tensors.Add(t);
                return t;
            }
            TensorDef denseW = Parameter("head.dense.weight", InitKind.Normal, InitStd, c, c);
            TensorDef? denseB = f.ClassifierBias ? Parameter("head.dense.bias", InitKind.Zeros, 0f, c) : null;
            TensorDef projected = Rows("head.dense"), activated = Rows("head.activated");
            _ops.Add(new LinearOp(stage, "prediction head's dense layer (head.dense)", x, denseW, denseB, projected));
            _ops.Add(new ActivationOp(stage, f.ClassifierActivation != FamilySpec.Relu, projected, activated,
                tanh: f.ClassifierActivation == FamilySpec.GeluTanh, silu: f.ClassifierActivation == FamilySpec.Silu));
            TensorDef normW = Parameter("head.norm.weight", InitKind.Ones, 0f, c);
            TensorDef? normB = f.NormBias ? Parameter("head.norm.bias", InitKind.Zeros, 0f, c) : null;
            TensorDef normed = Rows("head.normed"), mean = Rows("head.normed_mean", vector: true), rstd = Rows("head.normed_rstd", vector: true);
            _ops.Add(new LayerNormOp(stage, "prediction head's LayerNorm (head.norm)" + (f.NormBias ? "" : ", no bias"), activated, normW, normB, normed, mean, rstd) { Eps = f.NormEps });
            return normed;
        }

        private TensorDef FinalNorm(Stage stage, string parameterName, string activationName, TensorDef x)
        {
            TensorDef normW = Parameter(parameterName + ".weight", InitKind.Ones, 0f, _d.DModel);
            TensorDef normB = Parameter(parameterName + ".bias", InitKind.Zeros, 0f, _d.DModel);
            return Norm(stage, "", "final LayerNorm", activationName, x, normW, normB, x.Stream);
        }

        private TensorDef Norm(Stage stage, string prefix, string title, string role, TensorDef input, TensorDef gamma, TensorDef? beta, TokenStream stream, float eps = 1e-5f)
        {
            TensorDef output = Activation(prefix + role, stage.Layer, input.Width, stream, role);
            TensorDef mean = Activation(prefix + role + "_mean", stage.Layer, 1, stream, role + "_mean", vector: true);
            TensorDef rstd = Activation(prefix + role + "_rstd", stage.Layer, 1, stream, role + "_rstd", vector: true);
            _ops.Add(new LayerNormOp(stage, title, input, gamma, beta, output, mean, rstd) { Eps = eps });
            return output;
        }

        private TensorDef Dropout(Stage stage, string title, TensorDef input, string name, int layer, TokenStream stream)
        {
            if (!_dropout) return input;
            string role = name.Substring(name.LastIndexOf('.') + 1);
            TensorDef output = Activation(name, layer, input.Width, stream, role);
            TensorDef mask = Activation(name + "_mask", layer, input.Width, stream, role + "_mask", trainingOnly: true);
            _ops.Add(new DropoutOp(stage, title, input, output, mask, _spec.Dropout.Value));
            return output;
        }

        /// <summary>
        /// Whether training attention over <paramref name="queries"/> × <paramref name="keys"/> positions runs tiled: as
        /// declared, or with <c>AttentionKernel.Auto</c> from <see cref="TiledAttentionFromLength"/> positions on.
        /// </summary>
        private bool TiledAttention(int queries, int keys) => _spec.Family?.RelativeAttention != true && _spec.AttentionKernel.Value switch
        {
            EnumValues.TiledAttention => true,
            EnumValues.StoredProbabilities => false,
            _ => System.Math.Max(queries, keys) >= TiledAttentionFromLength,
        };

        /// <summary>
        /// Where <c>AttentionKernel.Auto</c> switches to the tiled kernel. bench/Model.Bench's AttentionKernelCrossover
        /// (training steps of DModel 256, 4 layers, 8 heads of 32, Batch 2, causal; two runs on 2026-12-06 at load 7–11)
        /// measured tiled / stored 0.94–1.01 on one thread and 0.79–0.85 on two at 512 positions; below, one thread gave
        /// 0.96–1.01 but two threads 0.97–1.07 at 256, 1.09–1.10 at 128 and 1.35–1.66 at 64. So tiles from 512 on, where
        /// they were no slower in any run and spare the [Batch, Heads, L, L] probabilities (README, "Long sequences").
        /// </summary>
        internal const int TiledAttentionFromLength = 512;

        /// <summary>
        /// What an attention keeps between the passes: the probabilities <c>[Batch, Heads, queries, keys]</c> (which an
        /// encoder's inference also uses as scratch, <paramref name="trainingOnly"/> false), or with tiled attention each
        /// query row's softmax statistics <c>[Batch, Heads, queries, 2]</c>, for training only: tiled inference keeps nothing.
        /// </summary>
        private (TensorDef? Probabilities, TensorDef? Statistics) AttentionState(string prefix, int layer, int queries, int keys, bool trainingOnly, bool cross = false)
        {
            string kind = cross ? "cross_attention_" : "attention_";
            if (TiledAttention(queries, keys))
            {
                var statistics = new TensorDef(prefix + kind + "statistics", TensorKind.Activation, [_d.Batch, _d.Heads, queries, 2], layer, "attention_statistics")
                {
                    TrainingOnly = true,
                };
                _tensors.Add(statistics);
                return (null, statistics);
            }
            var probabilities = new TensorDef(prefix + kind + "probabilities", TensorKind.Activation, [_d.Batch, _d.Heads, queries, keys], layer, "attention_probabilities")
            {
                TrainingOnly = trainingOnly,
                IsAttentionProbabilities = true,
            };
            _tensors.Add(probabilities);
            return (probabilities, null);
        }

        private TensorDef Parameter(string name, InitKind init, float scale, params long[] shape)
        {
            var t = new TensorDef(name, TensorKind.Parameter, shape) { Init = init, InitScale = scale };
            _tensors.Add(t);
            return t;
        }

        private TensorDef Constant(string name, params long[] shape)
        {
            var t = new TensorDef(name, TensorKind.Constant, shape);
            _tensors.Add(t);
            return t;
        }

        /// <summary>A per-token activation <c>[rows, width]</c> (or <c>[rows]</c> for a vector) of a token stream.</summary>
        private TensorDef Activation(string name, int layer, long width, TokenStream stream, string? role = null, bool vector = false, bool trainingOnly = false)
        {
            long rows = _d.Rows(stream);
            long[] shape = vector ? [rows] : [rows, width];
            var t = new TensorDef(name, TensorKind.Activation, shape, layer, role ?? name) { PerToken = true, Stream = stream, TrainingOnly = trainingOnly };
            _tensors.Add(t);
            return t;
        }
    }
}
