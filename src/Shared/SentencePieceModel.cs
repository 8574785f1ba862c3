using System.Collections.Generic;
using System.IO;
using Google.Protobuf;

namespace TransformerGen.SentencePiece;

/// <summary>
/// The fields of a serialized SentencePiece model (<c>ModelProto</c>, google/sentencepiece src/sentencepiece_model.proto)
/// that the tokenizer loaders (src/Tokenizers) and the GGUF export's vocabularies (src/Runtime) read, parsed with
/// Google.Protobuf's wire-format reader: no generated classes, since a dozen of the schema's fields are read by number
/// and the others skipped. One source file, linked into both assemblies (neither references the other).
/// </summary>
internal sealed class SentencePieceModel
{
    // SentencePiece.Type
    public const int NormalType = 1, UnknownType = 2, ControlType = 3, UserDefinedType = 4, UnusedType = 5, ByteType = 6;

    // TrainerSpec.ModelType
    public const int UnigramModel = 1, BpeModel = 2;

    private SentencePieceModel(List<Piece> pieces) => Pieces = pieces;

    /// <summary>One piece: its text, score and type (<see cref="NormalType"/> when absent).</summary>
    public readonly record struct Piece(string Text, float Score, int Type);

    /// <summary>The pieces in id order.</summary>
    public IReadOnlyList<Piece> Pieces { get; }

    /// <summary><c>trainer_spec.model_type</c> (<see cref="UnigramModel"/> when absent).</summary>
    public int ModelType { get; private init; } = UnigramModel;

    public int UnkId { get; private init; }
    public int BosId { get; private init; } = 1;
    public int EosId { get; private init; } = 2;
    public int PadId { get; private init; } = -1;
    public bool ByteFallback { get; private init; }
    public bool TreatWhitespaceAsSuffix { get; private init; }

    /// <summary><c>normalizer_spec.name</c> ("nmt_nfkc", "identity", …), or null.</summary>
    public string? NormalizerName { get; private init; }

    /// <summary><c>normalizer_spec.precompiled_charsmap</c>, empty when absent.</summary>
    public byte[] PrecompiledCharsMap { get; private init; } = [];

    public bool AddDummyPrefix { get; private init; } = true;
    public bool RemoveExtraWhitespaces { get; private init; } = true;
    public bool EscapeWhitespaces { get; private init; } = true;

    /// <summary>Reads the model file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed protobuf message; the message names it.</exception>
    public static SentencePieceModel Read(string path) => Read(File.ReadAllBytes(path), path);

    /// <summary>Reads a serialized model; <paramref name="name"/> is what errors call it.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed protobuf message.</exception>
    public static SentencePieceModel Read(byte[] model, string name = "a SentencePiece model")
    {
        try
        {
            return ReadModel(new CodedInputStream(model));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{name}' is not a well-formed SentencePiece model: {e.Message}", e);
        }
    }

    // ModelProto: pieces (1), trainer_spec (2), normalizer_spec (3); the proto's defaults where a field is absent.
    private static SentencePieceModel ReadModel(CodedInputStream input)
    {
        var pieces = new List<Piece>();
        int modelType = UnigramModel, unk = 0, bos = 1, eos = 2, pad = -1;
        bool suffix = false, byteFallback = false, dummyPrefix = true, removeWhitespace = true, escapeWhitespace = true;
        string? normalizer = null;
        byte[] charsMap = [];
        uint tag, field;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagWireType(tag) != WireFormat.WireType.LengthDelimited)
            {
                input.SkipLastField();
                continue;
            }
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1:
                    // SentencePiece: piece (1), score (2), type (3).
                    CodedInputStream entry = Nested(input);
                    string text = "";
                    float score = 0;
                    int type = NormalType;
                    while ((field = entry.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 1: text = entry.ReadString(); break;
                            case 2: score = entry.ReadFloat(); break;
                            case 3: type = entry.ReadEnum(); break;
                            default: entry.SkipLastField(); break;
                        }
                    }
                    pieces.Add(new Piece(text, score, type));
                    break;
                case 2:
                    // TrainerSpec: model_type (3), treat_whitespace_as_suffix (24), byte_fallback (35), unk/bos/eos/pad ids (40–43).
                    CodedInputStream trainer = Nested(input);
                    while ((field = trainer.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 3: modelType = trainer.ReadEnum(); break;
                            case 24: suffix = trainer.ReadBool(); break;
                            case 35: byteFallback = trainer.ReadBool(); break;
                            case 40: unk = trainer.ReadInt32(); break;
                            case 41: bos = trainer.ReadInt32(); break;
                            case 42: eos = trainer.ReadInt32(); break;
                            case 43: pad = trainer.ReadInt32(); break;
                            default: trainer.SkipLastField(); break;
                        }
                    }
                    break;
                case 3:
                    // NormalizerSpec: name (1), precompiled_charsmap (2), add_dummy_prefix (3), remove_extra_whitespaces (4), escape_whitespaces (5).
                    CodedInputStream spec = Nested(input);
                    while ((field = spec.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 1: normalizer = spec.ReadString(); break;
                            case 2: charsMap = spec.ReadBytes().ToByteArray(); break;
                            case 3: dummyPrefix = spec.ReadBool(); break;
                            case 4: removeWhitespace = spec.ReadBool(); break;
                            case 5: escapeWhitespace = spec.ReadBool(); break;
                            default: spec.SkipLastField(); break;
                        }
                    }
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }

        return new SentencePieceModel(pieces)
        {
            ModelType = modelType, TreatWhitespaceAsSuffix = suffix, ByteFallback = byteFallback,
            UnkId = unk, BosId = bos, EosId = eos, PadId = pad,
            NormalizerName = string.IsNullOrEmpty(normalizer) ? null : normalizer, PrecompiledCharsMap = charsMap,
            AddDummyPrefix = dummyPrefix, RemoveExtraWhitespaces = removeWhitespace, EscapeWhitespaces = escapeWhitespace,
        };
    }

    // A length-delimited sub-message, read on its own.
    private static CodedInputStream Nested(CodedInputStream input) => new(input.ReadBytes().ToByteArray());
}
