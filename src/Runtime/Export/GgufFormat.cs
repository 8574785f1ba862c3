using System;

namespace TransformerGen;

/// <summary>
/// The numbers of the GGUF v3 container and of ggml's tensor types, as the GGUF specification (ggml <c>docs/gguf.md</c>)
/// and <c>ggml.h</c> define them.
/// </summary>
internal static class GgufFormat
{
    /// <summary>"GGUF" read as a little-endian 32-bit integer.</summary>
    public const uint Magic = 0x46554747;
    public const uint Version = 3;
    /// <summary>The default alignment of tensor data (the file does not need to say it).</summary>
    public const int Alignment = 32;
    /// <summary><c>general.quantization_version</c> of files whose blocks follow the current Q8_0 layout.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>Weights per Q8_0 block (<c>QK8_0</c>).</summary>
    public const int Q8BlockLength = 32;
    /// <summary>Bytes per Q8_0 block: an fp16 scale and 32 signed bytes.</summary>
    public const int Q8BlockBytes = 2 + Q8BlockLength;

    /// <summary>The value types of metadata (<c>gguf_metadata_value_type</c>).</summary>
    public enum ValueType : uint
    {
        UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
        UInt64 = 10, Int64 = 11, Float64 = 12,
    }

    /// <summary>ggml's tensor type ids (<c>enum ggml_type</c>) of the types written here.</summary>
    public enum TensorType : uint
    {
        F32 = 0,
        F16 = 1,
        Q8_0 = 8,
        BF16 = 30,
    }

    /// <summary>llama.cpp's <c>general.file_type</c> (<c>enum llama_ftype</c>): the type of most of the file's weights.</summary>
    public static uint FileType(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => 0,   // LLAMA_FTYPE_ALL_F32
        GgufTensorType.Q8_0 => 7,  // LLAMA_FTYPE_MOSTLY_Q8_0
        GgufTensorType.BF16 => 32, // LLAMA_FTYPE_MOSTLY_BF16
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a GgufTensorType"),
    };

    /// <summary>Bytes of <paramref name="elements"/> values of <paramref name="type"/> (for Q8_0, a multiple of the block length).</summary>
    public static long ByteLength(TensorType type, long elements) => type switch
    {
        TensorType.F32 => 4 * elements,
        TensorType.F16 or TensorType.BF16 => 2 * elements,
        TensorType.Q8_0 => elements / Q8BlockLength * Q8BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a tensor type written here"),
    };

    /// <summary>llama.cpp's token types (<c>enum llama_token_type</c>), written as <c>tokenizer.ggml.token_type</c>.</summary>
    public enum TokenType
    {
        Normal = 1,
        Unknown = 2,
        Control = 3,
        UserDefined = 4,
        Unused = 5,
        Byte = 6,
    }
}
