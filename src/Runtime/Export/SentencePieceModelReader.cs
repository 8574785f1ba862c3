using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;

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
        byte[] bytes = File.ReadAllBytes(path);
        var pieces = new List<Piece>();
        // The proto's defaults: unigram, unk 0, bos 1, eos 2, a dummy prefix, extra whitespace removed.
        int modelType = 1, unk = 0, bos = 1, eos = 2;
        bool dummyPrefix = true, removeWhitespace = true;
        var reader = new Reader(bytes, path);
        while (reader.More)
        {
            (int field, int wire) = reader.Tag();
            switch (field, wire)
            {
                case (1, 2):
                {
                    var piece = reader.Message();
                    string text = ""; float score = 0; int type = 1;
                    while (piece.More)
                    {
                        (int f, int w) = piece.Tag();
                        switch (f, w)
                        {
                            case (1, 2): text = piece.String(); break;
                            case (2, 5): score = piece.Float(); break;
                            case (3, 0): type = (int)piece.Varint(); break;
                            default: piece.Skip(w); break;
                        }
                    }
                    pieces.Add(new Piece(text, score, type));
                    break;
                }
                case (2, 2):
                {
                    var trainer = reader.Message();
                    while (trainer.More)
                    {
                        (int f, int w) = trainer.Tag();
                        switch (f, w)
                        {
                            case (3, 0): modelType = (int)trainer.Varint(); break;
                            case (40, 0): unk = (int)trainer.Varint(); break;
                            case (41, 0): bos = (int)trainer.Varint(); break;
                            case (42, 0): eos = (int)trainer.Varint(); break;
                            default: trainer.Skip(w); break;
                        }
                    }
                    break;
                }
                case (3, 2):
                {
                    var normalizer = reader.Message();
                    while (normalizer.More)
                    {
                        (int f, int w) = normalizer.Tag();
                        switch (f, w)
                        {
                            case (3, 0): dummyPrefix = normalizer.Varint() != 0; break;
                            case (4, 0): removeWhitespace = normalizer.Varint() != 0; break;
                            default: normalizer.Skip(w); break;
                        }
                    }
                    break;
                }
                default:
                    reader.Skip(wire);
                    break;
            }
        }
        return new Model(pieces, modelType, unk, bos, eos, dummyPrefix, removeWhitespace);
    }

    /// <summary>Protobuf's wire format over a byte range: varints, 32- and 64-bit fields, length-delimited fields.</summary>
    private sealed class Reader(byte[] bytes, string path, int start = 0, int end = -1)
    {
        private int _at = start;
        private readonly int _end = end < 0 ? bytes.Length : end;

        public bool More => _at < _end;

        public (int Field, int Wire) Tag()
        {
            ulong tag = Varint();
            return ((int)(tag >> 3), (int)(tag & 7));
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = Next(1)[0];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw Malformed("a varint longer than 10 bytes");
        }

        public float Float() => BinaryPrimitives.ReadSingleLittleEndian(Next(4));

        public string String()
        {
            ReadOnlySpan<byte> text = Next(Length());
            return Encoding.UTF8.GetString(text);
        }

        public Reader Message()
        {
            int length = Length();
            var message = new Reader(bytes, path, _at, _at + length);
            Next(length);
            return message;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Next(8); break;
                case 2: Next(Length()); break;
                case 5: Next(4); break;
                default: throw Malformed($"wire type {wire}");
            }
        }

        private int Length()
        {
            ulong length = Varint();
            if (length > (ulong)(_end - _at)) throw Malformed($"a field of {length} bytes with {_end - _at} left");
            return (int)length;
        }

        private ReadOnlySpan<byte> Next(int count)
        {
            if (count > _end - _at) throw Malformed("a truncated field");
            ReadOnlySpan<byte> span = bytes.AsSpan(_at, count);
            _at += count;
            return span;
        }

        private InvalidDataException Malformed(string what) => new($"'{path}' is not a SentencePiece model: {what} at byte {_at}");
    }
}
