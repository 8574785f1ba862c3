namespace TransformerGen;

/// <summary>How <see cref="GgufExport"/> stores the weight matrices of a GGUF file (vectors always stay <see cref="F32"/>).</summary>
public enum GgufTensorType
{
    /// <summary>32-bit floats, the model's own values (ggml <c>GGML_TYPE_F32</c>).</summary>
    F32,
    /// <summary>bfloat16: each float rounded to nearest even to its top 16 bits (ggml <c>GGML_TYPE_BF16</c>).</summary>
    BF16,
    /// <summary>
    /// 8-bit blocks (ggml <c>GGML_TYPE_Q8_0</c>): each run of 32 weights along a row becomes one fp16 scale
    /// <c>d = max|x| / 127</c> and 32 signed bytes <c>round(x / d)</c>. A matrix whose rows are not a multiple of 32 long
    /// cannot be blocked and is written as <see cref="F32"/>.
    /// </summary>
    Q8_0,
}
