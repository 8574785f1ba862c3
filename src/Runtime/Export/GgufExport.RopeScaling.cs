using System;
using System.Collections.Generic;
using TransformerGen.Kernels;

namespace TransformerGen;

public static partial class GgufExport
{
    /// <summary>What <see cref="GgufTensorInfo.ModelName"/> says of a tensor computed from the config's rotary scaling rather than taken from the model.</summary>
    internal const string RopeScalingSource = "rope_scaling";

    /// <summary>
    /// YaRN's correction range as llama.cpp runs it by default: its context parameters' <c>yarn_beta_fast</c> and
    /// <c>yarn_beta_slow</c>, which LLamaSharp 0.30.0's build uses whatever the file's keys say (measured: files with other
    /// values give the same logits). transformers' defaults too.
    /// </summary>
    internal const float LlamaCppYarnBetaFast = 32f, LlamaCppYarnBetaSlow = 1f;

    /// <summary>
    /// Writes the Llama family's rotary scaling (<see cref="GgufHyperparameters.RopeScaling"/>) as llama.cpp (the native build of
    /// LLamaSharp.Backend.Cpu 0.30.0, measured by GgufRopeScalingTests) computes transformers' rotation from it, or refuses a kind it would compute otherwise:
    /// <list type="bullet">
    /// <item>linear: <c>{arch}.rope.scaling.type</c> linear and <c>{arch}.rope.scaling.factor</c> (llama.cpp multiplies every
    /// angle by 1/factor), as llama.cpp's converter writes it.</item>
    /// <item>llama3, for llama.cpp's <c>llama</c> (Llama, Mistral, Qwen2): a <c>rope_freqs.weight</c> F32 tensor of head_dim / 2
    /// divisors, the default inverse frequency of each pair over the scaled one (llama.cpp turns pair j by
    /// p·θ^(−2j/D) / rope_freqs[j]). llama.cpp's <c>qwen3</c> and <c>phi3</c> have no place for it (a file with one fails to
    /// load): refused.</item>
    /// <item>yarn: <c>{arch}.rope.scaling.type</c> yarn, its factor and <c>original_context_length</c>. llama.cpp's ramp over
    /// the floored and ceiled correction range is transformers' with <c>truncate</c> and the default <c>beta_fast</c> 32 and
    /// <c>beta_slow</c> 1 (other values are refused: llama.cpp reads them from its context parameters, not from the file);
    /// its magnitude is <c>attn_factor</c> × (1 + 0.1 ln factor), so <c>{arch}.rope.scaling.attn_factor</c> is written as
    /// the attention factor over that (when it is not 1).</item>
    /// <item>longrope, for llama.cpp's <c>phi3</c>: <c>rope_factors_short.weight</c> and <c>rope_factors_long.weight</c>, with
    /// <c>{arch}.rope.scaling.attn_factor</c> and <c>original_context_length</c>, as llama.cpp's converter writes Phi-3 128k.
    /// llama.cpp picks the short factors while its context (n_ctx per sequence) is within the original one, and the long ones
    /// for a longer context, whatever the positions (transformers switches on the sequence's length). Refused for the other
    /// architectures, which have no place for either tensor (a file with them fails to load).</item>
    /// </list>
    /// The tensors go to <paramref name="infos"/> with <see cref="RopeScalingSource"/> as their model name.
    /// </summary>
    /// <exception cref="NotSupportedException">llama.cpp's <paramref name="architecture"/> cannot compute the scaling (the message says why).</exception>
    private static void AddRopeScaling(GgufWriter writer, GgufArchitecture architecture, GgufHyperparameters h, ModelLayout layout, List<GgufTensorInfo> infos)
    {
        if (h.RopeScaling is not { } rope || rope.ScalingKind == RotaryScaling.Kind.None) return;
        string arch = architecture.Name;
        int pairs = h.HeadDim / 2;
        switch (rope.ScalingKind)
        {
            case RotaryScaling.Kind.Linear:
                writer.Add($"{arch}.rope.scaling.type", "linear");
                writer.Add($"{arch}.rope.scaling.factor", rope.Factor);
                break;
            case RotaryScaling.Kind.Llama3:
            {
                if (architecture != GgufArchitecture.Llama)
                    throw new NotSupportedException($"{layout.Name}: llama3 rope scaling ({rope}) reaches llama.cpp as a rope_freqs tensor, which only its llama architecture reads; " +
                        $"its {arch} has no place for one (a file with it fails to load: wrong number of tensors)");
                var defaults = new float[pairs];
                var scaled = new float[pairs];
                RotaryScaling.None.InverseFrequencies(defaults, h.HeadDim, h.RopeTheta);
                rope.InverseFrequencies(scaled, h.HeadDim, h.RopeTheta);
                var divisors = new float[pairs];
                for (int j = 0; j < pairs; j++) divisors[j] = (float)((double)defaults[j] / scaled[j]);
                AddFactors("rope_freqs.weight", divisors);
                break;
            }
            case RotaryScaling.Kind.Yarn:
            {
                (float betaFast, float betaSlow, bool truncate) = rope.YarnRange;
                if (!truncate)
                    throw new NotSupportedException($"{layout.Name}: yarn rope scaling with truncate false ramps over the unrounded correction range; llama.cpp floors and ceils it, so it would turn some pairs otherwise");
                if (betaFast != LlamaCppYarnBetaFast || betaSlow != LlamaCppYarnBetaSlow)
                    throw new NotSupportedException($"{layout.Name}: yarn rope scaling with beta_fast {betaFast} and beta_slow {betaSlow}; llama.cpp takes them from its context parameters " +
                        $"({LlamaCppYarnBetaFast} and {LlamaCppYarnBetaSlow} unless its user sets them), not from the file's yarn_beta_fast and yarn_beta_slow, so it would ramp over another range");
                writer.Add($"{arch}.rope.scaling.type", "yarn");
                writer.Add($"{arch}.rope.scaling.factor", rope.Factor);
                writer.Add($"{arch}.rope.scaling.original_context_length", (uint)rope.OriginalPositions);
                // llama.cpp multiplies cos and sin by attn_factor · (1 + 0.1 ln factor) for a factor above 1, by attn_factor otherwise.
                double magnitude = rope.Factor <= 1f ? 1.0 : 1.0 + 0.1 * Math.Log(rope.Factor);
                float attention = (float)(rope.AttentionFactor / magnitude);
                if (attention != 1f) writer.Add($"{arch}.rope.scaling.attn_factor", attention);
                break;
            }
            case RotaryScaling.Kind.LongRope:
            {
                if (architecture != GgufArchitecture.Phi3)
                    throw new NotSupportedException($"{layout.Name}: longrope rope scaling reaches llama.cpp as rope_factors_short and rope_factors_long tensors, which only its phi3 architecture reads; " +
                        $"its {arch} has no place for them (a file with them fails to load: wrong number of tensors)");
                if (h.RopeOriginalContext <= 0)
                    throw new ArgumentException($"{layout.Name}: longrope needs its original context (GgufHyperparameters.RopeOriginalContext), where llama.cpp switches from the short factors to the long ones", nameof(h));
                float[] shortFactors = rope.Divisors.ToArray();
                float[] longFactors = h.RopeLongFactors is { } given ? [.. given] : shortFactors;
                if (longFactors.Length != pairs)
                    throw new ArgumentException($"{layout.Name}: {longFactors.Length} long factors for {pairs} pairs", nameof(h));
                writer.Add($"{arch}.rope.scaling.attn_factor", rope.AttentionFactor);
                writer.Add($"{arch}.rope.scaling.original_context_length", (uint)h.RopeOriginalContext);
                AddFactors("rope_factors_long.weight", longFactors);
                AddFactors("rope_factors_short.weight", shortFactors);
                break;
            }
        }

        void AddFactors(string name, float[] values)
        {
            if (values.Length != pairs) throw new ArgumentException($"{layout.Name}: {name} has {values.Length} values for {pairs} pairs", nameof(h));
            long[] dimensions = [pairs];
            writer.AddTensor(name, dimensions, TypeId(GgufTensorType.F32), () => values);
            infos.Add(new GgufTensorInfo(name, RopeScalingSource, dimensions, GgufTensorType.F32));
        }
    }
}
