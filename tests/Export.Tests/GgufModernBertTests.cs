using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using LLama;
using LLama.Common;
using LLama.Native;
using TransformerGen.Model.Tests;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Export.Tests;

/// <summary>
/// ModernBERT sentence embedders in the GGUF export, as llama.cpp's <c>modern-bert</c> (LLamaSharp 0.30.0's build), run by
/// llama.cpp in embedding mode: its pooled sentence embeddings (L2-normalized here, as its applications do) and its last
/// hidden states (pooling none) against ours, over sequences long enough that keys fall outside the local layers' window.
/// </summary>
public sealed class GgufModernBertTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tg-gguf-modernbert-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A fixture's model with random weights at a trained model's scales, as the ONNX tests build it.</summary>
    internal static EncoderModel Build(string fixture)
    {
        EncoderModel model = fixture switch
        {
            "modernbert-plain" => new OnnxModernBert(1),
            "modernbert-bias" => new OnnxModernBertBias(1),
            "modernbert-tanh" => new OnnxModernBertTanh(1),
            "modernbert-blocks" => new GgufModernBertBlocks(1),
            "modernbert-silu" => new GgufModernBertSilu(1),
            "modernbert-dense" => new GgufModernBertDense(1),
            _ => throw new ArgumentException(fixture),
        };
        Weights.Randomize(model, seed: 11);
        model.Training = false;
        return model;
    }

    /// <summary>
    /// A padded batch as the model gets it: each sequence [CLS] … [SEP] (the config's ids), of SeqLen tokens, then shorter
    /// ones, padded after their [SEP] with the padding id; no other token is [CLS], [SEP] or padding.
    /// </summary>
    internal static int[] Tokens(EncoderModel model, GgufHyperparameters h, int[] lengths, ulong seed = 21)
    {
        ModelLayout layout = model.Layout;
        Assert.Equal(layout.Batch, lengths.Length);
        int s = layout.SeqLen;
        int[] random = TestData.Tokens(layout.Batch * s, layout.Vocab, seed);
        var tokens = new int[random.Length];
        int[] special = [h.ClsToken, h.SepToken, layout.PadToken];
        for (int b = 0; b < layout.Batch; b++)
        {
            int n = lengths[b];
            for (int t = 0; t < s; t++)
            {
                int id = random[b * s + t];
                while (special.Contains(id)) id = (id + 1) % layout.Vocab;
                tokens[b * s + t] = t == 0 ? h.ClsToken : t == n - 1 ? h.SepToken : t >= n ? layout.PadToken : id;
            }
        }
        return tokens;
    }

    /// <summary>The real tokens of each sequence of a padded batch.</summary>
    private static int[][] Sequences(ModelLayout layout, int[] tokens) =>
        Enumerable.Range(0, layout.Batch).Select(b => tokens.AsSpan(b * layout.SeqLen, layout.SeqLen).ToArray().TakeWhile(t => t != layout.PadToken).ToArray()).ToArray();

    /// <summary>
    /// llama.cpp in embedding mode on each of <paramref name="sequences"/> (one decode each, positions from 0, one thread,
    /// no flash attention): with <paramref name="pooling"/> the file's own (Unspecified) or another, the pooled embedding of
    /// each sequence; with None, each token's last hidden state, sequence after sequence.
    /// </summary>
    internal static float[][] Embeddings(string gguf, int[][] sequences, LLamaPoolingType pooling = LLamaPoolingType.Unspecified, Action<LLamaPoolingType>? poolingUsed = null)
    {
        var parameters = new ModelParams(gguf)
        {
            ContextSize = 64,
            BatchSize = 64,
            UBatchSize = 64,
            Threads = 1,
            BatchThreads = 1,
            GpuLayerCount = 0,
            FlashAttention = false,
            Embeddings = true,
            PoolingType = pooling,
        };
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        var rows = new List<float[]>();
        foreach (int[] sequence in sequences)
        {
            using LLamaContext context = weights.CreateContext(parameters);
            poolingUsed?.Invoke(context.NativeHandle.PoolingType);
            var batch = new LLamaBatch();
            for (int i = 0; i < sequence.Length; i++) batch.Add(sequence[i], i, LLamaSeqId.Zero, true);
            DecodeResult result = context.NativeHandle.Decode(batch);
            if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp could not decode: {result}");
            if (context.NativeHandle.PoolingType == LLamaPoolingType.None)
                for (int i = 0; i < sequence.Length; i++) rows.Add(context.NativeHandle.GetEmbeddingsIth(i).ToArray());
            else rows.Add(context.NativeHandle.GetEmbeddingsSeq(LLamaSeqId.Zero).ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>Each row scaled to unit length (llama-embedding's and llama-server's default normalization).</summary>
    internal static float[][] Normalized(float[][] rows) => rows.Select(r =>
    {
        double norm = Math.Sqrt(r.Sum(v => (double)v * v));
        return r.Select(v => (float)(v / Math.Max(norm, 1e-12))).ToArray();
    }).ToArray();

    /// <summary>Rows <paramref name="width"/> wide of <paramref name="flat"/>, keeping those <paramref name="keep"/> says.</summary>
    internal static float[][] Rows(float[] flat, int width, Func<int, bool>? keep = null) =>
        Enumerable.Range(0, flat.Length / width).Where(r => keep?.Invoke(r) ?? true).Select(r => flat.AsSpan(r * width, width).ToArray()).ToArray();

    /// <summary>The double-precision reference's settings for a fixture's hyperparameters (no Dense layer: the GGUF export has none).</summary>
    internal static ModernBertReference.Settings Settings(GgufHyperparameters h) =>
        new(h.Heads, h.NormEpsilon, h.GlobalLayerPeriod, h.SlidingWindow, h.RopeTheta, h.LocalRopeTheta, DenseTanh: false,
            TanhGelu: h.FeedForwardActivation is "gelu_pytorch_tanh" or "gelu_new")
        {
            Gelu = h.FeedForwardActivation is "silu" or "swish" ? Silu : null,
        };

    /// <summary>x·sigmoid(x), for a SiLU ModernBERT in the reference (its feed-forward takes the activation as its GELU).</summary>
    internal static double Silu(double x) => x / (1 + Math.Exp(-x));

    private string Save(EncoderModel model, string fixture, GgufTensorType type = GgufTensorType.F32, string? name = null)
    {
        string path = Path.Combine(_folder, $"{name ?? fixture}-{type}.gguf");
        model.SaveGguf(path, GgufLlamaCppTests.Config(fixture), type);
        return path;
    }

    /// <summary>Tokens of each fixture's padded batch: the longest reach past the local layers' window (|i − j| ≤ 3, 2, 4 and 2).</summary>
    internal static int[] Lengths(string fixture) => fixture switch
    {
        "modernbert-plain" => [11, 8, 5],
        "modernbert-tanh" => [10, 7, 4],
        "modernbert-blocks" => [14, 9, 6],
        "modernbert-silu" => [9, 6, 3],
        _ => throw new ArgumentException(fixture),
    };

    /// <summary>Ours, llama.cpp's and the double-precision reference's sentence embeddings and last hidden states (real tokens) of one batch.</summary>
    private sealed record Run(float[][] Ours, float[][] OursHidden, float[][] Theirs, float[][] TheirsHidden, int[] Tokens, LLamaPoolingType Pooling);

    private Run Compare(EncoderModel model, string fixture, string path)
    {
        ModelLayout layout = model.Layout;
        GgufHyperparameters h = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config(fixture));
        int[] tokens = Tokens(model, h, Lengths(fixture));
        float[] embeddings = model.Predict(tokens).ToArray(), hidden = model.LastHiddenState.ToArray();
        int[][] sequences = Sequences(layout, tokens);
        LLamaPoolingType used = LLamaPoolingType.Unspecified;
        float[][] theirs = Normalized(Embeddings(path, sequences, poolingUsed: p => used = p));
        return new Run(Rows(embeddings, embeddings.Length / layout.Batch), Rows(hidden, hidden.Length / tokens.Length, r => tokens[r] != layout.PadToken),
            theirs, Embeddings(path, sequences, LLamaPoolingType.None), tokens, used);
    }

    /// <summary>The reference's embeddings and last hidden states (real tokens) as rows.</summary>
    private static (float[][] Embeddings, float[][] Hidden) Reference(EncoderModel model, ModernBertReference.Settings settings, int[] tokens)
    {
        ModelLayout layout = model.Layout;
        (float[] hidden, float[] embeddings) = ModernBertReference.Run(model, settings, tokens, layout.Batch, layout.PadToken, layout.Pooling);
        return (Rows(embeddings, embeddings.Length / layout.Batch), Rows(hidden, hidden.Length / tokens.Length, r => tokens[r] != layout.PadToken));
    }

    private static double Relative(float[][] a, float[][] b, float[][] c, float[][] d) =>
        Math.Max(GgufLlamaCppTests.Relative(a, b), GgufLlamaCppTests.Relative(c, d));

    /// <summary>
    /// The file as llama.cpp's converter writes a ModernBERT (modernbert-blocks: [CLS] pooling, ModernBertConfig's default
    /// bases and ε): its keys, tensor names and shapes, no norm before layer 0's attention, no bias, the model's floats.
    /// </summary>
    [Fact]
    public void Gguf_holds_ModernBert_as_llama_cpps_converter_writes_it()
    {
        EncoderModel model = Build("modernbert-blocks");
        string path = Path.Combine(_folder, "modernbert-blocks.gguf");
        GgufExportReport report = model.SaveGguf(path, GgufLlamaCppTests.Config("modernbert-blocks"));
        GgufFile file = GgufFile.Read(path);
        Dictionary<string, object> m = file.Metadata;
        Assert.Equal("modern-bert", report.Architecture);
        Assert.Equal("modern-bert", m["general.architecture"]);
        Assert.Equal(67u, m["modern-bert.vocab_size"]);
        Assert.Equal(64u, m["modern-bert.context_length"]);
        Assert.Equal(64u, m["modern-bert.embedding_length"]);
        Assert.Equal(96u, m["modern-bert.feed_forward_length"]); // intermediate_size; Wi has twice as many rows
        Assert.Equal(4u, m["modern-bert.block_count"]);
        Assert.Equal(4u, m["modern-bert.attention.head_count"]);
        Assert.Equal(4u, m["modern-bert.attention.head_count_kv"]);
        Assert.Equal(16u, m["modern-bert.rope.dimension_count"]);
        Assert.Equal(1e-5f, m["modern-bert.attention.layer_norm_epsilon"]);
        Assert.Equal(false, m["modern-bert.attention.causal"]);
        Assert.Equal(2u, m["modern-bert.pooling_type"]);             // CLS, as 1_Pooling says
        Assert.Equal("gelu", m["modern-bert.hidden_activation"]);
        Assert.Equal(160000f, m["modern-bert.rope.freq_base"]);      // global_rope_theta's default
        Assert.Equal(10000f, m["modern-bert.rope.freq_base_swa"]);   // local_rope_theta's default
        Assert.Equal(8u, m["modern-bert.attention.sliding_window"]); // local_attention: llama.cpp sees |i − j| ≤ 8 / 2
        Assert.Equal(3u, m["modern-bert.attention.sliding_window_pattern"]); // global_attn_every_n_layers
        Assert.Equal(62u, m["tokenizer.ggml.bos_token_id"]);
        Assert.Equal(62u, m["tokenizer.ggml.cls_token_id"]);
        Assert.Equal(63u, m["tokenizer.ggml.eos_token_id"]);
        Assert.Equal(63u, m["tokenizer.ggml.seperator_token_id"]);
        Assert.Equal(64u, m["tokenizer.ggml.padding_token_id"]);
        Assert.Equal(true, m["tokenizer.ggml.add_bos_token"]);
        Assert.Equal(true, m["tokenizer.ggml.add_eos_token"]);
        Assert.Equal([64L, 67L], file.Tensor("token_embd.weight").Dimensions);
        Assert.Equal([64L], file.Tensor("token_embd_norm.weight").Dimensions);
        Assert.Equal([64L, 192L], file.Tensor("blk.0.attn_qkv.weight").Dimensions);
        Assert.Equal([64L, 64L], file.Tensor("blk.2.attn_output.weight").Dimensions);
        Assert.Equal([64L, 192L], file.Tensor("blk.1.ffn_up.weight").Dimensions);
        Assert.Equal([96L, 64L], file.Tensor("blk.3.ffn_down.weight").Dimensions);
        Assert.Equal([64L], file.Tensor("output_norm.weight").Dimensions);
        // Layer 0's attention reads the embeddings' norm as it is: no attn_norm, which llama.cpp would apply.
        Assert.DoesNotContain(file.Tensors, t => t.Name == "blk.0.attn_norm.weight");
        foreach (int layer in new[] { 1, 2, 3 }) Assert.Contains(file.Tensors, t => t.Name == $"blk.{layer}.attn_norm.weight");
        Assert.DoesNotContain(file.Tensors, t => t.Name.EndsWith(".bias", StringComparison.Ordinal));
        Assert.Equal(3 + 4 * 5 + 3, file.Tensors.Count);
        file.AssertHoldsParametersUnchanged(report, model);
    }

    /// <summary>
    /// llama.cpp's sentence embeddings and last hidden states against ours, on a padded batch whose longest sequences reach
    /// past the local layers' window: within 1e-3 of the largest value, and not closer, through ggml's GELU, which reads
    /// a table of fp16 values of the tanh GELU indexed by the input rounded to fp16 (as for GPT-2 and Gemma 3). The
    /// double-precision ModernBERT (<see cref="ModernBertReference"/>) shows it: with transformers' GELU it gives ours within
    /// 1e-5; with ggml's table, llama.cpp's within 1e-4 (measured 2.0e-6 to 6.9e-5: a gate that llama.cpp's float products put
    /// on the other side of an fp16 rounding boundary moves a whole fp16 step). The tanh fixture (gelu_pytorch_tanh) differs
    /// from llama.cpp by the table alone; the erf fixtures (hidden_activation gelu, ModernBERT's own) also by llama.cpp's tanh
    /// form standing for the erf one (LLamaSharp 0.30.0's llama.cpp has no erf GEGLU), about as much again. SiLU is computed
    /// without a table: llama.cpp's embeddings then equal ours within 1e-4. Every fixture has global and local layers with
    /// their own rotary bases (the tanh and SiLU ones neither llama.cpp's default period 3 nor its default local base),
    /// mean pooling but for modernbert-blocks ([CLS]).
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-tanh")]
    [InlineData("modernbert-blocks")]
    [InlineData("modernbert-silu")]
    public void F32_sentence_embeddings_and_hidden_states_are_ours_but_for_ggmls_gelu(string fixture)
    {
        EncoderModel model = Build(fixture);
        string path = Save(model, fixture);
        Run run = Compare(model, fixture, path);
        Assert.Equal(model.Layout.Pooling == Pooling.Mean ? LLamaPoolingType.Mean : LLamaPoolingType.CLS, run.Pooling);
        GgufHyperparameters h = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config(fixture));
        ModernBertReference.Settings settings = Settings(h);
        bool silu = h.FeedForwardActivation == "silu";
        (float[][] reference, float[][] referenceHidden) = Reference(model, settings, run.Tokens);
        (float[][] table, float[][] tableHidden) = silu ? (reference, referenceHidden) : Reference(model, settings with { Gelu = Gpt2Reference.GgmlGelu }, run.Tokens);
        double embeddings = GgufLlamaCppTests.Relative(run.Ours, run.Theirs), hidden = GgufLlamaCppTests.Relative(run.OursHidden, run.TheirsHidden);
        double oursToReference = Relative(reference, run.Ours, referenceHidden, run.OursHidden);
        double theirsToTable = Relative(table, run.Theirs, tableHidden, run.TheirsHidden);
        double tableAlone = Relative(reference, table, referenceHidden, tableHidden);
        output.WriteLine($"{model.Layout.Name} F32 ({h.FeedForwardActivation}, {model.Layout.Pooling} pooling): sentence embeddings {embeddings:G3}, last hidden states {hidden:G3}; " +
            $"ours to the reference {oursToReference:G3}; llama.cpp to the reference with ggml's GELU {theirsToTable:G3}; the two references {tableAlone:G3}");
        Assert.True(oursToReference < 1e-5, $"ours against the reference: {oursToReference}");
        Assert.True(theirsToTable < 1e-4, $"llama.cpp against the reference with ggml's GELU: {theirsToTable}");
        double bound = silu ? 1e-4 : 1e-3;
        Assert.True(embeddings < bound, $"sentence embeddings: relative {embeddings}");
        Assert.True(hidden < bound, $"last hidden states: relative {hidden}");
    }

    /// <summary>
    /// The sequences of the batch in one llama.cpp batch, each its own sequence id (llama.cpp keeps a query to its own
    /// sequence's keys, and pools each sequence apart): the same embeddings as one decode per sequence within 1e-4 (measured
    /// 1.4e-5 and 2.0e-5: other product shapes round otherwise, and ggml's GELU table can step), and ours within 1e-3.
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-blocks")]
    public void One_llama_cpp_batch_of_several_sequences_gives_each_its_embedding(string fixture)
    {
        EncoderModel model = Build(fixture);
        string path = Save(model, fixture);
        Run run = Compare(model, fixture, path);
        int[][] sequences = Sequences(model.Layout, run.Tokens);
        var parameters = new ModelParams(path)
        {
            // SeqMax 3 with 64 positions makes this llama.cpp abort while creating the context (64 is not a multiple of 3).
            ContextSize = 64, BatchSize = 64, UBatchSize = 64, SeqMax = 4, Threads = 1, BatchThreads = 1,
            GpuLayerCount = 0, FlashAttention = false, Embeddings = true,
        };
        using LLamaWeights weights = LLamaWeights.LoadFromFile(parameters);
        using LLamaContext context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int b = 0; b < sequences.Length; b++)
            for (int i = 0; i < sequences[b].Length; i++) batch.Add(sequences[b][i], i, (LLamaSeqId)b, true);
        Assert.Equal(DecodeResult.Ok, context.NativeHandle.Decode(batch));
        float[][] together = Normalized(Enumerable.Range(0, sequences.Length).Select(b => context.NativeHandle.GetEmbeddingsSeq((LLamaSeqId)b).ToArray()).ToArray());
        double apart = GgufLlamaCppTests.Relative(run.Theirs, together), ours = GgufLlamaCppTests.Relative(run.Ours, together);
        output.WriteLine($"{model.Layout.Name}: {sequences.Length} sequences in one batch against one decode each {apart:G3}, against ours {ours:G3}");
        Assert.True(apart < 1e-4, $"one batch against one decode each: {apart}");
        Assert.True(ours < 1e-3, $"against ours: {ours}");
    }

    /// <summary>
    /// What is left between llama.cpp and the reference with ggml's GELU table (up to 7e-5 on the GELU fixtures) is ggml's
    /// GELU and nothing else: the same weights written with <c>hidden_activation</c> silu, which llama.cpp computes without a
    /// table, give llama.cpp's last hidden states equal to the reference with SiLU within 1e-5 (measured 3.5e-7 and 4.3e-7),
    /// through the same window, rotary bases, norms, layer 0 and pooling. (Its table rounds each gate to fp16 and the result to
    /// fp16: a float product that lands on the other side of a rounding boundary than the double one moves that activation
    /// by a whole fp16 step.)
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-blocks")]
    public void Everything_but_ggmls_gelu_is_computed_as_ours(string fixture)
    {
        EncoderModel model = Build(fixture);
        GgufHyperparameters h = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config(fixture));
        string path = Path.Combine(_folder, $"{fixture}-as-silu.gguf");
        model.SaveGguf(path, new GgufExportOptions { Hyperparameters = h with { FeedForwardActivation = "silu" } });
        Run run = Compare(model, fixture, path);
        (float[][] reference, float[][] referenceHidden) = Reference(model, Settings(h) with { Gelu = Silu }, run.Tokens);
        double relative = Relative(reference, run.Theirs, referenceHidden, run.TheirsHidden);
        output.WriteLine($"{model.Layout.Name} written with SiLU: llama.cpp to the reference with SiLU {relative:G3}");
        Assert.True(relative < 1e-5, $"relative {relative}");
    }

    /// <summary>
    /// What decides the match: the same weights with a file whose window is wider than the sequences make llama.cpp equal the
    /// reference without the window (and not ours), and llama.cpp on the exported file is far from the reference with a norm
    /// before layer 0's attention; so an export that lost the window, or wrote layer 0 a norm, would fail the test above.
    /// </summary>
    [Theory]
    [InlineData("modernbert-plain")]
    [InlineData("modernbert-tanh")]
    public void Window_and_bare_first_layer_are_what_llama_cpp_matches(string fixture)
    {
        EncoderModel model = Build(fixture);
        GgufHyperparameters h = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config(fixture));
        Run run = Compare(model, fixture, Save(model, fixture));
        string wide = Path.Combine(_folder, $"{fixture}-wide.gguf");
        model.SaveGguf(wide, new GgufExportOptions { Hyperparameters = h with { SlidingWindow = 64 } });
        Run open = Compare(model, fixture, wide);
        ModernBertReference.Settings table = Settings(h) with { Gelu = Gpt2Reference.GgmlGelu };
        (float[][] unwindowed, float[][] unwindowedHidden) = Reference(model, table with { Window = false }, run.Tokens);
        (float[][] normed, float[][] normedHidden) = Reference(model, table with { BareFirstLayer = false }, run.Tokens);
        double openToUnwindowed = Relative(unwindowed, open.Theirs, unwindowedHidden, open.TheirsHidden);
        double openToOurs = GgufLlamaCppTests.Relative(run.OursHidden, open.TheirsHidden);
        double theirsToUnwindowed = GgufLlamaCppTests.Relative(unwindowedHidden, run.TheirsHidden);
        double theirsToNormed = GgufLlamaCppTests.Relative(normedHidden, run.TheirsHidden);
        output.WriteLine($"{model.Layout.Name}: llama.cpp with a window of 64 to the reference without the window {openToUnwindowed:G3}, to ours {openToOurs:G3}; " +
            $"llama.cpp on the export to the reference without the window {theirsToUnwindowed:G3}, with a norm before layer 0's attention {theirsToNormed:G3}");
        Assert.True(openToUnwindowed < 3e-4, $"the wide window against the reference without one: {openToUnwindowed}");
        Assert.True(openToOurs > 1e-2, $"the wide window against ours: {openToOurs}");
        Assert.True(theirsToUnwindowed > 1e-2, $"the window changes llama.cpp's states by {theirsToUnwindowed} only");
        Assert.True(theirsToNormed > 1e-2, $"a norm before layer 0's attention changes the states by {theirsToNormed} only");
    }

    /// <summary>
    /// BF16 and Q8_0 files: llama.cpp's sentence embeddings against ours in fp32 (within 8 × 2⁻⁹ and 16/254 of the largest
    /// component, as the decoders' logits), and against ours with the weights rounded as the file holds them, closer.
    /// </summary>
    [Theory]
    [InlineData("modernbert-blocks", GgufTensorType.BF16)]
    [InlineData("modernbert-blocks", GgufTensorType.Q8_0)]
    [InlineData("modernbert-plain", GgufTensorType.BF16)]
    public void Reduced_precision_files_stay_near_ours(string fixture, GgufTensorType type)
    {
        EncoderModel model = Build(fixture);
        string path = Path.Combine(_folder, $"{fixture}-{type}.gguf");
        GgufExportReport report = model.SaveGguf(path, GgufLlamaCppTests.Config(fixture), type);
        Assert.Contains(report.Tensors, t => t.Type == type);
        Run run = Compare(model, fixture, path);
        double relative = GgufLlamaCppTests.Relative(run.Ours, run.Theirs), hidden = GgufLlamaCppTests.Relative(run.OursHidden, run.TheirsHidden);
        int rounded = ReducedPrecision.Apply(model, report);
        Run roundedRun = Compare(model, fixture, path);
        double toRounded = GgufLlamaCppTests.Relative(roundedRun.Ours, run.Theirs);
        output.WriteLine($"{model.Layout.Name} {type} ({rounded} matrices {type}): sentence embeddings {relative:G3}, last hidden states {hidden:G3}; " +
            $"to ours with the file's weights {toRounded:G3}; {report.Bytes} bytes");
        double bound = type == GgufTensorType.BF16 ? 8.0 / 512 : 16.0 / 254;
        Assert.True(relative < bound, $"relative {relative}");
        Assert.True(toRounded < relative, $"with the file's weights {toRounded}, without {relative}");
    }

    /// <summary>What llama.cpp's modern-bert cannot compute is refused with the reason, and no file is left.</summary>
    [Fact]
    public void Gguf_refuses_what_llama_cpps_modern_bert_would_compute_otherwise()
    {
        string path = Path.Combine(_folder, "refused.gguf");
        EncoderModel biased = Build("modernbert-bias");
        var e = Assert.Throws<NotSupportedException>(() => biased.SaveGguf(path, GgufLlamaCppTests.Config("modernbert-bias")));
        output.WriteLine(e.Message);
        Assert.Contains("embeddings.norm.bias", e.Message, StringComparison.Ordinal);
        Assert.Contains("llama.cpp's modern-bert reads no biases", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => Build("modernbert-dense").SaveGguf(path, GgufLlamaCppTests.Config("modernbert-dense")));
        output.WriteLine(e.Message);
        Assert.Contains("the sentence-transformers module 2_Dense", e.Message, StringComparison.Ordinal);

        EncoderModel model = Build("modernbert-plain");
        GgufHyperparameters h = GgufHyperparameters.FromConfig(GgufLlamaCppTests.Config("modernbert-plain"));
        e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(path, new GgufExportOptions { Hyperparameters = h with { FeedForwardActivation = "relu" } }));
        output.WriteLine(e.Message);
        Assert.Contains("gates its feed-forward with GELU or SiLU only", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => model.SaveGguf(path, new GgufExportOptions { Hyperparameters = h with { SlidingLayers = [false, true, false, false] } }));
        output.WriteLine(e.Message);
        Assert.Contains("llama.cpp would run this model wrong", e.Message, StringComparison.Ordinal);
        var a = Assert.Throws<ArgumentException>(() => model.SaveGguf(path, new GgufExportOptions
        {
            Hyperparameters = new GgufHyperparameters { Heads = 3, KeyValueHeads = 3, HeadDim = 12, NormEpsilon = 1e-5f },
        }));
        Assert.Contains("must come from a ModernBERT config", a.Message, StringComparison.Ordinal);
        a = Assert.Throws<ArgumentException>(() => model.SaveGguf(path, GgufLlamaCppTests.Config("modernbert-tanh")));
        output.WriteLine(a.Message);
        e = Assert.Throws<NotSupportedException>(() => new OnnxDistilBert(1).SaveGguf(path, new GgufExportOptions { Hyperparameters = h }));
        Assert.Contains("ModernBERT sentence embedders (llama.cpp's modern-bert)", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    /// <summary>A config llama.cpp's modern-bert would read otherwise is refused when read, naming the key.</summary>
    [Theory]
    [InlineData("layer_types", """["full_attention", "full_attention", "sliding_attention", "full_attention"]""", "layer_types")]
    [InlineData("rope_parameters", """{"full_attention": {"rope_theta": 160000.0, "rope_type": "linear", "factor": 2.0}, "sliding_attention": {"rope_theta": 10000.0}}""", "scaled rotary positions are not exported")]
    [InlineData("head_dim", "18", "head_dim = 18")]
    public void Gguf_refuses_a_ModernBert_config_it_cannot_write(string key, string json, string expected)
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(GgufLlamaCppTests.Config("modernbert-plain")))!.AsObject();
        config[key] = System.Text.Json.Nodes.JsonNode.Parse(json);
        string configPath = Path.Combine(_folder, "config.json"), path = Path.Combine(_folder, "refused.gguf");
        File.WriteAllText(configPath, config.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => Build("modernbert-plain").SaveGguf(path, configPath));
        output.WriteLine(e.Message);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }
}

// ModernBERT shaped for Q8_0 blocks (hidden 64, 4 heads of 16, inner size 96: every matrix row a multiple of 32), [CLS]
// pooling, four layers of which 0 and 3 are global, |i − j| ≤ 4 on the others, ModernBertConfig's default bases and ε; and
// one with SiLU (hidden_activation silu) and an odd local_attention 5 (|i − j| ≤ 2).
[TransformerModel(Config = "Export.Tests/Configs/modernbert-blocks/config.json", SeqLen = 14, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class GgufModernBertBlocks { }

[TransformerModel(Config = "Export.Tests/Configs/modernbert-silu/config.json", SeqLen = 9, Batch = 3, Head = EncoderHead.SentenceEmbedding)]
public partial class GgufModernBertSilu { }

// modernbert-silu's shape with the erf GELU and a sentence-transformers Dense layer 24 → 17 (no bias, Identity) after the
// mean pooling, which llama.cpp's modern-bert has no place for: refused.
[TransformerModel(Config = "Export.Tests/Configs/modernbert-dense/config.json", SeqLen = 9, Batch = 2, Head = EncoderHead.SentenceEmbedding)]
public partial class GgufModernBertDense { }

