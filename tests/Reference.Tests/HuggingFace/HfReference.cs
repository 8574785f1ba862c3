using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TransformerGen.Reference.Tests.HuggingFace;

/// <summary>The dtype a fixture's floating-point weights are written in.</summary>
public enum HfDtype { F32, F16, BF16 }

/// <summary>How <see cref="HfReference.Save"/> lays out a fixture, covering the variants found on the Hub.</summary>
/// <param name="Dtype">
/// The weights' dtype. For F16/BF16 the reference's own weights are first rounded to it (and kept so), so the reference
/// computes with exactly what the file holds. Buffers stay F32/I64.
/// </param>
/// <param name="Prefix">
/// The non-canonical naming: GPT-2 <c>transformer.</c> and BERT <c>bert.</c> (RoBERTa <c>roberta.</c>, DistilBERT
/// <c>distilbert.</c>, ELECTRA <c>electra.</c>) added to every name (not to <c>lm_head.weight</c> or a task head's
/// <c>classifier.*</c>); for Llama/Qwen2 and Gemma 3 <c>model.</c> removed, except EmbeddingGemma (bidirectional Gemma 3), whose default is Gemma3TextModel's bare names and whose <c>Prefix</c> keeps <c>model.</c>. MPNet: MPNetForMaskedLM's layout, <c>mpnet.</c> added to
/// every name and no pooler (its <c>lm_head</c> with <c>IncludeUnusedHeads</c>).
/// </param>
/// <param name="LegacyGammaBeta">BERT only: LayerNorm <c>.gamma</c>/<c>.beta</c> for <c>.weight</c>/<c>.bias</c> (TF-converted files).</param>
/// <param name="IncludeBuffers">
/// The non-parameter buffers: GPT-2 <c>h.{i}.attn.bias</c> F32 [1,1,P,P] (tril) and <c>h.{i}.attn.masked_bias</c> F32 []
/// (−1e4); BERT <c>embeddings.position_ids</c> I64 [1,P]; Llama/Qwen2 <c>model.layers.{i}.self_attn.rotary_emb.inv_freq</c> F32 [D/2];
/// Marian <c>model.encoder.embed_positions.weight</c> and <c>model.decoder.embed_positions.weight</c> F32 [P,E], the sinusoid
/// tables of older converted files (current <c>save_pretrained</c> drops them: pass false for that layout).
/// </param>
/// <param name="IncludeUnusedHeads">
/// BERT, NomicBERT and MPNet: <c>pooler.dense.weight</c>/<c>.bias</c>, which mean pooling never reads; ELECTRA with
/// <c>Prefix</c> (and only then): ElectraForPreTraining's <c>discriminator_predictions.dense.*</c> and
/// <c>.dense_prediction.*</c>, or ElectraForMaskedLM's <c>generator_predictions.LayerNorm.*</c>, <c>.dense.*</c> and
/// <c>generator_lm_head.bias</c>, as the config's <c>architectures</c> says; MPNet with
/// <c>Prefix</c> instead MPNetForMaskedLM's <c>lm_head.bias</c>, <c>lm_head.dense.*</c>, <c>lm_head.layer_norm.*</c>,
/// <c>lm_head.decoder.weight</c> (a copy of the word embeddings) and <c>lm_head.decoder.bias</c> (of <c>lm_head.bias</c>). T5:
/// <c>decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight</c> <c>[buckets, heads]</c>, a table early
/// transformers versions gave block 0's cross-attention and current ones ignore on load
/// (<c>_keys_to_ignore_on_load_unexpected</c>); files converted then (t5-small's era) still carry it.
/// </param>
/// <param name="Shards">
/// More than 1: the tensors in <c>state_dict()</c> order split into that many contiguous groups of about equal bytes,
/// <c>model-0000k-of-0000n.safetensors</c>, plus <c>model.safetensors.index.json</c>.
/// </param>
/// <param name="KeepTiedCopy">
/// Tied models only: also write <c>lm_head.weight</c>, a copy of the token embedding (ElectraForMaskedLM, prefixed:
/// <c>generator_lm_head.weight</c>); for Marian also
/// <c>model.encoder.embed_tokens.weight</c> and <c>model.decoder.embed_tokens.weight</c>. T5, tied or not, also
/// <c>encoder.embed_tokens.weight</c> and <c>decoder.embed_tokens.weight</c> (copies of <c>shared.weight</c>), and
/// <c>lm_head.weight</c> when tied.
/// </param>
public sealed record HfWriteOptions(HfDtype Dtype = HfDtype.F32, bool Prefix = false, bool LegacyGammaBeta = false,
    bool IncludeBuffers = true, bool IncludeUnusedHeads = false, int Shards = 1, bool KeepTiedCopy = false);

