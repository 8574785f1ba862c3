using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading.Tasks;
using TransformerGen.EmbeddingServer.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// The server over a tiny EmbeddingGemma (<see cref="TinyEmbeddingGemmaFolder"/>): its Gemma tokenizer, whose special id
/// past the table is let through, its Dense layers, and each text's embedding equal to the model's own on the text alone,
/// the prompts given in the input as EmbeddingGemma's model card writes them.
/// </summary>
public sealed class EmbeddingGemmaServerTests(TinyEmbeddingGemmaFolder folder) : IClassFixture<TinyEmbeddingGemmaFolder>
{
    [Fact]
    public async Task Prompted_queries_and_documents_get_the_models_own_embeddings()
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string>(), TinyEmbeddingGemmaFolder.Model);
        using HttpClient client = server.CreateClient();
        string[] input = ["task: search result | query: which dog runs?", "title: none | text: The dog runs in the park", "title: none | text: A man is eating food."];
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(client, new { input });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("tests/tiny-embeddinggemma", answer.Body.GetProperty("model").GetString());
        long tokens = 0;
        for (int i = 0; i < input.Length; i++)
        {
            float[] embedding = answer.Embedding(i);
            Assert.Equal(TinyServedEmbeddingGemma.EmbeddingWidth, embedding.Length);
            Close.Equal(folder.Alone(input[i]), embedding, input[i]);
            tokens += folder.Tokenizer.Encode(input[i]).Count;
        }
        Assert.Equal(tokens, answer.PromptTokens);
        Assert.True(folder.Tokenizer.VocabSize > TinyServedEmbeddingGemma.Vocab); // <image_soft_token>, one past the table
    }

    [Fact]
    public async Task A_prompt_name_puts_the_folders_prompt_before_every_input()
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string>(), TinyEmbeddingGemmaFolder.Model);
        using HttpClient client = server.CreateClient();
        string[] input = ["which dog runs?", "the dog runs in the park"];
        EmbeddingsClient.Answer query = await EmbeddingsClient.PostAsync(client, new { input, prompt_name = "query" });
        Assert.Equal(HttpStatusCode.OK, query.Status);
        for (int i = 0; i < input.Length; i++) Close.Equal(folder.Alone("task: search result | query: " + input[i]), query.Embedding(i), input[i]);
        Assert.Equal(input.Sum(text => (long)folder.Tokenizer.Encode("task: search result | query: " + text).Count), query.PromptTokens);

        EmbeddingsClient.Answer document = await EmbeddingsClient.PostAsync(client, new { input = input[1], prompt_name = "document" });
        Close.Equal(folder.Alone("title: none | text: " + input[1]), document.Embedding(0), input[1]);

        EmbeddingsClient.Answer unknown = await EmbeddingsClient.PostAsync(client, new { input, prompt_name = "STS" });
        Assert.Equal(HttpStatusCode.BadRequest, unknown.Status);
        Assert.Equal("'prompt_name' is \"STS\"; this model's prompts are query, document.", unknown.ErrorMessage);
    }
}
