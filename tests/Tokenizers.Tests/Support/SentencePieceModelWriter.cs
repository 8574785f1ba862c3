using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Writes a SentencePiece tokenizer.model (a ModelProto, google/sentencepiece src/sentencepiece_model.proto)
/// by hand: protobuf's varint and length-delimited encodings, and the fields a BPE model needs.
/// </summary>
internal static class SentencePieceModelWriter
{
    // SentencePiece.Type
    public const int Normal = 1;
    public const int Unknown = 2;
    public const int Control = 3;
    public const int Byte = 6;

    // ModelProto fields
    private const int PiecesField = 1;
    private const int TrainerSpecField = 2;
    private const int NormalizerSpecField = 3;

    // ModelProto.SentencePiece fields
    private const int PieceField = 1;
    private const int ScoreField = 2;
    private const int TypeField = 3;

    // TrainerSpec fields
    private const int ModelTypeField = 3;
    private const int ByteFallbackField = 35;
    private const int UnkIdField = 40;
    private const int BosIdField = 41;
    private const int EosIdField = 42;
    private const int PadIdField = 43;

    // TrainerSpec.ModelType
    public const int Unigram = 1;
    public const int Bpe = 2;

    // NormalizerSpec fields
    private const int NameField = 1;
    private const int AddDummyPrefixField = 3;
    private const int RemoveExtraWhitespacesField = 4;
    private const int EscapeWhitespacesField = 5;

    /// <summary>
    /// A Llama-2-shaped model: &lt;unk&gt;=0, &lt;s&gt;=1, &lt;/s&gt;=2, the 256 byte pieces &lt;0x00&gt;…&lt;0xFF&gt; at 3–258,
    /// then <paramref name="pieces"/> in order; BPE, byte fallback, identity normalizer with the dummy prefix
    /// and without removing extra whitespace (Llama-2's settings).
    /// </summary>
    public static byte[] LlamaShaped(IEnumerable<(string Piece, float Score)> pieces, bool byteFallback = true, int modelType = Bpe)
    {
        var model = new MemoryStream();
        WritePiece(model, "<unk>", 0, Unknown);
        WritePiece(model, "<s>", 0, Control);
        WritePiece(model, "</s>", 0, Control);
        for (int b = 0; b < 256; b++)
        {
            WritePiece(model, $"<0x{b:X2}>", 0, Byte);
        }

        foreach ((string piece, float score) in pieces)
        {
            WritePiece(model, piece, score, Normal);
        }

        var trainer = new MemoryStream();
        WriteVarintField(trainer, ModelTypeField, modelType);
        WriteVarintField(trainer, ByteFallbackField, byteFallback ? 1 : 0);
        WriteVarintField(trainer, UnkIdField, 0);
        WriteVarintField(trainer, BosIdField, 1);
        WriteVarintField(trainer, EosIdField, 2);
        WriteVarintField(trainer, PadIdField, -1);
        WriteBytesField(model, TrainerSpecField, trainer.ToArray());

        var normalizer = new MemoryStream();
        WriteBytesField(normalizer, NameField, Encoding.UTF8.GetBytes("identity"));
        WriteVarintField(normalizer, AddDummyPrefixField, 1);
        WriteVarintField(normalizer, RemoveExtraWhitespacesField, 0);
        WriteVarintField(normalizer, EscapeWhitespacesField, 1);
        WriteBytesField(model, NormalizerSpecField, normalizer.ToArray());

        return model.ToArray();
    }

    private static void WritePiece(Stream model, string piece, float score, int type)
    {
        var message = new MemoryStream();
        WriteBytesField(message, PieceField, Encoding.UTF8.GetBytes(piece));
        WriteTag(message, ScoreField, wireType: 5);
        Span<byte> bits = stackalloc byte[4];
        BitConverter.TryWriteBytes(bits, score);   // fixed32, little-endian
        message.Write(bits);
        WriteVarintField(message, TypeField, type);
        WriteBytesField(model, PiecesField, message.ToArray());
    }

    private static void WriteTag(Stream stream, int field, int wireType) => WriteVarint(stream, (ulong)((field << 3) | wireType));

    // Negative int32 values are written as 10-byte varints (sign-extended to 64 bits), as protobuf does.
    private static void WriteVarintField(Stream stream, int field, long value)
    {
        WriteTag(stream, field, wireType: 0);
        WriteVarint(stream, unchecked((ulong)value));
    }

    private static void WriteBytesField(Stream stream, int field, byte[] bytes)
    {
        WriteTag(stream, field, wireType: 2);
        WriteVarint(stream, (ulong)bytes.Length);
        stream.Write(bytes);
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        stream.WriteByte((byte)value);
    }
}