/// <summary>
/// A Hugging Face model rebuilt in libtorch (TorchSharp, float32, eager attention, one thread) from its
/// <c>config.json</c>, with random weights drawn from a seed: its outputs and gradients as <c>transformers</c> computes
/// them, and its weights written as a Hugging Face folder.
/// </summary>
/// <remarks>
/// <para>
/// Families: <c>gpt2</c> (GPT2LMHeadModel), <c>bert</c> (BertModel + sentence-transformers mean pooling and Normalize),
/// <c>electra</c> (ElectraModel, ElectraForSequenceClassification and ElectraForTokenClassification, in HfBert.cs),
/// <c>llama</c> and <c>qwen2</c> (…ForCausalLM), <c>marian</c> (MarianMTModel, in HfReference.Marian.cs), <c>t5</c> and
/// <c>mt5</c> (T5ForConditionalGeneration, HfT5.cs, with Marian's entry points and HfReference.T5.cs), <c>nomic_bert</c> (NomicBertModel + mean pooling and Normalize, in HfNomicBert.cs), <c>mpnet</c> (MPNetModel + mean pooling and Normalize, in HfMPNet.cs), <c>gemma3_text</c> (Gemma3ForCausalLM, in HfGemma3.cs, with the decoders' entry points; with <c>use_bidirectional_attention</c>, EmbeddingGemma's Gemma3TextModel + the sentence-transformers modules beside config.json, with the encoders' entry points), <c>modernbert</c> (ModernBertModel + the sentence-transformers modules, or ModernBertForSequenceClassification with the classifiers' entry points, in HfModernBert.cs). The formulas are MODEL_FAMILIES.md's, written out independently of the
/// generated models' kernels.
/// </para>
/// <para>
/// Names are canonical (no prefix): GPT-2 <c>wte.weight</c>, <c>h.{i}.attn.c_attn.weight</c>, …, <c>ln_f.*</c>; BERT
/// <c>embeddings.*</c>, <c>encoder.layer.{i}.*</c>; Llama/Qwen2 <c>model.embed_tokens.weight</c>, <c>model.layers.{i}.*</c>,
/// <c>model.norm.weight</c>, <c>lm_head.weight</c> (untied only); Gemma 3 likewise, with <c>q_norm</c>/<c>k_norm</c> and four norms a layer. Shapes are the file's (GPT-2 Conv1D <c>[in, out]</c>).
/// </para>
/// <para>
/// Arrays are row-major; tokens and masks are <c>[batch·seqLen]</c>. Positions are 0 … seqLen − 1 whatever the padding
/// (transformers' default position ids).
/// </para>
/// </remarks>
public sealed partial class HfReference : IDisposable
{
    private readonly HfTorchModel _model;
    private readonly string _configPath;

    private HfReference(HfTorchModel model, string configPath)
    {
        _model = model;
        _configPath = configPath;
    }

    /// <summary>Builds the model <paramref name="configPath"/> describes, its weights drawn from <paramref name="seed"/>.</summary>
    public static HfReference Create(string configPath, long seed) => Create(configPath, seed, ScalarType.Float32);

    /// <summary>As <see cref="Create(string, long)"/>, computing in <paramref name="dtype"/> (float64 for gradient checks; same weights).</summary>
    internal static HfReference Create(string configPath, long seed, ScalarType dtype)
    {
        HfConfig config = HfConfig.Read(configPath);
        HfTorchModel model = config.Family switch
        {
            HfFamily.Gpt2 => new HfGpt2(config, seed, dtype),
            HfFamily.Bert => new HfBert(config, seed, dtype),
            HfFamily.Llama => new HfLlama(config, seed, dtype),
            HfFamily.Marian => new HfMarian(config, seed, dtype),
            HfFamily.NomicBert => new HfNomicBert(config, seed, dtype),
            HfFamily.T5 => new HfT5(config, seed, dtype),
            HfFamily.MPNet => new HfMPNet(config, seed, dtype),
            HfFamily.Gemma3 => new HfGemma3(config, seed, dtype),
            HfFamily.ModernBert => new HfModernBert(config, seed, dtype),
            _ => throw new NotSupportedException(config.ModelType),
        };
        return new HfReference(model, Path.GetFullPath(configPath));
    }

