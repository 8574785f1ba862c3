using TransformerGen;

namespace TransformerGen.Export.Tests;

// Decoders compiled from Hugging Face configs (TransformerConfig items of the project): the reference tests' fixtures at
// odd sizes, and five shaped for Q8_0 blocks (Configs/README.md). Each is exported to GGUF and run by llama.cpp.

[TransformerModel(Config = "HuggingFace/Configs/llama-gqa/config.json", SeqLen = 13)]
public partial class LlamaGqaModel { }

[TransformerModel(Config = "HuggingFace/Configs/llama-mqa/config.json", SeqLen = 10)]
public partial class LlamaMqaModel { }

[TransformerModel(Config = "HuggingFace/Configs/qwen2/config.json", SeqLen = 12)]
public partial class Qwen2Model { }

[TransformerModel(Config = "HuggingFace/Configs/qwen3/config.json", SeqLen = 14)]
public partial class Qwen3Model { }

[TransformerModel(Config = "Export.Tests/Configs/qwen3-blocks/config.json", SeqLen = 24)]
public partial class Qwen3BlocksModel { }

// Qwen3 with attention_bias (q, k, v and o_proj biases), which llama.cpp's qwen3 cannot hold: refused.
[TransformerModel(Config = "Export.Tests/Configs/qwen3-bias/config.json", SeqLen = 24)]
public partial class Qwen3BiasModel { }

// Phi-3: fused qkv_proj and gate_up_proj (the fixture: 5 heads of 6 over hidden 30, inner size 43, untied; a window of 15).
[TransformerModel(Config = "HuggingFace/Configs/phi3/config.json", SeqLen = 15)]
public partial class Phi3Model { }

[TransformerModel(Config = "Export.Tests/Configs/phi3-blocks/config.json", SeqLen = 24)]
public partial class Phi3BlocksModel { }

// Phi-3 whose heads span less than the hidden size (head_dim 8 × 2 heads over 32), which llama.cpp's phi3 cannot hold: refused.
[TransformerModel(Config = "Export.Tests/Configs/phi3-head-dim/config.json", SeqLen = 8)]
public partial class Phi3HeadDimModel { }

// Gemma 3 shaped as llama.cpp's gemma3 computes it (Configs/README.md): six layers, the sixth full and the others sliding
// through a window shorter than SeqLen, one key/value head, query_pre_attn_scalar = head_dim, rope_local_base_freq 1e4; odd
// sizes with linear rotary scaling, and a second shaped for Q8_0 blocks with seven layers.
[TransformerModel(Config = "Export.Tests/Configs/gemma3-llamacpp/config.json", SeqLen = 16)]
public partial class Gemma3LlamaCppModel { }

[TransformerModel(Config = "Export.Tests/Configs/gemma3-blocks/config.json", SeqLen = 24)]
public partial class Gemma3BlocksModel { }

// Gemma 3 with attention_bias (q, k, v and o_proj biases), which llama.cpp's gemma3 does not read: refused.
[TransformerModel(Config = "Export.Tests/Configs/gemma3-bias/config.json", SeqLen = 8)]
public partial class Gemma3BiasModel { }

// Scaled rotary positions (Configs/README.md): llama3 and linear on llama-blocks' shapes, YaRN on Qwen2's (rope_scaling) and
// Qwen3's (transformers 5's rope_parameters), LongRoPE on Phi-3's; each exported to GGUF with its scaling and without.
[TransformerModel(Config = "Export.Tests/Configs/llama3-scaled/config.json", SeqLen = 24)]
public partial class Llama3ScaledModel { }

[TransformerModel(Config = "Export.Tests/Configs/llama-linear/config.json", SeqLen = 24)]
public partial class LlamaLinearModel { }

[TransformerModel(Config = "Export.Tests/Configs/qwen2-yarn-blocks/config.json", SeqLen = 24)]
public partial class Qwen2YarnModel { }

[TransformerModel(Config = "Export.Tests/Configs/qwen3-yarn/config.json", SeqLen = 24)]
public partial class Qwen3YarnModel { }

[TransformerModel(Config = "Export.Tests/Configs/phi3-longrope-blocks/config.json", SeqLen = 24)]
public partial class Phi3LongRopeModel { }

[TransformerModel(Config = "HuggingFace/Configs/gpt2/config.json", SeqLen = 11)]
public partial class Gpt2Model { }

[TransformerModel(Config = "Export.Tests/Configs/llama-blocks/config.json", SeqLen = 24)]
public partial class LlamaBlocksModel { }

[TransformerModel(Config = "Export.Tests/Configs/qwen2-blocks/config.json", SeqLen = 24)]
public partial class Qwen2BlocksModel { }

[TransformerModel(Config = "Export.Tests/Configs/gpt2-blocks/config.json", SeqLen = 24)]
public partial class Gpt2BlocksModel { }

// This project's own decoder (the TinyLm sample's kind: LayerNorm, erf GELU, interleaved rotary), which has no llama.cpp architecture.
[TransformerModel(Vocab = 29, DModel = 32, Heads = 2, Layers = 1, DFF = 64, SeqLen = 8, Positional = Positional.Rotary)]
public partial class NativeModel { }

[TransformerModel(Config = "Export.Tests/Configs/gpt2-vocab/config.json", SeqLen = 32)]
public partial class Gpt2VocabModel { }

[TransformerModel(Config = "Export.Tests/Configs/llama-spm/config.json", SeqLen = 32)]
public partial class LlamaSpmModel { }
