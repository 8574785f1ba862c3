using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using TransformerGen.Serving;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Batching;

/// <summary>
/// The batcher on a real encoder (<see cref="TinyBert"/>): three instances over one copy of the weights, many callers at
/// once; every embedding equals the sentence's embedding computed alone by another instance.
/// </summary>
public sealed class BatchedEqualsAloneTests
{
    [Fact]
    public async Task Every_embedding_equals_the_sentence_run_alone()
    {
        var init = TinyBert.ForInference(7);
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tinybert-batcher-{Guid.NewGuid():N}.safetensors");
        init.Save(path);
        try
        {
            ModelWeights weights = TinyBert.LoadWeights(path);
            TinyBert alone = TinyBert.ForInference(weights);
            var rng = new Random(11);
            int[][] sentences = Enumerable.Range(0, 120).Select(_ =>
            {
                int length = 1 + rng.Next(TinyBert.SeqLen);
                return Enumerable.Range(0, length).Select(_ => 1 + rng.Next(TinyBert.Vocab - 1)).ToArray();
            }).ToArray();
            float[][] expected = sentences.Select(s => alone.Predict(s).ToArray()).ToArray();

            var batches = new List<EncoderBatch>();
            var batcher = new EncoderBatcher(
                Enumerable.Range(0, 3).Select(_ => (EncoderModel)TinyBert.ForInference(weights)).ToArray(),
                new EncoderBatcherOptions { MaxTokens = 64, BatchCompleted = b => { lock (batches) batches.Add(b); } });
            await using (batcher)
            {
                Task[] callers = Enumerable.Range(0, 12).Select(c => Task.Run(async () =>
                {
                    for (int i = c; i < sentences.Length; i += 12)
                    {
                        float[] embedding = await batcher.PredictAsync(sentences[i]);
                        Close.Equal(expected[i], embedding, $"sentence {i} ({sentences[i].Length} tokens)");
                    }
                })).ToArray();
                await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(120));
            }

            Assert.Equal(sentences.Length, batches.Sum(b => b.Sequences));
            Assert.Equal(sentences.Sum(s => s.Length), batches.Sum(b => b.Tokens));
            Assert.All(batches, b => Assert.True(b.Sequences <= TinyBert.Batch && b.Tokens <= 64));
            Assert.Contains(batches, b => b.Sequences > 1);
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}
