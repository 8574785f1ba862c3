using System;
using System.Collections.Generic;
using System.IO;
using Google.Protobuf;

namespace TransformerGen.Tokenizers.Loaders;

/// <summary>
/// The fields of a serialized SentencePiece model (<c>ModelProto</c>, google/sentencepiece
/// src/sentencepiece_model.proto) that a loader needs before handing the pieces to Microsoft.ML.Tokenizers itself:
/// its <c>SentencePieceTokenizer.Create(Stream…)</c> of 3.0 fails on a model without BOS (<c>bos_id: -1</c>, T5's), so
/// <see cref="T5Loader"/> reads the pieces here and builds the tokenizer from them.
/// </summary>
internal sealed class SentencePieceProto
{
    // SentencePiece.Type
    public const int NormalType = 1, UnknownType = 2, ControlType = 3, UserDefinedType = 4, UnusedType = 5, ByteType = 6;

    // TrainerSpec.ModelType
    public const int UnigramModel = 1, BpeModel = 2;

    private SentencePieceProto(List<(string Piece, float Score, int Type)> pieces) => Pieces = pieces;

    /// <summary>The pieces in id order, with their score and type.</summary>
    public IReadOnlyList<(string Piece, float Score, int Type)> Pieces { get; }

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

    /// <summary>Reads a serialized model with Google.Protobuf's wire-format reader (no generated classes: the loaders need a
    /// dozen of the schema's fields, read by number; the others are skipped).</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed protobuf message.</exception>
    public static SentencePieceProto Read(byte[] model)
    {
        try
        {
            return ReadModel(new CodedInputStream(model));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"not a well-formed SentencePiece model: {e.Message}", e);
        }
    }

    // ModelProto: pieces (1), trainer_spec (2), normalizer_spec (3); the proto's defaults where a field is absent.
    private static SentencePieceProto ReadModel(CodedInputStream input)
    {
        var pieces = new List<(string, float, int)>();
        int modelType = UnigramModel, unk = 0, bos = 1, eos = 2, pad = -1;
        bool suffix = false, byteFallback = false, dummyPrefix = true, removeWhitespace = true, escapeWhitespace = true;
        string? normalizer = null;
        byte[] charsMap = [];
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1 when IsMessage(tag):
                    pieces.Add(ReadPiece(Nested(input)));
                    break;
                case 2 when IsMessage(tag):
                    // TrainerSpec: model_type (3), treat_whitespace_as_suffix (24), byte_fallback (35), unk/bos/eos/pad ids (40–43).
                    CodedInputStream trainer = Nested(input);
                    uint field;
                    while ((field = trainer.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 3: modelType = trainer.ReadInt32(); break;
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
                case 3 when IsMessage(tag):
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

        return new SentencePieceProto(pieces)
        {
            ModelType = modelType, TreatWhitespaceAsSuffix = suffix, ByteFallback = byteFallback,
            UnkId = unk, BosId = bos, EosId = eos, PadId = pad,
            NormalizerName = string.IsNullOrEmpty(normalizer) ? null : normalizer, PrecompiledCharsMap = charsMap,
            AddDummyPrefix = dummyPrefix, RemoveExtraWhitespaces = removeWhitespace, EscapeWhitespaces = escapeWhitespace,
        };
    }

    // ModelProto.SentencePiece: piece (1), score (2, a float), type (3, NORMAL when absent).
    private static (string, float, int) ReadPiece(CodedInputStream input)
    {
        string piece = "";
        float score = 0;
        int type = NormalType;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: piece = input.ReadString(); break;
                case 2: score = input.ReadFloat(); break;
                case 3: type = input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }

        return (piece, score, type);
    }

    private static bool IsMessage(uint tag) => WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited;

    // A length-delimited sub-message, read on its own.
    private static CodedInputStream Nested(CodedInputStream input) => new(input.ReadBytes().ToByteArray());
}
