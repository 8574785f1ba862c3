using System;

namespace TranslateSample;

/// <summary>
/// <c>dotnet run -c Release --project samples/Translate -- --model models/opus-mt-en-de --text "…"</c>: English to German
/// with Helsinki-NLP/opus-mt-en-de; <c>--model models/nllb-200-distilled-600M --from eng_Latn --to fra_Latn</c>: between any
/// two of NLLB-200's languages with facebook/nllb-200-distilled-600M; <c>--model models/flan-t5-small --to French</c>: what
/// google/flan-t5-small is told to do, <c>translate English to French: …</c>, or any <c>--prompt "summarize: "</c> (see <see cref="TranslateApp"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args) => TranslateApp.Run(args, Console.Out, Console.Error);
}
