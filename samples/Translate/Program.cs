using System;

namespace TranslateSample;

/// <summary>
/// <c>dotnet run -c Release --project samples/Translate -- --model models/opus-mt-en-de --text "…"</c>: English to German
/// with Helsinki-NLP/opus-mt-en-de (see <see cref="TranslateApp"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args) => TranslateApp.Run(args, Console.Out, Console.Error);
}
