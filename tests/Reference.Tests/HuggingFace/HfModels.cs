using TransformerGen;

namespace TransformerGen.Reference.Tests.HuggingFace;

// Models compiled from the fixture configs (listed as TransformerConfig items in the project): the generator reads each
// config.json at compile time; the tests then load files that HfReference wrote in the family's layout.

[TransformerModel(Config = "HuggingFace/Configs/gpt2/config.json", SeqLen = 11, Batch = 2)]
public partial class HfGpt2Model { }

[TransformerModel(Config = "HuggingFace/Configs/bert/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfBertModel { }

// bge-style: the same BERT, its sentence embedding pooled from the [CLS] token (1_Pooling/config.json: pooling_mode_cls_token).
[TransformerModel(Config = "HuggingFace/Configs/bert/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding, Pooling = Pooling.FirstToken)]
public partial class HfBertClsModel { }

// Fine-tuned classifiers: BertForSequenceClassification (Head defaults to Classification), BertForTokenClassification,
// RobertaForSequenceClassification; Classes comes from id2label.
[TransformerModel(Config = "HuggingFace/Configs/bert-classifier/config.json", SeqLen = 9, Batch = 3)]
public partial class HfBertClassifierModel { }

[TransformerModel(Config = "HuggingFace/Configs/bert-tagger/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.Tagging)]
public partial class HfBertTaggerModel { }

[TransformerModel(Config = "HuggingFace/Configs/distilbert/config.json", SeqLen = 17, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfDistilBertModel { }

[TransformerModel(Config = "HuggingFace/Configs/distilbert-classifier/config.json", SeqLen = 11, Batch = 3)]
public partial class HfDistilBertClassifierModel { }

// A cross-encoder: one output (a score) and no loss of its own; the caller's loss seeds Backward.
[TransformerModel(Config = "HuggingFace/Configs/bert-cross-encoder/config.json", SeqLen = 9, Batch = 3)]
public partial class HfBertCrossEncoderModel { }

[TransformerModel(Config = "HuggingFace/Configs/roberta-classifier/config.json", SeqLen = 12, Batch = 2)]
public partial class HfRobertaClassifierModel { }

// RoBERTa (all-distilroberta-v1-shaped): SeqLen 12 takes every one of the 14-row table's positions after pad + 1 = 2.
[TransformerModel(Config = "HuggingFace/Configs/roberta/config.json", SeqLen = 12, Batch = 2, Head = EncoderHead.SentenceEmbedding)]
public partial class HfRobertaModel { }

[TransformerModel(Config = "HuggingFace/Configs/llama-gqa/config.json", SeqLen = 13, Batch = 2)]
public partial class HfLlamaGqaModel { }

[TransformerModel(Config = "HuggingFace/Configs/llama-mqa/config.json", SeqLen = 10, Batch = 2)]
public partial class HfLlamaMqaModel { }

[TransformerModel(Config = "HuggingFace/Configs/qwen2/config.json", SeqLen = 12, Batch = 2)]
public partial class HfQwen2Model { }

// Phi-3-mini-shaped: fused qkv_proj and gate_up_proj; SeqLen within its sliding window.
[TransformerModel(Config = "HuggingFace/Configs/phi3/config.json", SeqLen = 15, Batch = 2)]
public partial class HfPhi3Model { }

// Qwen3-0.6B-shaped: 4 query heads on 2 key/value heads of 14 (4·14 ≠ 34 = hidden), q_norm/k_norm, tied, θ 1e6.
[TransformerModel(Config = "HuggingFace/Configs/qwen3/config.json", SeqLen = 13, Batch = 2)]
public partial class HfQwen3Model { }

// Scaled rotary positions, each with an original context small enough that the scaling acts within SeqLen. Llama 3.1's
// llama3 kind: 4 query heads on 2 key/value heads of 14, θ 100 and an original context of 64, so that of the 7 pairs one
// keeps its frequency, three blend it with the divided one and three are divided by the factor 4.
[TransformerModel(Config = "HuggingFace/Configs/llama3-rope/config.json", SeqLen = 13, Batch = 2)]
public partial class HfLlama3RopeModel { }

// The same model in transformers 5's form: rope_theta and the llama3 keys under rope_parameters; 16 positions.
[TransformerModel(Config = "HuggingFace/Configs/llama3-rope-parameters/config.json", SeqLen = 16, Batch = 2)]
public partial class HfLlama3RopeParametersModel { }

// Qwen2.5's yarn setting in small: factor 4 over an original context of 16, θ 20 and 3 heads of 14 on one key/value head,
// so that the ramp between the kept and the interpolated frequencies spans pairs 0–3; cos and sin × (0.1·ln 4 + 1).
[TransformerModel(Config = "HuggingFace/Configs/qwen2-yarn/config.json", SeqLen = 14, Batch = 2)]
public partial class HfQwen2YarnModel { }

// Phi-3-128k's longrope in small: 64 positions over an original context of 16 (the top-level key), 3 heads of 10 whose
// 5 pairs are divided by short_factor within it; cos and sin × √(1 + ln 4 / ln 16).
[TransformerModel(Config = "HuggingFace/Configs/phi3-longrope/config.json", SeqLen = 15, Batch = 2)]
public partial class HfPhi3LongRopeModel { }

// Helsinki-NLP/opus-mt-shaped MarianMTModel: an encoder–decoder from config.json (shared tied table, final_logits_bias,
// split sinusoid positions, post-LN, SiLU), source 11 and target 9 positions.
[TransformerModel(Config = "HuggingFace/Configs/marian/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 2)]
public partial class HfMarianModel { }

// facebook/bart-base-shaped BartForConditionalGeneration: learned positions 2 rows in (14 + 2 rows per stack),
// layernorm_embedding, post-LN, erf gelu, pad 1, decoder start = eos = 2; 3 heads of 6.
[TransformerModel(Config = "HuggingFace/Configs/bart/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 2)]
public partial class HfBartModel { }

// facebook/mbart-large-50-shaped MBartForConditionalGeneration: BART's embeddings scaled by √d, pre-LN layers and a final
// layer_norm per stack.
[TransformerModel(Config = "HuggingFace/Configs/mbart/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 2)]
public partial class HfMBartModel { }

// facebook/nllb-200-distilled-600M-shaped M2M100ForConditionalGeneration: mBART's pre-LN stacks without layernorm_embedding
// or final_logits_bias, fairseq's sinusoids numbered from pad + 1 = 2, relu, 2 heads of 11, vocab 45.
[TransformerModel(Config = "HuggingFace/Configs/m2m100/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 2)]
public partial class HfM2M100Model { }

// nomic-ai/nomic-embed-text-v1.5-shaped NomicBertModel (its hub code's GPT2Config keys): rotary base 1000, fused Wqkv,
// SwiGLU gated by fc12, no biases, n_inner 40 rounded up to 256 as NomciBertGatedMLP does; 4 heads of 6, vocab 53.
[TransformerModel(Config = "HuggingFace/Configs/nomic-bert/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfNomicBertModel { }

// sentence-transformers/all-mpnet-base-v2-shaped MPNetForMaskedLM: BERT's post-LN layers under MPNet's names, RoBERTa's
// positions from the padding id 1, one relative-position bias (32 buckets up to 128) for the encoder; 3 heads of 10, vocab
// 47. 40 positions, so that distances reach the logarithmic buckets.
[TransformerModel(Config = "HuggingFace/Configs/mpnet/config.json", SeqLen = 40, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfMPNetModel { }

// gemma-3-1b-shaped Gemma3ForCausalLM: 3 heads of 10 on one key/value head, RMSNorm × (1 + w) around each sub-layer and on
// q and k, GEGLU, embeddings × √24, layers 0 and 1 sliding (a window of 4 keys, rotary base 1e4), layer 2 full (1e6,
// linear scaling 8), scores × 12^−½; 9 positions, so the window and the decode past it both matter.
[TransformerModel(Config = "HuggingFace/Configs/gemma3/config.json", SeqLen = 9, Batch = 2)]
public partial class HfGemma3Model { }

// The same with the tiled kernels: the window and the score factor through FlashForward/FlashBackward.
[TransformerModel(Config = "HuggingFace/Configs/gemma3/config.json", SeqLen = 9, Batch = 2, AttentionKernel = AttentionKernel.Tiled)]
public partial class HfGemma3TiledModel { }

// t5-small-shaped T5ForConditionalGeneration (v1.0): relu, the head tied to "shared" and reading the decoder's output
// × d_model^−½, 3 heads of 12 (36 ≠ d_model 44), 2 encoder and 3 decoder layers, 8 relative buckets up to 20.
[TransformerModel(Config = "HuggingFace/Configs/t5/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 2)]
public partial class HfT5Model { }

// google/flan-t5-small-shaped (v1.1): GEGLU with the tanh GELU (wi_0, wi_1), an untied lm_head, 4 heads of 20 (80 ≠ 52).
[TransformerModel(Config = "HuggingFace/Configs/flan-t5/config.json", SeqLen = 11, TargetSeqLen = 9, Batch = 2)]
public partial class HfFlanT5Model { }

// google/embeddinggemma-300m-shaped sentence-transformers folder: a bidirectional Gemma 3 (3 heads of 10 on one key/value
// head, width 20, layers 0 and 1 sliding with a file window of 6, so |i − j| ≤ 3, layer 2 global), the final norm, mean
// pooling, 2_Dense 20 → 33 (no bias, Identity) and 3_Dense 33 → 17 (bias, tanh), L2 normalization; 9 positions, so
// the window matters.
[TransformerModel(Config = "HuggingFace/Configs/embeddinggemma/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfEmbeddingGemmaModel { }

// The same with the tiled kernels: the two-sided window through FlashForward/FlashBackward and the exact-length tiles.
[TransformerModel(Config = "HuggingFace/Configs/embeddinggemma/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding, AttentionKernel = AttentionKernel.Tiled)]
public partial class HfEmbeddingGemmaTiledModel { }

// A LaBSE-shaped sentence-transformers folder on bert/'s BertModel: [CLS] pooling and a Dense layer 30 → 30 with bias
// and tanh, both read from the folder's modules (the declaration names neither).
[TransformerModel(Config = "HuggingFace/Configs/bert-dense/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfBertDenseModel { }

// ModernBERT (ModernBertModel under sentence-transformers, mean pooling): 12 positions so that the local layers' window
// (|i − j| ≤ 3) leaves most pairs out; and the same with the tiled kernels.
[TransformerModel(Config = "HuggingFace/Configs/modernbert/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfModernBertModel { }

[TransformerModel(Config = "HuggingFace/Configs/modernbert/config.json", SeqLen = 12, Batch = 3, Head = EncoderHead.SentenceEmbedding, AttentionKernel = AttentionKernel.Tiled)]
public partial class HfModernBertTiledModel { }

// ModernBertForSequenceClassification: 3 labels, mean pooling, the prediction head (head.dense, GELU, head.norm).
[TransformerModel(Config = "HuggingFace/Configs/modernbert-classifier/config.json", SeqLen = 13, Batch = 3)]
public partial class HfModernBertClassifierModel { }

// ModernBertForTokenClassification: the prediction head and the classifier on every token (5 labels, with biases).
[TransformerModel(Config = "HuggingFace/Configs/modernbert-tagger/config.json", SeqLen = 13, Batch = 3, Head = EncoderHead.Tagging)]
public partial class HfModernBertTaggerModel { }

// ELECTRA: an ElectraForPreTraining checkpoint (embedding_size 20 ≠ hidden 36, so embeddings_project) read as a sentence
// embedder, mean pooling; ElectraForSequenceClassification with 3 labels (E 22 ≠ H 34; classifier.dense, GELU,
// classifier.out_proj), the one-label reranker (E = H = 30, no projection; a score), ElectraForTokenClassification.
[TransformerModel(Config = "HuggingFace/Configs/electra/config.json", SeqLen = 11, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class HfElectraModel { }

[TransformerModel(Config = "HuggingFace/Configs/electra-classifier/config.json", SeqLen = 10, Batch = 3)]
public partial class HfElectraClassifierModel { }

[TransformerModel(Config = "HuggingFace/Configs/electra-reranker/config.json", SeqLen = 9, Batch = 3)]
public partial class HfElectraRerankerModel { }

[TransformerModel(Config = "HuggingFace/Configs/electra-tagger/config.json", SeqLen = 10, Batch = 3, Head = EncoderHead.Tagging)]
public partial class HfElectraTaggerModel { }
