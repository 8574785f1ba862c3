using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace TransformerGen.Samples.Serving;

/// <summary>
/// OpenAI's model listing, which clients call to find what a server serves before they send requests (the openai
/// SDKs' <c>models.list()</c> and <c>models.retrieve(id)</c>, chat front ends that fill a model menu from it):
/// <c>GET /v1/models</c> answers <c>{"object": "list", "data": [{"id", "object": "model", "created", "owned_by",
/// "max_model_len"}, …]}</c>, and <c>GET /v1/models/{id}</c> one of them, or 404 in OpenAI's error shape with code
/// <c>model_not_found</c>. <c>created</c> is when the server started (Unix seconds); <c>max_model_len</c>, as vLLM
/// gives it, is the positions a request may fill (the model's SeqLen).
/// </summary>
internal static class ModelsEndpoint
{
    /// <summary>What the listing says of one served model.</summary>
    /// <param name="Id">The name requests and responses use (<c>--model-name</c>, or the Hub repository).</param>
    /// <param name="MaxModelLength">The positions a request may fill.</param>
    public sealed record Entry(string Id, int MaxModelLength);

    /// <summary>Maps both routes; <paramref name="models"/> is read on each request (the engines are built at start).</summary>
    public static void Map(IEndpointRouteBuilder app, Func<IServiceProvider, IReadOnlyList<Entry>> models)
    {
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        object Describe(Entry e) => new { id = e.Id, @object = "model", created, owned_by = "transformer-gen", max_model_len = e.MaxModelLength };

        app.MapGet("/v1/models", (HttpContext context) =>
            Results.Json(new { @object = "list", data = models(context.RequestServices).Select(Describe).ToArray() }));
        app.MapGet("/v1/models/{**id}", async (HttpContext context, string id) =>
        {
            id = Uri.UnescapeDataString(id); // a name with a slash comes as two segments or with %2F, which routing leaves escaped
            if (models(context.RequestServices).FirstOrDefault(e => e.Id == id) is { } entry)
            {
                await Results.Json(Describe(entry)).ExecuteAsync(context);
                return;
            }
            await new RequestError(StatusCodes.Status404NotFound, $"The model '{id}' does not exist; this server serves {string.Join(", ", models(context.RequestServices).Select(e => $"'{e.Id}'"))}.",
                "model", code: "model_not_found").WriteAsync(context.Response);
        });
    }
}
