using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using TransformerGen.Serving;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Batching;

/// <summary>
/// <see cref="EncoderBatcher.PredictAsync(ReadOnlySpan{int}, ReadOnlySpan{int}, System.Threading.CancellationToken)"/> on a
/// real cross-encoder (<see cref="TinyCrossEncoder"/>): sentence pairs with their token types, batched with other callers'
/// pairs and with sequences given without types, score as
/// <see cref="EncoderModel.Predict(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{int})"/> of each alone; and what the
/// call refuses.
/// </summary>
public sealed class TokenTypeBatcherTests
{
    [Fact]
    public async Task Every_score_with_types_equals_the_pair_run_alone_and_without_types_the_sequence_alone()
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tinycross-batcher-{Guid.NewGuid():N}.safetensors");
        TinyCrossEncoder.ForInference(9).Save(path);
        try
        {
            ModelWeights weights = TinyCrossEncoder.LoadWeights(path);
            TinyCrossEncoder alone = TinyCrossEncoder.ForInference(weights);
            var rng = new Random(12);
            // Two of three sequences are pairs (type 0, then 1 from a random point on); the third is given without types.
            var sequences = Enumerable.Range(0, 150).Select(i =>
            {
                int length = 2 + rng.Next(TinyCrossEncoder.SeqLen - 1);
                int[] ids = Enumerable.Range(0, length).Select(_ => 1 + rng.Next(TinyCrossEncoder.Vocab - 1)).ToArray();
                int second = 1 + rng.Next(length - 1);
                int[]? types = i % 3 == 2 ? null : Enumerable.Range(0, length).Select(t => t < second ? 0 : 1).ToArray();
                return (Ids: ids, Types: types);
            }).ToArray();
            float[] expected = sequences.Select(s => s.Types is null
                ? alone.Predict(s.Ids, [s.Ids.Length])[0]
                : alone.Predict(s.Ids, [s.Ids.Length], s.Types)[0]).ToArray();
            float[] untyped = sequences.Select(s => alone.Predict(s.Ids, [s.Ids.Length])[0]).ToArray();
            Assert.Contains(Enumerable.Range(0, sequences.Length), i => Math.Abs(expected[i] - untyped[i]) > 1e-4); // the types matter

            var batches = new List<EncoderBatch>();
            var batcher = new EncoderBatcher(
                Enumerable.Range(0, 3).Select(_ => (EncoderModel)TinyCrossEncoder.ForInference(weights)).ToArray(),
                new EncoderBatcherOptions { MaxTokens = 96, BatchCompleted = b => { lock (batches) batches.Add(b); } });
            await using (batcher)
            {
                Task[] callers = Enumerable.Range(0, 10).Select(c => Task.Run(async () =>
                {
                    for (int i = c; i < sequences.Length; i += 10)
                    {
                        (int[] ids, int[]? types) = sequences[i];
                        float[] row = types is null ? await batcher.PredictAsync(ids) : await batcher.PredictAsync(ids, types);
                        Assert.Single(row);
                        Close.Score(expected[i], row[0], $"sequence {i} ({ids.Length} tokens, {(types is null ? "no types" : "types")})");
                    }
                })).ToArray();
                await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(120));
            }

            Assert.Equal(sequences.Length, batches.Sum(b => b.Sequences));
            Assert.Equal(sequences.Sum(s => s.Ids.Length), batches.Sum(b => b.Tokens));
            Assert.Contains(batches, b => b.Sequences > 2); // batches hold several sequences, so typed and untyped ones may share one (not forced here)
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }

    [Fact]
    public async Task Types_of_the_wrong_length_or_outside_the_table_and_types_for_a_model_without_them_are_refused_at_the_call()
    {
        await using var batcher = new EncoderBatcher([TinyCrossEncoder.ForInference(1)]);
        int[] ids = [101, 7, 102, 8, 102];
        var length = Assert.Throws<ArgumentException>(() => { _ = batcher.PredictAsync(ids, [0, 0, 0, 1]); });
        Assert.Equal("tokenTypes", length.ParamName);
        Assert.StartsWith("TinyCrossEncoder: 5 tokens need as many token types, got 4", length.Message);
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => { _ = batcher.PredictAsync(ids, [0, 0, 0, 2, 1]); });
        Assert.Contains("the token type at position 3 is 2, outside 0 to 1", range.Message);
        Assert.Throws<ArgumentException>(() => { _ = batcher.PredictAsync([], []); }); // the ids are checked first
        Assert.Single(await batcher.PredictAsync(ids, [0, 0, 0, 1, 1])); // and a good call still runs

        ModelLayout noTypes = ProbeEncoder.NewLayout();
        await using var probe = new EncoderBatcher([new ProbeEncoder(noTypes)]);
        var none = Assert.Throws<InvalidOperationException>(() => { _ = probe.PredictAsync([1, 2], [0, 0]); });
        Assert.Equal("ProbeEncoder has no token-type embedding: give it tokens alone", none.Message);
    }
}
