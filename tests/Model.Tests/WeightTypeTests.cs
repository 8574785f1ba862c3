using System;
using System.IO;
using System.Linq;
using TransformerGen.Kernels;
using Xunit;
using static TransformerGen.Model.Tests.ReducedWeights;

namespace TransformerGen.Model.Tests;

/// <summary>A model whose declaration makes 8-bit weights the default of its inference factories.</summary>
[TransformerModel(Vocab = 131, DModel = 40, Heads = 4, Layers = 2, DFF = 100, SeqLen = 9, Batch = 2,
    Positional = Positional.Rotary, Norm = NormPlacement.Pre, WeightType = WeightType.Int8)]
public partial class Int8Decoder { }

/// <summary>
/// A sentence embedder whose token table (131 × 40) only lookups read: an inference instance holds it as it holds its
/// matrices (8-bit blocks, bf16), as EmbeddingGemma's 262,144-row table.
/// </summary>
[TransformerModel(Architecture = Architecture.EncoderOnly, Vocab = 131, DModel = 40, Heads = 4, Layers = 1, DFF = 72, SeqLen = 9, Batch = 2,
    Head = EncoderHead.SentenceEmbedding, PadToken = 0)]
public partial class TableEmbedder { }

/// <summary>A Marian (opus-mt-shaped, 64 wide so that its matrices have whole 32-weight blocks) from its config.</summary>
[TransformerModel(Config = "Configs/marian-odd/config.json", SeqLen = 7, TargetSeqLen = 6)]
public partial class HfMarianOdd { }

/// <summary>An M2M100 (NLLB-shaped: pre-LN, fairseq sinusoids, no logits bias) from its config.</summary>
[TransformerModel(Config = "Configs/m2m100-odd/config.json", SeqLen = 7, TargetSeqLen = 6)]
public partial class HfM2M100Odd { }

