using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    internal sealed partial class Emitter
    {
        /// <summary>The buffers a stage method may slice, with the local name it gives each.</summary>
        private static readonly (string Local, string Property)[] Buffers =
        [
            ("p", "ParameterBuffer"), ("dp", "GradientBuffer"), ("c", "ConstantBuffer"),
            ("a", "ActivationBuffer"), ("da", "ActivationGradientBuffer"), ("w", "InferenceBuffer"), ("kv", "KeyValueBuffer"),
        ];

        /// <summary>Writes one stage's method for one pass: forward, backward (operations in reverse) or cached inference.</summary>
        private void WriteStage(IndentedWriter w, Stage stage, string pass)
        {
            List<Op> ops = _graph.Ops.Where(o => o.Stage == stage).ToList();
            bool infer = pass == "Infer";
            var body = new List<string>();
            foreach (Op op in pass == "Backward" ? Enumerable.Reverse(ops) : ops)
            {
                var lines = new List<string>();
                switch (pass)
                {
                    case "Forward": Forward(op, lines); break;
                    case "Backward": Backward(op, lines); break;
                    default: Infer(op, lines); break;
                }
                if (lines.Count == 0) continue;
                body.Add(Comment(op, pass));
                body.AddRange(lines);
            }

            string where = stage.Kind switch
            {
                StageKind.Embed => "the embedding",
                StageKind.Head => "the head",
                _ => "layer " + stage.Layer,
            };
            string summary = pass switch
            {
                "Forward" => $"Forward pass of {where}.",
                "Backward" => $"Backward pass of {where}: adds into the gradients of its parameters and inputs.",
                _ => $"Cached inference of {where} for <paramref name=\"n\"/> new positions of one sequence.",
            };
            string parameters = !infer ? "" : stage.Kind switch
            {
                StageKind.Embed => EmbedTakesPosition ? "global::System.ReadOnlySpan<int> tokens, int n, int position0" : "global::System.ReadOnlySpan<int> tokens, int n",
                StageKind.Head => "int n",
                _ => "int n, int position0",
            };
            string returns = stage.Kind == StageKind.Head && pass == "Forward" ? "float" : "void";

            w.Line();
            w.Line($"/// <summary>{summary}</summary>");
            w.Open($"private {returns} {GeneratedNames.StageMethod(stage, pass)}({parameters})");
            string all = string.Join("\n", body);
            foreach ((string local, string property) in Buffers)
                if (all.Contains(local + ".Slice(")) w.Line($"global::System.Span<float> {local} = {property};");
            foreach (string line in body) w.Line(line);
            w.Close();
        }

        /// <summary>The one-line comment above an operation: where it is, what it is, and its activation shapes.</summary>
        private string Comment(Op op, string pass)
        {
            string where = op.Stage.Kind switch
            {
                StageKind.Embed => "embedding",
                StageKind.Head => "head",
                _ => "layer " + op.Stage.Layer,
            };
            if (pass == "Backward") return $"// {where} · {op.Title} · backward";
            IEnumerable<string> Shapes(IEnumerable<TensorDef> ts) => ts.Where(t => t.Kind == TensorKind.Activation && !(pass == "Infer" && t.TrainingOnly))
                .Select(t => t.Name + (pass == "Infer" ? InferenceShape(t, op.Stage) : t.ShapeText));
            string reads = string.Join(", ", Shapes(op.Reads));
            string writes = string.Join(", ", Shapes(op.Writes));
            if (op is EmbeddingOp) reads = pass == "Infer" ? "tokens[n]" : $"tokens[{_d.Tokens}]";
            string flow = reads.Length == 0 ? writes : writes.Length == 0 || reads == writes ? reads + " (in place)" : reads + " → " + writes;
            return $"// {where} · {op.Title} · {flow}";
        }

        /// <summary>A tensor's shape at inference, as the comments print it: n rows, or the last row only in the head.</summary>
        private string InferenceShape(TensorDef t, Stage stage)
        {
            string width = t.Shape.Length == 1 ? "" : ", " + Lit(t.Width);
            if (stage.Kind != StageKind.Head) return $"[n{width}]";
            return _headTensors.Contains(t) ? $"[1{width}]" : $"[n{width}] (last row)";
        }

        // ----- slices -----

        private string Slice(string local, long offset, long length) => $"{local}.Slice({Lit(offset)}, {Lit(length)})";

        /// <summary>A tensor's values in the training layout.</summary>
        private string V(TensorDef t) => Slice(t.Kind switch { TensorKind.Parameter => "p", TensorKind.Constant => "c", _ => "a" }, _plan.OffsetOf(t), t.Elements);

        /// <summary>A tensor's gradient (parameter or activation) in the training layout.</summary>
        private string G(TensorDef t) => Slice(t.Kind == TensorKind.Parameter ? "dp" : "da", _plan.OffsetOf(t), t.Elements);

        /// <summary>
        /// A tensor at inference: parameters and constants as in training; activations in the inference workspace
        /// with <c>n</c> rows, except in the head, which works on the last position only.
        /// </summary>
        private string I(TensorDef t, Stage stage)
        {
            if (t.Kind != TensorKind.Activation) return V(t);
            long offset = _plan.InferenceOffsetOf(t), width = t.Width;
            if (stage.Kind != StageKind.Head) return $"w.Slice({Lit(offset)}, n{(width == 1 ? "" : " * " + Lit(width))})";
            if (_headTensors.Contains(t)) return Slice("w", offset, width);
            return $"w.Slice({Lit(offset)} + (n - 1) * {Lit(width)}, {Lit(width)})";
        }

        private string Rows(Stage stage, bool infer) => !infer ? Lit(_d.Tokens) : stage.Kind == StageKind.Head ? "1" : "n";

        // ----- the three passes, one case per operation -----

        private void Forward(Op op, List<string> lines)
        {
            string n = Lit(_d.Tokens), b = Lit(_d.Batch), t = Lit(_d.SeqLen), h = Lit(_d.Heads), hd = Lit(_d.HeadDim);
            switch (op)
            {
                case EmbeddingOp e:
                    lines.Add($"{Kernels}Embedding.Forward(Tokens, {V(e.Table)}, {V(e.Output)}, {Lit(_d.Vocab)}, {Lit(_d.DModel)});");
                    break;
                case PositionalAddOp pos:
                    lines.Add($"{Kernels}Positional.Add({V(pos.X)}, {V(pos.Table)}, {b}, {t}, {Lit(_d.DModel)});");
                    break;
                case DropoutOp drop:
                    lines.Add($"{Kernels}Dropout.Forward({V(drop.Input)}, {V(drop.Output)}, {V(drop.Mask)}, Training ? {Lit(drop.Probability)} : 0f, DropoutRng);");
                    break;
                case LayerNormOp ln:
                    lines.Add($"{Kernels}LayerNorm.Forward({V(ln.Input)}, {V(ln.Gamma)}, {V(ln.Beta)}, {V(ln.Output)}, {V(ln.Mean)}, {V(ln.Rstd)}, {n}, {Lit(ln.Input.Width)});");
                    break;
                case LinearOp lin:
                    lines.Add($"{Kernels}MatMul.Forward({V(lin.Input)}, {V(lin.Weight)}, {(lin.Bias is null ? "default" : V(lin.Bias))}, {V(lin.Output)}, {n}, {Lit(lin.InFeatures)}, {Lit(lin.OutFeatures)});");
                    break;
                case RotaryOp rot:
                    lines.Add($"{Kernels}Positional.RotaryForward({V(rot.Qkv)}, {V(rot.Cos)}, {V(rot.Sin)}, {b}, {t}, {h}, {hd}, {Lit(rot.Qkv.Width)});");
                    break;
                case AttentionOp att:
                    lines.Add($"{Kernels}Attention.Forward({V(att.Qkv)}, {V(att.Output)}, {V(att.Probabilities)}, {b}, {t}, {h}, {hd}, causal: {(att.Causal ? "true" : "false")});");
                    break;
                case AddOp add:
                    lines.Add($"{Tensors}.Add({V(add.A)}, {V(add.B)}, {V(add.Output)});");
                    break;
                case ActivationOp act:
                    lines.Add($"{Kernels}Activations.{(act.Gelu ? "Gelu" : "Relu")}Forward({V(act.Input)}, {V(act.Output)});");
                    break;
                case CrossEntropyOp ce:
                    lines.Add($"return {Kernels}CrossEntropy.Forward({V(ce.Logits)}, Targets, {V(ce.Probabilities)}, {n}, {Lit(_d.Vocab)}, {Lit(ce.LabelSmoothing)});");
                    break;
            }
        }

        private void Backward(Op op, List<string> lines)
        {
            string n = Lit(_d.Tokens), b = Lit(_d.Batch), t = Lit(_d.SeqLen), h = Lit(_d.Heads), hd = Lit(_d.HeadDim);
            switch (op)
            {
                case EmbeddingOp e:
                    lines.Add($"{Kernels}Embedding.Backward(Tokens, {G(e.Output)}, {G(e.Table)}, {Lit(_d.DModel)});");
                    break;
                case PositionalAddOp pos when pos.Table.Kind == TensorKind.Parameter:
                    lines.Add($"{Kernels}Positional.AddBackward({G(pos.X)}, {G(pos.Table)}, {b}, {t}, {Lit(_d.DModel)});");
                    break;
                case DropoutOp drop:
                    lines.Add($"{Kernels}Dropout.Backward({G(drop.Output)}, {V(drop.Mask)}, {G(drop.Input)});");
                    break;
                case LayerNormOp ln:
                    lines.Add($"{Kernels}LayerNorm.Backward({G(ln.Output)}, {V(ln.Input)}, {V(ln.Gamma)}, {V(ln.Mean)}, {V(ln.Rstd)}, {G(ln.Input)}, {G(ln.Gamma)}, {G(ln.Beta)}, {n}, {Lit(ln.Input.Width)});");
                    break;
                case LinearOp lin:
                    lines.Add($"{Kernels}MatMul.Backward({G(lin.Output)}, {V(lin.Input)}, {V(lin.Weight)}, {G(lin.Input)}, {G(lin.Weight)}, {(lin.Bias is null ? "default" : G(lin.Bias))}, {n}, {Lit(lin.InFeatures)}, {Lit(lin.OutFeatures)});");
                    break;
                case RotaryOp rot:
                    lines.Add($"{Kernels}Positional.RotaryBackward({G(rot.Qkv)}, {V(rot.Cos)}, {V(rot.Sin)}, {b}, {t}, {h}, {hd}, {Lit(rot.Qkv.Width)});");
                    break;
                case AttentionOp att:
                    lines.Add($"{Kernels}Attention.Backward({G(att.Output)}, {V(att.Qkv)}, {V(att.Probabilities)}, {G(att.Qkv)}, {b}, {t}, {h}, {hd}, causal: {(att.Causal ? "true" : "false")});");
                    break;
                case AddOp add:
                    lines.Add($"{Tensors}.Add({G(add.A)}, {G(add.Output)}, {G(add.A)});");
                    lines.Add($"{Tensors}.Add({G(add.B)}, {G(add.Output)}, {G(add.B)});");
                    break;
                case ActivationOp act:
                    lines.Add($"{Kernels}Activations.{(act.Gelu ? "Gelu" : "Relu")}Backward({G(act.Output)}, {V(act.Input)}, {G(act.Input)});");
                    break;
                case CrossEntropyOp ce:
                    lines.Add($"{Kernels}CrossEntropy.Backward({V(ce.Probabilities)}, Targets, {G(ce.Logits)}, {n}, {Lit(_d.Vocab)}, {Lit(ce.LabelSmoothing)});");
                    break;
            }
        }

        private void Infer(Op op, List<string> lines)
        {
            Stage s = op.Stage;
            string rows = Rows(s, infer: true), h = Lit(_d.Heads), hd = Lit(_d.HeadDim), c = Lit(_d.DModel);
            switch (op)
            {
                case EmbeddingOp e:
                    lines.Add($"{Kernels}Embedding.Forward(tokens, {I(e.Table, s)}, {I(e.Output, s)}, {Lit(_d.Vocab)}, {c});");
                    break;
                case PositionalAddOp pos:
                    lines.Add($"{Kernels}Positional.Add({I(pos.X, s)}, {I(pos.Table, s)}, 1, n, {c}, position0);");
                    break;
                case LayerNormOp ln:
                    lines.Add($"{Kernels}LayerNorm.Forward({I(ln.Input, s)}, {I(ln.Gamma, s)}, {I(ln.Beta, s)}, {I(ln.Output, s)}, {I(ln.Mean, s)}, {I(ln.Rstd, s)}, {rows}, {Lit(ln.Input.Width)});");
                    break;
                case LinearOp lin:
                    lines.Add($"{Kernels}MatMul.Forward({I(lin.Input, s)}, {I(lin.Weight, s)}, {(lin.Bias is null ? "default" : I(lin.Bias, s))}, {I(lin.Output, s)}, {rows}, {Lit(lin.InFeatures)}, {Lit(lin.OutFeatures)});");
                    break;
                case RotaryOp rot:
                    lines.Add($"{Kernels}Positional.RotaryForward({I(rot.Qkv, s)}, {I(rot.Cos, s)}, {I(rot.Sin, s)}, 1, n, {h}, {hd}, {Lit(rot.Qkv.Width)}, position0);");
                    break;
                case AttentionOp att:
                    long cache = (long)_d.SeqLen * _d.DModel;
                    string keys = Slice("kv", _plan.KeyCacheOffset(s.Layer), cache), values = Slice("kv", _plan.ValueCacheOffset(s.Layer), cache);
                    lines.Add($"AppendKeysValues({I(att.Qkv, s)}, n, {c}, {keys}, {values}, position0);");
                    lines.Add($"{Kernels}Attention.ForwardCached({I(att.Qkv, s)}, {Lit(att.Qkv.Width)}, {keys}, {values}, {I(att.Output, s)}, ScoreBuffer, position0, n, {h}, {hd});");
                    break;
                case AddOp add:
                    lines.Add($"{Tensors}.Add({I(add.A, s)}, {I(add.B, s)}, {I(add.Output, s)});");
                    break;
                case ActivationOp act:
                    lines.Add($"{Kernels}Activations.{(act.Gelu ? "Gelu" : "Relu")}Forward({I(act.Input, s)}, {I(act.Output, s)});");
                    break;
                // Dropout is the identity at inference (its output shares its input's memory), and the loss needs targets.
                case DropoutOp:
                case CrossEntropyOp:
                    break;
            }
        }
    }
}
