using System;

namespace EmbeddingsSample;

/// <summary>
/// <c>dotnet run -c Release --project samples/Embeddings -- --model models/all-MiniLM-L6-v2</c>: sentence similarities and
/// semantic search with all-MiniLM-L6-v2, or with all-mpnet-base-v2, nomic-embed-text-v1.5, embeddinggemma-300m or
/// gte-modernbert-base for a folder of one of them (<c>--model models/gte-modernbert-base</c>; the folder's model_type
/// picks the model, see <see cref="EmbeddingsApp"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args) => EmbeddingsApp.Run(args, Console.Out, Console.Error);
}
