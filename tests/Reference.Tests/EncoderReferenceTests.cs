using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using TorchSharp;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;
using static TorchSharp.torch;

namespace TransformerGen.Reference.Tests;

/// <summary>
/// Each encoder–decoder and encoder-only model of <c>EncoderModels.cs</c> against the same model in libtorch
/// (<see cref="TorchEncoderDecoder"/>) with the same weights, copied by name: logits, loss and the gradient of every
/// parameter, once with every operation written out and once more with each of libtorch's own modules that can run the
/// model (<see cref="ReferenceLayers"/>): <c>nn.MultiheadAttention</c> with <c>key_padding_mask</c> and <c>attn_mask</c>,
/// and <c>nn.TransformerEncoderLayer</c> / <c>nn.TransformerDecoderLayer</c>.
/// </summary>
/// <remarks>
/// <para>
/// Errors are measured as in <see cref="TorchReferenceTests"/> (<see cref="StepErrors"/>). The batches put padding in
/// the middle and at the end of sequences of different lengths, in sources and in targets, and ignore some targets.
/// </para>
/// <para>
/// Fully masked queries are avoided, not compared: where a query sees no key at all (padding that fills its whole
/// window, say), the generated kernels give output 0 and libtorch's softmax over −∞ only gives NaN, which then spreads
/// through every later layer (a masked key's probability is 0, but 0·NaN is NaN). Every batch here leaves each query of
/// each attention at least one key, and each sequence at least one real token; the tests check this before comparing
/// (<see cref="AssertEveryQuerySeesAKey"/>), so a changed batch cannot quietly compare NaN.
/// </para>
/// </remarks>
public sealed class EncoderReferenceTests(ITestOutputHelper output)
{
    // Each bound is 3 to 5 times the largest error seen here over every case, with our AVX-512 kernels and with the
    // Vector256 and scalar paths (DOTNET_EnableAVX2=0, DOTNET_EnableHWIntrinsic=0), for the reasons TorchReferenceTests
    // gives: room for another SIMD path or another order of summation in libtorch, none for a difference in the math
    // (leaving out the source padding of cross-attention, the padding of mean pooling, the decoder's padding or the
    // window moves the logits by 0.1 to 1.3 of the largest).

    /// <summary>Logits, relative to the largest absolute logit (seen: at most 1.7e-6).</summary>
    private const double LogitTolerance = 5e-6;

    /// <summary>The loss, relative to the loss (seen: at most 2.6e-7).</summary>
    private const double LossTolerance = 1e-6;

    /// <summary>Each parameter's gradient, relative to the 2-norm of libtorch's gradient of that tensor (seen: at most 4.4e-6).</summary>
    private const double GradientTolerance = 2e-5;

    private static readonly Dictionary<string, Func<TransformerModel>> EncoderDecoderModels = new()
    {
        ["PaperSeq2Seq"] = () => new PaperSeq2Seq(7),
        ["LearnedPreGeluSeq2Seq"] = () => new LearnedPreGeluSeq2Seq(7),
        ["SinusoidalPreWindowSeq2Seq"] = () => new SinusoidalPreWindowSeq2Seq(7),
        ["LearnedPostWindowSeq2Seq"] = () => new LearnedPostWindowSeq2Seq(7),
        ["RotaryPreWindowSeq2Seq"] = () => new RotaryPreWindowSeq2Seq(7),
        ["RotaryPostReluSeq2Seq"] = () => new RotaryPostReluSeq2Seq(7),
        ["TiledSinusoidalPreWindowSeq2Seq"] = () => new TiledSinusoidalPreWindowSeq2Seq(7),
    };

    private static readonly Dictionary<string, Func<TransformerModel>> EncoderOnlyModels = new()
    {
        ["MeanPoolPreClassifier"] = () => new MeanPoolPreClassifier(7),
        ["FirstTokenPostWindowClassifier"] = () => new FirstTokenPostWindowClassifier(7),
        ["RotaryPostMeanClassifier"] = () => new RotaryPostMeanClassifier(7),
        ["RotaryPreTagger"] = () => new RotaryPreTagger(7),
        ["LearnedPostWindowTagger"] = () => new LearnedPostWindowTagger(7),
        ["TiledMeanPoolPreClassifier"] = () => new TiledMeanPoolPreClassifier(7),
    };

