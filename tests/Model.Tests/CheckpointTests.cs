using System;
using System.IO;
using Xunit;

namespace TransformerGen.Model.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-model-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Save_then_load_restores_every_parameter_exactly()
    {
        var trained = new LearnedPost(1);
        TestData.Perturb(trained, 3);
        string path = Path.Combine(_folder, "m.safetensors");
        trained.Save(path);

        var fresh = new LearnedPost(2);
        Assert.False(fresh.Parameters.SequenceEqual(trained.Parameters));
        fresh.Load(path);
        Assert.True(fresh.Parameters.SequenceEqual(trained.Parameters));

        int[] tokens = TestData.Tokens(LearnedPost.TokensPerStep, LearnedPost.Vocab, 1);
        Assert.Equal(trained.Forward(tokens, tokens), fresh.Forward(tokens, tokens));
    }

    [Fact]
    public void Loading_from_a_stream_restores_the_parameters_and_empties_the_cache()
    {
        var trained = new RotaryPre(1);
        TestData.Perturb(trained, 5);
        string path = Path.Combine(_folder, "stream.safetensors");
        trained.Save(path);

        var fresh = new RotaryPre(2);
        fresh.Append([1, 2, 3]);
        using (var stream = new MemoryStream(File.ReadAllBytes(path))) fresh.Load(stream, "RotaryPre.safetensors");
        Assert.True(fresh.Parameters.SequenceEqual(trained.Parameters));
        Assert.Equal(0, fresh.CacheLength);
        Assert.True(fresh.Append([1, 2, 3]).SequenceEqual(trained.Append([1, 2, 3])));
    }

    [Fact]
    public void A_checkpoint_of_another_architecture_is_rejected_by_name_and_the_model_is_untouched()
    {
        string path = Path.Combine(_folder, "learned.safetensors");
        new LearnedPre(1).Save(path); // has pos_embedding and lm_head; SinusoidalPre has neither
        var model = new SinusoidalPre(4);
        float[] before = model.Parameters.ToArray();
        var error = Assert.Throws<InvalidDataException>(() => model.Load(path));
        Assert.Contains("pos_embedding.weight", error.Message);
        Assert.Contains("lm_head.weight", error.Message);
        Assert.True(model.Parameters.SequenceEqual(before));
    }

    [Fact]
    public void A_checkpoint_with_other_shapes_is_rejected_naming_the_tensor()
    {
        string path = Path.Combine(_folder, "medium.safetensors");
        new Medium(1).Save(path);
        var error = Assert.Throws<InvalidDataException>(() => new RotaryPre(1).Load(path));
        Assert.Contains("token_embedding.weight", error.Message);
    }

    [Fact]
    public void Weights_built_in_at_compile_time_equal_the_checkpoint_file()
    {
        BuiltInWeights builtIn = BuiltInWeights.FromBuiltInWeights();
        var fromFile = new BuiltInWeights(5);
        fromFile.Load(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "weights", "tiny.safetensors"));
        Assert.True(builtIn.Parameters.SequenceEqual(fromFile.Parameters));
        Assert.False(builtIn.Parameters.SequenceEqual(new BuiltInWeights(5).Parameters)); // not the random initialization
        Assert.Equal(ModelUse.Inference, builtIn.Use);
        Assert.Equal(BuiltInWeights.InferenceBytes, builtIn.BufferBytes);

        // Asked for training, the built-in weights can be fine-tuned.
        BuiltInWeights tunable = BuiltInWeights.FromBuiltInWeights(ModelUse.Training);
        Assert.True(tunable.Parameters.SequenceEqual(fromFile.Parameters));
        var optimizer = new AdamW(tunable, learningRate: 1e-2f);
        int[] tokens = TestData.Tokens(BuiltInWeights.TokensPerStep, BuiltInWeights.Vocab, 3);
        float first = tunable.TrainStep(tokens, tokens, optimizer);
        for (int i = 0; i < 5; i++) tunable.TrainStep(tokens, tokens, optimizer);
        Assert.True(tunable.Forward(tokens, tokens) < first);
    }
}
