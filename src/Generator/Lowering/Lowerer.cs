using System;
using System.Collections.Generic;
using System.Threading;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 3: turns a valid declaration into the graph of operations of its forward pass, with PyTorch's
    /// parameter names, then checks every operation's shapes.
    /// </summary>
    internal sealed class Lowerer
    {
        /// <summary>GPT-2's initialization: weights drawn from N(0, 0.02²); projections into the residual stream scaled by 1/√(2·Layers).</summary>
        private const float InitStd = 0.02f;

        private readonly ModelSpec _spec;
        private readonly ModelDims _d;
        private readonly List<TensorDef> _tensors = new();
        private readonly List<Op> _ops = new();
        private readonly bool _dropout;
        private TensorDef? _rotaryCos, _rotarySin;

        private Lowerer(ModelSpec spec)
        {
            _spec = spec;
            int dModel = spec.DModel.Value, heads = spec.Heads.Value;
            _d = new ModelDims(spec.Vocab.Value, dModel, heads, dModel / heads, spec.Layers.Value, spec.DFF.Value, spec.SeqLen.Value, spec.Batch.Value);
            _dropout = spec.Dropout.Value > 0f;
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
            long c = _d.DModel;
            // Parameters first, in the order of a PyTorch state_dict.
            TensorDef tokenEmbedding = Parameter("token_embedding.weight", InitKind.Normal, InitStd, _d.Vocab, c);
            TensorDef? posEmbedding = _spec.Positional.Value == EnumValues.Learned
                ? Parameter("pos_embedding.weight", InitKind.Normal, InitStd, _d.SeqLen, c)
                : null;

            TensorDef x = EmbedStage(tokenEmbedding, posEmbedding);
            for (int layer = 0; layer < _d.Layers; layer++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                x = LayerStage(layer, x);
            }
            HeadStage(x, tokenEmbedding);
            return new ModelGraph(_spec, _d, _tensors, _ops);
        }

        private TensorDef EmbedStage(TensorDef tokenEmbedding, TensorDef? posEmbedding)
        {
            long c = _d.DModel;
            Stage stage = Stage.Embed;
            TensorDef x = Activation("embed.x", -1, c);
            _ops.Add(new EmbeddingOp(stage, tokenEmbedding, x));
            switch (_spec.Positional.Value)
            {
                case EnumValues.Learned:
                    _ops.Add(new PositionalAddOp(stage, posEmbedding!, x));
                    break;
                case EnumValues.Sinusoidal:
                    _ops.Add(new PositionalAddOp(stage, Constant("sinusoidal_positions", _d.SeqLen, c), x));
                    break;
                case EnumValues.Rotary:
                    _rotaryCos = Constant("rotary_cos", _d.SeqLen, _d.HeadDim / 2L);
                    _rotarySin = Constant("rotary_sin", _d.SeqLen, _d.HeadDim / 2L);
                    break;
            }
            return Dropout(stage, "dropout on embeddings + positions", x, "embed.x_dropped", -1);
        }

        private TensorDef LayerStage(int layer, TensorDef x)
        {
            long c = _d.DModel;
            Stage stage = Stage.OfLayer(layer);
            string p = $"decoder.layers.{layer}.";
            float residualStd = InitStd / (float)Math.Sqrt(2.0 * _d.Layers);
            TensorDef inProjW = Parameter(p + "self_attn.in_proj_weight", InitKind.Normal, InitStd, 3 * c, c);
            TensorDef inProjB = Parameter(p + "self_attn.in_proj_bias", InitKind.Zeros, 0f, 3 * c);
            TensorDef outProjW = Parameter(p + "self_attn.out_proj.weight", InitKind.Normal, residualStd, c, c);
            TensorDef outProjB = Parameter(p + "self_attn.out_proj.bias", InitKind.Zeros, 0f, c);
            TensorDef linear1W = Parameter(p + "linear1.weight", InitKind.Normal, InitStd, _d.DFF, c);
            TensorDef linear1B = Parameter(p + "linear1.bias", InitKind.Zeros, 0f, _d.DFF);
            TensorDef linear2W = Parameter(p + "linear2.weight", InitKind.Normal, residualStd, c, _d.DFF);
            TensorDef linear2B = Parameter(p + "linear2.bias", InitKind.Zeros, 0f, c);
            TensorDef norm1W = Parameter(p + "norm1.weight", InitKind.Ones, 0f, c);
            TensorDef norm1B = Parameter(p + "norm1.bias", InitKind.Zeros, 0f, c);
            TensorDef norm2W = Parameter(p + "norm2.weight", InitKind.Ones, 0f, c);
            TensorDef norm2B = Parameter(p + "norm2.bias", InitKind.Zeros, 0f, c);

            // Attention sub-layer.
            TensorDef attnIn = PreNorm ? Norm(stage, layer, "norm1 (pre-LN)", "ln1", x, norm1W, norm1B) : x;
            TensorDef qkv = Activation("qkv", layer, 3 * c);
            _ops.Add(new LinearOp(stage, "Q, K, V projections", attnIn, inProjW, inProjB, qkv));
            if (_rotaryCos is not null) _ops.Add(new RotaryOp(stage, qkv, _rotaryCos, _rotarySin!, _d.Heads, _d.HeadDim));
            TensorDef attended = Activation("attention", layer, c);
            var probabilities = new TensorDef(Prefix(layer) + "attention_probabilities", TensorKind.Activation,
                [_d.Batch, _d.Heads, _d.SeqLen, _d.SeqLen], layer, "attention_probabilities") { TrainingOnly = true };
            _tensors.Add(probabilities);
            _ops.Add(new AttentionOp(stage, qkv, attended, probabilities, _d.Heads, _d.HeadDim, causal: true));
            TensorDef projected = Activation("attention_output", layer, c);
            _ops.Add(new LinearOp(stage, "attention output projection", attended, outProjW, outProjB, projected));
            projected = Dropout(stage, "dropout on the attention sub-layer's output", projected, "attention_output_dropped", layer);
            TensorDef residual1 = Activation(PreNorm ? "residual1" : "sum1", layer, c);
            _ops.Add(new AddOp(stage, "residual connection around attention", x, projected, residual1));
            if (!PreNorm) residual1 = Norm(stage, layer, "norm1 (post-LN)", "residual1", residual1, norm1W, norm1B);

            // Feed-forward sub-layer.
            TensorDef ffnIn = PreNorm ? Norm(stage, layer, "norm2 (pre-LN)", "ln2", residual1, norm2W, norm2B) : residual1;
            TensorDef hidden = Activation("ffn_hidden", layer, _d.DFF);
            _ops.Add(new LinearOp(stage, "feed-forward linear1", ffnIn, linear1W, linear1B, hidden));
            TensorDef activated = Activation("ffn_activated", layer, _d.DFF);
            _ops.Add(new ActivationOp(stage, _spec.Activation.Value == EnumValues.Gelu, hidden, activated));
            TensorDef ffnOut = Activation("ffn_output", layer, c);
            _ops.Add(new LinearOp(stage, "feed-forward linear2", activated, linear2W, linear2B, ffnOut));
            ffnOut = Dropout(stage, "dropout on the feed-forward sub-layer's output", ffnOut, "ffn_output_dropped", layer);
            TensorDef output = Activation(PreNorm ? "output" : "sum2", layer, c);
            _ops.Add(new AddOp(stage, "residual connection around the feed-forward network", residual1, ffnOut, output));
            if (!PreNorm) output = Norm(stage, layer, "norm2 (post-LN)", "output", output, norm2W, norm2B);
            return output;
        }

        private void HeadStage(TensorDef x, TensorDef tokenEmbedding)
        {
            Stage stage = Stage.Head;
            long c = _d.DModel;
            if (PreNorm)
            {
                TensorDef normW = Parameter("norm_f.weight", InitKind.Ones, 0f, c);
                TensorDef normB = Parameter("norm_f.bias", InitKind.Zeros, 0f, c);
                x = Norm(stage, -1, "final LayerNorm", "head.norm_f", x, normW, normB);
            }
            TensorDef weight = _spec.TiedEmbeddings.Value
                ? tokenEmbedding
                : Parameter("lm_head.weight", InitKind.Normal, InitStd, _d.Vocab, c);
            TensorDef logits = Activation("head.logits", -1, _d.Vocab);
            _ops.Add(new LinearOp(stage, _spec.TiedEmbeddings.Value ? "LM head (tied to the token embedding)" : "LM head", x, weight, null, logits));
            TensorDef probabilities = Activation("head.probabilities", -1, _d.Vocab, trainingOnly: true);
            _ops.Add(new CrossEntropyOp(stage, logits, probabilities, _spec.LabelSmoothing.Value));
        }

        private TensorDef Norm(Stage stage, int layer, string title, string name, TensorDef input, TensorDef gamma, TensorDef beta)
        {
            TensorDef output = Activation(name, layer, _d.DModel);
            TensorDef mean = Activation(name + "_mean", layer, 1, vector: true);
            TensorDef rstd = Activation(name + "_rstd", layer, 1, vector: true);
            _ops.Add(new LayerNormOp(stage, title, input, gamma, beta, output, mean, rstd));
            return output;
        }

        private TensorDef Dropout(Stage stage, string title, TensorDef input, string name, int layer)
        {
            if (!_dropout) return input;
            TensorDef output = Activation(name, layer, input.Width);
            TensorDef mask = Activation(name + "_mask", layer, input.Width, trainingOnly: true);
            _ops.Add(new DropoutOp(stage, title, input, output, mask, _spec.Dropout.Value));
            return output;
        }

        private static string Prefix(int layer) => layer < 0 ? "" : $"layers.{layer}.";

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

        /// <summary>A per-token activation <c>[Batch·SeqLen, width]</c> (or <c>[Batch·SeqLen]</c> for a vector).</summary>
        private TensorDef Activation(string role, int layer, long width, bool vector = false, bool trainingOnly = false)
        {
            long[] shape = vector ? [_d.Tokens] : [_d.Tokens, width];
            var t = new TensorDef(Prefix(layer) + role, TensorKind.Activation, shape, layer, role) { PerToken = true, TrainingOnly = trainingOnly };
            _tensors.Add(t);
            return t;
        }
    }
}
