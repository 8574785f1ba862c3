using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Xunit;

namespace TransformerGen.Generator.Tests;

/// <summary>
/// Where training keeps activations and their gradients (<see cref="SlotPlan"/>): a slot for each while it is live,
/// reused once it is dead (an activation the backward pass reads is live to the end), so the gradient buffer holds about
/// one layer's gradients and the workspace drops the sub-layer outputs that only a residual sum reads; and what that does
/// to the models the generator writes. That values and gradients are unchanged is shown by every test of the models
/// (finite differences, libtorch), which run on this layout.
/// </summary>
public class SlotPlanTests
{
    private static TensorDef Activation(string name, long elements) => new(name, TensorKind.Activation, [elements]);

    private static SlotPlan Plan(IEnumerable<TensorDef>? seeded = null, params TensorDef[][] touched) => PlanKeeping(seeded, [], touched);

    private static SlotPlan PlanKeeping(IEnumerable<TensorDef>? seeded, IEnumerable<TensorDef> kept, params TensorDef[][] touched) =>
        new(touched.Select(op => (IReadOnlyList<TensorDef>)op).ToList(), seeded ?? [], kept);

    [Fact]
    public void A_dead_gradients_slot_is_reused_and_live_ones_never_share()
    {
        TensorDef a = Activation("a", 100), b = Activation("b", 100), c = Activation("c", 100);
        // op 0: a → b; op 1: b → c. a dies after op 0, so c takes its slot; b is live beside both.
        SlotPlan plan = Plan(null, [a, b], [b, c]);
        Assert.Equal(0, plan.OffsetOf(a));
        Assert.Equal(112, plan.OffsetOf(b)); // 100 floats aligned to 16
        Assert.Equal(0, plan.OffsetOf(c));
        Assert.Equal(224, plan.Count);
        Assert.True(plan.IsLiveAt(a, 0) && !plan.IsLiveAt(a, 1));
        Assert.True(plan.IsLiveAt(c, 1) && !plan.IsLiveAt(c, 0));
    }

    [Fact]
    public void A_kept_tensor_keeps_its_slot_to_the_end()
    {
        TensorDef kept = Activation("kept", 50), passing = Activation("passing", 50), later = Activation("later", 50);
        // op 0 makes kept and passing; op 1 reads them; op 2 makes later, which may take passing's slot but not kept's.
        SlotPlan plan = PlanKeeping(null, [kept], [kept, passing], [kept, passing], [later]);
        Assert.Equal(plan.OffsetOf(passing), plan.OffsetOf(later));
        Assert.NotEqual(plan.OffsetOf(kept), plan.OffsetOf(later));
        Assert.True(plan.IsKept(kept) && plan.IsLiveAt(kept, 2));
        Assert.False(plan.IsKept(passing) || plan.IsKept(later));
        Assert.Equal(128, plan.Count);
    }

    [Fact]
    public void A_seeded_gradient_is_live_from_before_the_pass()
    {
        TensorDef logits = Activation("logits", 40), x = Activation("x", 40), y = Activation("y", 40);
        SlotPlan plan = Plan([logits], [x], [logits, y]);
        // x would have taken offset 0 were logits not live from the start.
        Assert.Equal(0, plan.OffsetOf(logits));
        Assert.NotEqual(plan.OffsetOf(logits), plan.OffsetOf(x));
        Assert.True(plan.IsLiveAt(logits, 0));
        // y reuses x's slot (x died at op 0).
        Assert.Equal(plan.OffsetOf(x), plan.OffsetOf(y));
    }

    [Fact]
    public void A_view_lies_in_its_parents_slot()
    {
        TensorDef filler = Activation("filler", 64), qkv = Activation("qkv", 96);
        TensorDef keys = TensorDef.View(qkv, 32, 32);
        SlotPlan plan = Plan(null, [filler, qkv]);
        Assert.Equal(plan.OffsetOf(qkv) + 32, plan.OffsetOf(keys));
        Assert.True(plan.IsLiveAt(keys, 0));
        Assert.False(plan.IsLiveAt(keys, 1));
    }

