using TransformerGen;

namespace TransformerGen.Export.Tests;

// The models of the ONNX export tests, at odd sizes (no width a multiple of 16), with Batch > 1 so that one batched
// Forward gives every sequence's outputs to compare with ONNX Runtime's.

// Hugging Face families: GPT-2 (tied, tanh GELU), BERT (sentence embedding, token types, eps 1e-12, padding id 0),
// Llama with grouped-query attention and rotate_half rotary (untied head), Llama with one key/value head (tied), Qwen2
// (q/k/v biases, tied), Qwen3 (q_norm and k_norm of each head, head_dim 14 with 4 heads on 2 over hidden 34, tied; and
// with attention_bias: q, k, v and o_proj biases, untied).
[TransformerModel(Config = "HuggingFace/Configs/gpt2/config.json", SeqLen = 11, Batch = 3)]
public partial class OnnxGpt2 { }

[TransformerModel(Config = "HuggingFace/Configs/bert/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxBert { }

[TransformerModel(Config = "HuggingFace/Configs/bert/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.SentenceEmbedding, Pooling = Pooling.FirstToken)]
public partial class OnnxBertCls { }

[TransformerModel(Config = "HuggingFace/Configs/roberta/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxRoberta { }

[TransformerModel(Config = "HuggingFace/Configs/qwen3/config.json", SeqLen = 11, Batch = 2)]
public partial class OnnxQwen3 { }

[TransformerModel(Config = "Export.Tests/Configs/qwen3-bias/config.json", SeqLen = 9, Batch = 2)]
public partial class OnnxQwen3Bias { }

[TransformerModel(Config = "HuggingFace/Configs/llama-gqa/config.json", SeqLen = 13, Batch = 2)]
public partial class OnnxLlamaGqa { }

[TransformerModel(Config = "HuggingFace/Configs/llama-mqa/config.json", SeqLen = 10, Batch = 2)]
public partial class OnnxLlamaMqa { }

[TransformerModel(Config = "HuggingFace/Configs/qwen2/config.json", SeqLen = 12, Batch = 2)]
public partial class OnnxQwen2 { }

// This project's own decoders: interleaved rotary with an untied head and a padding id; sinusoids, post-LN, ReLU, scaled
// embeddings and a sliding window; learned positions.
[TransformerModel(Vocab = 37, DModel = 30, Heads = 3, Layers = 2, DFF = 53, SeqLen = 11, Batch = 3, Positional = Positional.Rotary,
    TiedEmbeddings = false, PadToken = 0)]
public partial class OnnxNativeRotary { }

[TransformerModel(Vocab = 29, DModel = 20, Heads = 4, Layers = 2, DFF = 35, SeqLen = 9, Batch = 2, Positional = Positional.Sinusoidal,
    Norm = NormPlacement.Post, Activation = Activation.Relu, ScaleEmbeddings = true, AttentionWindow = 3)]
public partial class OnnxNativeWindowed { }

[TransformerModel(Vocab = 31, DModel = 18, Heads = 3, Layers = 3, DFF = 41, SeqLen = 7, Batch = 2, Positional = Positional.Learned)]
public partial class OnnxNativeLearned { }

// This project's own encoders: a [CLS]-pooled classifier, a mean-pooled one with padding, a tagger, a sentence embedder.
[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 33, DModel = 22, Heads = 2, Layers = 2, DFF = 45, SeqLen = 9, Batch = 3,
    Classes = 5, Positional = Positional.Learned)]
public partial class OnnxNativeClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 33, DModel = 30, Heads = 3, Layers = 2, DFF = 45, SeqLen = 9, Batch = 3,
    Classes = 3, Pooling = Pooling.Mean, PadToken = 0, Norm = NormPlacement.Post, Positional = Positional.Rotary)]
public partial class OnnxNativeMeanClassifier { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Head = EncoderHead.Tagging, Vocab = 27, DModel = 14, Heads = 2, Layers = 1, DFF = 23,
    SeqLen = 8, Batch = 2, Classes = 4, PadToken = 0)]
public partial class OnnxNativeTagger { }

[TransformerModel(Architecture = Architecture.EncoderOnly, Head = EncoderHead.SentenceEmbedding, Vocab = 27, DModel = 26, Heads = 2, Layers = 2,
    DFF = 39, SeqLen = 10, Batch = 2, PadToken = 0, Positional = Positional.Sinusoidal, AttentionWindow = 2)]
public partial class OnnxNativeEmbedder { }

// This project's own encoder–decoders (Seq2SeqModel): the paper's kind (post-LN, sinusoids, ReLU, scaled embeddings, padding,
// untied head, its own target vocabulary, two encoder layers on one decoder layer); pre-LN with rotary positions, erf GELU,
// a tied head and a window on both self-attentions; learned positions without a padding id (no decoder_attention_mask).
[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 23, TargetVocab = 19, DModel = 30, Heads = 3, EncoderLayers = 2,
    DecoderLayers = 1, DFF = 37, SeqLen = 9, TargetSeqLen = 7, Batch = 3, PadToken = 0, BosToken = 1, EosToken = 2, TiedEmbeddings = false,
    Positional = Positional.Sinusoidal, Norm = NormPlacement.Post, Activation = Activation.Relu, ScaleEmbeddings = true)]
public partial class OnnxPaperSeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 21, DModel = 28, Heads = 2, Layers = 2, DFF = 35, SeqLen = 11,
    TargetSeqLen = 9, Batch = 2, PadToken = 0, BosToken = 1, EosToken = 2, Positional = Positional.Rotary, Norm = NormPlacement.Pre,
    AttentionWindow = 3)]
