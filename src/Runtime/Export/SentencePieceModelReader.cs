using System;
using System.Collections.Generic;
using System.IO;
using Google.Protobuf;

namespace TransformerGen;

/// <summary>
/// Reads what a GGUF vocabulary needs from a SentencePiece <c>tokenizer.model</c>: a protobuf <c>ModelProto</c>
/// (google/sentencepiece <c>src/sentencepiece_model.proto</c>) whose field 1 holds the pieces (piece 1, score 2, type 3),
/// field 2 the trainer spec (model type 3, unk/bos/eos ids 40–42) and field 3 the normalizer spec (add_dummy_prefix 3,
/// remove_extra_whitespaces 4). Other fields are skipped by their wire type.
/// </summary>
internal static class SentencePieceModelReader
{
    public sealed record Piece(string Text, float Score, int Type);

    public sealed record Model(List<Piece> Pieces, int ModelType, int UnkId, int BosId, int EosId, bool AddDummyPrefix, bool RemoveExtraWhitespaces);

    /// <summary>SentencePiece's <c>TrainerSpec.ModelType</c> of a BPE model (Llama 2, TinyLlama), the one llama.cpp's <c>llama</c> tokenizer runs.</summary>
    public const int Bpe = 2;

    public static Model Read(string path)
    {
        try
        {
            return Read(new CodedInputStream(File.ReadAllBytes(path)));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{path}' is not a SentencePiece model: {e.Message}", e);
        }
    }

    // Google.Protobuf's wire-format reader over the fields named above; the proto's defaults where one is absent
    // (unigram, unk 0, bos 1, eos 2, a dummy prefix, extra whitespace removed).
    private static Model Read(CodedInputStream input)
    {
        var pieces = new List<Piece>();
        int modelType = 1, unk = 0, bos = 1, eos = 2;
        bool dummyPrefix = true, removeWhitespace = true;
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
                    CodedInputStream piece = Nested(input);
                    string text = "";
                    float score = 0;
                    int type = 1;
                    while ((field = piece.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 1: text = piece.ReadString(); break;
                            case 2: score = piece.ReadFloat(); break;
                            case 3: type = piece.ReadEnum(); break;
                            default: piece.SkipLastField(); break;
                        }
                    }
                    pieces.Add(new Piece(text, score, type));
                    break;
                case 2:
                    CodedInputStream trainer = Nested(input);
                    while ((field = trainer.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 3: modelType = trainer.ReadEnum(); break;
                            case 40: unk = trainer.ReadInt32(); break;
                            case 41: bos = trainer.ReadInt32(); break;
                            case 42: eos = trainer.ReadInt32(); break;
                            default: trainer.SkipLastField(); break;
                        }
                    }
                    break;
                case 3:
                    CodedInputStream normalizer = Nested(input);
                    while ((field = normalizer.ReadTag()) != 0)
                    {
                        switch (WireFormat.GetTagFieldNumber(field))
                        {
                            case 3: dummyPrefix = normalizer.ReadBool(); break;
                            case 4: removeWhitespace = normalizer.ReadBool(); break;
                            default: normalizer.SkipLastField(); break;
                        }
                    }
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }
        return new Model(pieces, modelType, unk, bos, eos, dummyPrefix, removeWhitespace);
    }

    // A length-delimited sub-message, read on its own.
    private static CodedInputStream Nested(CodedInputStream input) => new(input.ReadBytes().ToByteArray());
}
