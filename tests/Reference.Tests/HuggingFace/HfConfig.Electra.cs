using System;
using System.IO;
using System.Text.Json.Nodes;

namespace TransformerGen.Reference.Tests.HuggingFace;

// ELECTRA's part of the config: BERT's fields (HfFamily.Bert, model_type "electra") read with ElectraConfig's defaults,
// plus embedding_size, the width of the embedding tables and their LayerNorm.
internal sealed partial record HfConfig
{
    private readonly int _inputEmbeddingSize;

    /// <summary>
    /// ELECTRA <c>embedding_size</c>: the width E of the word, position and token type tables and of the embeddings'
    /// LayerNorm; where it differs from <see cref="HiddenSize"/>, <c>embeddings_project</c> (Linear(E, H)) maps the
    /// embeddings to the encoder's width. The hidden size for every other family.
    /// </summary>
    public int InputEmbeddingSize
    {
        get => _inputEmbeddingSize > 0 ? _inputEmbeddingSize : HiddenSize;
        init => _inputEmbeddingSize = value;
    }

    /// <summary>Whether ElectraModel builds <c>embeddings_project</c>: only when <c>embedding_size</c> ≠ <c>hidden_size</c>.</summary>
    public bool ProjectsEmbeddings => InputEmbeddingSize != HiddenSize;

    // configuration_electra.py (ElectraConfig, electra-small-discriminator's sizes): vocab 30522, embedding_size 128,
    // hidden 256, 12 layers of 4 heads, intermediate 1024, erf gelu, 512 positions, 2 token types, ε 1e-12, pad 0,
    // position_embedding_type "absolute". The summary_* keys feed ElectraForMultipleChoice's SequenceSummary only, the
    // dropouts and initializer_range change nothing here; ElectraClassificationHead ignores hidden_act (it hard-codes
    // get_activation("gelu")). A decoder (ElectraForCausalLM with is_decoder) or cross-attention is refused.
    private static HfConfig Electra(JsonObject json)
    {
        if (Bool(json, "is_decoder") == true) throw new NotSupportedException("ELECTRA as a decoder (is_decoder) is not implemented");
        if (Bool(json, "add_cross_attention") == true) throw new NotSupportedException("ELECTRA cross-attention is not implemented");
        HfConfig bert = Bert(json, "electra", (Hidden: 256, Layers: 12, Heads: 4, Inner: 1024));
        int embedding = Int(json, "embedding_size") ?? 128;
        if (embedding < 1) throw new InvalidDataException($"embedding_size {embedding}");
        return bert with { InputEmbeddingSize = embedding };
    }
}