    /// <summary><c>model_type</c> of the config.</summary>
    public string ModelType => _model.Config.ModelType;

    /// <summary>The parameters, canonical names in <c>state_dict()</c> order (BERT's pooler included; no buffers).</summary>
    public IReadOnlyList<string> ParameterNames => _model.State.Where(e => !e.IsBuffer).Select(e => e.Name).ToArray();

    /// <summary>A parameter's current values in the file layout (after any rounding by <see cref="Save"/>).</summary>
    public float[] ParameterValues(string name)
    {
        using DisposeScope scope = NewDisposeScope();
        return Values(_model[name]);
    }

    internal HfTorchModel Model => _model;

    /// <summary>
    /// Copies <c>config.json</c> into <paramref name="folder"/> (created if needed) and writes the weights as
    /// <c>model.safetensors</c>, or as shards and <c>model.safetensors.index.json</c>. With sentence-transformers modules
    /// (EmbeddingGemma) it also copies modules.json and the modules' config.json files, and writes each Dense module's
    /// <c>N_Dense/model.safetensors</c> (<c>linear.weight</c>, and <c>linear.bias</c> with a bias) in the same dtype. With F16/BF16 the reference's
    /// weights are rounded to that dtype first, for good.
    /// </summary>
    public void Save(string folder, HfWriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (_model.Dtype != ScalarType.Float32) throw new InvalidOperationException("only the float32 reference writes fixtures");
        HfFamily family = _model.Config.Family;
        if (options.LegacyGammaBeta && family != HfFamily.Bert) throw new ArgumentException("LegacyGammaBeta is a BERT naming", nameof(options));
        if (options.IncludeUnusedHeads && family is not (HfFamily.Bert or HfFamily.NomicBert or HfFamily.MPNet or HfFamily.T5 or HfFamily.ModernBert)) throw new ArgumentException("only BERT, NomicBERT and MPNet (the pooler, MPNet's lm_head), T5 (the old cross-attention bias) and ModernBERT (the MaskedLM head) have unused tensors", nameof(options));
        if (_model is HfBert { HasUnreadHeads: var heads } && _model.Config.ModelType == "electra")
        {
            if (options.IncludeUnusedHeads && !(options.Prefix && heads))
                throw new ArgumentException("ELECTRA's unused heads are ElectraForPreTraining's or ElectraForMaskedLM's, in their prefixed layout", nameof(options));
            if (options.KeepTiedCopy && !options.Prefix) throw new ArgumentException("ElectraForMaskedLM's tied generator_lm_head comes with its prefixed layout", nameof(options));
        }
        if (options.Prefix && family == HfFamily.NomicBert) throw new ArgumentException("NomicBertModel files have no prefix", nameof(options));
        if (options.KeepTiedCopy && _model.TiedCopyNames.Count == 0) throw new ArgumentException("KeepTiedCopy needs a tied model (T5: embed_tokens)", nameof(options));
        if (options.Prefix && family == HfFamily.Marian) throw new ArgumentException("MarianMTModel files have one naming (model.…, final_logits_bias)", nameof(options));
        if (options.Prefix && family == HfFamily.T5) throw new ArgumentException("T5ForConditionalGeneration files have one naming (shared.…, encoder.…, decoder.…)", nameof(options));

        if (options.Dtype != HfDtype.F32)
        {
            ScalarType rounded = options.Dtype == HfDtype.BF16 ? ScalarType.BFloat16 : ScalarType.Float16;
            using DisposeScope scope = NewDisposeScope();
            using IDisposable noGrad = no_grad();
            foreach (HfStateEntry e in _model.State.Where(e => !e.IsBuffer)) e.Value.copy_(e.Value.to(rounded).to(ScalarType.Float32));
        }

        using DisposeScope tensorScope = NewDisposeScope();
        var tensors = new List<SafeTensor>();
        // sentence-transformers' Dense modules keep their own files, N_Dense/model.safetensors, under the module's names.
        var denseFiles = _model.Config.DenseLayers.ToDictionary(d => d.Path, _ => new List<SafeTensor>(), StringComparer.Ordinal);
        foreach (HfStateEntry e in _model.State)
        {
            if (e.IsBuffer ? !options.IncludeBuffers : !e.Used && !options.IncludeUnusedHeads) continue;
            HfDenseLayer? dense = _model.Config.DenseLayers.FirstOrDefault(d => e.Name.StartsWith(d.Path + ".", StringComparison.Ordinal));
            if (dense is not null)
            {
                denseFiles[dense.Path].Add(ToSafeTensor(e.Name[(dense.Path.Length + 1)..], e.Value, options.Dtype));
                continue;
            }
            // MPNetForMaskedLM builds its MPNetModel with add_pooling_layer=False.
            if (family == HfFamily.MPNet && options.Prefix && e.Name.StartsWith("pooler.", StringComparison.Ordinal)) continue;
            tensors.Add(ToSafeTensor(FileName(e.Name, options), e.Value, e.IsBuffer ? HfDtype.F32 : options.Dtype));
        }
        if (options.KeepTiedCopy)
            foreach (string copy in _model.TiedCopyNames) tensors.Add(ToSafeTensor(copy, _model[_model.TokenEmbeddingName], options.Dtype));
        if (options.IncludeUnusedHeads)
            foreach ((string name, Tensor value) in _model.UnreadFileTensors(options)) tensors.Add(ToSafeTensor(name, value, options.Dtype));

        Directory.CreateDirectory(folder);
        string config = Path.GetFullPath(Path.Combine(folder, "config.json"));
        if (config != _configPath) File.Copy(_configPath, config, overwrite: true);
        string source = Path.GetDirectoryName(_configPath)!;
        foreach (string file in _model.Config.SentenceModuleFiles)
        {
            string from = Path.Combine(source, file), to = Path.GetFullPath(Path.Combine(folder, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            if (to != from) File.Copy(from, to, overwrite: true);
        }
        foreach ((string module, List<SafeTensor> denseTensors) in denseFiles)
            SafeTensorsWriter.Write(Path.Combine(folder, module, "model.safetensors"), denseTensors);
        WriteShards(folder, tensors, options.Shards);
    }

    private string FileName(string canonical, HfWriteOptions options)
    {
        string name = canonical;
        if (options.LegacyGammaBeta)
        {
            if (name.EndsWith(".LayerNorm.weight", StringComparison.Ordinal)) name = name[..^"weight".Length] + "gamma";
            else if (name.EndsWith(".LayerNorm.bias", StringComparison.Ordinal)) name = name[..^"bias".Length] + "beta";
        }
        // ModernBERT: ModernBertModel's bare names; Prefix: the …ForMaskedLM/…ForSequenceClassification layout (model.…).
        if (_model.Config.Family == HfFamily.ModernBert) return HfModernBert.FileName(name, options);
        // EmbeddingGemma's sentence-transformers folder holds Gemma3TextModel's bare names; Prefix: Gemma3ForCausalLM's model.….
        if (_model.Config.Family == HfFamily.Gemma3 && !_model.Config.IsDecoder)
            return options.Prefix ? name : name["model.".Length..];
        // The task heads of …ForSequenceClassification/…ForTokenClassification sit outside the base model: never prefixed.
        if (!options.Prefix || name.StartsWith("lm_head.", StringComparison.Ordinal) || name.StartsWith("classifier.", StringComparison.Ordinal)) return name;
        return _model.Config.Family switch
        {
            HfFamily.Gpt2 => "transformer." + name,
            HfFamily.Bert => _model.Config.ModelType switch { "bert" => "bert.", "distilbert" => "distilbert.", "electra" => "electra.", _ => "roberta." } + name,
            HfFamily.MPNet => "mpnet." + name,
            _ => name.StartsWith("model.", StringComparison.Ordinal) ? name["model.".Length..] : throw new InvalidOperationException(name),
        };
    }

    private static SafeTensor ToSafeTensor(string name, Tensor value, HfDtype dtype)
    {
        long[] shape = value.shape;
        if (value.dtype == ScalarType.Int64)
        {
            long[] ints = value.contiguous().data<long>().ToArray();
            var bytes = new byte[ints.Length * 8];
            for (int i = 0; i < ints.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * 8), ints[i]);
            return new SafeTensor(name, "I64", shape, bytes);
        }
        float[] floats = Values(value);
        switch (dtype)
        {
            case HfDtype.F32:
            {
                var bytes = new byte[floats.Length * 4];
                for (int i = 0; i < floats.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), floats[i]);
                return new SafeTensor(name, "F32", shape, bytes);
            }
            default:
            {
                var bytes = new byte[floats.Length * 2];
                for (int i = 0; i < floats.Length; i++)
                {
                    ushort bits = dtype == HfDtype.BF16 ? HfFloats.ToBFloat16Bits(floats[i]) : HfFloats.ToFloat16Bits(floats[i]);
                    if (HfFloats.Round(floats[i], dtype) != floats[i]) throw new InvalidOperationException($"{name}[{i}] was not rounded to {dtype}");
                    BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), bits);
                }
                return new SafeTensor(name, dtype.ToString(), shape, bytes);
            }
        }
    }

    // save_pretrained splits the state dict in order; the index's weight_map is written with sorted keys.
    private static void WriteShards(string folder, List<SafeTensor> tensors, int shards)
    {
        if (shards < 1 || shards > tensors.Count) throw new ArgumentOutOfRangeException(nameof(shards), $"1 … {tensors.Count} shards");
        if (shards == 1)
        {
            SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors);
            return;
        }
        long total = tensors.Sum(t => t.Data.LongLength), done = 0;
        var groups = new List<List<SafeTensor>> { new() };
        for (int i = 0; i < tensors.Count; i++)
        {
            int remainingShards = shards - groups.Count, remainingTensors = tensors.Count - i;
            bool full = done * shards >= groups.Count * total && groups[^1].Count > 0;
            if (remainingShards > 0 && (full || remainingTensors == remainingShards)) groups.Add(new());
            groups[^1].Add(tensors[i]);
            done += tensors[i].Data.LongLength;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int k = 0; k < groups.Count; k++)
        {
            string file = $"model-{k + 1:D5}-of-{shards:D5}.safetensors";
            SafeTensorsWriter.Write(Path.Combine(folder, file), groups[k]);
            foreach (SafeTensor t in groups[k]) weightMap.Add(t.Name, file);
        }
        using (FileStream indexFile = File.Create(Path.Combine(folder, "model.safetensors.index.json")))
        using (var json = new Utf8JsonWriter(indexFile, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", total);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach ((string name, string file) in weightMap) json.WriteString(name, file);
            json.WriteEndObject();
            json.WriteEndObject();
        }
    }

    /// <summary>Decoders: logits <c>[B·T·V]</c>.</summary>
    public float[] Logits(int[] tokens, int batch, int seqLen)
    {
        RequireDecoder();
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(_model.Logits(_model.LastHiddenState(Ids(tokens, batch, seqLen), null)));
    }

    /// <summary>
    /// The final hidden states <c>[B·T·E]</c>: GPT-2 after <c>ln_f</c>, Llama/Qwen2 after <c>model.norm</c>, BERT's
    /// <c>last_hidden_state</c>; with an optional 0/1 <paramref name="attentionMask"/> <c>[B·T]</c>.
    /// </summary>
    public float[] LastHiddenState(int[] tokens, int batch, int seqLen, int[]? attentionMask = null)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(_model.LastHiddenState(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)));
    }

    /// <summary>
    /// BERT, NomicBERT, MPNet, EmbeddingGemma and ModernBERT: sentence-transformers embeddings (mean pooling over the mask, or the [CLS]
    /// token's state with <paramref name="clsToken"/>; EmbeddingGemma's Dense layers; then L2-normalised) <c>[B·E]</c>, E the
    /// last Dense's out_features if there is one.
    /// </summary>
    public float[] SentenceEmbeddings(int[] tokens, int[] attentionMask, int batch, int seqLen, bool clsToken = false)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(Encoder.SentenceEmbeddings(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)!, clsToken));
    }

    /// <summary>BERT-like classifiers and ModernBertForSequenceClassification: the logits, <c>[B·labels]</c> or (token classification) <c>[B·T·labels]</c>.</summary>
    public float[] ClassifierLogits(int[] tokens, int[] attentionMask, int batch, int seqLen, int[]? tokenTypes = null)
    {
        using DisposeScope scope = NewDisposeScope();
        using IDisposable noGrad = no_grad();
        return Values(ClassifierOutput(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)!, Types(tokenTypes, batch, seqLen)));
    }

    private Tensor? Types(int[]? tokenTypes, int batch, int seqLen) => tokenTypes is null ? null : Ids(tokenTypes, batch, seqLen);

    /// <summary>BERT-like classifiers and ModernBERT's: the gradient of Σ logits ⊙ <paramref name="upstream"/> for every used parameter, by canonical name.</summary>
    public Dictionary<string, float[]> ClassifierGradients(int[] tokens, int[] attentionMask, int batch, int seqLen, float[] upstream)
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor logits = ClassifierOutput(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)!);
        return Gradients((logits * tensor(upstream, logits.shape).to(_model.Dtype)).sum());
    }

    /// <summary>
    /// BERT-like classifiers and ModernBERT's: the mean cross-entropy against the labels (<c>[B]</c>, or <c>[B·T]</c> for a token
    /// classifier, &lt; 0 ignored, as transformers' −100) and every used parameter's gradient, by canonical name.
    /// </summary>
    public (float Loss, Dictionary<string, float[]> Gradients) ClassifierLossAndGradients(int[] tokens, int[] attentionMask, int[] labels, int batch, int seqLen, int[]? tokenTypes = null)
    {
        using DisposeScope scope = NewDisposeScope();
        Tensor logits = ClassifierOutput(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)!, Types(tokenTypes, batch, seqLen));
        Tensor target = tensor(labels.Select(t => t < 0 ? -100L : t).ToArray(), ScalarType.Int64);
        Tensor loss = F.cross_entropy(logits.reshape(-1, _model.Config.Labels), target, ignore_index: -100);
        return ((float)loss.to(ScalarType.Float64).item<double>(), Gradients(loss));
    }

    /// <summary>
    /// Decoders: the mean cross-entropy of the logits at each position against the target at the same position (no
    /// shift), over the targets ≥ 0, and the gradient of every parameter the forward pass reads, by canonical name in
    /// the file's layout. A tied embedding's gradient includes the head's part.
    /// </summary>
    public (float Loss, Dictionary<string, float[]> Gradients) LossAndGradients(int[] tokens, int[] targets, int batch, int seqLen)
    {
        RequireDecoder();
        using DisposeScope scope = NewDisposeScope();
        Tensor loss = Loss(tokens, targets, batch, seqLen);
        return ((float)loss.to(ScalarType.Float64).item<double>(), Gradients(loss));
    }

    /// <summary>
    /// BERT, NomicBERT, MPNet, EmbeddingGemma and ModernBERT: the gradient of Σ <see cref="SentenceEmbeddings"/> ⊙ <paramref name="upstream"/> (<c>[B·E]</c>) for every
    /// parameter the forward pass reads (not the pooler), by canonical name (EmbeddingGemma's Dense modules as
    /// <c>2_Dense.linear.weight</c>, …). Row 1 of the token-type table gets none.
    /// </summary>
    public Dictionary<string, float[]> EmbeddingGradients(int[] tokens, int[] attentionMask, int batch, int seqLen, float[] upstream, bool clsToken = false)
    {
        using DisposeScope scope = NewDisposeScope();
        return Gradients(EmbeddingObjective(tokens, attentionMask, batch, seqLen, upstream, clsToken));
    }

    /// <summary>
    /// Decoders: <paramref name="count"/> tokens after <paramref name="prompt"/> (the prompt not included), each the
    /// argmax (lowest id on a tie) of the last position's logits, the whole sequence recomputed at each step.
    /// </summary>
    public int[] GreedyContinuation(int[] prompt, int count)
    {
        RequireDecoder();
        if (_model.Config.Family == HfFamily.Gpt2 && prompt.Length + count - 1 > _model.Config.MaxPositions)
            throw new ArgumentException($"GPT-2 has {_model.Config.MaxPositions} positions");
        var sequence = new List<int>(prompt);
        using IDisposable noGrad = no_grad();
        for (int step = 0; step < count; step++)
        {
            using DisposeScope scope = NewDisposeScope();
            Tensor logits = _model.Logits(_model.LastHiddenState(Ids(sequence.ToArray(), 1, sequence.Count), null));
            sequence.Add((int)logits[0, sequence.Count - 1].argmax().item<long>());
        }
        return sequence.Skip(prompt.Length).ToArray();
    }

    /// <summary>The loss as a tensor (for the float64 gradient checks: its value without rounding to float).</summary>
    internal Tensor Loss(int[] tokens, int[] targets, int batch, int seqLen)
    {
        if (targets.Length != batch * seqLen) throw new ArgumentException($"{targets.Length} targets for {batch}×{seqLen}");
        Tensor logits = _model.Logits(_model.LastHiddenState(Ids(tokens, batch, seqLen), null));
        Tensor target = tensor(targets.Select(t => t < 0 ? -100L : t).ToArray(), ScalarType.Int64);
        return F.cross_entropy(logits.view(-1, _model.Config.VocabSize), target, ignore_index: -100);
    }

    /// <summary>Σ sentence embeddings ⊙ upstream, as a tensor.</summary>
    internal Tensor EmbeddingObjective(int[] tokens, int[] attentionMask, int batch, int seqLen, float[] upstream, bool clsToken = false)
    {
        int width = _model.Config.EmbeddingSize;
        if (upstream.Length != batch * width) throw new ArgumentException($"upstream has {upstream.Length} values, not {batch}·{width}");
        Tensor embeddings = Encoder.SentenceEmbeddings(Ids(tokens, batch, seqLen), Mask(attentionMask, batch, seqLen)!, clsToken);
        return (embeddings * tensor(upstream, new long[] { batch, width }).to(_model.Dtype)).sum();
    }

    private Dictionary<string, float[]> Gradients(Tensor objective)
    {
        HfStateEntry[] parameters = _model.UsedParameters.ToArray();
        IList<Tensor> grads = autograd.grad(new[] { objective }, parameters.Select(e => e.Value).ToArray());
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < parameters.Length; i++) result.Add(parameters[i].Name, Values(grads[i]));
        return result;
    }

    private HfBert Bert => _model as HfBert ?? throw new InvalidOperationException($"{ModelType} is not a BERT-like encoder");

    // The classifier's logits: BERT-like ones (token types allowed) or ModernBertForSequenceClassification's.
    private Tensor ClassifierOutput(Tensor ids, Tensor attentionMask, Tensor? tokenTypes = null) => _model switch
    {
        HfModernBert m => tokenTypes is null ? m.ClassifierLogits(ids, attentionMask) : throw new ArgumentException("ModernBERT has no token types"),
        _ => Bert.ClassifierLogits(ids, attentionMask, tokenTypes),
    };

    private IHfSentenceEncoder Encoder => _model as IHfSentenceEncoder ?? throw new InvalidOperationException($"{ModelType} is not a sentence encoder");

    private void RequireDecoder()
    {
        if (!_model.Config.IsDecoder) throw new InvalidOperationException($"{ModelType} is not a decoder");
    }

    private Tensor Ids(int[] tokens, int batch, int seqLen)
    {
        if (tokens.Length != batch * seqLen) throw new ArgumentException($"{tokens.Length} tokens for {batch}×{seqLen}");
        if (tokens.Any(t => t < 0 || t >= _model.Config.VocabSize)) throw new ArgumentException($"a token is outside [0, {_model.Config.VocabSize})");
        // Llama's, Gemma 3's and ModernBERT's rotary and T5's relative positions have no table to run out of.
        if (_model.Config.Family is not (HfFamily.Llama or HfFamily.Gemma3 or HfFamily.T5 or HfFamily.ModernBert) && seqLen > _model.Config.MaxPositions)
            throw new ArgumentException($"{seqLen} positions, the model has {_model.Config.MaxPositions}");
        return tensor(tokens.Select(t => (long)t).ToArray(), new long[] { batch, seqLen });
    }

    private Tensor? Mask(int[]? mask, int batch, int seqLen)
    {
        if (mask is null) return null;
        if (mask.Length != batch * seqLen || mask.Any(m => m is not (0 or 1))) throw new ArgumentException("the attention mask is [batch·seqLen] of 0 and 1");
        return tensor(mask.Select(m => (float)m).ToArray(), new long[] { batch, seqLen }).to(_model.Dtype);
    }

    private static float[] Values(Tensor t) => t.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray();

    public void Dispose() => _model.Dispose();
}
