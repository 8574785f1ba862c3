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
            bool infer = pass == "Infer";
            List<Op> ops = _graph.Ops.Where(o => (infer ? o.InferenceStage : o.Stage) == stage).ToList();
            var body = new List<string>();
            foreach (Op op in pass == "Backward" ? Enumerable.Reverse(ops) : ops)
            {
                var lines = new List<string>();
                switch (pass)
                {
                    case "Forward":
                        _forwardIndex = Walk().ForwardIndex[op];
                        Forward(op, lines);
                        _forwardIndex = -1;
                        break;
                    case "Backward":
                        // The gradients this op is the first to touch: the op stores into those it writes whole
                        // (Overwrites), and the rest are cleared just before it.
                        PassWalk walk = Walk();
                        _fresh = walk.First.TryGetValue(op, out List<TensorDef>? first) ? [.. first] : [];
                        _backwardIndex = walk.BackwardIndex[op];
                        _inBackward = true;
                        Backward(op, lines);
                        lines.InsertRange(0, _fresh.Select(t => $"{G(t)}.Clear(); // {t.Name}: its gradient starts here"));
                        List<string> again = Recompute(op).ToList();
                        _inBackward = false;
                        _fresh = null;
                        _backwardIndex = -1;
                        if (again.Count > 0)
                        {
                            // Written above the op's own comment: a block of its own.
                            body.AddRange(again);
                        }
                        break;
                    default: Infer(op, stage, lines); break;
                }
                if (lines.Count == 0) continue;
                body.Add(Comment(op, pass, stage));
                body.AddRange(lines);
            }
            if (infer && stage.Kind == StageKind.Head && _spec.IsDecoderOnly) body.InsertRange(0, GatherLastRows(ops));
            if (pass == "Forward" && stage.Kind == StageKind.Head && !ops.OfType<CrossEntropyOp>().Any())
                body.Add("return 0f; // no loss of its own: the caller's gradient of the output (Logits) seeds the backward pass");

            string where = Where(stage, @long: true);
            string summary = pass switch
            {
                "Forward" => $"Forward pass of {where}.",
                "Backward" => $"Backward pass of {where}: adds into the gradients of its parameters and inputs.",
                _ => _spec.IsEncoderOnly
                    ? $"Exact-length inference of {where} for <paramref name=\"n\"/> tokens: up to Batch sequences laid end to end, without padding."
                    : stage.IsEncoderSide && _spec.IsEncoderDecoder
                    ? $"Inference of {where} for a source of <paramref name=\"n\"/> tokens."
                    : _spec.IsDecoderOnly
                    ? $"Cached inference of {where} for <paramref name=\"n\"/> new positions of the cached sequences, laid end to end."
                    : $"Cached inference of {where} for <paramref name=\"n\"/> new positions of one sequence.",
            };
            string parameters = infer ? string.Join(", ", InferParameters(stage).Select(p => p.Type + " " + p.Name)) : "";
            string returns = stage.Kind == StageKind.Head && pass == "Forward" ? "float" : "void";

            w.Line();
            w.Line($"/// <summary>{summary}</summary>");
            w.Open($"private {returns} {GeneratedNames.StageMethod(stage, pass)}({parameters})");
            string all = string.Join("\n", body);
            foreach ((string local, string property) in Buffers)
                if (all.Contains(local + ".Slice(")) w.Line($"global::System.Span<float> {local} = {property};");
            // A model of several parameter segments (inference only: no backward pass) reads the tensors of segment k ≥ 1 through p{k}.
            for (int k = 1; k < _plan.ParameterSegments.Count; k++)
                if (all.Contains($"p{k}.Slice(")) w.Line($"global::System.Span<float> p{k} = ParameterSegment({k});");
            foreach (string line in body) w.Line(line);
            w.Close();
        }

        private static string Where(Stage stage, bool @long = false) => stage.Kind switch
        {
            StageKind.Embed => @long ? "the embedding" : "embedding",
            StageKind.TargetEmbed => @long ? "the target embedding" : "target embedding",
            StageKind.EncoderOutput => @long ? "the encoder's output" : "encoder output",
            StageKind.Head => @long ? "the head" : "head",
            StageKind.EncoderLayer => "encoder layer " + stage.Layer,
            StageKind.DecoderLayer => "decoder layer " + stage.Layer,
            _ => "layer " + stage.Layer,
        };

        /// <summary>The one-line comment above an operation: where it is, what it is, and its activation shapes.</summary>
        private string Comment(Op op, string pass, Stage stage)
        {
            string where = Where(op.Stage);
            if (pass == "Backward") return $"// {where} · {op.Title} · backward";
            IEnumerable<string> Shapes(IEnumerable<TensorDef> ts) => ts.Where(t => t.Kind == TensorKind.Activation && !(pass == "Infer" && t.TrainingOnly))
                .Select(t => t.Name + (pass == "Infer" ? InferenceShape(t, stage) : t.ShapeText));
            string reads = string.Join(", ", Shapes(op.Reads));
            string writes = string.Join(", ", Shapes(op.Writes));
            if (op is EmbeddingOp e)
                reads = pass == "Infer" ? "tokens[n]" : (e.Stream == TokenStream.Input ? "tokens" : "decoder tokens") + $"[{Lit(_d.Rows(e.Stream))}]";
            // The loss writes no activation: its softmax goes into the logits' gradient (SoftmaxInGradient).
            if (op is CrossEntropyOp) writes = "the loss, the softmax into the logits' gradient";
            string flow = reads.Length == 0 ? writes : writes.Length == 0 || reads == writes ? reads + " (in place)" : reads + " → " + writes;
            return $"// {where} · {op.Title} · {flow}";
        }

        /// <summary>
        /// A tensor's shape at inference, as the comments print it: n rows, or the last row only in a decoder's head; in an
        /// encoder's exact-length pass one row per sequence after pooling, and attention one sequence of length L at a time.
        /// </summary>
        private string InferenceShape(TensorDef t, Stage stage)
        {
            string width = t.Shape.Length == 1 ? "" : ", " + Lit(t.Width);
            if (_spec.IsEncoderOnly)
                return t.IsAttentionProbabilities ? $"[{Lit(_d.Heads)}, L, L] per sequence"
                    : t.IsPositionBias ? $"[{Lit(_d.Heads)}{width}]"
                    : $"[{(t.PerToken ? "n" : "sequences")}{width}]";
            if (t.IsAttentionProbabilities) return $"[{Lit(_d.Heads)}, n, n]";
            if (t.IsPositionBias) return $"[{Lit(_d.Heads)}{width}]";
            if (stage.Kind != StageKind.Head) return $"[n{width}]";
            if (_spec.IsDecoderOnly) return $"[sequences{width}]";
            return _headTensors.Contains(t) ? $"[1{width}]" : $"[n{width}] (last row)";
        }

        /// <summary>
        /// A decoder-only model's head runs on the last position of each sequence: the lines that move those rows of
        /// every activation the head reads from the layers to the front (row s of sequence s, in place).
        /// </summary>
        private IEnumerable<string> GatherLastRows(List<Op> headOps)
        {
            IEnumerable<TensorDef> inputs = headOps.SelectMany(o => o.Reads)
                .Where(t => t.Kind == TensorKind.Activation && !t.TrainingOnly && !_headTensors.Contains(t)).Distinct();
            foreach (TensorDef t in inputs)
            {
                yield return $"// head · the last position of each sequence · {t.Name}[n, {Lit(t.Width)}] → [sequences, {Lit(t.Width)}]";
                yield return $"GatherLastRows(w.Slice({Lit(_plan.InferenceOffsetOf(t))}, n * {Lit(t.Width)}), sequences.Lengths, {Lit(t.Width)});";
            }
        }

        // ----- slices -----

        private string Slice(string local, long offset, long length) => $"{local}.Slice({Lit(offset)}, {Lit(length)})";

        /// <summary>
        /// A tensor's values in the training layout: a parameter or a constant at its offset, an activation in its slot of
        /// the training workspace (<see cref="SlotPlan"/>), which must be live during the op being written.
        /// </summary>
        private string V(TensorDef t)
        {
            if (t.Kind != TensorKind.Activation)
                return Slice(t.Kind == TensorKind.Parameter ? ParameterLocal(t) : "c", _plan.OffsetOf(t), t.Elements);
            if (_inBackward && Recomputed().TryGetValue(Root(t), out Recomputation? again)) return Again(t, again);
            if (_valuesUsed is not null)
            {
                // A walk only records which activations an op touches; where they live is decided from that afterwards.
                _valuesUsed.Add(Root(t));
                return Slice("a", 0, t.Elements);
            }
            SlotPlan activations = Walk().Activations;
            bool live = _backwardIndex >= 0 ? activations.IsKept(t) : _forwardIndex >= 0 && activations.IsLiveAt(t, _forwardIndex);
            if (!live) throw new System.InvalidOperationException($"{t.Name} is used outside the operations the walks found for it");
            return Slice("a", activations.OffsetOf(t), t.Elements);
        }

        /// <summary>The local that holds a parameter's segment: p, then p1, p2, … in a model of several (which has no backward pass, so no dp1).</summary>
        private string ParameterLocal(TensorDef t) => _plan.SegmentOf(t) is int segment && segment > 0 ? "p" + Lit(segment) : "p";

        /// <summary>
        /// A tensor's gradient: a parameter's in the gradient buffer at the parameter's offset, an activation's in its slot
        /// of the activation-gradient buffer (<see cref="SlotPlan"/>), which must be live during the op being written.
        /// </summary>
        private string G(TensorDef t)
        {
            if (t.Kind != TensorKind.Activation) return Slice("dp", _plan.OffsetOf(t), t.Elements);
            if (_gradientsUsed is not null)
            {
                _gradientsUsed.Add(Root(t));
                return Slice("da", 0, t.Elements);
            }
            SlotPlan gradients = Walk().Gradients;
            if (!gradients.IsLiveAt(t, _backwardIndex))
                throw new System.InvalidOperationException($"the gradient of {t.Name} is used outside the backward operations the walk found for it");
            return Slice("da", gradients.OffsetOf(t), t.Elements);
        }

        private static TensorDef Root(TensorDef t) => t.Parent is { } parent ? Root(parent) : t;

        /// <summary>
        /// Where the cross-entropy's forward writes the softmax: the logits' gradient, which the backward pass makes from it
        /// in place (p − q, scaled), so the step holds one <c>[tokens, vocabulary]</c> tensor for both, not two.
        /// </summary>
        private string SoftmaxInGradient(CrossEntropyOp ce)
        {
            if (_valuesUsed is not null) return Slice("da", 0, ce.Logits.Elements); // walking: the slot is decided afterwards
            return Slice("da", Walk().Gradients.OffsetOf(ce.Logits), ce.Logits.Elements);
        }

        /// <summary>An activation the backward pass computes again (RecomputeActivations): the op that makes it, and its copy in the backward pass's buffer.</summary>
        private sealed class Recomputation(Op producer, TensorDef copy)
        {
            public Op Producer { get; } = producer;
            public TensorDef Copy { get; } = copy;
        }

        private Dictionary<TensorDef, Recomputation>? _recomputed;

        /// <summary>
        /// With RecomputeActivations, the outputs of the elementwise activations (ReLU, GELU, SiLU, SwiGLU's gated product)
        /// that the runtime does not show: their own backward keeps their input anyway, so the output can be made again.
        /// </summary>
        private Dictionary<TensorDef, Recomputation> Recomputed()
        {
            if (_recomputed is not null) return _recomputed;
            _recomputed = [];
            if (!_spec.RecomputeActivations.Value) return _recomputed;
            var shown = new HashSet<TensorDef>(Shown().Select(Root));
            foreach (Op op in _graph.Ops)
            {
                TensorDef? output = op switch { ActivationOp a => a.Output, SwiGluOp g => g.Output, _ => null };
                if (output is null || output.Parent is not null || shown.Contains(output)) continue;
                _recomputed[output] = new Recomputation(op, new TensorDef(output.Name + " (recomputed)", TensorKind.Activation, output.Shape));
            }
            return _recomputed;
        }

        /// <summary>
        /// A recomputed activation as the backward pass reads it: its copy in the backward pass's buffer. The first backward
        /// op to read it makes it (the walk notes where; see <see cref="Recompute"/>).
        /// </summary>
        private string Again(TensorDef t, Recomputation again)
        {
            long offset = t.Parent is null ? 0 : t.ViewOffset;
            if (_gradientsUsed is not null)
            {
                _gradientsUsed.Add(again.Copy);
                if (_recomputeAt is not null && _walkingOp is not null && _recomputeIn.Add(again.Copy))
                {
                    // The first backward op to read it: the forward op runs again just before it, its output in the copy.
                    if (!_recomputeAt.TryGetValue(_walkingOp, out List<TensorDef>? list)) _recomputeAt[_walkingOp] = list = [];
                    list.Add(Root(t));
                    Forward(again.Producer, []);
                }
                return Slice("da", offset, t.Elements);
            }
            SlotPlan backward = Walk().Gradients;
            if (!backward.IsLiveAt(again.Copy, _backwardIndex))
                throw new System.InvalidOperationException($"the recomputed {t.Name} is used outside the backward operations the walk found for it");
            return Slice("da", backward.OffsetOf(again.Copy) + offset, t.Elements);
        }

        /// <summary>The lines that make again, just before <paramref name="op"/>'s backward, the activations it is the first to read.</summary>
        private IEnumerable<string> Recompute(Op op)
        {
            if (!Walk().RecomputeAt.TryGetValue(op, out List<TensorDef>? outputs)) yield break;
            foreach (TensorDef t in outputs)
            {
                Op producer = Recomputed()[t].Producer;
                var lines = new List<string>();
                Forward(producer, lines);
                yield return $"// {Where(producer.Stage)} · {producer.Title} · {t.Name} computed again (RecomputeActivations)";
                foreach (string line in lines) yield return line;
            }
        }

        /// <summary>
        /// What the walks of the training passes find: each op's index in the forward and in the backward pass (in the
        /// order ForwardCore and BackwardCore run them), the activations whose gradients each backward op is the first
        /// to touch, where every activation lives in the training workspace and every activation gradient in its buffer.
        /// </summary>
        private sealed class PassWalk(Dictionary<Op, int> forward, Dictionary<Op, int> backward, Dictionary<Op, List<TensorDef>> first,
            Dictionary<Op, List<TensorDef>> recomputeAt, SlotPlan activations, SlotPlan gradients)
        {
            public Dictionary<Op, int> ForwardIndex { get; } = forward;
            /// <summary>The activations each backward op is the first to read again (RecomputeActivations), made just before it.</summary>
            public Dictionary<Op, List<TensorDef>> RecomputeAt { get; } = recomputeAt;
            public Dictionary<Op, int> BackwardIndex { get; } = backward;
            public Dictionary<Op, List<TensorDef>> First { get; } = first;
            public SlotPlan Activations { get; } = activations;
            public SlotPlan Gradients { get; } = gradients;
        }

        // While Walk runs: the activations whose values, and whose gradients, the current op touches; in its backward
        // half, the op being walked, where each recomputed activation is first read, and the copies already placed.
        private List<TensorDef>? _valuesUsed;
        private List<TensorDef>? _gradientsUsed;
        private Op? _walkingOp;
        private Dictionary<Op, List<TensorDef>>? _recomputeAt;
        private readonly HashSet<TensorDef> _recomputeIn = [];
        // True while a backward op is walked or written: a recomputed activation is then read from its copy.
        private bool _inBackward;
        private PassWalk? _walk;
        // While WriteStage writes one op of a training pass: its index in that pass (-1 otherwise); and, in the backward
        // pass, the gradients it is the first to touch that still need a clear.
        private int _forwardIndex = -1, _backwardIndex = -1;
        private List<TensorDef>? _fresh;

        /// <summary>The order ForwardCore runs the stages in: every stage but the head's in order, then the head's (which returns the loss).</summary>
        private List<Stage> ForwardStages()
        {
            List<Stage> stages = Stages();
            return stages.Where(s => s.Kind != StageKind.Head).Concat(stages.Where(s => s.Kind == StageKind.Head)).ToList();
        }

        /// <summary>The order BackwardCore runs the stages in: the reverse of theirs.</summary>
        private List<Stage> BackwardStages() => Enumerable.Reverse(Stages()).ToList();

        /// <summary>The ops in the order ForwardCore runs them: its stages', each in order.</summary>
        private IEnumerable<Op> ForwardOps() => ForwardStages().SelectMany(stage => _graph.Ops.Where(o => o.Stage == stage));

        /// <summary>The ops in the order BackwardCore runs them: its stages', each in reverse (as WriteStage writes them).</summary>
        private IEnumerable<Op> BackwardOps() => BackwardStages().SelectMany(stage => Enumerable.Reverse(_graph.Ops.Where(o => o.Stage == stage).ToList()));

        /// <summary>
        /// The activations the runtime reads after a forward pass, through offsets in the layout: the logits, the hidden
        /// states it shows, the attention maps (stored, or recomputed from a tiled attention's queries, keys and statistics).
        /// </summary>
        private IEnumerable<TensorDef> Shown()
        {
            yield return Output;
            if (_graph.HiddenState is { } hidden) yield return hidden;
            if (_graph.EncoderState is { } encoded) yield return encoded;
            foreach (TensorDef t in _graph.Tensors.Where(t => t.IsAttentionProbabilities)) yield return t;
            foreach (AttentionOp a in _graph.Ops.OfType<AttentionOp>().Where(a => a.Tiled))
            {
                yield return a.Query;
                yield return a.KeysValues;
                yield return a.Statistics!;
            }
        }

        /// <summary>
        /// Walks the two training passes once each, op by op in the order they run, recording the activations and the
        /// activation gradients each op touches. From the backward walk: the first op to touch each gradient stores into
        /// it if it writes it whole (see <see cref="Overwrites"/>) or has it cleared just before, rather than the whole
        /// activation-gradient buffer being cleared before the pass (gradients nobody uses, attention probabilities', are
        /// never written, and the cleared lines are still in cache when the op adds into them); and each gradient gets a
        /// slot for as long as it is live, which the next ones reuse once it is dead. From both: an activation that the
        /// backward pass reads, or the runtime shows, keeps its slot from the op that makes it on; any other (a
        /// sub-layer's output that only its residual sum reads) has one only until its last reader in the forward pass.
        /// </summary>
        private PassWalk Walk()
        {
            if (_walk is not null) return _walk;
            var backwardIndex = new Dictionary<Op, int>();
            var first = new Dictionary<Op, List<TensorDef>>();
            var gradientsTouched = new List<IReadOnlyList<TensorDef>>();
            var seen = new HashSet<TensorDef>();
            var backwardReads = new HashSet<TensorDef>();
            var recomputeAt = new Dictionary<Op, List<TensorDef>>();
            var copies = new HashSet<TensorDef>(Recomputed().Values.Select(r => r.Copy));
            var softmax = new HashSet<TensorDef>(_graph.Ops.OfType<CrossEntropyOp>().Select(ce => Root(ce.Logits)));
            _recomputeAt = recomputeAt;
            _inBackward = true;
            foreach (Op op in BackwardOps())
            {
                _gradientsUsed = [];
                _valuesUsed = [];
                _walkingOp = op;
                Backward(op, []);
                backwardIndex[op] = gradientsTouched.Count;
                gradientsTouched.Add(_gradientsUsed.Distinct().ToList());
                backwardReads.UnionWith(_valuesUsed);
                // A recomputed copy is written whole before it is read, and the logits' gradient holds the forward's softmax:
                // neither is cleared.
                List<TensorDef> fresh = _gradientsUsed.Where(t => !t.SeededGradient && !copies.Contains(t) && !softmax.Contains(t) && seen.Add(t)).ToList();
                if (fresh.Count > 0) first[op] = fresh;
            }
            _inBackward = false;
            _walkingOp = null;
            _recomputeAt = null;
            var forwardIndex = new Dictionary<Op, int>();
            var valuesTouched = new List<IReadOnlyList<TensorDef>>();
            foreach (Op op in ForwardOps())
            {
                _valuesUsed = [];
                Forward(op, []);
                forwardIndex[op] = valuesTouched.Count;
                valuesTouched.Add(_valuesUsed.Distinct().ToList());
            }
            _gradientsUsed = null;
            _valuesUsed = null;
            var activations = new SlotPlan(valuesTouched, [], backwardReads.Concat(Shown().Select(Root)));
            // Whatever the backward pass reads, the forward pass made: nothing is read that no op wrote.
            foreach (TensorDef t in backwardReads)
                if (!activations.Places(t)) throw new System.InvalidOperationException($"the backward pass reads {t.Name}, which no forward op touches");
            // Live from before the backward pass: a gradient the caller seeds, and the logits' gradient that holds the softmax.
            var gradients = new SlotPlan(gradientsTouched, _graph.Tensors.Where(t => t.SeededGradient).Concat(softmax), []);
            return _walk = new PassWalk(forwardIndex, backwardIndex, first, recomputeAt, activations, gradients);
        }

        /// <summary>
        /// Whether the op being written makes the first contribution to <paramref name="t"/>'s gradient, writing all of
        /// it: the kernel is then told to store rather than add, and no clear precedes it.
        /// </summary>
        private bool Overwrites(TensorDef t) => _fresh is not null && _fresh.Remove(t);

        /// <summary>The named argument that makes a kernel store into <paramref name="t"/>'s gradient, when <see cref="Overwrites"/> holds; else nothing.</summary>
        private string OverwriteArgument(string name, TensorDef t) => Overwrites(t) ? $", {name}: true" : "";

        /// <summary>Columns <paramref name="column"/>… of every row of a tensor: a slice from that column to the end, read with the tensor's row stride.</summary>
        private static string Columns(string slice, TensorDef t, long column)
        {
            if (column == 0) return slice;
            int open = slice.IndexOf('(');
            string local = slice.Substring(0, open - ".Slice".Length);
            string[] args = slice.Substring(open + 1, slice.Length - open - 2).Split([", "], 2, System.StringSplitOptions.None);
            // Literal bounds (training) fold into numbers; bounds that depend on n (inference) stay expressions.
            bool literal = long.TryParse(args[0], out long start) & long.TryParse(args[1], out long length);
            return literal
                ? $"{local}.Slice({Lit(start + column)}, {Lit(length - column)})"
                : $"{local}.Slice({args[0]} + {Lit(column)}, {args[1]} - {Lit(column)})";
        }

        /// <summary>
        /// A tensor at inference: parameters and constants as in training; activations in the inference workspace
        /// (or the key/value cache) with <c>n</c> rows, except in the head, which works on the last position only.
        /// </summary>
        private string I(TensorDef t, Stage stage)
        {
            if (t.Kind != TensorKind.Activation) return V(t);
            if (_spec.IsEncoderOnly) return InferenceSlice("w", t);
            long offset = _plan.InferenceOffsetOf(t), width = t.Width;
            string local = t.InCache ? "kv" : "w";
            if (t.IsPositionBias) return Slice(local, offset, _d.Heads * width);
            if (t.IsAttentionProbabilities) return $"{local}.Slice({Lit(offset)}, {Lit(_d.Heads)} * n * n)";
            if (stage.Kind != StageKind.Head) return $"{local}.Slice({Lit(offset)}, n{(width == 1 ? "" : " * " + Lit(width))})";
            if (_spec.IsDecoderOnly) return $"{local}.Slice({Lit(offset)}, sequences.Count{(width == 1 ? "" : " * " + Lit(width))})";
            if (_headTensors.Contains(t)) return Slice(local, offset, width);
            return $"{local}.Slice({Lit(offset)} + (n - 1) * {Lit(width)}, {Lit(width)})";
        }

        /// <summary>
        /// An activation in an encoder's exact-length pass, in the inference workspace <paramref name="buffer"/>: n rows
        /// per token, one per sequence (<c>lengths.Length</c>) after pooling; attention probabilities take their whole slot,
        /// which holds one sequence at a time.
        /// </summary>
        private string InferenceSlice(string buffer, TensorDef t)
        {
            long offset = _plan.InferenceOffsetOf(t);
            if (t.IsAttentionProbabilities) return Slice(buffer, offset, _d.Heads * t.Shape[2] * t.Shape[3]);
            // A relative-position bias: one copy of its rows, whatever the sequences (they depend on distances only).
            if (t.IsPositionBias) return Slice(buffer, offset, _d.Heads * t.Width);
            return $"{buffer}.Slice({Lit(offset)}, {InferenceRows(t)}{(t.Width == 1 ? "" : " * " + Lit(t.Width))})";
        }

        /// <summary>Rows of an activation in an encoder's exact-length pass: n per token, or one per sequence.</summary>
        private static string InferenceRows(TensorDef t) => t.PerToken ? "n" : "lengths.Length";

        private string Padding(TokenStream stream) => stream == TokenStream.Input ? "TokenPadding" : "DecoderPadding";

        private string TokensOf(TokenStream stream) => stream == TokenStream.Input ? "Tokens" : "DecoderTokens";

        // ----- the three passes, one case per operation -----

        private void Forward(Op op, List<string> lines)
        {
            string h = Lit(_d.Heads), hd = Lit(_d.HeadDim), c = Lit(_d.DModel);
            switch (op)
            {
                case EmbeddingOp e:
                    lines.Add(Lookup(TokensOf(e.Stream), e, V(e.Table), V(e.Output)));
                    break;
                case PositionalAddOp pos:
                    lines.Add($"{Kernels}Positional.Add({V(pos.X)}, {Rows(pos.Table, _d.Length(pos.Stream))}, {Lit(_d.Batch)}, {Lit(_d.Length(pos.Stream))}, {Lit(pos.X.Width)});");
                    break;
                case DropoutOp drop:
                    lines.Add($"{Kernels}Dropout.Forward({V(drop.Input)}, {V(drop.Output)}, {V(drop.Mask)}, Training ? {Lit(drop.Probability)} : 0f, DropoutRng);");
                    break;
                case LayerNormOp ln:
                    lines.Add($"{Kernels}LayerNorm.Forward({V(ln.Input)}, {V(ln.Gamma)}, {(ln.Beta is null ? "default" : V(ln.Beta))}, {V(ln.Output)}, {V(ln.Mean)}, {V(ln.Rstd)}, {Lit(ln.Input.Shape[0])}, {Lit(ln.Input.Width)}{EpsArgument(ln)});");
                    break;
                case RmsNormOp rms:
                    lines.Add($"{Kernels}RmsNorm.Forward({V(rms.Input)}, {V(rms.Weight)}, {V(rms.Output)}, {V(rms.Rstd)}, {Lit(rms.Input.Shape[0])}, {Lit(rms.Input.Width)}, {Lit(rms.Eps)}{UnitOffset(rms.UnitOffset)});");
                    break;
                case HeadRmsNormOp qk:
                    lines.Add($"{Kernels}RmsNorm.HeadsForward({V(qk.Input)}, {V(qk.QueryWeight)}, {V(qk.KeyWeight)}, {V(qk.Output)}, {V(qk.Rstd)}, {Lit(qk.Input.Shape[0])}, {HeadsArguments(qk)}, {Lit(qk.Eps)}{UnitOffset(qk.UnitOffset)});");
                    break;
                case TokenTypeOp type:
                    // Each token's segment when the caller gave them (sentence pairs), else segment 0 for all.
                    lines.Add($"if (TokenTypes.IsEmpty) {Kernels}Embedding.AddRow({V(type.X)}, {V(type.Row)}, {Lit(type.X.Shape[0])}, {Lit(type.X.Width)});");
                    lines.Add($"else {Kernels}Embedding.AddTypeRows({V(type.X)}, {V(type.Table)}, TokenTypes, {Lit(type.X.Width)});");
                    break;
                case SwiGluOp glu:
                    lines.Add($"{Kernels}Activations.{GatedName(glu)}Forward({V(glu.Input)}, {V(glu.Output)}, {Lit(glu.Output.Shape[0])}, {Lit(glu.Hidden)});");
                    break;
                case RelativeBiasOp rel:
                    lines.Add($"{Kernels}RelativePosition.BiasForward({V(rel.Table)}, {V(rel.Output)}, {RelativeArguments(rel)}, copies: {Lit(rel.Copies)});");
                    break;
                case ScaleOp scale:
                    lines.Add($"{Kernels}Scaling.Forward({V(scale.Input)}, {Lit(scale.Factor)}, {V(scale.Output)});");
                    break;
                case TanhOp tanh:
                    lines.Add($"{Kernels}Activations.TanhForward({V(tanh.Input)}, {V(tanh.Output)});");
                    break;
                case L2NormalizeOp l2:
                    lines.Add($"{Kernels}L2Normalize.Forward({V(l2.Input)}, {V(l2.Output)}, {V(l2.Norms)}, {Lit(l2.Input.Shape[0])}, {Lit(l2.Input.Width)});");
                    break;
                case LinearOp lin:
                    lines.Add(Product(lin, V(lin.Input), V(lin.Weight), lin.Bias is null ? "default" : V(lin.Bias), V(lin.Output), Lit(lin.Input.Shape[0])));
                    break;
                case RotaryOp rot when rot.HalfSplit:
                    lines.Add($"{Kernels}Positional.RotaryHalfForward({V(rot.Qkv)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, {Lit(_d.Batch)}, {Lit(_d.Length(rot.Stream))}, {Lit(rot.RotatedHeads)}, {hd}, {Lit(rot.Qkv.Width)});");
                    break;
                case RotaryOp rot:
                    lines.Add($"{Kernels}Positional.RotaryForward({V(rot.Qkv)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, {Lit(_d.Batch)}, {Lit(_d.Length(rot.Stream))}, {h}, {hd}, {Lit(rot.Qkv.Width)});");
                    break;
                case AttentionOp att when att.Tiled && att.IsPlainPackedSelfAttention:
                    lines.Add($"{Kernels}Attention.FlashForward({V(att.Query)}, {V(att.Output)}, {V(att.Statistics!)}, {Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {h}, {hd}, causal: {Bool(att.Causal)});");
                    break;
                case AttentionOp att when att.Tiled:
                    lines.Add($"{Kernels}Attention.FlashForward({Columns(V(att.Query), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(V(att.KeysValues), att.KeysValues, att.KeyColumn)}, {Columns(V(att.KeysValues), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"{(att.KeyPadding ? Padding(att.KeyStream) : "default")}, {V(att.Output)}, {V(att.Statistics!)}, " +
                              $"{Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {Lit(_d.Length(att.KeyStream))}, {h}, {hd}, causal: {Bool(att.Causal)}, window: {Lit(att.Window)}{KvHeadsArgument(att)}{ScaleArgument(att)});");
                    break;
                case AttentionOp att when att.IsPlainPackedSelfAttention:
                    lines.Add($"{Kernels}Attention.Forward({V(att.Query)}, {V(att.Output)}, {V(att.Probabilities!)}, {Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {h}, {hd}, causal: {Bool(att.Causal)});");
                    break;
                case AttentionOp att:
                    lines.Add($"{Kernels}Attention.Forward({Columns(V(att.Query), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(V(att.KeysValues), att.KeysValues, att.KeyColumn)}, {Columns(V(att.KeysValues), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"{(att.KeyPadding ? Padding(att.KeyStream) : "default")}, {V(att.Output)}, {V(att.Probabilities!)}, " +
                              $"{Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {Lit(_d.Length(att.KeyStream))}, {h}, {hd}, causal: {Bool(att.Causal)}, window: {Lit(att.Window)}{KvHeadsArgument(att)}{ScoreArguments(att, "positionBias", V)});");
                    break;
                case AddOp add:
                    lines.Add($"{Kernels}Residual.Add({V(add.A)}, {V(add.B)}, {V(add.Output)});");
                    break;
                case ActivationOp act:
                    lines.Add($"{Kernels}Activations.{ActivationName(act)}Forward({V(act.Input)}, {V(act.Output)});");
                    break;
                case PoolOp pool:
                    lines.Add(pool.Mean
                        ? $"{Kernels}Pooling.MeanForward({V(pool.Input)}, {(_spec.PadToken.Value >= 0 ? "TokenPadding" : "default")}, {V(pool.Output)}, {Lit(pool.Batch)}, {Lit(pool.SeqLen)}, {c});"
                        : $"{Kernels}Pooling.FirstForward({V(pool.Input)}, {V(pool.Output)}, {Lit(pool.Batch)}, {Lit(pool.SeqLen)}, {c});");
                    break;
                case CrossEntropyOp ce:
                    lines.Add($"return {Kernels}CrossEntropy.Forward({V(ce.Logits)}, Targets, {SoftmaxInGradient(ce)}, {Lit(ce.Logits.Shape[0])}, {Lit(ce.Logits.Width)}, {Lit(ce.LabelSmoothing)});");
                    break;
            }
        }

        private void Backward(Op op, List<string> lines)
        {
            string h = Lit(_d.Heads), hd = Lit(_d.HeadDim), c = Lit(_d.DModel);
            switch (op)
            {
                case EmbeddingOp e:
                    lines.Add($"{Kernels}Embedding.Backward({TokensOf(e.Stream)}, {G(e.Output)}, {G(e.Table)}, {Lit(e.Output.Width)}{ScaleArgument(e)}{(e.PaddingRow >= 0 ? ", paddingRow: " + Lit(e.PaddingRow) : "")});");
                    break;
                case PositionalAddOp pos when pos.Table.Kind == TensorKind.Parameter:
                    lines.Add($"{Kernels}Positional.AddBackward({G(pos.X)}, {G(pos.Table)}, {Lit(_d.Batch)}, {Lit(_d.Length(pos.Stream))}, {Lit(pos.X.Width)});");
                    break;
                case DropoutOp drop:
                    lines.Add($"{Kernels}Dropout.Backward({G(drop.Output)}, {V(drop.Mask)}, {G(drop.Input)}{OverwriteArgument("overwriteDx", drop.Input)});");
                    break;
                case RmsNormOp rms:
                    lines.Add($"{Kernels}RmsNorm.Backward({G(rms.Output)}, {V(rms.Input)}, {V(rms.Weight)}, {V(rms.Rstd)}, {G(rms.Input)}, {G(rms.Weight)}, {Lit(rms.Input.Shape[0])}, {Lit(rms.Input.Width)}{OverwriteArgument("overwriteDx", rms.Input)}{UnitOffset(rms.UnitOffset)});");
                    break;
                case HeadRmsNormOp qk:
                    lines.Add($"{Kernels}RmsNorm.HeadsBackward({G(qk.Output)}, {V(qk.Input)}, {V(qk.QueryWeight)}, {V(qk.KeyWeight)}, {V(qk.Rstd)}, {G(qk.Input)}, {G(qk.QueryWeight)}, {G(qk.KeyWeight)}, " +
                              $"{Lit(qk.Input.Shape[0])}, {HeadsArguments(qk)}{OverwriteArgument("overwriteDx", qk.Input)}{UnitOffset(qk.UnitOffset)});");
                    break;
                case TokenTypeOp type:
                    lines.Add($"if (TokenTypes.IsEmpty) {Kernels}Embedding.AddRowBackward({G(type.X)}, {G(type.Row)}, {Lit(type.X.Shape[0])}, {Lit(type.X.Width)});");
                    lines.Add($"else {Kernels}Embedding.AddTypeRowsBackward({G(type.X)}, {G(type.Table)}, TokenTypes, {Lit(type.X.Width)});");
                    break;
                case SwiGluOp glu:
                    lines.Add($"{Kernels}Activations.{GatedName(glu)}Backward({G(glu.Output)}, {V(glu.Input)}, {G(glu.Input)}, {Lit(glu.Output.Shape[0])}, {Lit(glu.Hidden)}{OverwriteArgument("overwriteDGateUp", glu.Input)});");
                    break;
                case RelativeBiasOp rel:
                    lines.Add($"{Kernels}RelativePosition.BiasBackward({G(rel.Output)}, {G(rel.Table)}, {RelativeArguments(rel)}, copies: {Lit(rel.Copies)});");
                    break;
                case ScaleOp scale:
                    lines.Add($"{Kernels}Scaling.Backward({G(scale.Output)}, {Lit(scale.Factor)}, {G(scale.Input)}{OverwriteArgument("overwriteDx", scale.Input)});");
                    break;
                case TanhOp tanh:
                    lines.Add($"{Kernels}Activations.TanhBackward({G(tanh.Output)}, {V(tanh.Output)}, {G(tanh.Input)}{OverwriteArgument("overwriteDx", tanh.Input)});");
                    break;
                case L2NormalizeOp l2:
                    lines.Add($"{Kernels}L2Normalize.Backward({G(l2.Output)}, {V(l2.Output)}, {V(l2.Norms)}, {G(l2.Input)}, {Lit(l2.Input.Shape[0])}, {Lit(l2.Input.Width)}{OverwriteArgument("overwriteDx", l2.Input)});");
                    break;
                case LayerNormOp ln:
                    lines.Add($"{Kernels}LayerNorm.Backward({G(ln.Output)}, {V(ln.Input)}, {V(ln.Gamma)}, {V(ln.Mean)}, {V(ln.Rstd)}, {G(ln.Input)}, {G(ln.Gamma)}, {(ln.Beta is null ? "default" : G(ln.Beta))}, {Lit(ln.Input.Shape[0])}, {Lit(ln.Input.Width)}{OverwriteArgument("overwriteDx", ln.Input)});");
                    break;
                case LinearOp lin:
                    lines.Add($"{Kernels}MatMul.Backward({G(lin.Output)}, {V(lin.Input)}, {V(lin.Weight)}, {G(lin.Input)}, {G(lin.Weight)}, {(lin.Bias is null ? "default" : G(lin.Bias))}, {Lit(lin.Input.Shape[0])}, {Lit(lin.InFeatures)}, {Lit(lin.OutFeatures)}{OverwriteArgument("overwriteDx", lin.Input)});");
                    break;
                case RotaryOp rot when rot.HalfSplit:
                    lines.Add($"{Kernels}Positional.RotaryHalfBackward({G(rot.Qkv)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, {Lit(_d.Batch)}, {Lit(_d.Length(rot.Stream))}, {Lit(rot.RotatedHeads)}, {hd}, {Lit(rot.Qkv.Width)});");
                    break;
                case RotaryOp rot:
                    lines.Add($"{Kernels}Positional.RotaryBackward({G(rot.Qkv)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, {Lit(_d.Batch)}, {Lit(_d.Length(rot.Stream))}, {h}, {hd}, {Lit(rot.Qkv.Width)});");
                    break;
                case AttentionOp att when att.Tiled && att.IsPlainPackedSelfAttention:
                    lines.Add($"{Kernels}Attention.FlashBackward({G(att.Output)}, {V(att.Query)}, {V(att.Output)}, {V(att.Statistics!)}, {G(att.Query)}, {Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {h}, {hd}, causal: {Bool(att.Causal)}{OverwriteArgument("overwriteDQkv", att.Query)});");
                    break;
                case AttentionOp att when att.Tiled:
                    lines.Add($"{Kernels}Attention.FlashBackward({G(att.Output)}, {Columns(V(att.Query), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(V(att.KeysValues), att.KeysValues, att.KeyColumn)}, {Columns(V(att.KeysValues), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"{(att.KeyPadding ? Padding(att.KeyStream) : "default")}, {V(att.Output)}, {V(att.Statistics!)}, {Columns(G(att.Query), att.Query, att.QueryColumn)}, " +
                              $"{Columns(G(att.KeysValues), att.KeysValues, att.KeyColumn)}, {Columns(G(att.KeysValues), att.KeysValues, att.ValueColumn)}, " +
                              $"{Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {Lit(_d.Length(att.KeyStream))}, {h}, {hd}, causal: {Bool(att.Causal)}, window: {Lit(att.Window)}{GeneralAttentionOverwrites(att)}{KvHeadsArgument(att)}{ScaleArgument(att)});");
                    break;
                case AttentionOp att when att.IsPlainPackedSelfAttention:
                    lines.Add($"{Kernels}Attention.Backward({G(att.Output)}, {V(att.Query)}, {V(att.Probabilities!)}, {G(att.Query)}, {Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {h}, {hd}, causal: {Bool(att.Causal)}{OverwriteArgument("overwriteDQkv", att.Query)});");
                    break;
                case AttentionOp att:
                    lines.Add($"{Kernels}Attention.Backward({G(att.Output)}, {Columns(V(att.Query), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(V(att.KeysValues), att.KeysValues, att.KeyColumn)}, {Columns(V(att.KeysValues), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"{V(att.Probabilities!)}, {Columns(G(att.Query), att.Query, att.QueryColumn)}, " +
                              $"{Columns(G(att.KeysValues), att.KeysValues, att.KeyColumn)}, {Columns(G(att.KeysValues), att.KeysValues, att.ValueColumn)}, " +
                              $"{Lit(_d.Batch)}, {Lit(_d.Length(att.QueryStream))}, {Lit(_d.Length(att.KeyStream))}, {h}, {hd}{GeneralAttentionOverwrites(att)}{KvHeadsArgument(att)}{ScoreArguments(att, "dPositionBias", G)});");
                    break;
                case AddOp add:
                    lines.Add($"{Kernels}Residual.Backward({G(add.Output)}, {G(add.A)}, {G(add.B)}{OverwriteArgument("overwriteDa", add.A)}{OverwriteArgument("overwriteDb", add.B)});");
                    break;
                case ActivationOp act when act.Silu:
                    lines.Add($"{Kernels}Activations.SiluBackward({G(act.Output)}, {V(act.Input)}, {G(act.Input)}{OverwriteArgument("overwriteDx", act.Input)});");
                    break;
                case ActivationOp act when act.Tanh:
                    lines.Add($"{Kernels}Activations.GeluTanhBackward({G(act.Output)}, {V(act.Input)}, {G(act.Input)}{OverwriteArgument("overwriteDx", act.Input)});");
                    break;
                case ActivationOp act when act.Gelu:
                    // The forward's output is at hand, and gives Φ(x) back without a second erfc.
                    lines.Add($"{Kernels}Activations.GeluBackward({G(act.Output)}, {V(act.Input)}, {V(act.Output)}, {G(act.Input)}{OverwriteArgument("overwriteDx", act.Input)});");
                    break;
                case ActivationOp act:
                    lines.Add($"{Kernels}Activations.ReluBackward({G(act.Output)}, {V(act.Input)}, {G(act.Input)}{OverwriteArgument("overwriteDx", act.Input)});");
                    break;
                case PoolOp pool:
                    lines.Add(pool.Mean
                        ? $"{Kernels}Pooling.MeanBackward({G(pool.Output)}, {(_spec.PadToken.Value >= 0 ? "TokenPadding" : "default")}, {G(pool.Input)}, {Lit(pool.Batch)}, {Lit(pool.SeqLen)}, {c});"
                        : $"{Kernels}Pooling.FirstBackward({G(pool.Output)}, {G(pool.Input)}, {Lit(pool.Batch)}, {Lit(pool.SeqLen)}, {c});");
                    break;
                case CrossEntropyOp ce:
                    // In place: the forward pass left the softmax in the logits' gradient, and this is its first (and only) use.
                    if (_walk is not null && _walk.BackwardIndex[op] != 0)
                        throw new System.InvalidOperationException("the cross-entropy's backward must run first: it turns the softmax into the logits' gradient in place");
                    lines.Add($"{Kernels}CrossEntropy.Backward({G(ce.Logits)}, Targets, {G(ce.Logits)}, {Lit(ce.Logits.Shape[0])}, {Lit(ce.Logits.Width)}, {Lit(ce.LabelSmoothing)}, overwriteDLogits: true);");
                    break;
            }
        }

        /// <summary>
        /// T5's and MPNet's score terms as named arguments: <c>scale: 1f</c> for unscaled scores (Gemma 3's factor), and the relative-position bias rows
        /// (<paramref name="biasName"/>, read through <paramref name="slice"/>: the rows forward, their gradient backward) with
        /// the span they cover; nothing for the paper's attention.
        /// </summary>
        private string ScoreArguments(AttentionOp att, string biasName, System.Func<TensorDef, string> slice)
        {
            string scale = ScaleArgument(att);
            return att.PositionBias is null ? scale : $"{scale}, {biasName}: {slice(att.PositionBias)}, biasSpan: {Lit(att.BiasSpan)}";
        }

        /// <summary>
        /// The general attention's store flags: the kernel writes head columns only, so it may store into a gradient only
        /// when those columns are the whole tensor — Q | K | V of a packed self-attention input, or a separate query
        /// tensor and a K | V tensor (cross-attention).
        /// </summary>
        private string GeneralAttentionOverwrites(AttentionOp att)
        {
            long c = _d.DModel;
            bool Covers(TensorDef t, params long[] columns) =>
                att.KvHeads == 0 && t.Width == columns.Length * c && columns.OrderBy(x => x).SequenceEqual(Enumerable.Range(0, columns.Length).Select(i => i * c));
            if (att.Query == att.KeysValues)
                return Covers(att.Query, att.QueryColumn, att.KeyColumn, att.ValueColumn) && Overwrites(att.Query) ? ", overwriteDq: true, overwriteDkv: true" : "";
            string dq = Covers(att.Query, att.QueryColumn) && Overwrites(att.Query) ? ", overwriteDq: true" : "";
            string dkv = Covers(att.KeysValues, att.KeyColumn, att.ValueColumn) && Overwrites(att.KeysValues) ? ", overwriteDkv: true" : "";
            return dq + dkv;
        }

        private void Infer(Op op, Stage stage, List<string> lines)
        {
            // Rows of the op's input: n new positions, the last one only in a decoder's head; an encoder's per-sequence rows after pooling.
            TensorDef? input = op.Reads.FirstOrDefault(t => t.Kind == TensorKind.Activation);
            string rows = _spec.IsEncoderOnly ? (input is null ? "n" : InferenceRows(input))
                : stage.Kind != StageKind.Head ? "n" : _spec.IsDecoderOnly ? "sequences.Count" : "1";
            string h = Lit(_d.Heads), hd = Lit(_d.HeadDim), c = Lit(_d.DModel);
            string position = NeedsPosition(stage) ? "position0" : "0";
            string padding = _spec.PadToken.Value >= 0 ? "PredictPadding" : "default";
            switch (op)
            {
                // Exact-length passes: an encoder's sequences, or a decoder-only model's new tokens of several cached
                // sequences, lie end to end, so positions and rotation go by sequence (from 0 in an encoder, from each
                // sequence's cached length in a decoder), as do attention and pooling.
                case PositionalAddOp pos when !_spec.IsEncoderDecoder:
                    lines.Add($"{Kernels}Positional.Add({I(pos.X, stage)}, {Rows(pos.Table, _d.Length(pos.Stream))}, {SequenceLengths}, {Lit(pos.X.Width)}{SequencePositions});");
                    break;
                case RotaryOp rot when !_spec.IsEncoderDecoder && rot.HalfSplit:
                    lines.Add($"{Kernels}Positional.RotaryHalfForward({I(rot.Qkv, stage)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, {SequenceLengths}, {Lit(rot.RotatedHeads)}, {hd}, {Lit(rot.Qkv.Width)}{SequencePositions});");
                    break;
                case RotaryOp rot when !_spec.IsEncoderDecoder:
                    lines.Add($"{Kernels}Positional.RotaryForward({I(rot.Qkv, stage)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, {SequenceLengths}, {h}, {hd}, {Lit(rot.Qkv.Width)}{SequencePositions});");
                    break;
                case AttentionOp att when _spec.IsEncoderOnly && att.Tiled:
                    lines.Add($"{Kernels}Attention.FlashForwardSequences({Columns(I(att.Query, stage), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(I(att.KeysValues, stage), att.KeysValues, att.KeyColumn)}, {Columns(I(att.KeysValues, stage), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"{(att.KeyPadding ? padding : "default")}, {I(att.Output, stage)}, lengths, {h}, {hd}" +
                              $"{(att.Window > 0 ? ", window: " + Lit(att.Window) : "")}{KvHeadsArgument(att)}{ScaleArgument(att)});");
                    break;
                case AttentionOp att when _spec.IsEncoderOnly:
                    lines.Add($"{Kernels}Attention.ForwardSequences({Columns(I(att.Query, stage), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(I(att.KeysValues, stage), att.KeysValues, att.KeyColumn)}, {Columns(I(att.KeysValues, stage), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"{(att.KeyPadding ? padding : "default")}, {I(att.Output, stage)}, {I(att.Probabilities!, stage)}, lengths, {h}, {hd}" +
                              $"{(att.Window > 0 ? ", window: " + Lit(att.Window) : "")}{KvHeadsArgument(att)}{ScoreArguments(att, "positionBias", t => I(t, stage))});");
                    break;
                case PoolOp pool:
                    lines.Add(pool.Mean
                        ? $"{Kernels}Pooling.MeanForward({I(pool.Input, stage)}, {padding}, {I(pool.Output, stage)}, lengths, {c});"
                        : $"{Kernels}Pooling.FirstForward({I(pool.Input, stage)}, {I(pool.Output, stage)}, lengths, {c});");
                    break;
                case TokenTypeOp type:
                    lines.Add($"if (PredictTokenTypes.IsEmpty) {Kernels}Embedding.AddRow({I(type.X, stage)}, {I(type.Row, stage)}, n, {Lit(type.X.Width)});");
                    lines.Add($"else {Kernels}Embedding.AddTypeRows({I(type.X, stage)}, {I(type.Table, stage)}, PredictTokenTypes, {Lit(type.X.Width)});");
                    break;
                case L2NormalizeOp l2:
                    lines.Add($"{Kernels}L2Normalize.Forward({I(l2.Input, stage)}, {I(l2.Output, stage)}, {I(l2.Norms, stage)}, lengths.Length, {Lit(l2.Input.Width)});");
                    break;
                case EmbeddingOp e:
                    lines.Add(Lookup("tokens", e, I(e.Table, stage), I(e.Output, stage)));
                    break;
                case AttentionOp att when att.Causal && _spec.IsDecoderOnly:
                    // The new keys and values join each sequence's cache slot, and each new query attends to its own sequence's cache.
                    lines.Add($"AttendCached({I(att.Query, stage)}, {Lit(att.Query.Width)}, {Lit(att.KeyColumn)}, {Lit(att.ValueColumn)}, {Lit(att.KeyValueWidth)}, {Lit(_plan.KeyCacheOffset(stage.Layer))}, {Lit(_plan.ValueCacheOffset(stage.Layer))}, " +
                              $"{I(att.Output, stage)}, sequences, {h}, {hd}{(att.Window > 0 ? ", window: " + Lit(att.Window) : "")}{KvHeadsArgument(att)}{ScaleArgument(att)});");
                    break;
                case PositionalAddOp pos:
                    lines.Add($"{Kernels}Positional.Add({I(pos.X, stage)}, {Rows(pos.Table, _d.Length(pos.Stream))}, 1, n, {Lit(pos.X.Width)}, {position});");
                    break;
                case LayerNormOp ln:
                    lines.Add($"{Kernels}LayerNorm.Forward({I(ln.Input, stage)}, {I(ln.Gamma, stage)}, {(ln.Beta is null ? "default" : I(ln.Beta, stage))}, {I(ln.Output, stage)}, {I(ln.Mean, stage)}, {I(ln.Rstd, stage)}, {rows}, {Lit(ln.Input.Width)}{EpsArgument(ln)});");
                    break;
                case RmsNormOp rms:
                    lines.Add($"{Kernels}RmsNorm.Forward({I(rms.Input, stage)}, {I(rms.Weight, stage)}, {I(rms.Output, stage)}, {I(rms.Rstd, stage)}, {rows}, {Lit(rms.Input.Width)}, {Lit(rms.Eps)}{UnitOffset(rms.UnitOffset)});");
                    break;
                case HeadRmsNormOp qk:
                    lines.Add($"{Kernels}RmsNorm.HeadsForward({I(qk.Input, stage)}, {I(qk.QueryWeight, stage)}, {I(qk.KeyWeight, stage)}, {I(qk.Output, stage)}, {I(qk.Rstd, stage)}, {rows}, {HeadsArguments(qk)}, {Lit(qk.Eps)}{UnitOffset(qk.UnitOffset)});");
                    break;
                case SwiGluOp glu:
                    lines.Add($"{Kernels}Activations.{GatedName(glu)}Forward({I(glu.Input, stage)}, {I(glu.Output, stage)}, {rows}, {Lit(glu.Hidden)});");
                    break;
                case RelativeBiasOp rel:
                    // One sequence's rows, computed from the table as it stands at each call.
                    lines.Add($"{Kernels}RelativePosition.BiasForward({I(rel.Table, stage)}, {I(rel.Output, stage)}, {RelativeArguments(rel)});");
                    break;
                case ScaleOp scale:
                    lines.Add($"{Kernels}Scaling.Forward({I(scale.Input, stage)}, {Lit(scale.Factor)}, {I(scale.Output, stage)});");
                    break;
                case TanhOp tanh:
                    lines.Add($"{Kernels}Activations.TanhForward({I(tanh.Input, stage)}, {I(tanh.Output, stage)});");
                    break;
                case LinearOp lin:
                    lines.Add(Product(lin, I(lin.Input, stage), I(lin.Weight, stage), lin.Bias is null ? "default" : I(lin.Bias, stage), I(lin.Output, stage), rows));
                    break;
                case RotaryOp rot when rot.HalfSplit:
                    lines.Add($"{Kernels}Positional.RotaryHalfForward({I(rot.Qkv, stage)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, 1, n, {Lit(rot.RotatedHeads)}, {hd}, {Lit(rot.Qkv.Width)}, {position});");
                    break;
                case RotaryOp rot:
                    lines.Add($"{Kernels}Positional.RotaryForward({I(rot.Qkv, stage)}, {Rows(rot.Cos, _d.Length(rot.Stream))}, {Rows(rot.Sin, _d.Length(rot.Stream))}, 1, n, {h}, {hd}, {Lit(rot.Qkv.Width)}, {position});");
                    break;
                case AttentionOp att when att.Causal:
                    // An encoder–decoder's decoder self-attention: the new keys and values join the cache, and each new query attends to it.
                    long cache = _d.TargetSeqLen * _d.KeyValueWidth;
                    string keys = Slice("kv", _plan.KeyCacheOffset(stage.Layer), cache), values = Slice("kv", _plan.ValueCacheOffset(stage.Layer), cache);
                    // Rows Q | K | V of Heads·HeadDim each (an encoder–decoder's heads need not span DModel: T5's d_kv).
                    lines.Add($"AppendKeysValues({I(att.Query, stage)}, n, {Lit(att.KeyValueWidth)}, {keys}, {values}, position0);");
                    lines.Add($"{Kernels}Attention.ForwardCached({I(att.Query, stage)}, {Lit(att.Query.Width)}, {keys}, {values}, {I(att.Output, stage)}, ScoreBuffer, position0, n, {h}, {hd}{(att.Window > 0 ? ", window: " + Lit(att.Window) : "")}{KvHeadsArgument(att)}{ScoreArguments(att, "positionBias", t => I(t, stage))});");
                    break;
                case AttentionOp att when att.QueryStream != att.KeyStream:
                    // Cross-attention: the encoder's keys and values were cached once per source.
                    long offset = _plan.InferenceOffsetOf(att.KeysValues), width = att.KeysValues.Width;
                    string CacheColumns(long column) => $"kv.Slice({Lit(offset + column)}, SourceLength * {Lit(width)}{(column == 0 ? "" : " - " + Lit(column))})";
                    lines.Add($"{Kernels}Attention.ForwardCross({I(att.Query, stage)}, {Lit(att.Query.Width)}, {CacheColumns(att.KeyColumn)}, " +
                              $"{CacheColumns(att.ValueColumn)}, {Lit(width)}, default, {I(att.Output, stage)}, ScoreBuffer, n, SourceLength, {h}, {hd}{ScoreArguments(att, "", t => I(t, stage))});");
                    break;
                case AttentionOp att when att.Tiled:
                    // Encoder self-attention over the whole source at once, tiled: no probabilities, no statistics kept.
                    lines.Add($"{Kernels}Attention.FlashForward({Columns(I(att.Query, stage), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(I(att.KeysValues, stage), att.KeysValues, att.KeyColumn)}, {Columns(I(att.KeysValues, stage), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"default, {I(att.Output, stage)}, default, 1, n, n, {h}, {hd}, causal: false, window: {Lit(att.Window)});");
                    break;
                case AttentionOp att:
                    // Encoder self-attention over the whole source at once.
                    lines.Add($"{Kernels}Attention.Forward({Columns(I(att.Query, stage), att.Query, att.QueryColumn)}, {Lit(att.Query.Width)}, " +
                              $"{Columns(I(att.KeysValues, stage), att.KeysValues, att.KeyColumn)}, {Columns(I(att.KeysValues, stage), att.KeysValues, att.ValueColumn)}, {Lit(att.KeysValues.Width)}, " +
                              $"default, {I(att.Output, stage)}, {I(att.Probabilities!, stage)}, 1, n, n, {h}, {hd}, causal: false, window: {Lit(att.Window)}{ScoreArguments(att, "positionBias", t => I(t, stage))});");
                    break;
                case AddOp add:
                    lines.Add($"{Kernels}Residual.Add({I(add.A, stage)}, {I(add.B, stage)}, {I(add.Output, stage)});");
                    break;
                case ActivationOp act:
                    lines.Add($"{Kernels}Activations.{ActivationName(act)}Forward({I(act.Input, stage)}, {I(act.Output, stage)});");
                    break;
                // Dropout is the identity at inference (its output shares its input's memory), and the loss needs targets.
                case DropoutOp:
                case CrossEntropyOp:
                    break;
            }
        }

        /// <summary>The sequence lengths of an exact-length pass: an encoder's argument, or a decoder's cached sequences'.</summary>
        private string SequenceLengths => _spec.IsEncoderOnly ? "lengths" : "sequences.Lengths";

        /// <summary>Where each sequence's new tokens start: nothing for an encoder (0), the cached lengths for a decoder.</summary>
        private string SequencePositions => _spec.IsEncoderOnly ? "" : ", sequences.Positions";

        private static string Bool(bool value) => value ? "true" : "false";

        private static string ActivationName(ActivationOp act) => act.Silu ? "Silu" : act.Tanh ? "GeluTanh" : act.Gelu ? "Gelu" : "Relu";

        /// <summary>The gated activation's kernel: SwiGLU, or T5's GEGLU with the tanh GELU.</summary>
        private static string GatedName(SwiGluOp glu) => glu.Gate switch { GateActivation.GeluTanh => "GeGluTanh", GateActivation.GeluErf => "GeGlu", _ => "SwiGlu" };

        /// <summary>A relative-position bias's sizes and buckets, as <c>RelativePosition.BiasForward</c> and <c>BiasBackward</c> take them.</summary>
        private static string RelativeArguments(RelativeBiasOp rel) =>
            $"{Lit(rel.Heads)}, {Lit(rel.Span)}, bidirectional: {Bool(rel.Bidirectional)}, {Lit(rel.Buckets)}, {Lit(rel.MaxDistance)}";

        /// <summary>LayerNorm's eps where it is not the kernel's default 1e-5 (BERT's 1e-12).</summary>
        /// <summary>The attention kernels' named argument for a score factor other than 1/√HeadDim (T5's 1, Gemma 3's); nothing otherwise.</summary>
        private string ScaleArgument(AttentionOp att) => att.ScoreScale == 0f ? "" : ", scale: " + Lit(att.ScoreScale);

        /// <summary>The RMSNorm kernels' named argument for Gemma's scaling by 1 + weight; nothing otherwise.</summary>
        private static string UnitOffset(bool unitOffset) => unitOffset ? ", unitOffset: true" : "";

        private static string EpsArgument(LayerNormOp ln) => ln.Eps == 1e-5f ? "" : ", " + Lit(ln.Eps);

        /// <summary>Grouped-query attention's key/value heads, where there are fewer than query heads.</summary>
        private static string KvHeadsArgument(AttentionOp att) => att.KvHeads > 0 ? ", kvHeads: " + Lit(att.KvHeads) : "";

        /// <summary>The head counts and size of the per-head query and key norms: <c>heads, kvHeads, headDim</c>.</summary>
        private static string HeadsArguments(HeadRmsNormOp qk) => $"{Lit(qk.Heads)}, {Lit(qk.KvHeads)}, {Lit(qk.HeadDim)}";

        private static string ScaleArgument(EmbeddingOp e) => e.Scale == 1f ? "" : ", " + Lit(e.Scale);

        /// <summary>The lookup's scale, and whether its table (tied to a packed output head) is in the panel layout.</summary>

        /// <summary>
        /// A linear layer's product: through the instance's <c>Linear</c> when its weight is a packed region (held as the
        /// instance's WeightType says), else the fp32 kernel over rows.
        /// </summary>
        private string Product(LinearOp lin, string x, string weight, string bias, string y, string rows) => Packed(lin.Weight)
            ? $"Linear({x}, {weight}, {bias}, {y}, {rows}, {Lit(lin.InFeatures)}, {Lit(lin.OutFeatures)});"
            : $"{Kernels}MatMul.Forward({x}, {weight}, {bias}, {y}, {rows}, {Lit(lin.InFeatures)}, {Lit(lin.OutFeatures)});";

        /// <summary>An embedding lookup: through the instance's <c>EmbeddingLookup</c> when the table is a packed region (held as the instance's WeightType says).</summary>
        private string Lookup(string tokens, EmbeddingOp e, string table, string output) => Packed(e.Table)
            ? $"EmbeddingLookup({tokens}, {table}, {output}, {Lit(e.Table.Shape[0])}, {Lit(e.Output.Width)}, {Lit(e.Scale)});"
            : $"{Kernels}Embedding.Forward({tokens}, {table}, {output}, {Lit(e.Table.Shape[0])}, {Lit(e.Output.Width)}{ScaleArgument(e)});";

        /// <summary>The first <paramref name="rows"/> rows of a position table (the table may be longer: it serves both streams).</summary>
        private string Rows(TensorDef table, long rows) => table.Shape[0] == rows ? V(table) : Slice(table.Kind == TensorKind.Parameter ? ParameterLocal(table) : "c", _plan.OffsetOf(table), rows * table.Width);
    }
}
