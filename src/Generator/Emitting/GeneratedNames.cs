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
        public const string EmbedStage = "Embed", HeadStage = "Head";

        public static readonly string[] Constants =
            ["Vocab", "DModel", "Heads", "HeadDim", "Layers", "DFF", "SeqLen", "Batch", "TokensPerStep", "ParameterCount"];

        /// <summary>Public and protected members of <c>TransformerGen.TransformerModel</c>.</summary>
        private static readonly string[] Inherited =
        [
            "Layout", "Seed", "Parameters", "Gradients", "ParameterTensors", "Training", "Logits", "Forward", "Backward",
            "ZeroGrad", "TrainStep", "Save", "Load", "CacheLength", "ResetCache", "Append", "Generate",
            "ForwardCore", "BackwardCore", "InferCore", "ParameterBuffer", "GradientBuffer", "ActivationBuffer",
            "ActivationGradientBuffer", "ConstantBuffer", "InferenceBuffer", "KeyValueBuffer", "ScoreBuffer",
            "Tokens", "Targets", "DropoutRng", "AppendKeysValues",
        ];

        public static readonly HashSet<string> Fixed = new(Inherited) { LayoutField };

        static GeneratedNames()
        {
            foreach (string name in Constants) Fixed.Add(name);
            foreach (string stage in new[] { EmbedStage, HeadStage })
                foreach (string pass in Passes) Fixed.Add(stage + pass);
        }

        /// <summary>The three passes each stage has a method for.</summary>
        public static readonly string[] Passes = ["Forward", "Backward", "Infer"];

        public static string StageMethod(Stage stage, string pass) => stage.Kind switch
        {
            StageKind.Embed => EmbedStage + pass,
            StageKind.Head => HeadStage + pass,
            _ => "Layer" + stage.Layer + pass,
        };

        /// <summary>Whether <paramref name="name"/> is generated for a model of <paramref name="layers"/> layers.</summary>
        public static bool IsGenerated(string name, int layers)
        {
            if (Fixed.Contains(name)) return true;
            foreach (string pass in Passes)
            {
                if (name.Length <= 5 + pass.Length || !name.StartsWith("Layer", System.StringComparison.Ordinal) || !name.EndsWith(pass, System.StringComparison.Ordinal))
                    continue;
                string digits = name.Substring(5, name.Length - 5 - pass.Length);
                if (int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int layer)
                    && layer < layers && digits == layer.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    return true;
            }
            return false;
        }
    }
}
