using System;
using System.Collections.Generic;

namespace TransformerGen;

/// <summary>
/// The compile-time facts a generated model hands to <see cref="TransformerModel"/>: its sizes, its parameter
/// table and the size of each buffer the memory plan laid out. Generated code builds one per model type.
/// </summary>
public sealed class ModelLayout
{
    /// <summary>Describes a model; the generator fills every argument with literals.</summary>
    public ModelLayout(
        string name, int vocab, int seqLen, int batch,
        ParameterTensor[] tensors, int parameterCount,
        int activationCount, int constantCount, int inferenceCount, int keyValueCount,
        int logitsOffset, int logitsLength, int inferenceLogitsOffset)
    {
        Name = name;
        Vocab = vocab;
        SeqLen = seqLen;
        Batch = batch;
        Tensors = Array.AsReadOnly((ParameterTensor[])tensors.Clone());
        ParameterCount = parameterCount;
        ActivationCount = activationCount;
        ConstantCount = constantCount;
        InferenceCount = inferenceCount;
        KeyValueCount = keyValueCount;
        LogitsOffset = logitsOffset;
        LogitsLength = logitsLength;
        InferenceLogitsOffset = inferenceLogitsOffset;
        TargetVocab = vocab;
        TargetLength = batch * seqLen;
        DecoderSeqLen = seqLen;
        // Tensors of later segments are checked once those are set (ParameterSegments), and by every model built on the layout.
        _parameterSegments = [parameterCount];
        CheckSegments(Tensors, _parameterSegments, firstOnly: true);
    }

    /// <summary>Throws unless every tensor lies inside its segment.</summary>
    internal void CheckSegments() => CheckSegments(Tensors, _parameterSegments, firstOnly: false);

    private static void CheckSegments(IReadOnlyList<ParameterTensor> tensors, int[] segments, bool firstOnly = false)
    {
        foreach (ParameterTensor t in tensors)
        {
            if (firstOnly && t.Segment > 0) continue;
            if (t.Segment >= segments.Length)
                throw new ArgumentException($"tensor '{t.Name}' lies in parameter segment {t.Segment}, but the layout has {segments.Length}", nameof(tensors));
            if (t.Offset + (long)t.Length > segments[t.Segment])
                throw new ArgumentException($"tensor '{t.Name}' ends past parameter segment {t.Segment} ({segments[t.Segment]} floats)", nameof(tensors));
        }
    }

    /// <summary>The model's class name.</summary>
    public string Name { get; }
    /// <summary>Number of token ids.</summary>
    public int Vocab { get; }
    /// <summary>Positions per sequence.</summary>
    public int SeqLen { get; }
    /// <summary>Sequences per training step.</summary>
    public int Batch { get; }
    /// <summary>Tokens per training step: <c>Batch · SeqLen</c>.</summary>
    public int TokensPerStep => Batch * SeqLen;
    /// <summary>Every parameter tensor, in buffer order.</summary>
    public IReadOnlyList<ParameterTensor> Tensors { get; }
    /// <summary>
    /// Floats in the parameter buffer (and in the gradient buffer), including alignment padding; for a model of more
    /// parameters than one buffer holds, the first of its <see cref="ParameterSegments"/>.
    /// </summary>
    public int ParameterCount { get; }

    private int[] _parameterSegments;

