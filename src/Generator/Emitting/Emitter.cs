using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 5: prints the generated half of the model class. Every number was decided by the earlier stages;
    /// this stage only writes them down: one method per stage (embedding, each layer, head) and pass (forward,
    /// backward, cached inference), each a sequence of kernel calls on slices at literal offsets.
    /// </summary>
    internal sealed partial class Emitter
    {
        public const string GeneratorName = "TransformerGen.Generator";
        public const string GeneratorVersion = "0.1.0";
        private const string Kernels = "global::TransformerGen.Kernels.";

        private readonly MemoryPlan _plan;
        private readonly ModelGraph _graph;
        private readonly ModelDims _d;
        private readonly ModelSpec _spec;
        private readonly HashSet<TensorDef> _headTensors;

        /// <summary>The checkpoint built in as a resource, or null.</summary>
        private readonly string? _weights;

        private Emitter(MemoryPlan plan, string? weights)
        {
            _weights = weights;
            _plan = plan;
            _graph = plan.Graph;
            _d = _graph.Dims;
            _spec = _graph.Spec;
            _headTensors = new HashSet<TensorDef>(_graph.Ops.Where(o => o.Stage.Kind == StageKind.Head).SelectMany(o => o.Writes));
            _packed = PackedMatrices();
            _inferenceOnly = plan.ParameterSegments.Count > 1;
        }

        /// <summary>
        /// True for a model of several parameter segments, which is never built for training (training needs its parameters
        /// and gradients as one span each): it gets no forward or backward pass of training, and no training workspace.
        /// </summary>
        private readonly bool _inferenceOnly;

        /// <summary>The weights an inference instance keeps in the kernels' panel layout, by the region each covers.</summary>
        private readonly HashSet<(int Segment, long Offset, long Rows, long Columns)> _packed;

        /// <summary>
        /// The regions of the parameter buffer that linear layers read as one product (<c>[out, in]</c>), and the token tables.
        /// Each is packed into the kernels' panel layout in an inference instance, unless something else reads part of it in
        /// PyTorch's layout: another product over a different region that overlaps it, or any other operation but the
        /// embedding lookup of a table that is exactly that region (a tied output head, or a table only lookups read), whose
        /// kernel reads the panels too. The
        /// regions are fixed at compile time; whether and how an instance packs them (fp32 panels, bf16, 8-bit) is decided
        /// when it is built (WeightType, WeightsPacked), and its Linear and EmbeddingLookup read whichever form it holds.
        /// </summary>
        private HashSet<(int Segment, long Offset, long Rows, long Columns)> PackedMatrices()
        {
            var regions = new HashSet<(int Segment, long Offset, long Rows, long Columns)>();
            foreach (LinearOp lin in _graph.Ops.OfType<LinearOp>())
                if (lin.Weight.Kind == TensorKind.Parameter) regions.Add(Region(lin.Weight));
            // A token table that only lookups read (an encoder's, an untied decoder's) is held the same way: EmbeddingLookup
            // reads a row of any form, so an 8-bit instance keeps EmbeddingGemma's 805 MB table in a quarter of that.
            var exempt = new HashSet<TensorDef>(_graph.Ops.OfType<LinearOp>().Select(l => l.Weight));
            foreach (EmbeddingOp e in _graph.Ops.OfType<EmbeddingOp>())
            {
                if (e.Table.Kind != TensorKind.Parameter) continue;
                regions.Add(Region(e.Table));
                exempt.Add(e.Table);
            }
            var readers = _graph.Ops.SelectMany(o => o.Reads).Where(t => t.Kind == TensorKind.Parameter && !exempt.Contains(t)).Select(Region)
                .Concat(regions).ToList();
            bool Overlap((int Segment, long Offset, long Rows, long Columns) a, (int Segment, long Offset, long Rows, long Columns) b) =>
                a != b && a.Segment == b.Segment && a.Offset < b.Offset + b.Rows * b.Columns && b.Offset < a.Offset + a.Rows * a.Columns;
            // A matrix of fewer than 64 rows has no whole panel: packing would leave it as it is.
            return new HashSet<(int, long, long, long)>(regions.Where(r => r.Rows >= 64 && !readers.Any(other => Overlap(r, other))));
        }

        private (int Segment, long Offset, long Rows, long Columns) Region(TensorDef t) =>
            (_plan.SegmentOf(t), _plan.OffsetOf(t), t.Shape.Length == 2 ? t.Shape[0] : 1, t.Shape[t.Shape.Length - 1]);

        /// <summary>True when <paramref name="weight"/> is a packed region: products and lookups then go through the instance.</summary>
        private bool Packed(TensorDef weight) => weight.Kind == TensorKind.Parameter && _packed.Contains(Region(weight));

        /// <summary>The generated source, and the floats of the training workspace and of the activation-gradient buffer it lays out (see <see cref="SlotPlan"/>).</summary>
        public static string Emit(MemoryPlan plan, string? weights, out long activationFloats, out long activationGradientFloats)
        {
            var emitter = new Emitter(plan, weights);
            string source = emitter.Write();
            activationFloats = emitter.ActivationCount;
            activationGradientFloats = emitter.ActivationGradientCount;
            return source;
        }

        private static string Lit(long value) => value.ToString(CultureInfo.InvariantCulture);

        /// <summary>Floats of the activation-gradient buffer (none for a model that is never trained).</summary>
        private long ActivationGradientCount => _inferenceOnly ? 0 : Walk().Gradients.Count;

        /// <summary>Floats of the training workspace (none for a model that is never trained).</summary>
        private long ActivationCount => _inferenceOnly ? 0 : Walk().Activations.Count;

        /// <summary>Where an activation lies in the training workspace.</summary>
        private long ActivationOffset(TensorDef t) => Walk().Activations.OffsetOf(t);

        private static string Lit(float value) => value.ToString("R", CultureInfo.InvariantCulture) + "f";

        /// <summary>The runtime's <c>RotaryScaling</c> for a config's rope scaling, every number a literal.</summary>
        private static string RopeScalingExpression(RopeScalingSpec rope) => rope.Kind switch
        {
            "linear" => $"{Kernels}RotaryScaling.Linear({Lit(rope.Factor)})",
            "llama3" => $"{Kernels}RotaryScaling.Llama3(factor: {Lit(rope.Factor)}, lowFrequencyFactor: {Lit(rope.LowFrequencyFactor)}, highFrequencyFactor: {Lit(rope.HighFrequencyFactor)}, originalPositions: {Lit(rope.OriginalPositions)})",
            "yarn" => $"{Kernels}RotaryScaling.Yarn(factor: {Lit(rope.Factor)}, originalPositions: {Lit(rope.OriginalPositions)}, betaFast: {Lit(rope.BetaFast)}, betaSlow: {Lit(rope.BetaSlow)}, truncate: {(rope.Truncate ? "true" : "false")}, attentionFactor: {Lit(rope.AttentionFactor)})",
            "longrope" => $"{Kernels}RotaryScaling.LongRope({Lit(rope.AttentionFactor)}, {string.Join(", ", rope.Factors.Select(f => Lit(f)))})",
            _ => throw new System.InvalidOperationException("unknown rope scaling " + rope.Kind),
        };

        /// <summary>What the rope scaling's line of comment says: its kind and where its attention factor comes from.</summary>
        private static string RopeScalingComment(RopeScalingSpec rope) => rope.Kind switch
        {
            "llama3" => "Llama 3: long wavelengths divided by the factor, short ones kept, a blend between",
            "yarn" => "YaRN: a ramp from kept to divided frequencies over its correction range; cos and sin × the attention factor",
            "longrope" => $"LongRoPE within the original {rope.OriginalPositions} positions: short_factor per pair; cos and sin × √(1 + ln {Lit(rope.Factor).TrimEnd('f')} / ln {rope.OriginalPositions}) or the config's attention_factor",
            _ => "linear: every frequency divided by the factor",
        };

        private static string Lit(string value) => "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

        private string Write()
        {
            var w = new IndentedWriter();
            TypeShape type = _spec.Type;
            w.Line("// <auto-generated/>");
            w.Line($"// Generated by Transformer.Gen {GeneratorVersion} from the [TransformerModel] attribute on {type.Name}.");
            w.Line("// Every size and offset below was fixed at compile time; the kernels live in TransformerGen.Runtime.");
            w.Line("#nullable enable");
            w.Line();
            if (type.Namespace is not null) w.Open("namespace " + type.Namespace);
            foreach (string outer in type.ContainingTypes) w.Open("partial " + outer);

            WriteRemarks(w);
            w.Line($"[global::System.CodeDom.Compiler.GeneratedCode({Lit(GeneratorName)}, {Lit(GeneratorVersion)})]");
            w.Open($"partial class {type.Name} : global::TransformerGen.{BaseClass}");
            WriteConstants(w);
            WriteLayout(w);
            WriteConstructor(w);
            WriteBuiltInWeights(w);
            WriteEntryPoints(w);
            List<Stage> inference = InferenceStages();
            foreach (Stage stage in Stages().Union(inference))
            {
                bool trains = !_inferenceOnly && _graph.Ops.Any(o => o.Stage == stage);
                if (trains) WriteStage(w, stage, "Forward");
                if (trains) WriteStage(w, stage, "Backward");
                if (inference.Contains(stage)) WriteStage(w, stage, "Infer");
            }
            w.Close();

            foreach (string _ in type.ContainingTypes) w.Close();
            if (type.Namespace is not null) w.Close();
            return w.ToString();
        }

        /// <summary>The runtime class the model derives from: the protocol of its architecture.</summary>
        private string BaseClass => _spec.IsEncoderDecoder ? "Seq2SeqModel" : _spec.IsEncoderOnly ? "EncoderModel" : "LanguageModel";

        /// <summary>Whether the stage adds positions (and so needs the first position at inference): not with rotary.</summary>
        private bool TakesPosition(Stage stage) => _graph.Ops.Any(o => o.Stage == stage && o is PositionalAddOp);

        /// <summary>Every stage, in forward order.</summary>
        private List<Stage> Stages() => _graph.Ops.Select(o => o.Stage).Distinct().ToList();

        /// <summary>Every stage that has work at inference, in forward order (the encoder's output stage may hold only the cross-attention keys and values).</summary>
        private List<Stage> InferenceStages() => _graph.Ops.Select(o => o.InferenceStage).Distinct().ToList();

        /// <summary>The stages cached inference runs per new decoder token (all of a decoder-only model's).</summary>
        private List<Stage> DecodeStages() => InferenceStages().Where(s => _spec.IsDecoderOnly || !s.IsEncoderSide).ToList();

        /// <summary>The stages that run once per source at inference (encoder–decoder only).</summary>
        private List<Stage> EncodeStages() => _spec.IsEncoderDecoder ? InferenceStages().Where(s => s.IsEncoderSide).ToList() : [];

        private string Describe()
        {
            string positional = _spec.Positional.Value switch
            {
                EnumValues.Learned => "learned positions",
                EnumValues.Rotary => "rotary positions",
                EnumValues.Relative => "a relative-position bias on the scores",
                _ => "sinusoidal positions",
            };
            string norm = _spec.Norm.Value == EnumValues.PreNorm ? "pre-LN (GPT-2)" : "post-LN (the paper)";
            string activation = _spec.Activation.Value == EnumValues.Gelu ? "GELU (erf)" : "ReLU";
            if (_spec.Family is { } family)
            {
                // A Hugging Face family: say where it came from and what the config chose.
                norm = (family.RmsNorm ? "RMSNorm" : "LayerNorm") + $" eps {Lit(family.NormEps).TrimEnd('f')} " + (_spec.Norm.Value == EnumValues.PreNorm ? "before each sub-layer" : "after each residual add");
                activation = family.FeedForwardName;
                if (family.Rotary) positional = $"rotary positions (rotate_half, theta {Lit(family.RopeTheta).TrimEnd('f')}"
                    + (family.RopeScaling is { } rope ? $", {rope.Kind} scaling ×{Lit(rope.Factor).TrimEnd('f')})" : ")");
                if (family.Kind == FamilySpec.Marian) positional = "sinusoidal positions (sines then cosines, not interleaved)";
                if (family.Kind == FamilySpec.M2M100) positional = $"fairseq's sinusoidal positions (sines then cosines, from row {_spec.PadToken.Value + 1})";
                if (family.RelativeAttention)
                    positional = (family.UnscaledScores ? "unscaled scores plus " : "learned positions (from the padding id + 1) and scores plus ")
                        + $"a relative-position bias ({family.RelativeBuckets} buckets up to distance {family.RelativeMaxDistance})";
                if (family.Kind == FamilySpec.Gemma3)
                {
                    norm = $"RMSNorm × (1 + weight) eps {Lit(family.NormEps).TrimEnd('f')} before and after each sub-layer";
                    int slidingLayers = family.SlidingLayers.Count(kind => kind == 'S');
                    positional += $" on {family.SlidingLayers.Length - slidingLayers} full layers, base {Lit(family.LocalRopeTheta).TrimEnd('f')} on {slidingLayers} layers of a {family.SlidingWindow}-key sliding window";
                }
                if (family.Kind == FamilySpec.ModernBert)
                {
                    norm = $"LayerNorm{(family.NormBias ? "" : " without bias")} eps {Lit(family.NormEps).TrimEnd('f')} before each sub-layer (none before the first layer's attention)";
                    int local = family.SlidingLayers.Count(kind => kind == 'S');
                    positional += $" on {family.SlidingLayers.Length - local} global layers, base {Lit(family.LocalRopeTheta).TrimEnd('f')} on {local} local layers that see {family.SlidingWindow - 1} positions either side";
                }
                if (_d.KvHeads > 0) activation += $", {_d.KvHeads} key/value heads";
                // The file name goes into an XML doc comment: escape what XML gives a meaning to.
                string file = family.ConfigFile.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
                return $"{family.KindName} model from {file}: " + DescribeSizes(activation, positional, norm);
            }
            return DescribeSizes(activation, positional, norm);
        }

        private string DescribeSizes(string activation, string positional, string norm)
        {
            static string Layers(int count, string kind) => $"{count} {kind}{(count == 1 ? "layer" : "layers")}";
            string stacks = _spec.IsEncoderDecoder
                ? $"encoder–decoder Transformer: {Layers(_d.EncoderLayers, "encoder ")}, {Layers(_d.DecoderLayers, "decoder ")}"
                : _spec.IsEncoderOnly
                    ? $"encoder-only Transformer: {Layers(_d.EncoderLayers, "")}"
                    : $"decoder-only Transformer: {Layers(_d.DecoderLayers, "")}";
            string vocabulary = _spec.IsEncoderDecoder && _d.TargetVocab != _d.Vocab ? $"vocabularies {_d.Vocab} → {_d.TargetVocab}" : $"vocabulary {_d.Vocab}";
            string lengths = _spec.IsEncoderDecoder ? $"{_d.Batch} × ({_d.SeqLen} source + {_d.TargetSeqLen} target) tokens per step" : $"{_d.Batch} × {_d.SeqLen} tokens per step";
            return $"{stacks}, DModel {_d.DModel}, {_d.Heads} heads of {_d.HeadDim}, DFF {_d.DFF}, {activation}, {positional}, {norm}, {vocabulary}, {lengths}";
        }

        private void WriteRemarks(IndentedWriter w)
        {
            long parameters = _graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).Sum(t => t.Elements);
            w.Line("/// <remarks>");
            string description = Describe();
            w.Line($"/// {(description.StartsWith("encoder", System.StringComparison.Ordinal) ? "An" : "A")} {description}.");
            foreach (string line in Explain()) w.Line("/// " + line);
            if (_spec.Dropout.Value > 0)
                w.Line($"/// Dropout {_spec.Dropout.Value.ToString("R", CultureInfo.InvariantCulture)} is applied to the embeddings and to each sub-layer's output while <see cref=\"global::TransformerGen.TransformerModel.Training\"/> is true.");
            w.Line($"/// {parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters; {_plan.FlopsPerToken.ToString("N0", CultureInfo.InvariantCulture)} FLOPs per token forward.");
            w.Line("/// </remarks>");
        }

        /// <summary>The architecture in words, a sentence per line, for the class's remarks.</summary>
        private IEnumerable<string> Explain()
        {
            string smoothing = _spec.LabelSmoothing.Value > 0 ? $" with label smoothing {_spec.LabelSmoothing.Value.ToString("R", CultureInfo.InvariantCulture)}" : "";
            string positions = _spec.Positional.Value switch
            {
                EnumValues.Rotary => "embedded (queries and keys are rotated by position)",
                EnumValues.Relative => "embedded (each stack's attention adds a learned bias by key-minus-query distance to its scores)",
                _ => "embedded and positions added",
            };
            string normName = _spec.Family is { RmsNorm: true } ? "RMSNorm" : "LayerNorm";
            string sublayers = _spec.Family is { SandwichNorms: true }
                ? $"each inside a residual connection with {normName} before the sub-layer and on its output"
                : _spec.Norm.Value == EnumValues.PreNorm
                    ? $"each inside a residual connection with {normName} before the sub-layer"
                    : $"each inside a residual connection followed by {normName}";
            if (_spec.Family is { EmbeddingScale: not 1f }) positions = positions.Replace("embedded", "embedded × √DModel");
            if (_spec.IsEncoderDecoder)
            {
                yield return $"Source tokens are {positions}; each encoder layer applies bidirectional self-attention and a feed-forward network, {sublayers}.";
                yield return "Target tokens, shifted right behind the begin token (teacher forcing), go through decoder layers of causal self-attention,";
                yield return "cross-attention to the encoder output, and a feed-forward network; the LM head gives logits over the target vocabulary.";
                if (_spec.Family is { IsBartLike: true } f)
                    yield return "One token table (model.shared) embeds source and target and is the LM head" + (f.LogitsBias ? ", whose logits get final_logits_bias added." : ".");
            }
            else if (_spec.IsEncoderOnly)
            {
                yield return $"Tokens are {positions}; each layer applies bidirectional self-attention and a feed-forward network, {sublayers}.";
                if (_spec.Family is { QueryKeyNorm: true }) yield return "Each query and key head is RMS-normalized (q_norm, k_norm) before the rotation.";
                // A window at least as long as the sequence restricts nothing (the layers then get no window: Lowerer.FamilyLayer).
                if (_spec.Family is { Bidirectional: true, SlidingWindow: > 0 } b && b.SlidingLayers.IndexOf('S') >= 0)
                    yield return (b.SlidingWindow < _d.SeqLen
                        ? $"The sliding layers' queries see only the keys within {b.SlidingWindow - 1} positions either side and rotate with their own base"
                        : $"The sliding layers rotate with their own base; their window ({b.SlidingWindow - 1} positions either side) spans all SeqLen = {_d.SeqLen} positions, so they see every key")
                        + $"; a final {(b.RmsNorm ? "RMSNorm" : "LayerNorm")} ends the stack.";
                string pooling = _spec.Pooling.Value == EnumValues.MeanPooling ? "mean of non-pad tokens" : "first token";
                // Hugging Face sequence classifiers put a dense layer and an activation between the pooled token and the head.
                string dense = _spec.Family is { Kind: FamilySpec.ModernBert } ? ", the prediction head (head.dense, its activation, head.norm)"
                    : _spec.Family is not { IsBertLike: true } ? ""
                    : _spec.Family.Kind == FamilySpec.DistilBert ? ", a dense layer and ReLU (pre_classifier)"
                    : _spec.Family.Kind == FamilySpec.Electra ? ", a dense layer and GELU (classifier.dense)"
                    : _spec.Family.IsRobertaLike ? ", a dense layer and tanh (classifier.dense)" : ", the pooler's dense layer and tanh";
                string outputs = _spec.Family is { ScoreHead: true } ? (_d.Classes == 1 ? "a score" : $"{_d.Classes} scores") : "class logits";
                yield return _spec.Head.Value switch
                {
                    EnumValues.Tagging => _spec.Family is { Kind: FamilySpec.ModernBert }
                        ? "Every token goes through the prediction head (head.dense, its activation, head.norm), then a linear head gives its class logits."
                        : "A linear head gives class logits for every token.",
                    EnumValues.SentenceEmbedding => _spec.Family is { UnnormalizedEmbeddings: true }
                        ? $"The sequence is pooled ({pooling}){DenseText()} into a sentence embedding, not normalized (the folder's modules.json has no Normalize module)."
                        : $"The sequence is pooled ({pooling}){DenseText()} and L2-normalized into a sentence embedding.",
                    _ => $"The sequence is pooled ({pooling}){dense} and a linear head gives {outputs}.",
                };
            }
            else
            {
                yield return $"Tokens are {positions}; each layer applies causal multi-head self-attention and a feed-forward network, {sublayers}.";
                if (_spec.Family is { QueryKeyNorm: true }) yield return "Each query and key head is RMS-normalized (q_norm, k_norm) before the rotation.";
                if (_spec.Family is { SlidingWindow: > 0 } g && g.SlidingLayers.IndexOf('S') >= 0)
                    yield return g.SlidingWindow < _d.SeqLen
                        ? $"The sliding layers' queries see only the last {g.SlidingWindow} keys (themselves included) and rotate with their own base."
                        : $"The sliding layers rotate with their own base; their window of {g.SlidingWindow} keys spans all SeqLen = {_d.SeqLen} positions, so they see every earlier key.";
                yield return "The LM head turns each position into logits over the vocabulary" + (_spec.TiedEmbeddings.Value ? " with the token embedding matrix." : ".");
            }
            if (_spec.AttentionWindow.Value > 0)
            {
                string attends = _spec.IsEncoderDecoder ? "Self-attention (not cross-attention) lets" : "Attention lets";
                yield return $"{attends} each position see only positions at most {_spec.AttentionWindow.Value} away (a sliding window).";
            }
            bool loss = _graph.Ops.OfType<CrossEntropyOp>().Any();
            if (_spec.PadToken.Value >= 0)
                yield return _spec.IsEncoderDecoder && _spec.Family is not null
                    ? $"Source padding ({_spec.PadToken.Value}) is masked in attention, and padding targets are ignored by the loss."
                    : $"Padding ({_spec.PadToken.Value}) is masked in attention{(loss ? " and ignored by the loss" : "")}.";
            yield return loss
                ? $"The loss is the mean cross-entropy{smoothing} over targets that are not ignored."
                : "It has no loss of its own: the gradient of the caller's loss with respect to its output seeds the backward pass.";
        }

        private void WriteConstants(IndentedWriter w)
        {
            long parameters = _graph.Tensors.Where(t => t.Kind == TensorKind.Parameter).Sum(t => t.Elements);
            void Const(string name, long value, string doc, string type = "int")
            {
                w.Line($"/// <summary>{doc}</summary>");
                w.Line($"public const {type} {name} = {Lit(value)};");
            }
            Const("Vocab", _d.Vocab, "Number of token ids.");
            Const("DModel", _d.DModel, "Width of the residual stream.");
            Const("Heads", _d.Heads, "Attention heads per layer.");
            Const("HeadDim", _d.HeadDim, _spec.Family is null ? "Channels per head: DModel / Heads." : "Channels per head (the config's head_dim, or DModel / Heads).");
            if (_d.KvHeads > 0) Const("KvHeads", _d.KvHeads, "Key/value heads, each shared by Heads / KvHeads query heads (grouped-query attention).");
            Const("Layers", _d.Layers, "Transformer layers.");
            Const("DFF", _d.DFF, "Hidden width of the feed-forward network.");
            Const("SeqLen", _d.SeqLen, "Positions per sequence.");
            Const("Batch", _d.Batch, "Sequences per training step.");
            Const("TokensPerStep", _d.Tokens, "Token ids per Forward call: Batch · SeqLen.");
            // A long: the largest models the compiler takes (in several parameter segments) have more than 2³¹ − 1.
            Const("ParameterCount", parameters, "Trained parameters (the parameter buffer adds alignment padding).", "long");
            if (_spec.IsEncoderDecoder)
            {
                Const("TargetVocab", _d.TargetVocab, "Number of target token ids.");
                Const("TargetSeqLen", _d.TargetSeqLen, "Target positions per sequence.");
                Const("TargetTokensPerStep", _d.TargetTokens, "Target ids per Forward call: Batch · TargetSeqLen.");
            }
            if (_spec.IsEncoderOnly) Const("Classes", _d.Classes, "Classes of the head.");
            if (_spec.Head.Value == EnumValues.SentenceEmbedding && _spec.IsEncoderOnly)
                Const("EmbeddingWidth", Output.Shape[1], _spec.Family is { Dense.Count: > 0 } ? "Width of a sentence embedding: the last Dense layer's outputs." : "Width of a sentence embedding: DModel.");
            // The float buffers the runtime allocates for each use (TransformerModel.BufferBytes at run time).
            long shared = _plan.ParameterCount + _plan.ConstantCount + _plan.InferenceCount + _plan.KeyValueCount + System.Math.Max(_d.SeqLen, _d.TargetSeqLen);
            long training = 4 * (shared + _plan.ParameterCount + ActivationCount + ActivationGradientCount);
            long inference = 4 * shared;
            w.Line("/// <summary>Bytes of the buffers of a model built for training: parameters, gradients, activations, the gradients of the activations live at once, the inference workspace and key/value cache.</summary>");
            w.Line($"public const long TrainingBytes = {Lit(training)};");
            w.Line(_spec.IsEncoderOnly
                ? "/// <summary>Bytes of the buffers of a model built for inference (<see cref=\"ForInference(ulong)\"/>): parameters and the workspace of an exact-length pass over up to Batch·SeqLen tokens.</summary>"
                : "/// <summary>Bytes of the buffers of a model built for inference (<see cref=\"ForInference(ulong)\"/>): parameters, the inference workspace and the key/value cache.</summary>");
            w.Line($"public const long InferenceBytes = {Lit(inference)};");
            w.Line();
        }

        private void WriteLayout(IndentedWriter w)
        {
            TensorDef logits = Output;
            w.Line("/// <summary>Sizes, the parameter table with PyTorch names, and the memory plan, all fixed at compile time.</summary>");
            w.Line($"private static readonly global::TransformerGen.ModelLayout {GeneratedNames.LayoutField} = new global::TransformerGen.ModelLayout(");
            w.Line($"    name: {Lit(_spec.Type.Name)}, vocab: {Lit(_d.Vocab)}, seqLen: {Lit(_d.SeqLen)}, batch: {Lit(_d.Batch)},");
            w.Line("    tensors: new global::TransformerGen.ParameterTensor[]");
            w.Line("    {");
            foreach (TensorDef t in _graph.Tensors.Where(t => t.Kind == TensorKind.Parameter))
            {
                string init = t.Init switch
                {
                    InitKind.Ones => "global::TransformerGen.WeightInit.Ones",
                    InitKind.Normal => "global::TransformerGen.WeightInit.Normal",
                    _ => "global::TransformerGen.WeightInit.Zeros",
                };
                string scale = t.Init == InitKind.Normal ? ", " + Lit(t.InitScale) : "";
                var initializers = new List<string>();
                if (_plan.SegmentOf(t) > 0) initializers.Add("Segment = " + Lit(_plan.SegmentOf(t)));
                if (t.StoredTransposed) initializers.Add("StoredTransposed = true");
                string properties = initializers.Count == 0 ? "" : " { " + string.Join(", ", initializers) + " }";
                w.Line($"        new({Lit(t.Name)}, new[] {{ {string.Join(", ", t.Shape.Select(Lit))} }}, {Lit(_plan.OffsetOf(t))}, {init}{scale}){properties},");
            }
            w.Line("    },");
            // A model that runs for inference only has no training workspace.
            w.Line($"    parameterCount: {Lit(_plan.ParameterSegments[0])}, activationCount: {Lit(ActivationCount)}, constantCount: {Lit(_plan.ConstantCount)},");
            w.Line($"    inferenceCount: {Lit(_plan.InferenceCount)}, keyValueCount: {Lit(_plan.KeyValueCount)},");
            w.Line($"    logitsOffset: {Lit(_inferenceOnly ? 0 : ActivationOffset(logits))}, logitsLength: {Lit(_inferenceOnly ? 0 : logits.Elements)}, inferenceLogitsOffset: {Lit(_plan.InferenceOffsetOf(logits))})");
            w.Line("{");
            if (!_inferenceOnly)
            {
                w.Line("    // The backward pass's gradients of activations: a slot each while live, reused once dead.");
                w.Line($"    ActivationGradientCount = {Lit(ActivationGradientCount)}, LogitsGradientOffset = {Lit(Walk().Gradients.OffsetOf(logits))},");
            }
            if (_plan.ParameterSegments.Count > 1)
            {
                w.Line("    // More parameter floats than one array holds: whole tensors in segments, each at most an array long.");
                w.Line($"    ParameterSegments = new[] {{ {string.Join(", ", _plan.ParameterSegments.Select(Lit))} }},");
            }
            w.Line($"    Architecture = global::TransformerGen.Architecture.{(_spec.IsEncoderDecoder ? "EncoderDecoder" : _spec.IsEncoderOnly ? "EncoderOnly" : "DecoderOnly")},");
            w.Line($"    TargetVocab = {Lit(_spec.IsEncoderOnly ? _d.Classes : _d.TargetVocab)}, TargetLength = {Lit(TargetLength)},");
            if (_spec.Family is { } family) w.Line($"    Family = global::TransformerGen.CheckpointFamily.{family.KindName},");
            if (!_graph.Ops.OfType<CrossEntropyOp>().Any()) w.Line("    SeededOutput = true,");
            if (_spec.IsEncoderOnly && _spec.Head.Value != EnumValues.Tagging)
                w.Line($"    Pooling = global::TransformerGen.Pooling.{(_spec.Pooling.Value == EnumValues.MeanPooling ? "Mean" : "FirstToken")},");
            if (_spec.Head.Value == EnumValues.SentenceEmbedding && _spec.Family is { UnnormalizedEmbeddings: true }) w.Line("    UnnormalizedEmbeddings = true,");
            if (_graph.HiddenState is { } hidden && !_inferenceOnly) w.Line($"    HiddenStateOffset = {Lit(ActivationOffset(hidden))}, HiddenStateLength = {Lit(hidden.Elements)},");
            if (_graph.EncoderState is { } encoded && !_inferenceOnly) w.Line($"    EncoderStateOffset = {Lit(ActivationOffset(encoded))}, EncoderStateLength = {Lit(encoded.Elements)},");
            if (_graph.Ops.OfType<TokenTypeOp>().SingleOrDefault() is { } types) w.Line($"    TokenTypes = {Lit(types.Table.Shape[0])},");
            w.Line($"    InferenceTokens = {Lit(_plan.InferenceTokens)}{(_spec.IsDecoderOnly ? $", Sequences = {Lit(_d.CacheSlots)}" : "")},");
            w.Line($"    DecoderSeqLen = {Lit(_d.TargetSeqLen)}, PadToken = {Lit(_spec.PadToken.Value)}, BosToken = {Lit(_spec.BosToken.Value)}, EosToken = {Lit(_spec.EosToken.Value)},");
            if (_spec.Family is { EndTokens.Count: > 1 } ends) w.Line($"    EndTokens = new[] {{ {string.Join(", ", ends.EndTokens.Select(id => Lit(id)))} }},");
            if (_spec.Family?.Kind == FamilySpec.MBart) w.Line("    DecoderStartsFromLastLabel = true,");
            if (_spec.IsEncoderDecoder) w.Line($"    DecoderLayers = {Lit(_d.DecoderLayers)}, DecoderCacheWidth = {Lit(_d.KeyValueWidth)},");
            if (_packed.Count > 0)
            {
                w.Line("    PackedMatrices = new global::TransformerGen.WeightMatrix[]");
                w.Line("    {");
                foreach ((int segment, long offset, long rows, long columns) in _packed.OrderBy(r => r.Segment).ThenBy(r => r.Offset))
                    w.Line($"        new({Lit(offset)}, {Lit(rows)}, {Lit(columns)}{(segment == 0 ? "" : ", Segment: " + Lit(segment))}),");
                w.Line("    },");
            }
            if (_inferenceOnly)
            {
                w.Line("};");
                w.Line();
                return;
            }
            w.Line("    AttentionMaps = new global::TransformerGen.ActivationTensor[]");
            w.Line("    {");
            foreach (TensorDef t in _graph.Tensors.Where(t => t.IsAttentionProbabilities))
                w.Line($"        new({Lit(t.Name)}, new[] {{ {string.Join(", ", t.Shape.Select(Lit))} }}, {Lit(ActivationOffset(t))}),");
            w.Line("    },");
            List<AttentionOp> tiled = _graph.Ops.OfType<AttentionOp>().Where(a => a.Tiled).ToList();
            if (tiled.Count > 0)
            {
                // What AttentionMap needs to recompute a tiled attention's probabilities: its queries, keys and statistics.
                w.Line("    TiledAttentionMaps = new global::TransformerGen.TiledAttentionMap[]");
                w.Line("    {");
                foreach (AttentionOp a in tiled)
                {
                    TensorDef stats = a.Statistics!;
                    string name = stats.Name.Substring(0, stats.Name.Length - "statistics".Length) + "probabilities";
                    int padding = !a.KeyPadding ? 0 : a.KeyStream == TokenStream.Input ? 1 : 2;
                    w.Line($"        new({Lit(name)}, {Lit(_d.Batch)}, {Lit(_d.Heads)}, {Lit(_d.Length(a.QueryStream))}, {Lit(_d.Length(a.KeyStream))}, {Lit(_d.HeadDim)}, {Lit(a.KvHeads)}, " +
                           $"{Lit(ActivationOffset(a.Query) + a.QueryColumn)}, {Lit(a.Query.Width)}, {Lit(ActivationOffset(a.KeysValues) + a.KeyColumn)}, {Lit(a.KeysValues.Width)}, " +
                           $"{Lit(ActivationOffset(stats))}, causal: {Bool(a.Causal)}, window: {Lit(a.Window)}, keyPadding: {Lit(padding)}),");
                }
                w.Line("    },");
            }
            w.Line("};");
            w.Line();
        }

        /// <summary>Targets per Forward call: one per token, or one per sequence for a classifier (and a sentence embedder, which ignores them).</summary>
        private long TargetLength => _spec.IsEncoderDecoder ? _d.TargetTokens
            : _spec.IsEncoderOnly && _spec.Head.Value != EnumValues.Tagging ? _d.Batch
            : _d.Tokens;

        /// <summary>What <c>Logits</c> exposes after a forward pass: the loss's logits, or a sentence embedder's embeddings.</summary>
        // The model's output: the logits its loss reads, or (no loss of its own) the tensor whose gradient the caller seeds.
        private TensorDef Output => _graph.Ops.OfType<CrossEntropyOp>().SingleOrDefault()?.Logits ?? _graph.Tensors.Single(t => t.SeededGradient);

        /// <summary>The sentence-transformers Dense layers after the pooling, as the summary names them ("" for none).</summary>
        private string DenseText()
        {
            if (_spec.Family is not { Dense.Count: > 0 } family) return "";
            return ", " + string.Join(", ", family.Dense.Select(d => $"{d.Path} ({d.In} → {d.Out}{(d.Tanh ? ", tanh" : "")})"));
        }

        private const string ModelUse = "global::TransformerGen.ModelUse";
        private const string WeightType = "global::TransformerGen.WeightType";
        private const string ModelWeights = "global::TransformerGen.ModelWeights";

        /// <summary>The declaration's <c>WeightType</c>, the default of the inference factories.</summary>
        private string DeclaredWeightType => WeightType + "." + (_spec.WeightType.Value switch
        {
            EnumValues.BFloat16 => "BFloat16",
            EnumValues.Int8 => "Int8",
            _ => "Float32",
        });

        private void WriteConstructor(IndentedWriter w)
        {
            string name = _spec.Type.Name;
            w.Line("/// <summary>");
            w.Line("/// Allocates every buffer of the model once (<see cref=\"TrainingBytes\"/> in all) and initializes its parameters");
            w.Line("/// deterministically from <paramref name=\"seed\"/>.");
            w.Line("/// </summary>");
            w.Line($"public {name}(ulong seed = 0) : this(seed, {ModelUse}.Training, initialize: true) {{ }}");
            w.Line();
            var tables = new List<string>();
            foreach (TensorDef t in _graph.Tensors.Where(t => t.Kind == TensorKind.Constant))
            {
                switch (t.Name)
                {
                    case "sinusoidal_positions":
                        tables.Add("// the paper's sinusoidal position table [positions, DModel]");
                        tables.Add($"{Kernels}Positional.SinusoidalTable(ConstantBuffer.Slice({Lit(_plan.OffsetOf(t))}, {Lit(t.Elements)}), {Lit(t.Shape[0])}, {Lit(_d.DModel)});");
                        break;
                    case "sinusoidal_positions_split":
                        tables.Add("// Marian's sinusoidal position table [positions, DModel]: the sines in the first half of the channels, the cosines in the second");
                        tables.Add($"{Kernels}Positional.SinusoidalSplitTable(ConstantBuffer.Slice({Lit(_plan.OffsetOf(t))}, {Lit(t.Elements)}), {Lit(t.Shape[0])}, {Lit(_d.DModel)});");
                        break;
                    case "sinusoidal_positions_fairseq":
                        tables.Add("// fairseq's sinusoidal position table (M2M100, NLLB) [positions, DModel]: sines then cosines, position p at pad_token_id + 1 + p");
                        tables.Add($"{Kernels}Positional.SinusoidalFairseqTable(ConstantBuffer.Slice({Lit(_plan.OffsetOf(t))}, {Lit(t.Elements)}), {Lit(t.Shape[0])}, {Lit(_d.DModel)}, {Lit(_spec.PadToken.Value + 1)});");
                        break;
                    case "rotary_cos":
                        TensorDef sin = _graph.Tensors.Single(s => s.Name == "rotary_sin");
                        string theta = _spec.Family is { Rotary: true } f ? ", " + Lit(f.RopeTheta) : "";
                        if (_spec.Family is { RopeScaling: { } rope })
                        {
                            tables.Add($"// rotary angles: cos and sin tables [positions, HeadDim / 2], scaled as rope_scaling says ({RopeScalingComment(rope)})");
                            theta += ", " + RopeScalingExpression(rope);
                        }
                        else tables.Add("// rotary angles: cos and sin tables [positions, HeadDim / 2]");
                        tables.Add($"{Kernels}Positional.RotaryTables(ConstantBuffer.Slice({Lit(_plan.OffsetOf(t))}, {Lit(t.Elements)}), ConstantBuffer.Slice({Lit(_plan.OffsetOf(sin))}, {Lit(sin.Elements)}), {Lit(t.Shape[0])}, {Lit(_d.HeadDim)}{theta});");
                        break;
                    case "rotary_local_cos":
                        TensorDef localSin = _graph.Tensors.Single(s => s.Name == "rotary_local_sin");
                        tables.Add($"// the sliding layers' rotary angles (base {Lit(_spec.Family!.LocalRopeTheta).TrimEnd('f')}) [positions, HeadDim / 2]");
                        tables.Add($"{Kernels}Positional.RotaryTables(ConstantBuffer.Slice({Lit(_plan.OffsetOf(t))}, {Lit(t.Elements)}), ConstantBuffer.Slice({Lit(_plan.OffsetOf(localSin))}, {Lit(localSin.Elements)}), {Lit(t.Shape[0])}, {Lit(_d.HeadDim)}, {Lit(_spec.Family.LocalRopeTheta)});");
                        break;
                }
            }
            string constructor = $"private {name}(ulong seed, {ModelUse} use, bool initialize, {WeightType} weights = {WeightType}.Float32, {ModelWeights}? shared = null) : base({GeneratedNames.LayoutField}, seed, use, initialize, weights, shared)";
            if (tables.Count == 0)
            {
                w.Line("/// <summary>Allocates the buffers <paramref name=\"use\"/> needs; initializes the parameters when asked.</summary>");
                w.Line(constructor + " { }");
            }
            else
            {
                w.Line("/// <summary>Allocates the buffers <paramref name=\"use\"/> needs and fills the constant tables; initializes the parameters when asked.</summary>");
                w.Open(constructor);
                foreach (string line in tables) w.Line(line);
                w.Close();
            }
            w.Line();
            w.Line("/// <summary>");
            w.Line($"/// A model for inference only (<see cref=\"InferenceBytes\"/> in all: no gradients, nothing kept for backward), its");
            w.Line($"/// parameters initialized from <paramref name=\"seed\"/> and its weight matrices held as {DeclaredWeightType} (the declaration's");
            w.Line("/// WeightType); training methods refuse it.");
            w.Line("/// </summary>");
            w.Line($"public static {name} ForInference(ulong seed = 0) => ForInference(seed, {DeclaredWeightType});");
            w.Line();
            w.Line("/// <summary>A model for inference only, its parameters initialized from <paramref name=\"seed\"/> and its weight matrices held as <paramref name=\"weights\"/> says.</summary>");
            w.Line($"public static {name} ForInference(ulong seed, {WeightType} weights) => new {name}(seed, {ModelUse}.Inference, initialize: true, weights);");
            w.Line();
            w.Line("/// <summary>");
            w.Line("/// A model for inference only with its parameters read from the safetensors file <paramref name=\"checkpoint\"/> (checked as");
            w.Line($"/// <c>Load</c> does) and its weight matrices then held as {DeclaredWeightType} (the declaration's WeightType).");
            w.Line("/// </summary>");
            w.Line($"public static {name} ForInference(string checkpoint) => ForInference(checkpoint, {DeclaredWeightType});");
            w.Line();
            w.Line("/// <summary>");
            w.Line("/// A model for inference only with its parameters read from the safetensors file <paramref name=\"checkpoint\"/> (checked as");
            w.Line("/// <c>Load</c> does) and its weight matrices then held as <paramref name=\"weights\"/> says.");
            w.Line("/// </summary>");
            w.Open($"public static {name} ForInference(string checkpoint, {WeightType} weights)");
            w.Line($"var model = new {name}(0, {ModelUse}.Inference, initialize: false, weights);");
            w.Line("model.Load(checkpoint);");
            w.Line("model.PackWeights();");
            w.Line("return model;");
            w.Close();
            w.Line();
            w.Line("/// <summary>");
            w.Line("/// Reads the safetensors file <paramref name=\"checkpoint\"/> once into read-only weights, their matrices held as");
            w.Line($"/// {DeclaredWeightType} (the declaration's WeightType), for any number of instances from <see cref=\"ForInference({ModelWeights})\"/>.");
            w.Line("/// </summary>");
            w.Line($"public static {ModelWeights} LoadWeights(string checkpoint) => LoadWeights(checkpoint, {DeclaredWeightType});");
            w.Line();
            w.Line("/// <summary>Reads the safetensors file <paramref name=\"checkpoint\"/> once into read-only weights, their matrices held as <paramref name=\"weights\"/> says.</summary>");
            w.Open($"public static {ModelWeights} LoadWeights(string checkpoint, {WeightType} weights)");
            w.Line($"var model = new {name}(0, {ModelUse}.Inference, initialize: false, weights);");
            w.Line("model.Load(checkpoint);");
            w.Line("return model.ShareWeights();");
            w.Close();
            w.Line();
            w.Line("/// <summary>");
            w.Line("/// A model for inference only that reads <paramref name=\"weights\"/> (from <c>LoadWeights</c>), shared with any other");
            w.Line("/// instance: it allocates only its own workspace and key/value cache.");
            w.Line("/// </summary>");
            w.Line($"public static {name} ForInference({ModelWeights} weights) =>");
            w.Line($"    new {name}(0, {ModelUse}.Inference, initialize: false, shared: weights ?? throw new global::System.ArgumentNullException(nameof(weights)));");
            w.Line();
        }

        /// <summary>The factory that builds the model from the checkpoint embedded in the assembly.</summary>
        private void WriteBuiltInWeights(IndentedWriter w)
        {
            if (_weights is null) return;
            string name = _spec.Type.Name;
            w.Line("/// <summary>");
            w.Line($"/// The model with the weights of {_weights}, built into this assembly and checked against this declaration at");
            w.Line("/// compile time; for inference only unless <paramref name=\"use\"/> says Training (to fine-tune them). An inference");
            w.Line($"/// instance holds its weight matrices as <paramref name=\"weights\"/> says ({DeclaredWeightType} when not given); a training one, fp32.");
            w.Line("/// </summary>");
            w.Open($"public static {name} FromBuiltInWeights({ModelUse} use = {ModelUse}.Inference, {WeightType}? weights = null)");
            w.Line($"var model = new {name}(0, use, initialize: false, weights ?? (use == {ModelUse}.Inference ? {DeclaredWeightType} : {WeightType}.Float32));");
            w.Line($"using global::System.IO.Stream stream = typeof({name}).Assembly.GetManifestResourceStream({Lit(_weights)})");
            string missing = _weights + " is not embedded in the assembly: list it as <TransformerWeights Include=\"...\" /> and import TransformerGen.Weights.targets";
            w.Line($"    ?? throw new global::System.InvalidOperationException({Lit(missing)});");
            w.Line("model.Load(stream);");
            w.Line($"if (use == {ModelUse}.Inference) model.PackWeights();");
            w.Line("return model;");
            w.Close();
            w.Line();
            w.Line("/// <summary>");
            w.Line($"/// The weights of {_weights}, built into this assembly, as read-only weights for any number of instances from");
            w.Line($"/// <see cref=\"ForInference({ModelWeights})\"/>, their matrices held as <paramref name=\"weights\"/> says ({DeclaredWeightType} when not given).");
            w.Line("/// </summary>");
            w.Open($"public static {ModelWeights} LoadBuiltInWeights({WeightType}? weights = null)");
            w.Line($"return FromBuiltInWeights({ModelUse}.Inference, weights).ShareWeights();");
            w.Close();
            w.Line();
        }

        private void WriteEntryPoints(IndentedWriter w)
        {
            if (_inferenceOnly)
            {
                // The constructor refuses a training instance of this model, the only kind that calls these.
                const string refusal = "throw new global::System.NotSupportedException(\"a model of several parameter segments runs for inference only\");";
                w.Line("/// <inheritdoc />");
                w.Line("/// <remarks>Not generated: this model's parameters lie in several segments, and it runs for inference only.</remarks>");
                w.Line("protected override float ForwardCore() => " + refusal);
                w.Line();
                w.Line("/// <inheritdoc />");
                w.Line("/// <remarks>Not generated: this model's parameters lie in several segments, and it runs for inference only.</remarks>");
                w.Line("protected override void BackwardCore() => " + refusal);
            }
            else
            {
                w.Line("/// <inheritdoc />");
                w.Open("protected override float ForwardCore()");
                foreach (Stage s in ForwardStages())
                    w.Line((s.Kind == StageKind.Head ? "return " : "") + GeneratedNames.StageMethod(s, "Forward") + "();");
                w.Close();
                w.Line();
                w.Line("/// <inheritdoc />");
                w.Open("protected override void BackwardCore()");
                foreach (Stage s in BackwardStages()) w.Line(GeneratedNames.StageMethod(s, "Backward") + "();");
                w.Close();
            }
            if (_spec.IsEncoderOnly)
            {
                WritePredict(w);
                return;
            }

            if (_spec.IsEncoderDecoder)
            {
                w.Line();
                w.Line("/// <inheritdoc />");
                w.Open("protected override void EncodeCore(global::System.ReadOnlySpan<int> tokens)");
                w.Line("int n = tokens.Length;");
                foreach (Stage s in EncodeStages()) w.Line($"{GeneratedNames.StageMethod(s, "Infer")}({InferArguments(s)});");
                w.Close();
            }
            w.Line();
            w.Line("/// <inheritdoc />");
            w.Open(_spec.IsDecoderOnly
                ? "protected override void InferCore(global::System.ReadOnlySpan<int> tokens, global::TransformerGen.CachedSequences sequences)"
                : "protected override void InferCore(global::System.ReadOnlySpan<int> tokens, int position0)");
            w.Line("int n = tokens.Length;");
            foreach (Stage s in DecodeStages()) w.Line($"{GeneratedNames.StageMethod(s, "Infer")}({InferArguments(s)});");
            w.Close();
            if (!_spec.IsDecoderOnly || _graph.HiddenState is not { } hidden) return;
            w.Line();
            w.Line("/// <inheritdoc />");
            w.Line($"protected override global::System.ReadOnlySpan<float> InferenceLastHiddenStates(int sequences) => InferenceBuffer.Slice({Lit(_plan.InferenceOffsetOf(hidden))}, sequences * {Lit(hidden.Width)}); // {hidden.Name}");
        }

        /// <summary>
        /// An encoder-only model's exact-length pass: every stage over the n tokens of up to Batch sequences laid end to
        /// end, then the output rows (one per sequence, or one per token for a tagger) and, where the model exposes it,
        /// the last hidden state.
        /// </summary>
        private void WritePredict(IndentedWriter w)
        {
            const string span = "global::System.ReadOnlySpan";
            TensorDef output = Output;
            w.Line();
            w.Line("/// <inheritdoc />");
            w.Open($"protected override {span}<float> PredictCore({span}<int> tokens, {span}<int> lengths)");
            w.Line("int n = tokens.Length;");
            foreach (Stage s in InferenceStages()) w.Line($"{GeneratedNames.StageMethod(s, "Infer")}({InferArguments(s)});");
            w.Line($"return {InferenceSlice("InferenceBuffer", output)}; // {output.Name}{InferenceShape(output, Stage.Head)}");
            w.Close();
            if (_graph.HiddenState is not { } hidden) return;
            w.Line();
            w.Line("/// <inheritdoc />");
            w.Line($"protected override {span}<float> InferenceHiddenState(int n) => {InferenceSlice("InferenceBuffer", hidden)};");
        }

        /// <summary>
        /// What an inference stage method takes, in order: the tokens if it embeds them, the row count, where the new
        /// tokens are if it needs it (a decoder-only model's sequences and their cached lengths; an encoder–decoder's first
        /// position), and an encoder's sequence lengths if it uses them.
        /// </summary>
        private List<(string Type, string Name)> InferParameters(Stage stage)
        {
            var list = new List<(string Type, string Name)>();
            if (stage.Kind is StageKind.Embed or StageKind.TargetEmbed) list.Add(("global::System.ReadOnlySpan<int>", "tokens"));
            list.Add(("int", "n"));
            if (_spec.IsDecoderOnly && (NeedsPosition(stage) || stage.Kind == StageKind.Head)) list.Add(("global::TransformerGen.CachedSequences", "sequences"));
            else if (NeedsPosition(stage)) list.Add(("int", "position0"));
            if (NeedsLengths(stage)) list.Add(("global::System.ReadOnlySpan<int>", "lengths"));
            return list;
        }

        private string InferArguments(Stage stage) => string.Join(", ", InferParameters(stage).Select(p => p.Name));

        /// <summary>Whether a stage's inference depends on where the new tokens are: positions added, rotary, or the self-attention cache.</summary>
        private bool NeedsPosition(Stage stage) => stage.Kind switch
        {
            StageKind.Head or StageKind.EncoderOutput or StageKind.EncoderLayer => false,
            StageKind.Embed => _spec.IsDecoderOnly && TakesPosition(stage),
            StageKind.TargetEmbed => TakesPosition(stage),
            _ => true,
        };

        /// <summary>
        /// Whether an encoder-only stage's exact-length inference needs the sequence lengths: positions and attention
        /// restart at each sequence, pooling makes one row per sequence, and what follows pooling has that many rows.
        /// </summary>
        private bool NeedsLengths(Stage stage) => _spec.IsEncoderOnly && _graph.Ops.Any(op => op.InferenceStage == stage
            && (op is PositionalAddOp or RotaryOp or AttentionOp or PoolOp
                || (op is not (CrossEntropyOp or DropoutOp) && op.Reads.Concat(op.Writes).Any(t => t.Kind == TensorKind.Activation && !t.PerToken && !t.TrainingOnly))));
    }
}
