using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using TransformerGen.ChatServer;
using TransformerGen.Samples.Serving;

// dotnet run -c Release --project samples/ChatServer -- --model <folder> --urls http://127.0.0.1:8080
// Every option is ASP.NET Core configuration (ServerOptions.cs): --weights, --threads, --max-sequences,
// --max-step-tokens, --max-tokens, --model-name.
WebApplication app = ServerHost.Build<ServerOptions, ServedChatModels, ServerMetrics, ChatEngine>(args, ServedChatModels.All);
app.MapPost("/v1/chat/completions", ChatCompletionsEndpoint.HandleAsync); // its engine and metrics come from the services
app.MapGet("/health", (ChatEngine engine) => Results.Json(new { status = "ok", model = engine.ModelName, active = engine.Active, queued = engine.Queued }));
ModelsEndpoint.Map(app, services =>
{
    ChatEngine engine = services.GetRequiredService<ChatEngine>();
    return [new ModelsEndpoint.Entry(engine.ModelName, engine.Layout.SeqLen)];
});

return ServerHost.Run(app);

/// <summary>The program's entry point, public for <c>WebApplicationFactory&lt;Program&gt;</c> in the tests.</summary>
public partial class Program;
