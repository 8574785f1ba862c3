using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;

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

    /// <summary>Reads a serialized model.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed protobuf message.</exception>
    public static SentencePieceProto Read(ReadOnlySpan<byte> model)
    {
        var pieces = new List<(string, float, int)>();
        foreach (ReadOnlySpan<byte> piece in new FieldReader(model, 1))
        {
            pieces.Add(ReadPiece(piece));
        }

        ReadOnlySpan<byte> trainer = Field(model, 2);
        ReadOnlySpan<byte> normalizer = Field(model, 3);
        return new SentencePieceProto(pieces)
        {
            ModelType = (int)(Number(trainer, 3) ?? UnigramModel),
            TreatWhitespaceAsSuffix = Number(trainer, 24) is ulong suffix && suffix != 0,
            ByteFallback = Number(trainer, 35) is ulong fallback && fallback != 0,
            UnkId = (int)(Number(trainer, 40) ?? 0),
            BosId = (int)(Number(trainer, 41) ?? 1),
            EosId = (int)(Number(trainer, 42) ?? 2),
            PadId = (int)(Number(trainer, 43) ?? unchecked((ulong)-1L)),
            NormalizerName = Field(normalizer, 1) is { IsEmpty: false } name ? Encoding.UTF8.GetString(name) : null,
            PrecompiledCharsMap = Field(normalizer, 2).ToArray(),
            AddDummyPrefix = Number(normalizer, 3) is not ulong prefix || prefix != 0,
            RemoveExtraWhitespaces = Number(normalizer, 4) is not ulong remove || remove != 0,
            EscapeWhitespaces = Number(normalizer, 5) is not ulong escape || escape != 0,
        };
    }

    // ModelProto.SentencePiece: piece (1), score (2, a float), type (3, NORMAL when absent).
    private static (string, float, int) ReadPiece(ReadOnlySpan<byte> message)
    {
        string piece = Encoding.UTF8.GetString(Field(message, 1));
        float score = 0;
        int type = NormalType;
        int at = 0;
        while (at < message.Length)
        {
            ulong tag = Varint(message, ref at);
            int number = (int)(tag >> 3);
            if (number == 2 && (tag & 7) == 5)
            {
                if (at + 4 > message.Length) throw new InvalidDataException("a SentencePiece model's score runs past its end");
                score = BinaryPrimitives.ReadSingleLittleEndian(message.Slice(at, 4));
                at += 4;
            }
            else if (number == 3 && (tag & 7) == 0)
            {
                type = (int)Varint(message, ref at);
            }
            else
            {
                Skip(message, ref at, (int)(tag & 7));
            }
        }

        return (piece, score, type);
    }

    /// <summary>The bytes of the last length-delimited field <paramref name="number"/> of a message (empty when absent).</summary>
    public static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> message, int number)
    {
        ReadOnlySpan<byte> last = default;
        foreach (ReadOnlySpan<byte> field in new FieldReader(message, number))
        {
            last = field;
        }

        return last;
    }

    // The last varint field `number` of a message (protobuf: the last value wins), or null.
    private static ulong? Number(ReadOnlySpan<byte> message, int number)
    {
        ulong? value = null;
        int at = 0;
        while (at < message.Length)
        {
            ulong tag = Varint(message, ref at);
            if ((int)(tag >> 3) == number && (tag & 7) == 0)
            {
                value = Varint(message, ref at);
            }
            else
            {
                Skip(message, ref at, (int)(tag & 7));
            }
        }

        return value;
    }

    private static void Skip(ReadOnlySpan<byte> message, ref int at, int wire)
    {
        switch (wire)
        {
            case 0: Varint(message, ref at); break;
            case 1: at += 8; break;
            case 5: at += 4; break;
            case 2:
                ulong length = Varint(message, ref at);
                if (length > (ulong)(message.Length - at)) throw new InvalidDataException("a SentencePiece model's field runs past its end");
                at += (int)length;
                break;
            default: throw new InvalidDataException($"a SentencePiece model has a field of wire type {wire}, which protobuf does not define");
        }

        if (at > message.Length) throw new InvalidDataException("a SentencePiece model's field runs past its end");
    }

    private static ulong Varint(ReadOnlySpan<byte> message, ref int at)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (at >= message.Length) throw new InvalidDataException("a SentencePiece model ends inside a number");
            byte b = message[at++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }

        throw new InvalidDataException("a SentencePiece model has a number longer than 64 bits");
    }

    // Enumerates the length-delimited fields `number` of a message, in order.
    private ref struct FieldReader(ReadOnlySpan<byte> message, int number)
    {
        private readonly ReadOnlySpan<byte> _message = message;
        private int _at;

        public ReadOnlySpan<byte> Current { get; private set; }

        public readonly FieldReader GetEnumerator() => this;

        public bool MoveNext()
        {
            while (_at < _message.Length)
            {
                ulong tag = Varint(_message, ref _at);
                if ((int)(tag >> 3) == number && (tag & 7) == 2)
                {
                    ulong length = Varint(_message, ref _at);
                    if (length > (ulong)(_message.Length - _at)) throw new InvalidDataException("a SentencePiece model's field runs past its end");
                    Current = _message.Slice(_at, (int)length);
                    _at += (int)length;
                    return true;
                }

                Skip(_message, ref _at, (int)(tag & 7));
            }

            return false;
        }
    }
}
