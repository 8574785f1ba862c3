using System;

namespace ChatSample;

/// <summary>
/// <c>dotnet run -c Release --project samples/Chat -- --model models/SmolLM2-135M-Instruct --prompt "…"</c>: one chat
/// turn with SmolLM2-135M-Instruct, streamed (see <see cref="ChatApp"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args) => ChatApp.Run(args, Console.Out, Console.Error);
}
