using TransformerGen;

namespace TransformerGen.EmbeddingServer;

/// <summary>
/// google/embeddinggemma-300m as the server runs it (a bidirectional Gemma 3: 24 layers, 768 wide; mean pooling and two
/// Dense layers 768 → 3072 → 768 read from the sentence-transformers modules beside its config), SeqLen 512 of its 2048
/// positions and batches of up to 8 sentences (at 16 the training workspace the compiler also plans would pass what a span indexes). Its inputs take EmbeddingGemma's prompts as the client writes them
/// (<c>task: search result | query: …</c>, <c>title: none | text: …</c>): the OpenAI API has no field for them.
/// </summary>
[TransformerModel(Config = "models/embeddinggemma-300m/config.json", SeqLen = 512, Batch = 8, Head = EncoderHead.SentenceEmbedding)]
public partial class ServedEmbeddingGemma { }
