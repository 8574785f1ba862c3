using System;
using System.IO;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;

namespace TransformerGen.Samples.Serving;

/// <summary>
/// A request a server refuses: its HTTP status and OpenAI's error body, <c>{"error": {"message", "type", "param",
/// "code"}}</c>. Endpoints throw it while reading a request and write it where they catch it.
/// </summary>
/// <param name="status">The HTTP status.</param>
/// <param name="message">What is wrong, for the client.</param>
/// <param name="param">The request field at fault, or null.</param>
/// <param name="type">OpenAI's error type: <c>invalid_request_error</c> for the client's mistakes, <c>server_error</c> for the server's.</param>
/// <param name="code">OpenAI's machine-readable code (<c>context_length_exceeded</c>), or null.</param>
internal sealed class RequestError(int status, string message, string? param = null, string type = "invalid_request_error", string? code = null) : Exception(message)
{
    public int Status { get; } = status;

    public string Type { get; } = type;

    public string? Param { get; } = param;

    public string? Code { get; } = code;

    /// <summary>
    /// Parses the request's body as a JSON object. Null when the client went away while sending it (nothing is left to
    /// answer); the caller disposes the document.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="expected">What the object must hold, for the refusal of another JSON value ("an 'input'").</param>
    /// <param name="aborted">The request's <see cref="HttpContext.RequestAborted"/>.</param>
    /// <exception cref="RequestError">The body is not JSON (400, with the parser's message), or not an object, or the server refused reading it (its status).</exception>
    public static async Task<JsonDocument?> ReadObjectAsync(HttpRequest request, string expected, CancellationToken aborted)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, default, aborted);
        }
        catch (JsonException e)
        {
            throw new RequestError(StatusCodes.Status400BadRequest, $"The body is not valid JSON: {e.Message}");
        }
        catch (BadHttpRequestException e)
        {
            throw new RequestError(e.StatusCode, e.Message);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return null;
        }
        catch (IOException) when (aborted.IsCancellationRequested)
        {
            return null;
        }

        if (document.RootElement.ValueKind == JsonValueKind.Object) return document;
        document.Dispose();
        throw new RequestError(StatusCodes.Status400BadRequest, $"The body must be a JSON object with {expected}.");
    }

    /// <summary>How a refusal names the kind of a JSON value it did not expect ("a number").</summary>
    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    /// <summary>Writes <c>{"error": {…}}</c> (also as one event of a stream whose status is already sent).</summary>
    public void WriteTo(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteStartObject("error");
        json.WriteString("message", Message);
        json.WriteString("type", Type);
        if (Param is null) json.WriteNull("param");
        else json.WriteString("param", Param);
        if (Code is null) json.WriteNull("code");
        else json.WriteString("code", Code);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Answers the request with this error: its status and the JSON body.</summary>
    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(response.Body);
        WriteTo(json);
    }
}
