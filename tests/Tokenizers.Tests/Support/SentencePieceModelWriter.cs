using System;
using System.Collections.Generic;
using System.IO;
using Google.Protobuf;

namespace TransformerGen.Tokenizers.Tests.Support;

/// <summary>
/// Writes a SentencePiece model file (a <c>ModelProto</c>, google/sentencepiece src/sentencepiece_model.proto) with
/// Google.Protobuf's <see cref="CodedOutputStream"/>: the fields a BPE or Unigram model needs, by their numbers.
/// </summary>
internal static class SentencePieceModelWriter
{
    // SentencePiece.Type
    public const int Normal = 1;
    public const int Unknown = 2;
    public const int Control = 3;
    public const int UserDefined = 4;
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
    private const int UnkPieceField = 45;
    private const int BosPieceField = 46;
    private const int EosPieceField = 47;
    private const int PadPieceField = 48;

    // TrainerSpec.ModelType
    public const int Unigram = 1;
    public const int Bpe = 2;

    // NormalizerSpec fields
    private const int NameField = 1;
    private const int PrecompiledCharsMapField = 2;
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
        var all = new List<(string, float, int)> { ("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control) };
        for (int b = 0; b < 256; b++)
        {
            all.Add(($"<0x{b:X2}>", 0, Byte));
        }

        foreach ((string piece, float score) in pieces)
        {
            all.Add((piece, score, Normal));
        }

        return Write(all, modelType, byteFallback, "identity", ByteString.Empty, removeExtraWhitespaces: false);
    }

    /// <summary>
    /// An XLM-RoBERTa-shaped model (sentencepiece.bpe.model): &lt;unk&gt;=0, &lt;s&gt;=1, &lt;/s&gt;=2, then
    /// <paramref name="pieces"/> from 3 on; Unigram without byte fallback and without a pad piece; the "nmt_nfkc"
    /// normalizer with <paramref name="precompiledCharsMap"/>, the dummy prefix and extra whitespace removed.
    /// </summary>
    public static byte[] XlmRobertaShaped(IEnumerable<(string Piece, float Score)> pieces, byte[] precompiledCharsMap)
    {
        var all = new List<(string, float, int)> { ("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control) };
        foreach ((string piece, float score) in pieces)
        {
            all.Add((piece, score, Normal));
        }

        return Write(all, Unigram, byteFallback: false, "nmt_nfkc", ByteString.CopyFrom(precompiledCharsMap), removeExtraWhitespaces: true);
    }

    /// <summary>
    /// An opus-mt-shaped model (Marian's source.spm or target.spm): laid out as <see cref="XlmRobertaShaped"/> is,
    /// &lt;unk&gt;=0, &lt;s&gt;=1, &lt;/s&gt;=2, then <paramref name="pieces"/>; Unigram, "nmt_nfkc" with
    /// <paramref name="precompiledCharsMap"/>, the dummy prefix, extra whitespace removed.
    /// </summary>
    public static byte[] MarianShaped(IEnumerable<(string Piece, float Score)> pieces, byte[] precompiledCharsMap) =>
        XlmRobertaShaped(pieces, precompiledCharsMap);

    /// <summary>
    /// An NLLB-shaped model (nllb-200's sentencepiece.bpe.model): &lt;unk&gt;=0, &lt;s&gt;=1, &lt;/s&gt;=2, then
    /// <paramref name="pieces"/> from 3 on; BPE without byte fallback, "nmt_nfkc" with <paramref name="precompiledCharsMap"/>,
    /// the dummy prefix, extra whitespace removed. BPE joins two pieces only into a piece of the vocabulary, best score first.
    /// </summary>
    public static byte[] NllbShaped(IEnumerable<(string Piece, float Score)> pieces, byte[] precompiledCharsMap)
    {
        var all = new List<(string, float, int)> { ("<unk>", 0, Unknown), ("<s>", 0, Control), ("</s>", 0, Control) };
        foreach ((string piece, float score) in pieces)
        {
            all.Add((piece, score, Normal));
        }

        return Write(all, Bpe, byteFallback: false, "nmt_nfkc", ByteString.CopyFrom(precompiledCharsMap), removeExtraWhitespaces: true);
    }

    /// <summary>
    /// A T5-shaped model (spiece.model of t5, flan-t5, mT5): &lt;pad&gt;=0, &lt;/s&gt;=1, &lt;unk&gt;=2, then
    /// <paramref name="pieces"/> from 3 on, and no BOS (trainer_spec <c>bos_id: -1</c>, <c>pad_id: 0</c>, <c>eos_id: 1</c>,
    /// <c>unk_id: 2</c>); Unigram without byte fallback, "nmt_nfkc" with <paramref name="precompiledCharsMap"/>, the dummy
    /// prefix, extra whitespace removed. <paramref name="userDefined"/> follow as user-defined pieces, as mT5's
    /// sentinels &lt;extra_id_99&gt; … &lt;extra_id_0&gt; end its model.
    /// </summary>
    public static byte[] T5Shaped(IEnumerable<(string Piece, float Score)> pieces, byte[] precompiledCharsMap, IEnumerable<string>? userDefined = null)
    {
        var all = new List<(string, float, int)> { ("<pad>", 0, Control), ("</s>", 0, Control), ("<unk>", 0, Unknown) };
        foreach ((string piece, float score) in pieces)
        {
            all.Add((piece, score, Normal));
        }

        foreach (string piece in userDefined ?? [])
        {
            all.Add((piece, 0, UserDefined));
        }

        return Write(all, Unigram, byteFallback: false, "nmt_nfkc", ByteString.CopyFrom(precompiledCharsMap), removeExtraWhitespaces: true,
            unkId: 2, bosId: -1, eosId: 1, padId: 0);
    }

    /// <summary>
    /// A Gemma-shaped model (Gemma 3's tokenizer.model, in small): &lt;pad&gt;=0, &lt;eos&gt;=1, &lt;bos&gt;=2 (control),
    /// &lt;unk&gt;=3, &lt;mask&gt;=4 and [multimodal]=5 (control), &lt;unused0&gt; … &lt;unused98&gt; at 6–104 (control),
    /// &lt;start_of_turn&gt;=105 and &lt;end_of_turn&gt;=106 (user-defined), then <paramref name="userDefined"/> (user-defined),
    /// the 256 byte pieces, and <paramref name="pieces"/>; BPE with byte fallback, trainer_spec <c>pad_id: 0</c>,
    /// <c>eos_id: 1</c>, <c>bos_id: 2</c>, <c>unk_id: 3</c> with those pieces named; the identity normalizer without the
    /// dummy prefix (unless <paramref name="addDummyPrefix"/>), keeping extra whitespace.
    /// </summary>
    public static byte[] GemmaShaped(IEnumerable<(string Piece, float Score)> pieces, IEnumerable<string>? userDefined = null, bool addDummyPrefix = false)
    {
        var all = new List<(string, float, int)>
        {
            ("<pad>", 0, Control), ("<eos>", 0, Control), ("<bos>", 0, Control), ("<unk>", 0, Unknown), ("<mask>", 0, Control), ("[multimodal]", 0, Control),
        };
        for (int n = 0; n < 99; n++)
        {
            all.Add(($"<unused{n}>", 0, Control));
        }

        all.Add(("<start_of_turn>", 0, UserDefined));
        all.Add(("<end_of_turn>", 0, UserDefined));
        foreach (string piece in userDefined ?? [])
        {
            all.Add((piece, 0, UserDefined));
        }

        for (int b = 0; b < 256; b++)
        {
            all.Add(($"<0x{b:X2}>", 0, Byte));
        }

        foreach ((string piece, float score) in pieces)
        {
            all.Add((piece, score, Normal));
        }

        return Write(all, Bpe, byteFallback: true, "identity", ByteString.Empty, removeExtraWhitespaces: false,
            unkId: 3, bosId: 2, eosId: 1, padId: 0, addDummyPrefix: addDummyPrefix, pieceNames: ("<unk>", "<bos>", "<eos>", "<pad>"));
    }

    private static byte[] Write(
        List<(string Piece, float Score, int Type)> pieces, int modelType, bool byteFallback,
        string normalizerName, ByteString precompiledCharsMap, bool removeExtraWhitespaces,
        int unkId = 0, int bosId = 1, int eosId = 2, int padId = -1, bool addDummyPrefix = true,
        (string Unk, string Bos, string Eos, string Pad)? pieceNames = null)
    {
        return Message(model =>
        {
            foreach ((string piece, float score, int type) in pieces)
            {
                model.WriteTag(PiecesField, WireFormat.WireType.LengthDelimited);
                model.WriteBytes(Message(message =>
                {
                    message.WriteTag(PieceField, WireFormat.WireType.LengthDelimited);
                    message.WriteString(piece);
                    message.WriteTag(ScoreField, WireFormat.WireType.Fixed32);
                    message.WriteFloat(score);
                    message.WriteTag(TypeField, WireFormat.WireType.Varint);
                    message.WriteEnum(type);
                }));
            }

            model.WriteTag(TrainerSpecField, WireFormat.WireType.LengthDelimited);
            model.WriteBytes(Message(trainer =>
            {
                WriteInt32(trainer, ModelTypeField, modelType);
                WriteInt32(trainer, ByteFallbackField, byteFallback ? 1 : 0);
                WriteInt32(trainer, UnkIdField, unkId);
                WriteInt32(trainer, BosIdField, bosId);
                WriteInt32(trainer, EosIdField, eosId);
                WriteInt32(trainer, PadIdField, padId);
                if (pieceNames is var (unk, bos, eos, pad))
                {
                    foreach ((int field, string name) in new[] { (UnkPieceField, unk), (BosPieceField, bos), (EosPieceField, eos), (PadPieceField, pad) })
                    {
                        trainer.WriteTag(field, WireFormat.WireType.LengthDelimited);
                        trainer.WriteString(name);
                    }
                }
            }));

            model.WriteTag(NormalizerSpecField, WireFormat.WireType.LengthDelimited);
            model.WriteBytes(Message(normalizer =>
            {
                normalizer.WriteTag(NameField, WireFormat.WireType.LengthDelimited);
                normalizer.WriteString(normalizerName);
                if (!precompiledCharsMap.IsEmpty)
                {
                    normalizer.WriteTag(PrecompiledCharsMapField, WireFormat.WireType.LengthDelimited);
                    normalizer.WriteBytes(precompiledCharsMap);
                }

                WriteInt32(normalizer, AddDummyPrefixField, addDummyPrefix ? 1 : 0);
                WriteInt32(normalizer, RemoveExtraWhitespacesField, removeExtraWhitespaces ? 1 : 0);
                WriteInt32(normalizer, EscapeWhitespacesField, 1);
            }));
        }).ToByteArray();
    }

    // Negative int32 values go out as 10-byte varints, as protobuf writes them.
    private static void WriteInt32(CodedOutputStream output, int field, int value)
    {
        output.WriteTag(field, WireFormat.WireType.Varint);
        output.WriteInt32(value);
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var bytes = new MemoryStream();
        using (var output = new CodedOutputStream(bytes, leaveOpen: true))
        {
            write(output);
        }

        return ByteString.CopyFrom(bytes.ToArray());
    }
}
