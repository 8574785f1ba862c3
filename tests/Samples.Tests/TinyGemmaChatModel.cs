using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// A Gemma 3 of gemma-3-270m-it's form at toy size (18 wide, 2 heads of 8 on one key/value head, a sliding layer of 4
/// keys and a full one), whose 417 ids are the tiny Gemma tokenizer's pieces (<see cref="TransformerGen.Tokenizers.Tests.Support.GemmaFolder"/>):
/// its &lt;image_soft_token&gt; (417) lies one past the table, as Gemma 3's 262144 does. The Chat sample's tests run it.
/// </summary>
[TransformerModel(Config = "Models/tiny-gemma/config.json", SeqLen = 48)]
public partial class TinyGemmaChatModel { }