    /// <summary>Every encoder–decoder model, written out and with every libtorch module that fits it.</summary>
    [Fact]
    public void Encoder_decoder_logits_loss_and_every_gradient_match_libtorch() => CompareAll("encoder–decoder", EncoderDecoderModels);

    /// <summary>Every encoder-only model (classifiers with mean and first-token pooling, taggers), likewise.</summary>
    [Fact]
    public void Encoder_only_logits_loss_and_every_gradient_match_libtorch() => CompareAll("encoder-only", EncoderOnlyModels);

    /// <summary>
    /// Runs every (model, libtorch layers) case, prints each one's errors and the largest of the architecture, and
    /// fails with every failing case listed (one failure does not hide the others).
    /// </summary>
    private void CompareAll(string architecture, Dictionary<string, Func<TransformerModel>> models)
    {
        var results = new List<StepErrors>();
        var failures = new List<string>();
        foreach ((string name, Func<TransformerModel> create) in models)
        {
            TransformerModelAttribute spec = Spec(create().GetType());
            foreach (ReferenceLayers layers in Enum.GetValues<ReferenceLayers>().Where(l => TorchEncoderDecoder.Supports(spec, l)))
            {
                string label = $"{name} ({layers})";
                try
                {
                    StepErrors errors = CompareOneStep(label, create, layers);
                    results.Add(errors);
                    output.WriteLine($"{label}: {errors}");
                }
                catch (XunitException e)
                {
                    failures.Add(e.Message);
                    output.WriteLine($"{label}: FAILED: {e.Message}");
                }
            }
        }
        if (results.Count > 0)
        {
            StepErrors worstGradient = results.MaxBy(r => r.Gradient);
            output.WriteLine($"Largest over {results.Count} {architecture} cases: logits {results.Max(r => r.Logits):E2}, loss {results.Max(r => r.Loss):E2}, " +
                $"gradients {worstGradient.Gradient:E2} ({worstGradient.WorstGradient})");
        }
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
        Assert.True(results.Count > models.Count, "every model runs written out, and some also on libtorch's modules");
    }

    private static StepErrors CompareOneStep(string label, Func<TransformerModel> create, ReferenceLayers layers)
    {
        using DisposeScope scope = NewDisposeScope();
        TransformerModel model = create();
        TestData.Perturb(model, 11);
        (int[] tokens, int[] targets) = Batch(model, seed: 5);

        var reference = new TorchEncoderDecoder(model, layers);
        AssertEveryQuerySeesAKey(model, tokens, targets, reference);

        float loss = model.Forward(tokens, targets);
        model.ZeroGrad();
        model.Backward();
        (Tensor torchLogits, Tensor torchLoss) = reference.Forward(tokens, targets);
        torchLoss.backward();
        return Comparison.OneStep(label, model, loss, torchLogits, torchLoss, reference.Parameters, LogitTolerance, LossTolerance, GradientTolerance);
    }

    private static TransformerModelAttribute Spec(Type type) =>
        type.GetCustomAttribute<TransformerModelAttribute>() ?? throw new ArgumentException($"{type.Name} has no [TransformerModel] attribute");

