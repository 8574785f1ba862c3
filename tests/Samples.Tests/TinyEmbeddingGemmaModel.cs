using TransformerGen;

namespace TransformerGen.Samples.Tests;

/// <summary>
/// An EmbeddingGemma of embeddinggemma-300m's form at toy size (18 wide, 2 heads of 8 on one key/value head, a sliding layer
/// that sees 4 positions either side and a global one, mean pooling, Dense 18 → 40 → 18 without bias), whose 417 ids are
/// the tiny Gemma tokenizer's pieces (<see cref="TransformerGen.Tokenizers.Tests.Support.GemmaFolder"/>). The Embeddings
/// sample's tests run it; SeqLen 128 holds every test text with its prompt in the tiny tokenizer's pieces and bytes.
/// </summary>
[TransformerModel(Config = "Models/tiny-embeddinggemma/config.json", SeqLen = 128, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class TinyEmbeddingGemmaModel { }
