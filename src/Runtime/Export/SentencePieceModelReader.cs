using System;
using System.Collections.Generic;
using System.IO;
using Google.Protobuf;

namespace TransformerGen;

/// <summary>
/// Reads what a GGUF vocabulary needs from a SentencePiece <c>tokenizer.model</c>: a protobuf <c>ModelProto</c>
/// (google/sentencepiece <c>src/sentencepiece_model.proto</c>) whose field 1 holds the pieces (piece 1, score 2, type 3),
/// field 2 the trainer spec (model type 3, unk/bos/eos/pad ids 40–43) and field 3 the normalizer spec (precompiled_charsmap 2,
/// add_dummy_prefix 3, remove_extra_whitespaces 4): what llama.cpp's converter copies into a GGUF vocabulary
/// (convert_hf_to_gguf.py, <c>T5Model.set_vocab</c> and <c>_set_vocab_sentencepiece</c>). Other fields are skipped by their wire type.
/// </summary>
internal static class SentencePieceModelReader
{
    public sealed record Piece(string Text, float Score, int Type);

    /// <summary>The fields read; <c>PrecompiledCharsMap</c> is the normalizer's compiled table (nmt_nfkc's for T5), empty when the model has none.</summary>
    public sealed record Model(List<Piece> Pieces, int ModelType, int UnkId, int BosId, int EosId, int PadId, bool AddDummyPrefix, bool RemoveExtraWhitespaces,
        byte[] PrecompiledCharsMap);

    /// <summary>SentencePiece's <c>TrainerSpec.ModelType</c> of a unigram model (T5, Flan-T5, mT5), the one llama.cpp's <c>t5</c> tokenizer runs.</summary>
    public const int Unigram = 1;

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
    // (unigram, unk 0, bos 1, eos 2, no pad, a dummy prefix, extra whitespace removed, no normalizer table).
    private static Model Read(CodedInputStream input)
    {
        var pieces = new List<Piece>();
        int modelType = Unigram, unk = 0, bos = 1, eos = 2, pad = -1;
        bool dummyPrefix = true, removeWhitespace = true;
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
                            case 43: pad = trainer.ReadInt32(); break;
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
                            case 2: charsMap = normalizer.ReadBytes().ToByteArray(); break;
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
        return new Model(pieces, modelType, unk, bos, eos, pad, dummyPrefix, removeWhitespace, charsMap);
    }

    // A length-delimited sub-message, read on its own.
    private static CodedInputStream Nested(CodedInputStream input) => new(input.ReadBytes().ToByteArray());
}