    /// <summary>
    /// Sources (or inputs) <c>[3, SeqLen]</c> and targets of different lengths, with padding inside and at the end when
    /// the model has a padding id, and ignored targets; as much padding as the model's attention window allows without
    /// leaving a query nothing to see (a window r sees at most r padded neighbours on each side).
    /// </summary>
    private static (int[] Tokens, int[] Targets) Batch(TransformerModel model, ulong seed)
    {
        ModelLayout layout = model.Layout;
        TransformerModelAttribute spec = Spec(model.GetType());
        Assert.Equal(3, layout.Batch);
        int window = spec.AttentionWindow, length = layout.SeqLen, pad = layout.PadToken;
        var rng = new Rng(seed);
        bool padding = pad >= 0;
        // Real tokens avoid the padding, begin and end ids (0, 1, 2) when the model has them.
        int first = padding ? 3 : 0;
        int Real(int vocab) => first + rng.NextInt(vocab - first);

        // 'R' a real token, 'P' padding (a real token without a padding id).
        string[] pattern =
        [
            new string('R', length),
            window == 1 ? "RRPRRRP" : "RRPRRPP",
            new string('R', window == 0 ? 3 : Math.Max(3, length - window)).PadRight(length, 'P'),
        ];
        int[] tokens = pattern.SelectMany(row => row.Select(c => c == 'P' && padding ? pad : Real(layout.Vocab))).ToArray();

        int[] targets;
        if (layout.Architecture == Architecture.EncoderDecoder)
        {
            int eos = layout.EosToken, targetLength = layout.DecoderSeqLen;
            // 'Y' a real target, 'E' the end token, 'P' padding, 'I' ignored (−1). A row's trailing padding becomes a run
            // of one less padding in the decoder's input (shifted right behind BOS).
            int realTargets = window == 0 ? 2 : Math.Max(2, targetLength - 1 - window);
            string[] targetPattern = padding
                ? ["YYIYYE", "YPYEPP", (new string('Y', realTargets - 1) + "E").PadRight(targetLength, 'P')]
                : ["YYIYYE", "YYYEII", "YYYYYY"];
            targets = targetPattern.SelectMany(row => row.Select(c => c switch
            {
                'E' => eos,
                'P' => pad,
                'I' => -1,
                _ => Real(layout.TargetVocab),
            })).ToArray();
        }
        else if (layout.TargetLength == layout.TokensPerStep)
        {
            // Tagging: a class for every token (those of padded tokens must be ignored by both), one ignored.
            targets = TestData.Tokens(layout.TokensPerStep, layout.TargetVocab, seed + 1000);
            targets[2] = -1;
        }
        else
        {
            targets = TestData.Tokens(layout.Batch, layout.TargetVocab, seed + 1000);
        }
        Assert.Equal(layout.TargetLength, targets.Length);
        return (tokens, targets);
    }

    /// <summary>
    /// Checks that every query of every attention sees at least one key, and that every sequence has a real token (for
    /// mean pooling and cross-attention): where not, libtorch gives NaN and the generated kernels 0 (see the remarks).
    /// </summary>
    private static void AssertEveryQuerySeesAKey(TransformerModel model, int[] tokens, int[] targets, TorchEncoderDecoder reference)
    {
        ModelLayout layout = model.Layout;
        int window = Spec(model.GetType()).AttentionWindow, pad = layout.PadToken;
        bool[]? sourcePadding = pad >= 0 ? tokens.Select(t => t == pad).ToArray() : null;
        Check("source self-attention", sourcePadding, layout.SeqLen, layout.SeqLen, causal: false, window);
        if (layout.Architecture == Architecture.EncoderDecoder)
        {
            Check("cross-attention", sourcePadding, layout.DecoderSeqLen, layout.SeqLen, causal: false, window: 0);
            int[] decoderInput = reference.TeacherForcing(targets).DecoderInput;
            bool[]? targetPadding = pad >= 0 ? decoderInput.Select(t => t == pad).ToArray() : null;
            Check("decoder self-attention", targetPadding, layout.DecoderSeqLen, layout.DecoderSeqLen, causal: true, window);
        }

        void Check(string what, bool[]? keyPadding, int queries, int keys, bool causal, int window)
        {
            for (int b = 0; b < layout.Batch; b++)
                for (int i = 0; i < queries; i++)
                    Assert.True(Enumerable.Range(0, keys).Any(j => !TorchOps.Blocked(i, j, causal, window) && (keyPadding is null || !keyPadding[b * keys + j])),
                        $"{layout.Name}: in the {what}, query {i} of sequence {b} sees no key; choose a batch where it does");
        }
    }
}