    /// <summary>
    /// The floats of each buffer the parameters are laid out in: one, of <see cref="ParameterCount"/> floats, unless the
    /// model has more than one array holds (2³¹ − 1 floats), which the compiler then splits between tensors
    /// (<see cref="ParameterTensor.Segment"/>). A model of several segments runs for inference only: training, reading
    /// <see cref="TransformerModel.Parameters"/>, saving and exporting need its parameters as one span.
    /// </summary>
    /// <exception cref="ArgumentException">The first is not <see cref="ParameterCount"/>, one is negative, or a tensor does not fit its segment.</exception>
    public IReadOnlyList<int> ParameterSegments
    {
        get => _parameterSegments;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            int[] segments = [.. value];
            if (segments.Length == 0 || segments[0] != ParameterCount)
                throw new ArgumentException($"the first parameter segment is the parameter buffer of {ParameterCount} floats", nameof(ParameterSegments));
            foreach (int floats in segments)
                if (floats < 0) throw new ArgumentException($"a parameter segment of {floats} floats", nameof(ParameterSegments));
            CheckSegments(Tensors, segments);
            _parameterSegments = segments;
        }
    }

    /// <summary>Parameter floats of every segment together, alignment padding included.</summary>
    public long TotalParameterFloats
    {
        get
        {
            long total = 0;
            foreach (int floats in _parameterSegments) total += floats;
            return total;
        }
    }
    /// <summary>Floats in the training workspace (activations kept for backward).</summary>
    public int ActivationCount { get; }
    /// <summary>
    /// Floats of the backward pass's buffer: the activations' gradients, each in a slot while it is live, which later ones
    /// reuse (about one layer's worth rather than <see cref="ActivationCount"/>), and, with <c>RecomputeActivations</c>,
    /// the activation outputs it computes again while it needs them.
    /// </summary>
    public int ActivationGradientCount { get; init; }
    /// <summary>Where the gradient of the logits (the output a model without a loss of its own is seeded with) starts in the activation gradients.</summary>
    public int LogitsGradientOffset { get; init; }
    /// <summary>Floats of fixed tables (sinusoids, rotary angles).</summary>
    public int ConstantCount { get; }
    /// <summary>Floats in the inference workspace (one sequence, buffers reused across layers).</summary>
    public int InferenceCount { get; }
    /// <summary>Floats in the key/value cache of cached decoding.</summary>
    public int KeyValueCount { get; }
    /// <summary>Where the logits of the last forward pass start in the training workspace.</summary>
    public int LogitsOffset { get; }
    /// <summary>Floats of logits: targets per step times the target vocabulary (or classes).</summary>
    public int LogitsLength { get; }
    /// <summary>Which stacks the model has.</summary>
    public Architecture Architecture { get; init; }
    /// <summary>Ids a target may take: the (target) vocabulary, or the classes of an encoder-only model.</summary>
    public int TargetVocab { get; init; }
    /// <summary>Targets per <see cref="TransformerModel.Forward"/> call: one per token, or one per sequence for a classifier.</summary>
    public int TargetLength { get; init; }
    /// <summary>Positions of the decoder's sequence (<see cref="SeqLen"/> for a decoder-only model).</summary>
    public int DecoderSeqLen { get; init; }
    /// <summary>
    /// Tokens one inference pass takes at most, which the inference workspace is sized for: an encoder-only model's
    /// <c>Batch·SeqLen</c>; a decoder-only model's SeqLen (<see cref="Sequences"/> if more), over all the sequences of one
    /// <c>Append</c>; an encoder–decoder's source of SeqLen.
    /// </summary>
    public int InferenceTokens { get; init; }
    /// <summary>
    /// A decoder-only model's key/value cache slots: how many sequences an instance holds and one <c>Append</c> runs
    /// together (the declaration's Sequences, else Batch); 1 for the other architectures.
    /// </summary>
    public int Sequences { get; init; } = 1;
    /// <summary>The attention probabilities of every layer, readable after a forward pass through <see cref="TransformerModel.AttentionMap"/>.</summary>
    public ActivationTensor[] AttentionMaps { get; init; } = [];
    /// <summary>The padding id, or -1.</summary>
    public int PadToken { get; init; } = -1;
    /// <summary>The begin-of-sequence id of an encoder–decoder's decoder, or -1.</summary>
    public int BosToken { get; init; } = -1;

    /// <summary>
    /// Teacher forcing starts each target's decoder input from its last label before the ignored ones instead of from
    /// <see cref="BosToken"/>, as mBART's <c>shift_tokens_right</c> does (the same for mBART-50's targets, which end with
    /// &lt;/s&gt;; the target language code for mBART-cc25's, which end with it). Encoder–decoders only.
    /// </summary>
    public bool DecoderStartsFromLastLabel { get; init; }

    /// <summary>An encoder–decoder's decoder layers, whose self-attention keys and values start the key/value cache.</summary>
    public int DecoderLayers { get; init; }

    /// <summary>
    /// Floats of one position's keys (or values) in an encoder–decoder's decoder cache: layer l's keys are
    /// <see cref="DecoderSeqLen"/> rows of this width at <c>2·l·DecoderSeqLen·width</c>, its values right after them.
    /// </summary>
    public int DecoderCacheWidth { get; init; }
    /// <summary>The end-of-sequence id that stops decoding, or -1.</summary>
    public int EosToken { get; init; } = -1;
    /// <summary>
    /// Every id that ends a generation where the config lists several (<c>eos_token_id</c>: Llama 3 Instruct's 128001,
    /// 128008 and 128009), <see cref="EosToken"/> first; empty where it gives one id or none.
    /// </summary>
    public IReadOnlyList<int> EndTokens { get; init; } = [];
    /// <summary>Where the next-token logits <c>[Vocab]</c> start in the inference workspace.</summary>
    public int InferenceLogitsOffset { get; }
    /// <summary>
    /// Whose checkpoint layout the parameter names follow: this project's own (PyTorch <c>nn.Transformer</c> names), or a
    /// Hugging Face family's, whose files may carry a name prefix, legacy names and buffers that are not parameters.
    /// </summary>
    public CheckpointFamily Family { get; init; } = CheckpointFamily.Native;
    /// <summary>Where the last hidden state <c>[Batch·SeqLen, DModel]</c> starts in the training workspace, or -1 where it is not exposed.</summary>
    public int HiddenStateOffset { get; init; } = -1;
    /// <summary>Floats of the last hidden state.</summary>
    public int HiddenStateLength { get; init; }
    /// <summary>Where an encoder–decoder's encoder output <c>[Batch·SeqLen, DModel]</c> starts in the training workspace, or -1.</summary>
    public int EncoderStateOffset { get; init; } = -1;
    /// <summary>Floats of the encoder output.</summary>
    public int EncoderStateLength { get; init; }
    /// <summary>Rows of the token-type table (BERT's <c>type_vocab_size</c>): the segments a token may be given; 0 when the model has none.</summary>
    public int TokenTypes { get; init; }
    /// <summary>
    /// True when the model computes no loss of its own (a sentence embedder, or a classifier of scores: a cross-encoder, a
    /// regression or multi-label head): its backward pass starts from a gradient of <see cref="TransformerModel.Logits"/>
    /// that the caller gives to <see cref="TransformerModel.Backward(ReadOnlySpan{float})"/>, and Forward reads no targets.
    /// </summary>
    public bool SeededOutput { get; init; }
    /// <summary>
    /// How an encoder-only model's classification or sentence-embedding head turns a sequence into one vector: the mean of
    /// its non-padding positions or its first token (<c>[CLS]</c>). As compiled: a sentence embedding pools by the mean
    /// unless the declaration says <c>Pooling = Pooling.FirstToken</c>. Decoders and tagging heads do not pool.
    /// </summary>
    public Pooling Pooling { get; init; }
    /// <summary>
    /// True for a sentence embedder compiled from a sentence-transformers folder whose modules.json lists no
    /// <c>Normalize</c> module (the "dot" retrieval models, scored by the dot product): its embeddings are the pooled (and
    /// Dense) vectors as they are. False otherwise: a sentence embedder's embeddings have unit L2 norm.
    /// </summary>
    public bool UnnormalizedEmbeddings { get; init; }
    /// <summary>The tiled attentions (<c>AttentionKernel.Tiled</c>), whose maps <see cref="TransformerModel.AttentionMap"/> recomputes on request.</summary>
    public TiledAttentionMap[] TiledAttentionMaps { get; init; } = [];
    /// <summary>
    /// The weight matrices an inference instance keeps in the kernels' panel layout (<see cref="Kernels.MatMul.PackPanels"/>):
    /// each region of the parameter buffer that a linear layer reads as one product (several projections stacked by rows
    /// make one), and an embedding table that a tied output head reads.
    /// </summary>
    public WeightMatrix[] PackedMatrices { get; init; } = [];
}

