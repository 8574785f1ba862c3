using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using TransformerGen.EmbeddingServer;
using TransformerGen.Samples.Serving;

// dotnet run -c Release --project samples/EmbeddingServer -- --model <folder> [--reranker <folder>] --urls http://127.0.0.1:8080
// Every option is ASP.NET Core configuration (ServerOptions.cs): --reranker, --workers, --threads, --weights,
// --max-inputs, --max-batch, --max-batch-tokens, --max-wait-ms, --truncate, --model-name.
WebApplication app = ServerHost.Build<ServerOptions, ServedModels, ServerMetrics, EmbeddingEngine>(args, ServedModels.All);
ServerMetrics metrics = app.Services.GetRequiredService<ServerMetrics>();
app.MapPost("/v1/embeddings", (HttpContext context, EmbeddingEngine engine) => EmbeddingsEndpoint.HandleAsync(context, engine, metrics));
app.MapPost("/rerank", (HttpContext context, EmbeddingEngine engine) => RerankEndpoint.HandleAsync(context, engine, metrics));
app.MapGet("/health", (EmbeddingEngine engine) => Results.Json(new { status = "ok", model = engine.ModelName, workers = engine.Workers, queued = engine.Queued, reranker = engine.Reranker?.ModelName }));
ModelsEndpoint.Map(app, services =>
{
    EmbeddingEngine engine = services.GetRequiredService<EmbeddingEngine>();
    return engine.Reranker is { } reranker
        ? [new ModelsEndpoint.Entry(engine.ModelName, engine.Layout.SeqLen), new ModelsEndpoint.Entry(reranker.ModelName, reranker.Layout.SeqLen)]
        : [new ModelsEndpoint.Entry(engine.ModelName, engine.Layout.SeqLen)];
});

return ServerHost.Run(app);

/// <summary>The program's entry point, public for <c>WebApplicationFactory&lt;Program&gt;</c> in the tests.</summary>
public partial class Program;