/// <summary>
/// Inference instances with bf16 and 8-bit weight matrices (the models of PackedWeightsTests: matrices of whole panels
/// and rows left over, a tied head): each computes what an fp32 instance computes over the same rounded weights, within
/// fp32 summation order; their parameters, checkpoints and copies read back as those rounded weights.
/// </summary>
public sealed class WeightTypeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("transformergen-weighttype-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static float MaxAbs(ReadOnlySpan<float> v)
    {
        float max = 0f;
        foreach (float x in v) max = Math.Max(max, Math.Abs(x));
        return max;
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = MaxAbs(expected);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * scale, $"{what}[{i}]: {actual[i]}, expected {expected[i]}");
    }

    private static float MaxRelativeDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float diff = 0f;
        for (int i = 0; i < a.Length; i++) diff = Math.Max(diff, Math.Abs(a[i] - b[i]));
        return diff / MaxAbs(a);
    }

    [Theory]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void A_decoder_computes_what_fp32_computes_over_the_rounded_weights(WeightType type)
    {
        PanelDecoder reduced = PanelDecoder.ForInference(7, type);
        Assert.Equal(type, reduced.WeightType);
        Assert.True(reduced.WeightsPacked);
        PanelDecoder exact = PanelDecoder.ForInference(7);
        PanelDecoder reference = PanelDecoder.ForInference(7);
        RoundMatrices(reference, type);
        reference.PackWeights();

        int[] prompt = [3, 70, 130, 5, 64, 127];
        float[] got = reduced.Append(prompt).ToArray();
        AssertClose(reference.Append(prompt), got, 1e-5f, $"{type} logits");
        // The rounding is real: the fp32 model differs, by about what the format's precision gives.
        float gap = MaxRelativeDifference(exact.Append(prompt), got);
        Assert.InRange(gap, 1e-6f, type == WeightType.Int8 ? 3e-2f : 2e-2f);

        // One token at a time through the cache gives the rows of the whole prompt.
        reduced.ResetCache();
        for (int i = 0; i < prompt.Length - 1; i++) reduced.Append(prompt.AsSpan(i, 1));
        AssertClose(got, reduced.Append(prompt.AsSpan(prompt.Length - 1, 1)), 1e-5f, "the last token alone");
    }

    [Theory]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void An_encoder_and_a_seq2seq_model_compute_what_fp32_computes_over_the_rounded_weights(WeightType type)
    {
        PanelClassifier classifier = PanelClassifier.ForInference(3, type);
        PanelClassifier classifierReference = PanelClassifier.ForInference(3);
        RoundMatrices(classifierReference, type);
        classifierReference.PackWeights();
        int[] tokens = [1, 5, 69, 64, 2, 33, 8, 9, 10, 11, 63, 65, 66, 67];
        AssertClose(classifierReference.Predict(tokens), classifier.Predict(tokens), 1e-5f, $"{type} class logits");

        PanelSeq2Seq translator = PanelSeq2Seq.ForInference(4, type);
        PanelSeq2Seq translatorReference = PanelSeq2Seq.ForInference(4);
        RoundMatrices(translatorReference, type);
        translatorReference.PackWeights();
        int[] source = [4, 69, 20, 64, 3];
        translator.Encode(source);
        translatorReference.Encode(source);
        AssertClose(translatorReference.Append([1, 66, 7]), translator.Append([1, 66, 7]), 1e-5f, $"{type} decoder logits");
    }

    /// <summary>
    /// The Hugging Face encoder–decoders (one shared table for both stacks and the tied head, the cross-attention's keys
    /// and values packed): with reduced weights, their encoder and cached decoder compute what fp32 computes over the same
    /// rounded matrices, and differ from fp32 itself by about the format's precision.
    /// </summary>
    [Theory]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void Hugging_face_encoder_decoders_compute_what_fp32_computes_over_the_rounded_weights(WeightType type)
    {
        foreach (Func<WeightType, Seq2SeqModel> open in new Func<WeightType, Seq2SeqModel>[] { w => HfMarianOdd.ForInference(5, w), w => HfM2M100Odd.ForInference(5, w) })
        {
            Seq2SeqModel reduced = open(type), exact = open(WeightType.Float32), reference = open(WeightType.Float32);
            Assert.Equal(type, reduced.WeightType);
            RoundMatrices(reference, type);
            reference.PackWeights();
            int[] source = [4, 69, 20, 64, 3, 9];
            int start = reduced.Layout.BosToken;
            int[] target = [start, 66, 7, 31];
            float[] got = Decode(reduced), expected = Decode(reference);
            AssertClose(expected, got, 1e-5f, $"{reduced.Layout.Name} {type} decoder logits");
            float gap = MaxRelativeDifference(Decode(exact), got);
            Assert.InRange(gap, 1e-6f, type == WeightType.Int8 ? 3e-2f : 2e-2f);

            float[] Decode(Seq2SeqModel model)
            {
                model.Encode(source);
                return model.Append(target).ToArray();
            }
        }
    }

    [Theory]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void An_encoders_token_table_is_held_reduced_and_its_rows_read_as_the_rounded_table(WeightType type)
    {
        TableEmbedder exact = TableEmbedder.ForInference(7), reduced = TableEmbedder.ForInference(7, type);
        ParameterTensor table = exact.ParameterTensors.Single(t => t.Shape.Length == 2 && t.Shape[0] == TableEmbedder.Vocab);
        var tableMatrix = new WeightMatrix(table.Offset, TableEmbedder.Vocab, TableEmbedder.DModel);
        Assert.Contains(tableMatrix, exact.Layout.PackedMatrices);
        int[] lengths = [9, 4];
        int[] tokens = Enumerable.Range(0, 13).Select(i => 1 + i * 37 % 130).ToArray();
        float[] a = reduced.Predict(tokens, lengths).ToArray(), c = exact.Predict(tokens, lengths).ToArray();

        // The fp32 model over every packed matrix rounded (the table too) computes what the reduced one does; over every
        // matrix but the table it does not: the instance reads the table's rows in the reduced form.
        float[] Rounded(bool table)
        {
            TableEmbedder model = TableEmbedder.ForInference(7);
            Span<float> p = model.Parameters; // reading Parameters unpacks the fp32 panels
            foreach (WeightMatrix m in model.Layout.PackedMatrices)
            {
                if (!table && m == tableMatrix) continue;
                Span<float> w = p.Slice(m.Offset, m.Rows * m.Columns);
                ReducedWeights.Rounded(w, m.Rows, m.Columns, type).CopyTo(w);
            }
            model.PackWeights();
            return model.Predict(tokens, lengths).ToArray();
        }
        float[] all = Rounded(table: true), allButTable = Rounded(table: false);
        double same = 0, withoutTable = 0;
        for (int i = 0; i < a.Length; i++)
        {
            same = Math.Max(same, Math.Abs(a[i] - all[i]));
            withoutTable = Math.Max(withoutTable, Math.Abs(a[i] - allButTable[i]));
        }
        Assert.True(same <= 1e-6, $"{same} from the fp32 model over the rounded weights");
        Assert.True(withoutTable > 1e-6 && withoutTable > 10 * same, $"{withoutTable} without the table's rounding, {same} with it: the instance does not read the rounded table");
        Assert.False(a.AsSpan().SequenceEqual(c));
        AssertCosines(c, a, lengths.Length);
    }

    [Fact]
    public void A_model_of_this_projects_own_layout_has_no_sentence_transformers_folder()
    {
        string folder = Path.Combine(Path.GetTempPath(), "tg-st-" + Guid.NewGuid().ToString("N"));
        NotSupportedException e = Assert.Throws<NotSupportedException>(() => TableEmbedder.ForInference(7).SaveSentenceTransformers(folder));
        Assert.Contains("this project's own layout", e.Message);
        Assert.False(Directory.Exists(folder));
    }

    [Theory]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void Sentence_embeddings_with_reduced_weights_keep_a_cosine_of_at_least_0_999(WeightType type)
    {
        // ExactBert (ExactLengthTests.cs): BERT from a config, hidden 30, its Q|K|V matrices (90 × 30) reduced.
        ExactBert exact = ExactBert.ForInference(5), reduced = ExactBert.ForInference(5, type);
        Assert.True(reduced.WeightMatrixBytes < exact.WeightMatrixBytes);
        int[] lengths = [5, 17, 9];
        int[] tokens = Enumerable.Range(0, lengths.Sum()).Select(i => 1 + i * 7 % 42).ToArray();
        float[] a = exact.Predict(tokens, lengths).ToArray(), b = reduced.Predict(tokens, lengths).ToArray();
        AssertCosines(a, b, lengths.Length);
        if (type != WeightType.Int8) return;
        // The 31 rows are products of at least 16 rows, taken in integers (the activations rounded too): without them
        // (IntegerProducts = false) the embeddings differ, and both keep the cosine.
        ExactBert fp32Activations = ExactBert.ForInference(5, type);
        fp32Activations.IntegerProducts = false;
        float[] c = fp32Activations.Predict(tokens, lengths).ToArray();
        Assert.False(b.AsSpan().SequenceEqual(c));
        AssertCosines(a, c, lengths.Length);
    }

    private static void AssertCosines(float[] a, float[] b, int sequences)
    {
        int width = a.Length / sequences;
        Assert.False(a.AsSpan().SequenceEqual(b));
        for (int s = 0; s < sequences; s++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int k = s * width; k < (s + 1) * width; k++) { dot += a[k] * b[k]; na += a[k] * a[k]; nb += b[k] * b[k]; }
            Assert.InRange(dot / Math.Sqrt(na * nb), 0.999, 1.000001);
        }
    }

    [Fact]
    public void An_8_bit_prompt_of_16_tokens_or_more_rounds_its_activations_unless_IntegerProducts_is_off()
    {
        // Splittable (ThreadingTests.cs): a decoder of DModel 64 and SeqLen 32, so prompts reach 16 rows.
        int[] prompt = Enumerable.Range(0, 24).Select(i => (i * 37 + 5) % 256).ToArray();
        Splittable integers = Splittable.ForInference(11, WeightType.Int8), fp32Activations = Splittable.ForInference(11, WeightType.Int8);
        Assert.True(integers.IntegerProducts);
        fp32Activations.IntegerProducts = false;
        float[] a = integers.Append(prompt).ToArray(), b = fp32Activations.Append(prompt).ToArray();
        Assert.False(a.AsSpan().SequenceEqual(b));
        AssertClose(b, a, 2e-3f, "integer products against fp32 activations");

        // On fp32 activations the last token appended alone after the others gets the bits it had inside the prompt.
        fp32Activations.ResetCache();
        fp32Activations.Append(prompt.AsSpan(0, prompt.Length - 1));
        Assert.Equal(b, fp32Activations.Append(prompt.AsSpan(prompt.Length - 1)).ToArray());
        // With integer products it differs by the rounding of the other 23 rows' activations.
        integers.ResetCache();
        integers.Append(prompt.AsSpan(0, prompt.Length - 1));
        AssertClose(a, integers.Append(prompt.AsSpan(prompt.Length - 1)), 2e-3f, "the last token alone");
    }

    [Fact]
    public void Matrices_take_the_bytes_of_their_format_and_the_declaration_sets_the_default()
    {
        PanelDecoder fp32 = PanelDecoder.ForInference(1, WeightType.Float32);
        long floats = fp32.Layout.PackedMatrices.Sum(m => 4L * m.Rows * m.Columns);
        Assert.Equal(floats, fp32.WeightMatrixBytes);
        Assert.Equal(fp32.Layout.PackedMatrices.Sum(m => QuantizedMatMul.ByteCount(m.Rows, m.Columns)), PanelDecoder.ForInference(1, WeightType.Int8).WeightMatrixBytes);
        Assert.Equal(fp32.Layout.PackedMatrices.Sum(m => 2 * BFloat16MatMul.ElementCount(m.Rows, m.Columns)), PanelDecoder.ForInference(1, WeightType.BFloat16).WeightMatrixBytes);

        Assert.Equal(WeightType.Int8, Int8Decoder.ForInference(1).WeightType);
        Assert.Equal(WeightType.BFloat16, Int8Decoder.ForInference(1, WeightType.BFloat16).WeightType);
        Assert.Equal(WeightType.Float32, PanelDecoder.ForInference(1).WeightType);
        Assert.Equal(WeightType.Float32, new Int8Decoder(1).WeightType);
    }

    [Theory]
    [InlineData(WeightType.BFloat16)]
    [InlineData(WeightType.Int8)]
    public void Parameters_copies_and_checkpoints_read_the_rounded_weights_and_packing_again_restores_the_bits(WeightType type)
    {
        PanelDecoder model = PanelDecoder.ForInference(11, type);
        int[] prompt = [9, 100, 64];
        float[] before = model.Append(prompt).ToArray();

        var rounded = new PanelDecoder(11);
        RoundMatrices(rounded, type);
        var copy = new float[model.Layout.ParameterCount];
        model.CopyParametersTo(copy);
        Assert.True(copy.AsSpan().SequenceEqual(rounded.Parameters));
        Assert.True(model.WeightsPacked);

        // A checkpoint holds the rounded weights as fp32; loading it into an instance of the same type gives its bits.
        string path = Path.Combine(_folder, "rounded.safetensors");
        model.Save(path);
        Assert.True(model.WeightsPacked);
        PanelDecoder loaded = PanelDecoder.ForInference(path, type);
        Assert.Equal(before, loaded.Append(prompt).ToArray());
        Assert.True(PanelDecoder.ForInference(path).Parameters.SequenceEqual(rounded.Parameters));

        // Parameters unpacks to the rounded values (rows, fp32 kernels) until PackWeights makes the same bytes again.
        Assert.True(model.Parameters.SequenceEqual(rounded.Parameters));
        Assert.False(model.WeightsPacked);
        model.ResetCache();
        AssertClose(before, model.Append(prompt), 1e-5f, "logits over fp32 rows");
        model.PackWeights();
        Assert.True(model.WeightsPacked);
        model.ResetCache();
        Assert.Equal(before, model.Append(prompt).ToArray());
    }

    [Fact]
    public void Training_instances_refuse_reduced_weights_and_8_bit_packing_refuses_non_finite_weights_changing_nothing()
    {
        ArgumentException training = Assert.Throws<ArgumentException>(() => BuiltInWeights.FromBuiltInWeights(ModelUse.Training, WeightType.Int8));
        Assert.Contains("training", training.Message);
        Assert.Equal(WeightType.Float32, BuiltInWeights.FromBuiltInWeights(ModelUse.Training).WeightType);

        PanelDecoder model = PanelDecoder.ForInference(2, WeightType.Int8);
        Span<float> p = model.Parameters;
        WeightMatrix last = model.Layout.PackedMatrices[^1];
        p[last.Offset + 5] = float.NaN;
        float[] kept = p.ToArray();
        ArgumentException bad = Assert.Throws<ArgumentException>(() => model.PackWeights());
        Assert.Contains("NaN", bad.Message);
        Assert.False(model.WeightsPacked);
        Assert.True(model.Parameters.SequenceEqual(kept));
    }

    [Fact]
    public void The_in_place_forms_round_trip_at_shapes_with_rest_rows_and_partial_blocks()
    {
        var random = new Random(5);
        foreach ((int rows, int columns) in new[] { (64, 32), (131, 40), (100, 17), (70, 96), (200, 33) })
        {
            float[] w = Enumerable.Range(0, rows * columns).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            foreach (WeightType type in new[] { WeightType.BFloat16, WeightType.Int8 })
            {
                float[] inPlace = (float[])w.Clone();
                if (type == WeightType.Int8)
                {
                    Assert.True(QuantizedMatMul.FitsInPlace(rows, columns));
                    QuantizedMatMul.QuantizeInPlace(inPlace, rows, columns);
                    var separate = new byte[QuantizedMatMul.ByteCount(rows, columns)];
                    QuantizedMatMul.Quantize(w, rows, columns, separate);
                    Assert.True(System.Runtime.InteropServices.MemoryMarshal.AsBytes(inPlace.AsSpan()).Slice(0, separate.Length).SequenceEqual(separate));
                    for (int r = 0; r < rows; r += 37)
                    {
                        var row = new float[columns];
                        QuantizedMatMul.ReadRow(separate, rows, columns, r, 2f, row);
                        float[] expected = Rounded(w, rows, columns, type).AsSpan(r * columns, columns).ToArray().Select(v => v * 2f).ToArray();
                        Assert.Equal(expected, row);
                    }
                    QuantizedMatMul.DequantizeInPlace(inPlace, rows, columns);
                }
                else
                {
                    Assert.True(BFloat16MatMul.FitsInPlace(rows, columns));
                    BFloat16MatMul.ConvertInPlace(inPlace, rows, columns);
                    var separate = new ushort[BFloat16MatMul.ElementCount(rows, columns)];
                    BFloat16MatMul.Convert(w, rows, columns, separate);
                    Assert.True(System.Runtime.InteropServices.MemoryMarshal.Cast<float, ushort>(inPlace.AsSpan()).Slice(0, separate.Length).SequenceEqual(separate));
                    for (int r = 0; r < rows; r += 37)
                    {
                        var row = new float[columns];
                        BFloat16MatMul.ReadRow(separate, rows, columns, r, 1f, row);
                        Assert.Equal(Rounded(w, rows, columns, type).AsSpan(r * columns, columns).ToArray(), row);
                    }
                    BFloat16MatMul.ConvertBackInPlace(inPlace, rows, columns);
                }
                Assert.Equal(Rounded(w, rows, columns, type), inPlace);
            }
        }
        // Too few inputs for 8-bit blocks in place (a 32-input block record per 64 rows is more than 64 rows of 8 floats).
        Assert.False(QuantizedMatMul.FitsInPlace(64, 8));
        Assert.Throws<ArgumentException>(() => QuantizedMatMul.QuantizeInPlace(new float[64 * 8], 64, 8));
    }
}
