using System.Collections.Generic;

namespace TransformerGen.Generator
{
    /// <summary>
    /// The member names a generated model owns, both those the emitter writes and those it inherits from the
    /// runtime's <c>TransformerModel</c>; a user member with one of these names is reported (TG0010).
    /// </summary>
    internal static class GeneratedNames
    {
        public const string LayoutField = "s_layout";
        public const string EmbedStage = "Embed", TargetEmbedStage = "TargetEmbed", EncoderOutputStage = "EncoderOutput", HeadStage = "Head";

        public static readonly string[] Constants =
            ["Vocab", "DModel", "Heads", "HeadDim", "KvHeads", "Layers", "DFF", "SeqLen", "Batch", "TokensPerStep", "ParameterCount", "TrainingBytes", "InferenceBytes"];

        /// <summary>Public and protected members of <c>TransformerGen.TransformerModel</c>.</summary>
        private static readonly string[] Inherited =
        [
            "Layout", "Seed", "Parameters", "Gradients", "ParameterTensors", "Training", "Logits", "Forward", "Backward",
            "ZeroGrad", "TrainStep", "Save", "Load", "CacheLength", "ResetCache", "Append", "Generate",
            "ForwardCore", "BackwardCore", "InferCore", "ParameterBuffer", "GradientBuffer", "ActivationBuffer",
            "ActivationGradientBuffer", "ConstantBuffer", "InferenceBuffer", "KeyValueBuffer", "ScoreBuffer",
            "Tokens", "Targets", "DropoutRng", "AppendKeysValues", "AttendCached", "GatherLastRows", "CacheLengthOf",
            "DecoderTokens", "TokenPadding", "DecoderPadding", "SourceLength", "EncodeCore", "Encode", "Translate", "Decode",
            "BeamSearch", "Predict", "DecoderCacheLength", "AttentionMap", "ResetDecoder", "InferenceLogits", "CheckIds", "OnParametersReplaced", "FromBuiltInWeights",
            "ForInference", "Use", "BufferBytes", "WeightType", "WeightsPacked", "PackWeights", "CopyParametersTo", "WeightMatrixBytes", "ReleasedWeightBytes", "Linear", "EmbeddingLookup", "LoadWeights", "LoadBuiltInWeights", "ShareWeights", "SharesWeights",
        ];

        public static readonly HashSet<string> Fixed = new(Inherited) { LayoutField };

        static GeneratedNames()
        {
            foreach (string name in Constants) Fixed.Add(name);
            foreach (string stage in new[] { EmbedStage, TargetEmbedStage, EncoderOutputStage, HeadStage })
                foreach (string pass in Passes) Fixed.Add(stage + pass);
        }

        /// <summary>The three passes each stage has a method for.</summary>
        public static readonly string[] Passes = ["Forward", "Backward", "Infer"];

        public static string StageMethod(Stage stage, string pass) => stage.Kind switch
        {
            StageKind.Embed => EmbedStage + pass,
            StageKind.TargetEmbed => TargetEmbedStage + pass,
            StageKind.EncoderOutput => EncoderOutputStage + pass,
            StageKind.Head => HeadStage + pass,
            StageKind.EncoderLayer => "EncoderLayer" + stage.Layer + pass,
            StageKind.DecoderLayer => "DecoderLayer" + stage.Layer + pass,
            _ => "Layer" + stage.Layer + pass,
        };

        private static readonly string[] LayerPrefixes = ["Layer", "EncoderLayer", "DecoderLayer"];

        /// <summary>Whether <paramref name="name"/> is generated for a model whose stacks have at most <paramref name="layers"/> layers.</summary>
        public static bool IsGenerated(string name, int layers)
        {
            if (Fixed.Contains(name)) return true;
            foreach (string prefix in LayerPrefixes)
                foreach (string pass in Passes)
                {
                    if (name.Length <= prefix.Length + pass.Length || !name.StartsWith(prefix, System.StringComparison.Ordinal) || !name.EndsWith(pass, System.StringComparison.Ordinal))
                        continue;
                    string digits = name.Substring(prefix.Length, name.Length - prefix.Length - pass.Length);
                    if (int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int layer)
                        && layer < layers && digits == layer.ToString(System.Globalization.CultureInfo.InvariantCulture))
                        return true;
                }
            return false;
        }
    }
}
