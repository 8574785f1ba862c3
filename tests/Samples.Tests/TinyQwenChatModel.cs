using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A Qwen2 of Qwen2.5-0.5B-Instruct's form at toy size: 42 wide, 2 layers, 3 query heads of 14 on one key/value head,
/// biases on the query, key and value projections (none on the output projection), SwiGLU 90, tied head, theta 1e6, and
/// the tiny byte-level ChatML tokenizer's 320 ids; its config's eos_token_id is &lt;|im_end|&gt; (2), as Qwen's is.
/// </summary>
[TransformerModel(Config = "Models/tiny-qwen2/config.json", SeqLen = 128)]
public partial class TinyQwenChatModel { }
