using TransformerGen;

namespace TransformerGen.ChatServer;

/// <summary>
/// HuggingFaceTB/SmolLM2-135M-Instruct as the server runs it: compiled from the same config.json as the Chat sample's
/// <c>SmolLm</c>, with Batch = 8 key/value cache slots, so that eight conversations generate at once, each step reading
/// the weights once for all of them. SeqLen 512 positions hold a prompt and its reply.
/// </summary>
/// <remarks>
/// The Chat sample has SeqLen 1024, which does not compile at Batch 8: the generator sizes a model's training workspace
/// too, whether or not it is ever trained, and SmolLM2's at 8 × 1024 positions would be 3,178,962,944 floats, more than a
/// span indexes (TG0008). Eight conversations were kept over the longer context; 8 × 512 fits. The caches cost
/// 8 × 512 positions × 30 layers × 2 × 192 floats, about 189 MB.
/// </remarks>
[TransformerModel(Config = "models/SmolLM2-135M-Instruct/config.json", SeqLen = 512, Batch = 8)]
public partial class ServedSmolLm { }
