using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// A model instance serves one thread at a time: a second thread entering any public member while another thread is
/// inside throws, naming the model and both members, instead of racing on the instance's buffers.
/// </summary>
public sealed class ConcurrencyTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-concurrency-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>
    /// Holds <paramref name="model"/> on another thread (inside a member called "Holder") while <paramref name="call"/>
    /// runs on this one, and returns what the call threw. The other thread leaves only after the call returned, so the
    /// two always collide.
    /// </summary>
    private static Exception? WhileHeldElsewhere(TransformerModel model, Action call)
    {
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            using CallScope scope = TransformerModel.Enter(model, "Holder");
            inside.Set();
            release.Wait();
        });
        holder.Start();
        inside.Wait();
        try
        {
            call();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
        finally
        {
            release.Set();
            holder.Join();
        }
    }

    private static void AssertRefused(TransformerModel model, string member, Action call)
    {
        Exception? thrown = WhileHeldElsewhere(model, call);
        var refused = Assert.IsType<InvalidOperationException>(thrown);
        Assert.Contains($"{model.Layout.Name}.{member} was called on thread", refused.Message);
        Assert.Contains($"is inside {model.Layout.Name}.Holder", refused.Message);
    }

    [Fact]
    public void Every_public_member_refuses_a_second_thread()
    {
        var model = new Medium(1);
        int[] tokens = TestData.Tokens(Medium.TokensPerStep, Medium.Vocab, 2);
        model.Forward(tokens, tokens);
        var optimizer = new AdamW(model);
        var sgd = new Sgd(model, 0.1f);
        string path = Path.Combine(_folder, "medium.safetensors");
        model.Save(path);

        var calls = new List<(string Member, Action Call)>
        {
            ("Forward", () => model.Forward(tokens, tokens)),
            ("Backward", () => model.Backward()),
            ("ZeroGrad", () => model.ZeroGrad()),
            ("TrainStep", () => model.TrainStep(tokens, tokens, optimizer)),
            ("AccumulateGradients", () => model.AccumulateGradients(tokens, tokens, 1)),
            ("AdamW.Step", () => optimizer.Step()),
            ("Sgd.Step", () => sgd.Step()),
            ("Append", () => model.Append([1, 2])),
            ("Generate", () => model.Generate([1], new int[3], new Sampler(1, Medium.Vocab))),
            ("ResetCache", () => model.ResetCache()),
            ("TruncateCache", () => model.TruncateCache(0)),
            ("Save", () => model.Save(path)),
            ("Load", () => model.Load(path)),
            ("Parameters", () => _ = model.Parameters.Length),
            ("CopyParametersTo", () => model.CopyParametersTo(new float[model.Layout.ParameterCount])),
        };
        foreach ((string member, Action call) in calls) AssertRefused(model, member, call);

        // Nothing was run by the refused calls, and the instance is free again.
        model.ResetCache();
        Assert.Equal(0, model.CacheLength);
    }

    [Fact]
    public void Encoder_only_and_encoder_decoder_members_refuse_a_second_thread()
    {
        var classifier = MeanClassifier.ForInference(3);
        int[] tokens = TestData.Tokens(MeanClassifier.TokensPerStep, MeanClassifier.Vocab, 4);
        AssertRefused(classifier, "Predict", () => classifier.Predict(tokens));

        var seq2seq = PaperSeq2Seq.ForInference(3);
        int[] source = [5, 6, 7];
        AssertRefused(seq2seq, "Translate", () => seq2seq.Translate(source, new int[PaperSeq2Seq.TargetSeqLen]));
        AssertRefused(seq2seq, "Encode", () => seq2seq.Encode(source));
        AssertRefused(seq2seq, "BeamSearch", () => seq2seq.BeamSearch(source, new int[PaperSeq2Seq.TargetSeqLen], beamWidth: 2));
        AssertRefused(seq2seq, "ResetDecoder", () => seq2seq.ResetDecoder());
        var output = new int[PaperSeq2Seq.TargetSeqLen];
        seq2seq.Translate(source, output);
    }

    [Fact]
    public void The_thread_inside_may_call_in_again_and_others_enter_after_it_leaves()
    {
        var model = RotaryPre.ForInference(5);
        float[] expected = model.Append([1, 4, 9]).ToArray();
        model.ResetCache();
        using (CallScope outer = TransformerModel.Enter(model, "Outer"))
        {
            // Generate calls Append, and both run inside Outer on this thread.
            Assert.Equal(expected, model.Append([1, 4, 9]).ToArray());
        }
        model.ResetCache();
        float[]? fromOtherThread = null;
        var other = new Thread(() => fromOtherThread = model.Append([1, 4, 9]).ToArray());
        other.Start();
        other.Join();
        Assert.Equal(expected, fromOtherThread);
    }

    [Fact]
    public void Two_threads_decoding_on_one_instance_never_return_a_wrong_row_silently()
    {
        // Without the gate, two threads appending to one instance overwrite each other's activations and cache rows. Every
        // call now either returns the single-threaded logits or throws.
        var model = RotaryPre.ForInference(6);
        var reference = new List<float[]>();
        int[] prompt = [2, 3];
        for (int round = 0; round < 50; round++)
        {
            model.ResetCache();
            reference.Add(model.Append(prompt).ToArray());
        }
        int refused = 0, wrong = 0, right = 0;
        using var start = new Barrier(2);
        void Run()
        {
            start.SignalAndWait();
            for (int round = 0; round < 200; round++)
            {
                try
                {
                    float[] logits;
                    using (CallScope scope = TransformerModel.Enter(model, "Round"))
                    {
                        model.ResetCache();
                        logits = model.Append(prompt).ToArray();
                    }
                    if (logits.AsSpan().SequenceEqual(reference[0])) Interlocked.Increment(ref right);
                    else Interlocked.Increment(ref wrong);
                }
                catch (InvalidOperationException)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        }
        var a = new Thread(Run);
        var b = new Thread(Run);
        a.Start();
        b.Start();
        a.Join();
        b.Join();
        Assert.Equal(0, wrong);
        Assert.Equal(400, refused + right);
        Assert.True(right > 0);
    }
}
