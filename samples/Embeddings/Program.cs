using System;

namespace EmbeddingsSample;

/// <summary>
/// <c>dotnet run -c Release --project samples/Embeddings -- --model models/all-MiniLM-L6-v2</c>: sentence similarities and
/// semantic search with all-MiniLM-L6-v2, or with nomic-embed-text-v1.5 for a folder of it (<c>--model
/// models/nomic-embed-text-v1.5</c>; see <see cref="EmbeddingsApp"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args) => EmbeddingsApp.Run(args, Console.Out, Console.Error);
}
