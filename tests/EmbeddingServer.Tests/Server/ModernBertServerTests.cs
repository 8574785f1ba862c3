using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TransformerGen.EmbeddingServer.Tests.Support;
using TransformerGen.Samples.Serving;
using TransformerGen.Samples.Tests.Support;
using Xunit;

namespace TransformerGen.EmbeddingServer.Tests.Server;

/// <summary>
/// The server over a tiny ModernBERT served as gte-modernbert-base is (<see cref="TinyModernBertFolder"/>): tokenizer.json
/// alone, [CLS] … [SEP], CLS pooling from its modules, each text's embedding equal to the model's own on the text alone
/// whatever batch it shared; and the folders it refuses: another model_type, another ModernBERT (naming the keys), and
/// gte-modernbert-base's config without its other files.
/// </summary>
public sealed class ModernBertServerTests(TinyModernBertFolder folder) : IClassFixture<TinyModernBertFolder>
{
    private static StartupException Refusal(string path, ServedModels models) =>
        Assert.Throws<StartupException>(() => new EmbeddingEngine(models, Options.Create(ServerSettings.Bind<ServerOptions>(path, null)),
                                                                  new ServerMetrics(), NullLogger<EmbeddingEngine>.Instance));

    [Fact]
    public async Task Texts_get_the_models_own_embeddings_of_each_alone()
    {
        using var server = new ServerFactory(folder.Path, new Dictionary<string, string>(), TinyModernBertFolder.Model);
        using HttpClient client = server.CreateClient();
        // Seven texts, two batches of up to 4, from one word ([CLS] Cats [SEP]) to longer than the local layers' window;
        // one word the tokenizer spells out in bytes.
        string[] input = [.. TinyModernBertFolder.Texts, "Cats", "zebras sleep"];
        EmbeddingsClient.Answer answer = await EmbeddingsClient.PostAsync(client, new { input });
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal("tests/tiny-modernbert", answer.Body.GetProperty("model").GetString());
        long tokens = 0;
        for (int i = 0; i < input.Length; i++)
        {
            float[] embedding = answer.Embedding(i);
            Assert.Equal(TinyServedModernBert.EmbeddingWidth, embedding.Length);
            Close.Equal(folder.Alone(input[i]), embedding, input[i]);
            tokens += folder.Tokenizer.Encode(input[i]).Count;
        }

        Assert.Equal(tokens, answer.PromptTokens);
        Assert.Equal(3, folder.Tokenizer.Encode("Cats").Count);
        Assert.True(folder.Tokenizer.Encode(TinyModernBertFolder.Texts[^1]).Count > 5);
        // The embeddings differ from text to text: CLS pooling over the spread weights is not one vector.
        Assert.True(Enumerable.Range(1, input.Length - 1).Min(i => Cosine(answer.Embedding(0), answer.Embedding(i))) < 0.95);
    }

    [Fact]
    public void A_folder_of_another_model_type_is_refused()
    {
        // Served alone, the model is compared with the folder, which names the model_type first.
        using var bert = new TempFolder();
        bert.Write("config.json", TinyBertFolder.CompiledConfig);
        StartupException alone = Refusal(bert.Path, new ServedModels([TinyModernBertFolder.Model]));
        Assert.Contains("describes another model than the one this server was compiled for (tests/tiny-modernbert): model_type: bert in the folder, modernbert compiled.", alone.Message);

        // Beside another model, the folder's model_type picks none of them, and both are named.
        using var nomic = new TempFolder();
        nomic.Write("config.json", """{"model_type": "nomic_bert"}""");
        StartupException neither = Refusal(nomic.Path, new ServedModels([ServerFactory.TinyBertModel, TinyModernBertFolder.Model]));
        Assert.Contains("has model_type nomic_bert; this program runs bert (tests/tiny-bert), modernbert (tests/tiny-modernbert).", neither.Message);
    }

    [Fact]
    public void A_modernbert_folder_of_another_window_is_refused_naming_the_key()
    {
        using var other = new TempFolder();
        other.CopyFrom(folder.Folder, "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json");
        JsonObject config = JsonNode.Parse(TinyModernBertFolder.Model.CompiledConfig)!.AsObject();
        config["local_attention"] = 8;
        other.Write("config.json", config.ToJsonString());
        StartupException e = Refusal(other.Path, new ServedModels([TinyModernBertFolder.Model]));
        Assert.Contains("describes another model than the one this server was compiled for (tests/tiny-modernbert)", e.Message);
        Assert.Contains("local_attention: 8 in the folder, 4 compiled", e.Message);
        Assert.DoesNotContain("hidden_size", e.Message);
    }

    [Fact]
    public void The_program_serves_gte_modernbert_base_for_a_modernbert_folder_and_names_its_files()
    {
        using var gte = new TempFolder();
        gte.Write("config.json", ServedModel.GteModernBertBase.CompiledConfig);
        Assert.StartsWith($"The model folder '{gte.Path}' lacks model.safetensors, tokenizer.json, tokenizer_config.json, special_tokens_map.json, modules.json, 1_Pooling/config.json (download them from https://huggingface.co/Alibaba-NLP/gte-modernbert-base)",
                          Refusal(gte.Path, ServedModels.All).Message);

        // The tiny folder is a modernbert of other sizes: the program takes it for gte-modernbert-base and names what differs.
        string message = Refusal(folder.Path, ServedModels.All).Message;
        Assert.Contains("(Alibaba-NLP/gte-modernbert-base)", message);
        Assert.Contains("hidden_size: 18 in the folder, 768 compiled", message);
        Assert.Contains("local_attention: 4 in the folder, 128 compiled", message);
    }

    private static double Cosine(float[] a, float[] b) =>
        a.Zip(b, (x, y) => (double)x * y).Sum() / System.Math.Sqrt(a.Sum(x => (double)x * x) * b.Sum(y => (double)y * y));
}
