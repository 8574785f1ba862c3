namespace TransformerGen.Generator
{
    /// <summary>
    /// Everything the compiler needs to know about one <c>[TransformerModel]</c> declaration, as equatable data:
    /// the class's name and shape, and each attribute argument with the location where it was written.
    /// </summary>
    internal sealed record ModelSpec(
        TypeShape Type,
        LocationInfo? AttributeLocation,
        Argument<int> Architecture,
        Argument<int> Vocab,
        Argument<int> DModel,
        Argument<int> Heads,
        Argument<int> Layers,
        Argument<int> DFF,
        Argument<int> SeqLen,
        Argument<int> Batch,
        Argument<int> Positional,
        Argument<int> Norm,
        Argument<int> Activation,
        Argument<float> Dropout,
        Argument<float> LabelSmoothing,
        Argument<bool> TiedEmbeddings);

    /// <summary>One attribute argument: its value (the attribute's default when not written) and where it was written, if it was.</summary>
    internal readonly record struct Argument<T>(T Value, LocationInfo? Location)
    {
        public bool IsSet => Location is not null;
    }

    /// <summary>The annotated class as the emitter needs it: names as strings, never symbols.</summary>
    internal sealed record TypeShape(
        string Name,
        string? Namespace,
        EquatableArray<string> ContainingTypes,
        LocationInfo? NameLocation,
        string Keyword,
        bool IsPartial,
        bool IsStatic,
        bool IsAbstract,
        bool IsGeneric,
        bool IsInGenericType,
        bool ContainingTypesArePartial,
        string? BaseTypeName,
        int AttributeCount,
        EquatableArray<MemberName> Members);

    /// <summary>A member the user wrote in the class whose name a generated member also has, with where it was written.</summary>
    internal sealed record MemberName(string Name, LocationInfo? Location);

    /// <summary>The numeric values of the attribute's enums, mirrored here because the generator cannot reference the attributes assembly.</summary>
    internal static class EnumValues
    {
        public const int DecoderOnly = 0;
        public const int Sinusoidal = 0, Learned = 1, Rotary = 2;
        public const int PostNorm = 0, PreNorm = 1;
        public const int Relu = 0, Gelu = 1;
    }
}
