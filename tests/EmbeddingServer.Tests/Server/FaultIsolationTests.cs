using System;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// The server with <see cref="ProbeEncoder"/> instances in place of the model's, so that one word makes the model throw:
/// the request holding it gets 500 with the model's message, and requests batched with it get their answers.
/// </summary>
public sealed class FaultIsolationTests(TinyBertFolder folder) : IClassFixture<TinyBertFolder>
{
    [Fact]
    public async Task A_sentence_the_model_throws_on_fails_only_its_own_request()
    {
        int violin = folder.Ids("violin")[1];
        ModelLayout layout = ProbeEncoder.NewLayout(batch: TinyBert.Batch, seqLen: TinyBert.SeqLen, vocab: TinyBert.Vocab);
        ServedModel probe = ServerFactory.TinyBertModel with { CreateInstance = _ => new ProbeEncoder(layout, poison: violin) };
        using var server = new ServerFactory(folder.Path, new System.Collections.Generic.Dictionary<string, string> { ["max-wait-ms"] = "20", ["workers"] = "1" }, probe);
        using HttpClient client = server.CreateClient();

        string[][] inputs = Enumerable.Range(0, 12).Select(i => i % 4 == 1 ? new[] { "a man", "the violin" } : new[] { "the cat", $"{new string('a', 1 + i)} dog" }).ToArray();
        EmbeddingsClient.Answer[] answers = await Task.WhenAll(inputs.Select(input => EmbeddingsClient.PostAsync(client, new { input })));
        for (int i = 0; i < inputs.Length; i++)
        {
            if (i % 4 == 1)
            {
                Assert.Equal(HttpStatusCode.InternalServerError, answers[i].Status);
                Assert.Equal($"the probe refuses id {violin}", answers[i].ErrorMessage);
                Assert.Equal("server_error", answers[i].Body.GetProperty("error").GetProperty("type").GetString());
                continue;
            }
            Assert.Equal(HttpStatusCode.OK, answers[i].Status);
            for (int s = 0; s < 2; s++) Assert.Equal(ProbeEncoder.Expected(folder.Ids(inputs[i][s])), answers[i].Embedding(s));
        }

        string metrics = await client.GetStringAsync("/metrics");
        Assert.Contains("embeddings_requests_total{code=\"500\"} 3", metrics);
        Assert.Contains("embeddings_requests_total{code=\"200\"} 9", metrics);
    }
}
