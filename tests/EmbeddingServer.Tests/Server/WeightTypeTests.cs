using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary><c>--weights</c>: the one shared copy held in bf16 or 8-bit blocks gives embeddings close to fp32's.</summary>
public sealed class WeightTypeTests(TinyBertFolder folder) : IClassFixture<TinyBertFolder>
{
    [Theory]
    [InlineData("BFloat16", 2e-2)]
    [InlineData("Int8", 5e-2)]
    public async Task Reduced_precision_weights_serve_embeddings_close_to_fp32(string weights, double bound)
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string> { ["weights"] = weights });
        using HttpClient client = server.CreateClient();
        string[] input = ["a man is eating food", "the cat sleeps on the mat", "qwerty"];
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(client, new { input });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        for (int i = 0; i < input.Length; i++)
        {
            double error = Close.RelativeMax(answer.Embedding(i), folder.Alone(input[i]));
            Assert.InRange(error, 1e-7, bound); // rounded (not fp32's bits), and close
        }
    }
}
