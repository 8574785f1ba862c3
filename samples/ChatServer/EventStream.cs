using System;
using System.Buffers;
using System.IO;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace TransformerGen.ChatServer;

/// <summary>
/// Writes a response as Server-Sent Events the way OpenAI's streaming API sends them: each event one <c>data: {JSON}</c>
/// line and a blank line, flushed at once so that the client sees every piece of text as soon as it is generated, and
/// <c>data: [DONE]</c> last.
/// </summary>
internal sealed class EventStream(Stream body)
{
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _json = new(Stream.Null);

    /// <summary>The response's content type.</summary>
    public const string ContentType = "text/event-stream";

    /// <summary>Sends one event whose data is the JSON value <paramref name="write"/> writes.</summary>
    public async Task WriteAsync(Action<Utf8JsonWriter> write, CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        _buffer.Write("data: "u8);
        _json.Reset(_buffer);
        write(_json);
        _json.Flush();
        _buffer.Write("\n\n"u8);
        await SendAsync(cancellationToken);
    }

    /// <summary>Sends the event that ends the stream.</summary>
    public async Task WriteDoneAsync(CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        _buffer.Write("data: [DONE]\n\n"u8);
        await SendAsync(cancellationToken);
    }

    private async Task SendAsync(CancellationToken cancellationToken)
    {
        await body.WriteAsync(_buffer.WrittenMemory, cancellationToken);
        await body.FlushAsync(cancellationToken);
    }
}
