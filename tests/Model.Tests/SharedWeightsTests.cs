using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Xunit;

namespace TransformerGen.Model.Tests;

/// <summary>
/// Weights loaded once (<c>LoadWeights</c>) and read by many inference instances: each computes what an instance with
/// its own copy computes, several run at once on different threads, each costs only its own buffers, and nothing
/// writes the shared weights.
/// </summary>
public sealed class SharedWeightsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-shared-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Checkpoint<T>(T model) where T : TransformerModel
    {
        string path = Path.Combine(_folder, typeof(T).Name + ".safetensors");
        model.Save(path);
        return path;
    }

    [Theory]
    [InlineData(WeightType.Float32)]
    [InlineData(WeightType.Int8)]
    public void Instances_over_one_copy_decode_as_instances_with_their_own_on_four_threads_at_once(WeightType type)
    {
        string path = Checkpoint(new PanelDecoder(21));
        ModelWeights weights = PanelDecoder.LoadWeights(path, type);
        Assert.Equal(type, weights.WeightType);
        Assert.Equal(4L * weights.Layout.ParameterCount, weights.Bytes);

        int[][] prompts = Enumerable.Range(0, 4).Select(i => Enumerable.Range(0, 7).Select(j => (i * 31 + j * 17) % PanelDecoder.Vocab).ToArray()).ToArray();
        float[][] expected = prompts.Select(p => PanelDecoder.ForInference(path, type).Append(p).ToArray()).ToArray();

        PanelDecoder[] instances = Enumerable.Range(0, 4).Select(_ => PanelDecoder.ForInference(weights)).ToArray();
        Assert.All(instances, m => Assert.True(m.SharesWeights));
        Assert.All(instances, m => Assert.Equal(type, m.WeightType));
        var results = new float[4][][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            results[i] = new float[50][];
            for (int round = 0; round < 50; round++)
            {
                instances[i].ResetCache();
                results[i][round] = instances[i].Append(prompts[i]).ToArray();
            }
        });
        for (int i = 0; i < 4; i++)
            Assert.All(results[i], r => Assert.Equal(expected[i], r));
    }

    [Fact]
    public void An_instance_over_shared_weights_costs_its_own_buffers_only()
    {
        ModelWeights weights = PanelDecoder.LoadWeights(Checkpoint(new PanelDecoder(3)));
        PanelDecoder.ForInference(weights); // the JIT's first allocations are not counted below
        const int count = 8;
        long before = GC.GetAllocatedBytesForCurrentThread();
        PanelDecoder[] instances = Enumerable.Range(0, count).Select(_ => PanelDecoder.ForInference(weights)).ToArray();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        long own = instances[0].BufferBytes;
        Assert.Equal(PanelDecoder.InferenceBytes - weights.Bytes, own, tolerance: 64 * 8);
        // Eight instances: eight times their own buffers (plus token arrays and objects), far from one copy of the weights each.
        Assert.InRange(allocated, count * own, count * (own + 16_384));
        Assert.True(allocated < count * own + weights.Bytes, $"{allocated} bytes for {count} instances");
    }

    [Fact]
    public void Shared_weights_are_read_only_and_belong_to_one_model()
    {
        string path = Checkpoint(new PanelDecoder(4));
        ModelWeights weights = PanelDecoder.LoadWeights(path);
        PanelDecoder shared = PanelDecoder.ForInference(weights);
        Assert.Contains("read-only", Assert.Throws<InvalidOperationException>(() => { _ = shared.Parameters; }).Message);
        Assert.Throws<InvalidOperationException>(() => shared.Load(path));
        Assert.Throws<InvalidOperationException>(() => shared.Save(Path.Combine(_folder, "x.safetensors")));
        shared.PackWeights(); // nothing to do: already in the instances' form

        // CopyParametersTo reads them: the checkpoint's values.
        var copy = new float[weights.Layout.ParameterCount];
        shared.CopyParametersTo(copy);
        Assert.True(copy.AsSpan().SequenceEqual(PanelDecoder.ForInference(path).Parameters));

        Assert.Contains("PanelDecoder", Assert.Throws<ArgumentException>(() => Int8Decoder.ForInference(weights)).Message);
        Assert.Throws<ArgumentNullException>(() => PanelDecoder.ForInference((ModelWeights)null!));
    }

    [Fact]
    public void Encoders_and_built_in_weights_share_the_same_way()
    {
        string path = Checkpoint(new PanelClassifier(6));
        ModelWeights weights = PanelClassifier.LoadWeights(path, WeightType.BFloat16);
        int[] tokens = [3, 9, 27, 64, 5];
        Assert.Equal(PanelClassifier.ForInference(path, WeightType.BFloat16).Predict(tokens).ToArray(), PanelClassifier.ForInference(weights).Predict(tokens).ToArray());

        ModelWeights builtIn = BuiltInWeights.LoadBuiltInWeights();
        int[] prompt = [1, 2, 3];
        Assert.Equal(BuiltInWeights.FromBuiltInWeights().Append(prompt).ToArray(), BuiltInWeights.ForInference(builtIn).Append(prompt).ToArray());
    }
}