    [Fact]
    public void Random_passes_never_put_two_live_gradients_in_the_same_floats()
    {
        var rng = new Random(17);
        for (int trial = 0; trial < 300; trial++)
        {
            TensorDef[] tensors = Enumerable.Range(0, rng.Next(1, 30)).Select(i => Activation("t" + i, rng.Next(1, 300))).ToArray();
            int ops = rng.Next(1, 25);
            TensorDef[][] touched = Enumerable.Range(0, ops)
                .Select(_ => tensors.Where(_ => rng.NextDouble() < 0.15).ToArray()).ToArray();
            TensorDef[] seeded = tensors.Where(_ => rng.NextDouble() < 0.05).ToArray();
            TensorDef[] kept = tensors.Where(_ => rng.NextDouble() < 0.2).ToArray();
            SlotPlan plan = PlanKeeping(seeded, kept, touched);

            long mostLive = 0;
            for (int op = -1; op < ops; op++)
            {
                // Before the pass only the seeded gradients are live.
                List<TensorDef> live = tensors.Where(t => op < 0 ? seeded.Contains(t) : plan.IsLiveAt(t, op)).ToList();
                foreach (TensorDef t in touched.ElementAtOrDefault(op) ?? [])
                    Assert.Contains(t, live);
                var spans = live.Select(t => (Start: plan.OffsetOf(t), End: plan.OffsetOf(t) + t.Elements)).OrderBy(s => s.Start).ToList();
                for (int k = 1; k < spans.Count; k++)
                    Assert.True(spans[k - 1].End <= spans[k].Start, $"trial {trial}, op {op}: two live gradients overlap");
                Assert.All(spans, s => Assert.True(s.Start % 16 == 0 && s.End <= plan.Count));
                mostLive = Math.Max(mostLive, live.Sum(t => (t.Elements + 15) / 16 * 16));
            }
            // What is kept and was touched is live at the end.
            Assert.All(kept.Where(t => touched.Any(o => o.Contains(t)) || seeded.Contains(t)), t => Assert.True(plan.IsKept(t)));
            // Never less than what is live at once, never more than a slot for every tensor.
            Assert.InRange(plan.Count, mostLive, tensors.Where(t => seeded.Contains(t) || touched.Any(o => o.Contains(t))).Sum(t => (t.Elements + 15) / 16 * 16));
        }
    }

    private static string Model(string arguments) => $$"""
        using TransformerGen;
        namespace Demo;
        [TransformerModel({{arguments}})]
        public partial class M { }
        """;

    private static long Number(string source, string pattern)
    {
        Match m = Regex.Match(source, pattern);
        Assert.True(m.Success, $"no match for {pattern}");
        return long.Parse(m.Groups[1].Value);
    }

    [Theory]
    [InlineData("Vocab = 11, DModel = 12, Heads = 3, DFF = 20, SeqLen = 7, Batch = 2")]
    [InlineData("Vocab = 11, DModel = 12, Heads = 3, DFF = 20, SeqLen = 7, Batch = 2, Norm = NormPlacement.Post, Dropout = 0.1f")]
    [InlineData("Architecture = Architecture.EncoderDecoder, Vocab = 11, TargetVocab = 9, DModel = 12, Heads = 3, DFF = 20, SeqLen = 7, TargetSeqLen = 5, Batch = 2, PadToken = 0, BosToken = 1, EosToken = 2")]
    [InlineData("Architecture = Architecture.EncoderOnly, Vocab = 11, DModel = 12, Heads = 3, DFF = 20, SeqLen = 7, Batch = 2, Classes = 3, PadToken = 0, Pooling = Pooling.Mean")]
    public void The_activation_gradients_do_not_grow_with_depth(string options)
    {
        long Gradients(int layers, out long activations)
        {
            string source = GeneratorHarness.RunClean(Model(options + $", Layers = {layers}")).GeneratedSource;
            activations = Number(source, @"activationCount: (\d+)");
            return Number(source, @"ActivationGradientCount = (\d+)");
        }
        long two = Gradients(2, out long twoActivations);
        long six = Gradients(6, out long sixActivations);
        Assert.Equal(two, six);
        Assert.True(sixActivations > 2.5 * twoActivations, $"activations {twoActivations} → {sixActivations}");
        Assert.True(two < twoActivations / 2, $"gradients {two} of {twoActivations} activation floats");
    }

    [Fact]
    public void A_sub_layer_output_only_its_residual_sum_reads_gives_its_slot_to_later_activations()
    {
        string source = GeneratorHarness.RunClean(Model("Vocab = 11, DModel = 12, Heads = 3, DFF = 20, SeqLen = 7, Batch = 2, Layers = 3")).GeneratedSource;
        string[] lines = source.Split('\n');
        // The forward passes' lines in the order they run (their methods are written in stage order).
        List<string> Pass(string summary) => lines
            .Select((line, index) => (line, index))
            .Where(x => x.line.Contains("/// <summary>" + summary))
            .SelectMany(x => lines.Skip(x.index + 1).TakeWhile(l => !l.Contains("/// <summary>")))
            .ToList();
        List<string> forward = Pass("Forward pass of");
        Assert.NotEmpty(forward);
        foreach (string role in new[] { "attention output projection", "feed-forward linear2" })
        {
            int at = forward.FindIndex(l => l.Contains($"// layer 0 · {role} ·"));
            string slice = Regex.Matches(forward[at + 1], @"a\.Slice\(\d+, \d+\)").Last().Value; // the product's output
            string start = slice.Substring(0, slice.IndexOf(',') + 1);
            // Its residual sum reads it next, and a later forward line puts another activation in its slot.
            Assert.Contains("residual", forward[at + 2]);
            Assert.Contains(slice, forward[at + 3]);
            Assert.Contains(forward.Skip(at + 4), l => l.Contains(start));
        }
    }
}
