using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A Llama of SmolLM2's form at toy size (48 wide, 2 layers, 4 query heads on 2 key/value heads, tied head, 320 ids:
/// the tiny byte-level tokenizer's 3 special tokens, 256 bytes and its merges), about 57,000 parameters. The chat tests
/// run the Chat sample with it. Its config's eos_token_id is 0 (&lt;|endoftext|&gt;), unlike the template's
/// end-of-turn &lt;|im_end|&gt; (2), so the two ways a reply ends can be told apart.
/// </summary>
[TransformerModel(Config = "Models/tiny-llama/config.json", SeqLen = 128)]
public partial class TinyChatModel { }
