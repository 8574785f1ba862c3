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
        Argument<bool> TiedEmbeddings,
        Argument<int> EncoderLayers,
        Argument<int> DecoderLayers,
        Argument<int> TargetVocab,
        Argument<int> TargetSeqLen,
        Argument<int> PadToken,
        Argument<int> BosToken,
        Argument<int> EosToken,
        Argument<bool> ScaleEmbeddings,
        Argument<int> AttentionWindow,
        Argument<int> Classes,
        Argument<int> Head,
        Argument<int> Pooling,
        Argument<string?> Weights)
    {
        /// <summary>The <c>Config = "…/config.json"</c> argument, or unset.</summary>
        public Argument<string?> Config { get; init; }

        /// <summary>The <c>WeightType</c> argument: how inference instances hold the weight matrices unless their factory says otherwise.</summary>
        public Argument<int> WeightType { get; init; }

        /// <summary>The <c>AttentionKernel</c> argument: stored probabilities, tiles, or chosen by length (Auto).</summary>
        public Argument<int> AttentionKernel { get; init; }
        /// <summary>The <c>RecomputeActivations</c> argument: the backward pass recomputes activation outputs instead of keeping them.</summary>
        public Argument<bool> RecomputeActivations { get; init; }

        /// <summary>The <c>Sequences</c> argument: a decoder-only model's key/value cache slots (0: Batch).</summary>
        public Argument<int> Sequences { get; init; }

        /// <summary>A decoder-only model's key/value cache slots: <see cref="Sequences"/>, or Batch when it is 0.</summary>
        public int CacheSlots => Sequences.Value > 0 ? Sequences.Value : Batch.Value;

        /// <summary>What a Hugging Face config adds to the sizes (null for a model declared by the attribute alone).</summary>
        public FamilySpec? Family { get; init; }

        public bool IsDecoderOnly => Architecture.Value == EnumValues.DecoderOnly;
        public bool IsEncoderDecoder => Architecture.Value == EnumValues.EncoderDecoder;
        public bool IsEncoderOnly => Architecture.Value == EnumValues.EncoderOnly;

        /// <summary>Layers of the encoder stack (0 for decoder-only).</summary>
        public int EncoderLayerCount => IsDecoderOnly ? 0 : EncoderLayers.Value > 0 ? EncoderLayers.Value : Layers.Value;

        /// <summary>Layers of the decoder stack (0 for encoder-only).</summary>
        public int DecoderLayerCount => IsEncoderOnly ? 0 : IsEncoderDecoder && DecoderLayers.Value > 0 ? DecoderLayers.Value : Layers.Value;

        /// <summary>The vocabulary of the decoder (and of the LM head).</summary>
        public int TargetVocabSize => IsEncoderDecoder && TargetVocab.Value > 0 ? TargetVocab.Value : Vocab.Value;

        /// <summary>Positions of the decoder's sequence.</summary>
        public int TargetLength => IsEncoderDecoder && TargetSeqLen.Value > 0 ? TargetSeqLen.Value : SeqLen.Value;
    }

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
        public const int DecoderOnly = 0, EncoderDecoder = 1, EncoderOnly = 2;
        public const int Classification = 0, Tagging = 1;
        public const int FirstToken = 0, MeanPooling = 1;
        public const int Sinusoidal = 0, Learned = 1, Rotary = 2, Relative = 3;
        public const int PostNorm = 0, PreNorm = 1;
        public const int Relu = 0, Gelu = 1;
        public const int SentenceEmbedding = 2;
        public const int Float32 = 0, BFloat16 = 1, Int8 = 2;
        public const int AutoAttention = 0, StoredProbabilities = 1, TiledAttention = 2;
    }
}