/// <summary>A weight matrix <c>[Rows, Columns]</c> at <see cref="Offset"/> in the parameter buffer (see <see cref="ModelLayout.PackedMatrices"/>).</summary>
/// <param name="Offset">Its first float.</param>
/// <param name="Rows">Output features.</param>
/// <param name="Columns">Input features.</param>
/// <param name="Segment">The parameter segment it lies in (<see cref="ModelLayout.ParameterSegments"/>): 0 but in models of more than 2³¹ − 1 parameter floats.</param>
public readonly record struct WeightMatrix(int Offset, int Rows, int Columns, int Segment = 0);

/// <summary>The checkpoint layouts a model's parameter names can follow (see <see cref="ModelLayout.Family"/>).</summary>
public enum CheckpointFamily
{
    /// <summary>This project's own names (PyTorch's <c>nn.Transformer</c> family); files must match exactly.</summary>
    Native,
    /// <summary>Hugging Face GPT-2 (<c>GPT2LMHeadModel</c>): optional <c>transformer.</c> prefix, Conv1D weights stored [in, out].</summary>
    Gpt2,
    /// <summary>Hugging Face BERT (<c>BertModel</c>, sentence-transformers): optional <c>bert.</c> prefix, legacy <c>gamma</c>/<c>beta</c>.</summary>
    Bert,
    /// <summary>Hugging Face Llama (<c>LlamaForCausalLM</c>, also Mistral-shaped and SmolLM files): optional <c>model.</c> prefix.</summary>
    Llama,
    /// <summary>Hugging Face Qwen2 (<c>Qwen2ForCausalLM</c>): Llama's layout with Q, K and V biases.</summary>
    Qwen2,
    /// <summary>
    /// Hugging Face RoBERTa and XLM-RoBERTa (<c>RobertaModel</c>, <c>XLMRobertaModel</c>, sentence-transformers): BERT's
    /// names under an optional <c>roberta.</c> prefix, positions counted from the padding id + 1.
    /// </summary>
    Roberta,
    /// <summary>Hugging Face Qwen3 (<c>Qwen3ForCausalLM</c>): Llama's layout with a norm of each query and key head (<c>q_norm</c>, <c>k_norm</c>).</summary>
    Qwen3,
    /// <summary>Hugging Face DistilBERT (<c>DistilBertModel</c> and its task models): BERT's post-LN layers under its own names, an optional <c>distilbert.</c> prefix, no token types.</summary>
    DistilBert,
    /// <summary>Hugging Face Phi-3 (<c>Phi3ForCausalLM</c>): Llama's layout with fused <c>qkv_proj</c> and <c>gate_up_proj</c>.</summary>
    Phi3,
    /// <summary>
    /// Hugging Face Marian (<c>MarianMTModel</c>, the opus-mt translation models): an encoder–decoder whose one token table
    /// <c>model.shared</c> embeds both sides and is the head; optional <c>model.</c> prefix, tied copies and the fixed
    /// sinusoid tables skipped.
    /// </summary>
    Marian,
    /// <summary>Hugging Face BART (<c>BartForConditionalGeneration</c>): Marian's names with learned positions and <c>layernorm_embedding</c>.</summary>
    Bart,
    /// <summary>Hugging Face mBART (<c>MBartForConditionalGeneration</c>): BART's names with a final <c>layer_norm</c> on each pre-LN stack.</summary>
    MBart,
    /// <summary>Hugging Face M2M100 and NLLB (<c>M2M100ForConditionalGeneration</c>): mBART's names without the embedding norms and the logits bias.</summary>
    M2M100,
    /// <summary>NomicBERT (nomic-embed-text's <c>NomicBertModel</c>): <c>emb_ln</c>, <c>attn.Wqkv</c>, <c>mlp.fc11/fc12/fc2</c>, <c>norm1/norm2</c>; an optional <c>bert.</c> prefix.</summary>
    NomicBert,
    /// <summary>
    /// Hugging Face T5, Flan-T5 and mT5 (<c>T5ForConditionalGeneration</c>, <c>MT5ForConditionalGeneration</c>): <c>shared</c>,
    /// <c>encoder.block.N.layer.M</c> and <c>decoder.block.N.layer.M</c>, the relative-position tables in block 0; an optional
    /// <c>transformer.</c> prefix, tied copies skipped (or read as the table when the file holds only a copy).
    /// </summary>
    T5,
    /// <summary>
    /// Hugging Face MPNet (<c>MPNetModel</c>, sentence-transformers' all-mpnet-base-v2): BERT's layers with
    /// <c>attention.attn.q/k/v/o</c>, no token types, RoBERTa's positions and the encoder's
    /// <c>relative_attention_bias</c>; an optional <c>mpnet.</c> prefix.
    /// </summary>
    MPNet,
    /// <summary>
    /// Hugging Face Gemma 3's text model (<c>Gemma3ForCausalLM</c>, gemma-3-270m and gemma-3-1b): Llama's names with
    /// q_norm and k_norm and the sandwich norms <c>pre_feedforward_layernorm</c> and <c>post_feedforward_layernorm</c>; the
    /// head tied to <c>model.embed_tokens</c>.
    /// </summary>
    Gemma3,
    /// <summary>
    /// Hugging Face ModernBERT (<c>ModernBertModel</c>, sentence-transformers' ModernBERT embedders): <c>embeddings.tok_embeddings</c>
    /// and <c>embeddings.norm</c>, <c>layers.N.attn.Wqkv/Wo</c>, <c>layers.N.mlp.Wi/Wo</c>, <c>attn_norm</c> (not in layer 0),
    /// <c>mlp_norm</c> and <c>final_norm</c>, LayerNorms without bias; an optional <c>model.</c> prefix.
    /// </summary>
    ModernBert,
    /// <summary>
    /// Hugging Face ELECTRA (<c>ElectraModel</c> and its discriminator's task models): BERT's names under an optional
    /// <c>electra.</c> prefix, no pooler, and <c>embeddings_project</c> where the embeddings are narrower than the layers.
    /// </summary>
    Electra,
}
