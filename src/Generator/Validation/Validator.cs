using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Stage 2: checks a declaration before anything is generated. Every problem becomes its own diagnostic,
    /// placed on the argument that causes it and naming the numbers involved and what to choose instead.
    /// </summary>
    internal static class Validator
    {
        /// <summary>The most layers the generator unrolls; far above any model this library targets.</summary>
        public const int MaxLayers = 512;

        /// <summary>
        /// Validates, turning an unexpected failure of the validator itself into TG9999 so that the generator
        /// never throws.
        /// </summary>
        public static EquatableArray<DiagnosticInfo> SafeValidate(ModelSpec spec)
        {
            try
            {
                return Validate(spec);
            }
            catch (System.Exception e) when (e is not System.OperationCanceledException)
            {
                return new EquatableArray<DiagnosticInfo>([DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, spec.AttributeLocation,
                    "validating the declaration", spec.Type.Name, e.GetType().Name + ": " + e.Message)]);
            }
        }

        public static EquatableArray<DiagnosticInfo> Validate(ModelSpec spec)
        {
            var found = new List<DiagnosticInfo>();
            TypeShape type = spec.Type;

            if (type.Keyword != "class" || type.IsStatic || type.IsAbstract)
            {
                string kind = type.Keyword != "class" ? type.Keyword : type.IsStatic ? "static class" : "abstract class";
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.WrongTypeKind, type.NameLocation, type.Name, kind));
            }
            else if (!type.IsPartial)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotPartial, type.NameLocation, type.Name));
            if (type.IsGeneric || type.IsInGenericType)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.GenericType, type.NameLocation, type.Name));
            if (!type.ContainingTypesArePartial)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ContainingTypeNotPartial, type.NameLocation, type.Name));
            if (type.AttributeCount > 1)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.AppliedTwice, spec.AttributeLocation, type.Name, type.AttributeCount));
            if (type.BaseTypeName is not null)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.HasBaseClass, type.NameLocation, type.Name, type.BaseTypeName));
            foreach (MemberName member in type.Members)
                    found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MemberCollision, member.Location, type.Name, member.Name));

            CheckOption(found, spec, "Architecture", spec.Architecture, "Architecture.DecoderOnly, Architecture.EncoderDecoder, Architecture.EncoderOnly",
                EnumValues.DecoderOnly, EnumValues.EncoderDecoder, EnumValues.EncoderOnly);
            CheckOption(found, spec, "Head", spec.Head, "EncoderHead.Classification, EncoderHead.Tagging, EncoderHead.SentenceEmbedding",
                EnumValues.Classification, EnumValues.Tagging, EnumValues.SentenceEmbedding);
            CheckOption(found, spec, "Pooling", spec.Pooling, "Pooling.FirstToken, Pooling.Mean", EnumValues.FirstToken, EnumValues.MeanPooling);
            CheckOption(found, spec, "WeightType", spec.WeightType, "WeightType.Float32, WeightType.BFloat16, WeightType.Int8",
                EnumValues.Float32, EnumValues.BFloat16, EnumValues.Int8);
            CheckOption(found, spec, "AttentionKernel", spec.AttentionKernel, "AttentionKernel.Auto, AttentionKernel.StoredProbabilities, AttentionKernel.Tiled",
                EnumValues.AutoAttention, EnumValues.StoredProbabilities, EnumValues.TiledAttention);
            CheckOption(found, spec, "Positional", spec.Positional, "Positional.Sinusoidal, Positional.Learned, Positional.Rotary",
                EnumValues.Sinusoidal, EnumValues.Learned, EnumValues.Rotary, EnumValues.Relative);
            // T5's and MPNet's bias on the scores is added by the stored-probabilities kernels only.
            if (spec.AttentionKernel.Value == EnumValues.TiledAttention && spec.Family?.RelativeAttention == true)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OptionNotForArchitecture, spec.AttentionKernel.Location ?? spec.AttributeLocation,
                    "AttentionKernel.Tiled", "models without a relative-position bias on the scores",
                    $"a {spec.Family.KindName} (its scores take a bias the tiled kernels do not add)"));
            // The relative-position bias is compiled for T5's layers only, which a T5 config.json brings.
            if (spec.Positional.Value == EnumValues.Relative && spec.Family?.Kind != FamilySpec.T5)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OptionNotForArchitecture, spec.Positional.Location ?? spec.AttributeLocation,
                    "Positional.Relative", "Hugging Face T5 (Config = a T5 config.json)", "declared by its own arguments"));
            CheckOption(found, spec, "Norm", spec.Norm, "NormPlacement.Post, NormPlacement.Pre", EnumValues.PostNorm, EnumValues.PreNorm);
            CheckOption(found, spec, "Activation", spec.Activation, "Activation.Relu, Activation.Gelu", EnumValues.Relu, EnumValues.Gelu);

            Positive(found, spec, "Vocab", spec.Vocab);
            Positive(found, spec, "DModel", spec.DModel);
            Positive(found, spec, "Heads", spec.Heads);
            bool stacksGiven = spec.IsEncoderDecoder ? spec.EncoderLayers.Value > 0 && spec.DecoderLayers.Value > 0 : spec.IsEncoderOnly && spec.EncoderLayers.Value > 0;
            if (!stacksGiven) Positive(found, spec, "Layers", spec.Layers);
            Positive(found, spec, "DFF", spec.DFF);
            Positive(found, spec, "SeqLen", spec.SeqLen);
            Positive(found, spec, "Batch", spec.Batch);

            foreach ((string name, Argument<int> layers) in new[] { ("Layers", spec.Layers), ("EncoderLayers", spec.EncoderLayers), ("DecoderLayers", spec.DecoderLayers) })
                if (layers.Value > MaxLayers)
                    found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TooManyLayers, layers.Location ?? spec.AttributeLocation, name, layers.Value, MaxLayers));
            foreach ((string name, Argument<int> value) in new[] { ("EncoderLayers", spec.EncoderLayers), ("DecoderLayers", spec.DecoderLayers),
                         ("TargetVocab", spec.TargetVocab), ("TargetSeqLen", spec.TargetSeqLen), ("AttentionWindow", spec.AttentionWindow), ("Classes", spec.Classes), ("Sequences", spec.Sequences) })
                if (value.Value < 0)
                    found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NonPositiveSize, value.Location ?? spec.AttributeLocation, name, value.Value, " (or 0 for the default)"));
            CheckArchitectureOptions(found, spec);

            // A config's head size and key/value heads were checked by ConfigReader (head_dim may differ from DModel / Heads).
            if (spec.Family is null && spec.DModel.Value > 0 && spec.Heads.Value > 0)
            {
                int dModel = spec.DModel.Value, heads = spec.Heads.Value;
                if (dModel % heads != 0)
                    found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.HeadsDoNotDivideDModel, spec.Heads.Location ?? spec.AttributeLocation,
                        dModel, heads, Divisors(dModel, _ => true)));
                else if (spec.Positional.Value == EnumValues.Rotary && (dModel / heads) % 2 != 0)
                    found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OddRotaryHeadSize,
                        spec.Positional.Location ?? spec.Heads.Location ?? spec.AttributeLocation,
                        dModel, heads, dModel / heads, EvenHeadSizeChoices(dModel)));
            }

            Probability(found, spec, "Dropout", spec.Dropout);
            Probability(found, spec, "LabelSmoothing", spec.LabelSmoothing);

            return new EquatableArray<DiagnosticInfo>(found);
        }

        /// <summary>Options that only some architectures have, and the special tokens each needs.</summary>
        private static void CheckArchitectureOptions(List<DiagnosticInfo> found, ModelSpec spec)
        {
            string architecture = spec.IsEncoderDecoder ? "an encoder–decoder" : spec.IsEncoderOnly ? "encoder-only" : "decoder-only";
            void NotHere(string name, bool isSet, string owners)
            {
                if (isSet) found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.OptionNotForArchitecture, LocationOf(spec, name) ?? spec.AttributeLocation, name, owners, architecture));
            }
            if (spec.IsDecoderOnly)
            {
                NotHere("EncoderLayers", spec.EncoderLayers.IsSet, "encoder–decoder and encoder-only");
                NotHere("DecoderLayers", spec.DecoderLayers.IsSet, "encoder–decoder");
            }
            if (!spec.IsDecoderOnly) NotHere("Sequences", spec.Sequences.IsSet, "decoder-only");
            if (spec.IsEncoderOnly)
            {
                NotHere("DecoderLayers", spec.DecoderLayers.IsSet, "encoder–decoder");
                NotHere("TiedEmbeddings", spec.TiedEmbeddings.IsSet, "decoder-only and encoder–decoder");
            }
            if (!spec.IsEncoderDecoder)
            {
                NotHere("TargetVocab", spec.TargetVocab.IsSet, "encoder–decoder");
                NotHere("TargetSeqLen", spec.TargetSeqLen.IsSet, "encoder–decoder");
                NotHere("BosToken", spec.BosToken.IsSet, "encoder–decoder");
                NotHere("EosToken", spec.EosToken.IsSet, "encoder–decoder");
            }
            if (!spec.IsEncoderOnly)
            {
                NotHere("Classes", spec.Classes.IsSet, "encoder-only");
                NotHere("Head", spec.Head.IsSet, "encoder-only");
                NotHere("Pooling", spec.Pooling.IsSet, "encoder-only");
            }
            if (spec.IsEncoderOnly && spec.Classes.Value == 0 && spec.Head.Value != EnumValues.SentenceEmbedding)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MissingOption, spec.AttributeLocation, "Encoder-only", "Classes", "the number of labels its head predicts (Classes = …)"));
            if (spec.IsEncoderDecoder && !spec.BosToken.IsSet)
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MissingOption, spec.AttributeLocation, "Encoder–decoder", "BosToken", "the id that starts the decoder's input (BosToken = …)"));

            int vocab = spec.Vocab.Value, target = spec.TargetVocabSize;
            void Token(string name, Argument<int> token, int limit, string which)
            {
                if (token.IsSet && limit > 0 && (token.Value < 0 || token.Value >= limit) && !(name == "PadToken" && token.Value == -1) && !(name == "EosToken" && token.Value == -1))
                    found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TokenIdOutOfRange, token.Location, name, token.Value, limit, which));
            }
            Token("PadToken", spec.PadToken, spec.IsEncoderDecoder ? System.Math.Min(vocab, target) : vocab, spec.IsEncoderDecoder ? "smaller (source or target)" : "input");
            if (spec.IsEncoderDecoder)
            {
                Token("BosToken", spec.BosToken, target, "target");
                Token("EosToken", spec.EosToken, target, "target");
            }
        }

        private static LocationInfo? LocationOf(ModelSpec spec, string name) => name switch
        {
            "EncoderLayers" => spec.EncoderLayers.Location,
            "DecoderLayers" => spec.DecoderLayers.Location,
            "TiedEmbeddings" => spec.TiedEmbeddings.Location,
            "TargetVocab" => spec.TargetVocab.Location,
            "TargetSeqLen" => spec.TargetSeqLen.Location,
            "BosToken" => spec.BosToken.Location,
            "EosToken" => spec.EosToken.Location,
            "Classes" => spec.Classes.Location,
            "Head" => spec.Head.Location,
            "Pooling" => spec.Pooling.Location,
            "Sequences" => spec.Sequences.Location,
            _ => null,
        };

        private static void Positive(List<DiagnosticInfo> found, ModelSpec spec, string name, Argument<int> argument)
        {
            if (argument.Value > 0) return;
            string hint = argument.IsSet ? "" : $" (it was not given: add {name} = … to the attribute)";
            found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NonPositiveSize, argument.Location ?? spec.AttributeLocation, name, argument.Value, hint));
        }

        private static void Probability(List<DiagnosticInfo> found, ModelSpec spec, string name, Argument<float> argument)
        {
            float p = argument.Value;
            if (!(p >= 0f && p < 1f)) // also catches NaN
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ProbabilityOutOfRange, argument.Location ?? spec.AttributeLocation,
                    name, p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        }

        private static void CheckOption(List<DiagnosticInfo> found, ModelSpec spec, string name, Argument<int> argument, string choices, params int[] valid)
        {
            if (!valid.Contains(argument.Value))
                found.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownOption, argument.Location ?? spec.AttributeLocation, name, argument.Value, choices));
        }

        /// <summary>The divisors of <paramref name="n"/> that pass <paramref name="keep"/>, listed for a message (at most 12 shown).</summary>
        private static string Divisors(int n, System.Func<int, bool> keep)
        {
            // Trial division up to √n finds every divisor as a pair, in √n steps even for n = int.MaxValue.
            var all = new List<int>();
            for (long d = 1; d * d <= n; d++)
            {
                if (n % d != 0) continue;
                all.Add((int)d);
                if (d * d != n) all.Add((int)(n / d));
            }
            List<int> list = all.Where(keep).OrderBy(d => d).ToList();
            string shown = string.Join(", ", list.Take(12));
            return list.Count > 12 ? shown + ", …" : shown;
        }

        private static string EvenHeadSizeChoices(int dModel)
        {
            string heads = Divisors(dModel, h => (dModel / h) % 2 == 0);
            return heads.Length == 0 ? "no head count gives an even head size for this DModel; make DModel even" : "Heads = " + heads;
        }
    }
}