public partial class OnnxRotarySeq2Seq { }

[TransformerModel(Architecture = Architecture.EncoderDecoder, Vocab = 17, TargetVocab = 15, DModel = 18, Heads = 3, Layers = 1, DFF = 29,
    SeqLen = 7, TargetSeqLen = 8, Batch = 2, BosToken = 1, EosToken = 2, Positional = Positional.Learned, Norm = NormPlacement.Pre)]
public partial class OnnxLearnedSeq2Seq { }

[TransformerModel(Config = "HuggingFace/Configs/bert-classifier/config.json", SeqLen = 13, Batch = 3)]
public partial class OnnxBertClassifier { }

[TransformerModel(Config = "HuggingFace/Configs/bert-tagger/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.Tagging)]
public partial class OnnxBertTagger { }

[TransformerModel(Config = "HuggingFace/Configs/roberta-classifier/config.json", SeqLen = 12, Batch = 3)]
public partial class OnnxRobertaClassifier { }

[TransformerModel(Config = "HuggingFace/Configs/distilbert/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxDistilBert { }

[TransformerModel(Config = "HuggingFace/Configs/distilbert-classifier/config.json", SeqLen = 13, Batch = 3)]
public partial class OnnxDistilBertClassifier { }

// Phi-3: q/k/v fused in qkv_proj and gate/up in gate_up_proj (5 heads of 6 over hidden 30, inner size 43, untied).
[TransformerModel(Config = "HuggingFace/Configs/phi3/config.json", SeqLen = 12, Batch = 2)]
public partial class OnnxPhi3 { }

// Scaled rotary positions (Configs/README.md): Llama 3's frequency bands, YaRN on Qwen2 (its betas and attention factor
// given), LongRoPE on Phi-3 (short_factor within the original 64 positions, cos and sin × its attention factor).
[TransformerModel(Config = "Export.Tests/Configs/llama3-scaled/config.json", SeqLen = 24, Batch = 2)]
public partial class OnnxLlama3Scaled { }

[TransformerModel(Config = "Export.Tests/Configs/qwen2-yarn-blocks/config.json", SeqLen = 24, Batch = 2)]
public partial class OnnxQwen2Yarn { }

[TransformerModel(Config = "Export.Tests/Configs/phi3-longrope-blocks/config.json", SeqLen = 24, Batch = 2)]
public partial class OnnxPhi3LongRope { }

// Hugging Face encoder–decoders (the reference tests' fixtures): Marian (post-LN, split sinusoids, swish, scaled, decoder
// start = padding id), BART (post-LN, learned positions 2 rows in, layernorm_embedding, erf GELU), mBART (BART's parts
// pre-LN with a final LayerNorm per stack, scaled), M2M100 (pre-LN, fairseq's sinusoids, ReLU, no final_logits_bias).
[TransformerModel(Config = "HuggingFace/Configs/marian/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 3)]
public partial class OnnxMarian { }

[TransformerModel(Config = "HuggingFace/Configs/bart/config.json", SeqLen = 10, TargetSeqLen = 8, Batch = 3)]
public partial class OnnxBart { }

[TransformerModel(Config = "HuggingFace/Configs/mbart/config.json", SeqLen = 12, TargetSeqLen = 9, Batch = 2)]
public partial class OnnxMBart { }

[TransformerModel(Config = "HuggingFace/Configs/m2m100/config.json", SeqLen = 11, TargetSeqLen = 10, Batch = 3)]
public partial class OnnxM2M100 { }

// T5 (the reference tests' fixtures): T5 with a tied head read × d_model^−½, ReLU, 3 heads of d_kv 12 (36 ≠ d_model 44), 8
// buckets up to distance 20; Flan-T5 with its own lm_head, GEGLU with the tanh GELU, 4 heads of 20 over 52, 10 buckets up to
// 24. Both run longer than their max distance, so that every kind of bucket (exact, logarithmic, the last) is looked up.
[TransformerModel(Config = "HuggingFace/Configs/t5/config.json", SeqLen = 23, TargetSeqLen = 22, Batch = 3)]
public partial class OnnxT5 { }

[TransformerModel(Config = "HuggingFace/Configs/flan-t5/config.json", SeqLen = 27, TargetSeqLen = 26, Batch = 2)]
public partial class OnnxFlanT5 { }

// MPNet (the reference tests' fixture, all-mpnet-base-v2's shape in small): learned positions after the padding id 1, no
// token types, and one relative-position table for the encoder whose bias every layer adds to its scaled scores. 40
// positions reach distances past the 8 exact buckets (up to 39: logarithmic ones); the classifier is RoBERTa's head.
[TransformerModel(Config = "HuggingFace/Configs/mpnet/config.json", SeqLen = 40, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxMPNet { }

[TransformerModel(Config = "Export.Tests/Configs/mpnet-classifier/config.json", SeqLen = 20, Batch = 3)]
public partial class OnnxMPNetClassifier { }

// ELECTRA (the reference tests' fixtures): embeddings 20 wide under layers of 36 with embeddings_project between them, as a
// sentence embedder pooled by the mean and from [CLS]; ElectraForSequenceClassification (22 → 34, 3 labels: classifier.dense,
// erf GELU, classifier.out_proj); a one-label reranker whose embeddings are as wide as its layers (30, no projection); and
// ElectraForTokenClassification (22 → 34, 5 labels).
[TransformerModel(Config = "HuggingFace/Configs/electra/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxElectra { }

[TransformerModel(Config = "HuggingFace/Configs/electra/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.SentenceEmbedding, Pooling = Pooling.FirstToken)]
public partial class OnnxElectraCls { }

[TransformerModel(Config = "HuggingFace/Configs/electra-classifier/config.json", SeqLen = 13, Batch = 3)]
public partial class OnnxElectraClassifier { }

[TransformerModel(Config = "HuggingFace/Configs/electra-reranker/config.json", SeqLen = 13, Batch = 3)]
public partial class OnnxElectraReranker { }

[TransformerModel(Config = "HuggingFace/Configs/electra-tagger/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.Tagging)]
public partial class OnnxElectraTagger { }

// NomicBERT, whose export is not built: it must be refused, not written wrong.
[TransformerModel(Config = "HuggingFace/Configs/nomic-bert/config.json", SeqLen = 9, Batch = 2, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxNomicBert { }

// Gemma 3 (the reference tests' fixture: sandwich norms, (1 + w) scales, a 4-key window on layers 0 and 1 with their own
// rotary base, layer 2 global with linear scaling 8, scores × 12^−½), whose GGUF export refuses this fixture (two layers
// in three slide; llama.cpp's gemma3 slides five in six).
[TransformerModel(Config = "HuggingFace/Configs/gemma3/config.json", SeqLen = 9, Batch = 2)]
public partial class ExportGemma3 { }

// EmbeddingGemma (the reference tests' fixture: bidirectional Gemma 3, |i − j| ≤ 3 on the sliding layers, mean pooling,
// Dense 20 → 33 → 17 with the second's bias and tanh).
[TransformerModel(Config = "HuggingFace/Configs/embeddinggemma/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxEmbeddingGemma { }

// A LaBSE-shaped sentence-transformers folder (the reference tests' bert-dense): BERT, [CLS] pooling and a Dense layer
// 30 → 30 with bias and tanh, read from the folder's modules.
[TransformerModel(Config = "HuggingFace/Configs/bert-dense/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxBertDense { }

// A dot-product retrieval embedder (multi-qa-MiniLM-L6-dot-v1's form, Configs/bert-dot): BERT and [CLS] pooling, no
// Normalize module, so its embeddings are the pooled vectors as they are.
[TransformerModel(Config = "Configs/bert-dot/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxBertDot { }

// ModernBERT (Configs/modernbert: 3 heads of 12 over 36, inner size 50, four layers of which 0 and 3 are global and 1 and 2
// local with |i − j| ≤ 3, padding id 52, LayerNorms without a shift, no biases; mean pooling and Normalize from its
// sentence-transformers modules). Configs/modernbert-bias: the same with norm_bias, attention_bias and mlp_bias, its bases
// in transformers 5's rope_parameters (80000 and 20000), [CLS] pooling and a Dense layer 36 → 23 with bias and tanh. Eleven
// and twelve positions, so that keys fall outside the local layers' window.
[TransformerModel(Config = "Export.Tests/Configs/modernbert-plain/config.json", SeqLen = 11, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxModernBert { }

[TransformerModel(Config = "Export.Tests/Configs/modernbert-bias/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxModernBertBias { }

// ModernBERT with the tanh GELU in its GEGLU (hidden_activation gelu_pytorch_tanh), three layers of period 2 (0 and 2 global,
// 1 local with |i − j| ≤ 2), 3 heads of 10, ε 1e-6, and no sentence-transformers modules beside it (the declaration's mean
// pooling stands, no Dense).
[TransformerModel(Config = "Export.Tests/Configs/modernbert-tanh/config.json", SeqLen = 10, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class OnnxModernBertTanh { }
