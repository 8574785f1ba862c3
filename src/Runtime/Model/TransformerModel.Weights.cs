using System;
using System.Runtime.InteropServices;
using TransformerGen.Kernels;

namespace TransformerGen;

/// <summary>
/// How an instance holds the weight matrices of its linear layers (<see cref="ModelLayout.PackedMatrices"/>): in
/// PyTorch's rows while it trains, and in an inference instance in the form its <see cref="WeightType"/> names, made
/// in place of the fp32 rows (fp32 panels where AVX-512 makes them pay, bf16 panels, or 8-bit blocks). The generated
/// code multiplies by these matrices through <see cref="Linear"/> and looks a tied table up through
/// <see cref="EmbeddingLookup"/>, which read whichever form the instance holds.
/// </summary>
public abstract partial class TransformerModel
{
    /// <summary>The forms a weight matrix takes in the parameter buffer.</summary>
    private enum MatrixForm
    {
        /// <summary>PyTorch's <c>[out, in]</c> rows (training, and any instance after <see cref="Parameters"/> was read).</summary>
        Rows,
        /// <summary>fp32 panels of 64 output columns (<see cref="MatMul.PackPanels"/>).</summary>
        Panels,
        /// <summary>bf16 panels (<see cref="BFloat16MatMul.ConvertInPlace"/>) in the first half of the matrix's bytes.</summary>
        BFloat16,
        /// <summary>8-bit blocks (<see cref="QuantizedMatMul.QuantizeInPlace"/>) in the first ~27% of the matrix's bytes.</summary>
        Int8,
    }

    /// <summary>
    /// How this instance holds its weight matrices for inference: fp32 for training instances and by default; bf16 or
    /// 8-bit blocks when the factory asked for them (<c>ForInference(…, weights)</c>, <c>FromBuiltInWeights(…)</c>, or the
    /// declaration's <c>WeightType</c>). A matrix whose reduced form would not fit in place of its fp32 rows (fewer than
    /// about 12 inputs for 8-bit) stays fp32.
    /// </summary>
    public WeightType WeightType { get; }

    /// <summary>
    /// For 8-bit weights (<see cref="WeightType.Int8"/>): whether products of at least
    /// <see cref="QuantizedMatMul.IntegerProductMinimumRows"/> rows (a prompt, an encoder pass) round their activations
    /// per block of 32 to 13-bit integers and multiply in integers (<see cref="QuantizedMatMul.ForwardIntegers(ReadOnlySpan{float}, ReadOnlySpan{byte}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>),
    /// the faster product for many rows. True by default; a token's logits inside such a prompt then differ from the same
    /// token appended alone by that rounding (at most 2⁻¹³ of each block's largest activation, relative). False keeps every
    /// product on fp32 activations (<see cref="QuantizedMatMul.Forward(ReadOnlySpan{float}, ReadOnlySpan{byte}, ReadOnlySpan{float}, Span{float}, int, int, int)"/>),
    /// where a row gets the same bits alone as inside any prompt. Other weight types ignore it.
    /// </summary>
    public bool IntegerProducts { get; set; } = true;

    private ModelWeights? _shared;

    /// <summary>True when this instance reads weights shared with other instances (<see cref="ModelWeights"/>), which it never writes.</summary>
    public bool SharesWeights => _shared is not null;

    /// <summary>
    /// The parameters of this freshly loaded inference instance as read-only weights for other instances (the generated
    /// <c>LoadWeights</c> calls this once and drops the instance): packed first, and this instance writes them no more.
    /// </summary>
    protected ModelWeights ShareWeights()
    {
        if (Use != ModelUse.Inference) throw new InvalidOperationException($"a {_layout.Name} built for training does not share its weights");
        if (_shared is not null) return _shared;
        if (!WeightsPacked) Pack();
        _shared = new ModelWeights(_layout, _parameters, _parameterSegments, WeightType, WeightsPacked);
        return _shared;
    }

    private InvalidOperationException SharedWeightsAreReadOnly(string member) => new(
        $"{_layout.Name}.{member}: this instance reads weights shared with other instances (ModelWeights), which are read-only; " +
        "load, save or export them through an instance that owns its weights (ForInference(checkpoint))");

    /// <summary>
    /// True when the weight matrices are held in their inference form (see <see cref="WeightType"/>): an inference
    /// instance packs them when its parameters are set, unless that changes nothing (fp32 without AVX-512, whose row
    /// kernels are as fast). Training instances never do.
    /// </summary>
    public bool WeightsPacked { get; private set; }

    /// <summary>
    /// Packs the weight matrices of an inference instance into the form its <see cref="WeightType"/> names, after its
    /// parameters were loaded or after <see cref="Parameters"/> was read (and perhaps written), so that inference runs at
    /// full speed; does nothing where they are packed already or where packing changes nothing. Quantizing the values
    /// that unpacking 8-bit weights gave restores the same bytes.
    /// </summary>
    /// <exception cref="InvalidOperationException">The instance was built for training: its backward pass reads the rows.</exception>
    /// <exception cref="ArgumentException">A weight is not finite, or too large for 8-bit blocks with fp16 scales; nothing is changed.</exception>
    public void PackWeights()
    {
        using CallScope scope = Enter("PackWeights");
        if (Use != ModelUse.Inference)
            throw new InvalidOperationException($"this {_layout.Name} was built for training, whose backward pass reads the weights in PyTorch's layout; only an instance from ForInference or FromBuiltInWeights packs them");
        if (!WeightsPacked && _shared is null) Pack();
    }

    /// <summary>
    /// Copies the parameters in fp32 and PyTorch's layout, laid out as <see cref="ParameterTensors"/>, into
    /// <paramref name="destination"/> (<see cref="ModelLayout.ParameterCount"/> floats): what <see cref="Parameters"/>
    /// holds, with the matrices of a packed instance unpacked in the copy (bf16 values, or 8-bit weights dequantized).
    /// The instance is not changed.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> has another length.</exception>
    public void CopyParametersTo(Span<float> destination)
    {
        using CallScope scope = Enter("CopyParametersTo");
        WholeParameters("CopyParametersTo");
        if (destination.Length != _parameters.Length)
            throw new ArgumentException($"{_layout.Name} has {_parameters.Length} parameter floats; the destination has {destination.Length}", nameof(destination));
        _parameters.Span.CopyTo(destination);
        foreach (WeightMatrix m in _layout.PackedMatrices)
            ToRows(destination.Slice(m.Offset, m.Rows * m.Columns), m.Rows, m.Columns, FormOf(m.Rows, m.Columns));
    }

    /// <summary>Bytes the weight matrices occupy in the form this instance holds them (what a product reads).</summary>
    public long WeightMatrixBytes
    {
        get
        {
            long bytes = 0;
            foreach (WeightMatrix m in _layout.PackedMatrices)
                bytes += FormBytes(m.Rows, m.Columns, FormOf(m.Rows, m.Columns));
            return bytes;
        }
    }

    /// <summary>The bytes a <c>[rows, columns]</c> matrix takes in <paramref name="form"/>: from the start of its fp32 space.</summary>
    private static long FormBytes(int rows, int columns, MatrixForm form) => form switch
    {
        MatrixForm.Int8 => QuantizedMatMul.ByteCount(rows, columns),
        MatrixForm.BFloat16 => BFloat16MatMul.ElementCount(rows, columns) * sizeof(ushort),
        _ => (long)rows * columns * sizeof(float),
    };

    /// <summary>
    /// <c>y[n, outF] = x[n, inF] · Wᵀ + bias</c> for a weight <paramref name="weight"/> that is one of
    /// <see cref="ModelLayout.PackedMatrices"/> (the whole region the layout names), in the form this instance holds it.
    /// The generated code calls this for those matrices and the plain kernel for any other.
    /// </summary>
    protected void Linear(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int n, int inF, int outF)
    {
        switch (FormOf(outF, inF))
        {
            case MatrixForm.Rows:
                MatMul.Forward(x, weight, bias, y, n, inF, outF);
                break;
            case MatrixForm.Panels:
                MatMul.Forward(x, weight, bias, y, n, inF, outF, packed: true);
                break;
            case MatrixForm.BFloat16:
                BFloat16MatMul.Forward(x, MemoryMarshal.Cast<float, ushort>(weight).Slice(0, (int)BFloat16MatMul.ElementCount(outF, inF)), bias, y, n, inF, outF);
                break;
            case MatrixForm.Int8:
                ReadOnlySpan<byte> q = MemoryMarshal.AsBytes(weight).Slice(0, (int)QuantizedMatMul.ByteCount(outF, inF));
                if (IntegerProducts && n >= QuantizedMatMul.IntegerProductMinimumRows) QuantizedMatMul.ForwardIntegers(x, q, bias, y, n, inF, outF);
                else QuantizedMatMul.Forward(x, q, bias, y, n, inF, outF);
                break;
        }
    }

    /// <summary>
    /// <c>output[i] = table[tokens[i]]·scale</c> for a table that is also one of <see cref="ModelLayout.PackedMatrices"/>
    /// (an output head tied to the embedding), in the form this instance holds it.
    /// </summary>
    protected void EmbeddingLookup(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, Span<float> output, int vocab, int c, float scale)
    {
        MatrixForm form = FormOf(vocab, c);
        if (form is MatrixForm.Rows or MatrixForm.Panels)
        {
            Embedding.Forward(tokens, table, output, vocab, c, scale, packed: form == MatrixForm.Panels);
            return;
        }
        SpanChecks.Length(output.Length, (long)tokens.Length * c, nameof(output));
        if (form == MatrixForm.Int8)
        {
            ReadOnlySpan<byte> q = MemoryMarshal.AsBytes(table).Slice(0, (int)QuantizedMatMul.ByteCount(vocab, c));
            for (int i = 0; i < tokens.Length; i++) QuantizedMatMul.ReadRow(q, vocab, c, tokens[i], scale, output.Slice(i * c, c));
        }
        else
        {
            ReadOnlySpan<ushort> words = MemoryMarshal.Cast<float, ushort>(table).Slice(0, (int)BFloat16MatMul.ElementCount(vocab, c));
            for (int i = 0; i < tokens.Length; i++) BFloat16MatMul.ReadRow(words, vocab, c, tokens[i], scale, output.Slice(i * c, c));
        }
    }

    /// <summary>The form a <c>[rows, columns]</c> matrix is in now.</summary>
    private MatrixForm FormOf(int rows, int columns) => WeightsPacked ? PackedForm(rows, columns) : MatrixForm.Rows;

    /// <summary>The form packing gives a <c>[rows, columns]</c> matrix: a function of its shape, so products and packing agree.</summary>
    private MatrixForm PackedForm(int rows, int columns) => WeightType switch
    {
        WeightType.Int8 when QuantizedMatMul.FitsInPlace(rows, columns) => MatrixForm.Int8,
        WeightType.BFloat16 when BFloat16MatMul.FitsInPlace(rows, columns) => MatrixForm.BFloat16,
        _ => MatMul.PanelLayoutPays ? MatrixForm.Panels : MatrixForm.Rows,
    };

    // Matrices (by index in PackedMatrices) that a load wrote in the 8-bit form straight from an 8-bit checkpoint, which
    // Pack then keeps as they are; null when there are none.
    private bool[]? _loadedPacked;

    /// <summary>
    /// For a load into an inference instance with 8-bit weights: the flags, by tensor, of the weight matrices it packs
    /// (an 8-bit checkpoint's blocks are then written in the packed form directly, the bytes quantizing their fp32
    /// values would give); null for any other instance.
    /// </summary>
    private bool[]? Int8MatricesToPack()
    {
        if (Use != ModelUse.Inference || WeightType != WeightType.Int8 || _shared is not null) return null;
        var flags = new bool[_layout.Tensors.Count];
        bool any = false;
        for (int i = 0; i < flags.Length; i++)
        {
            ParameterTensor t = _layout.Tensors[i];
            flags[i] = t.Shape.Length == 2 && MatrixIndex(t) >= 0 && PackedForm(t.Shape[0], t.Shape[1]) == MatrixForm.Int8;
            any |= flags[i];
        }
        return any ? flags : null;
    }

    /// <summary>The weight matrix that <paramref name="t"/> is whole (not one of several tensors stacked in it), or -1.</summary>
    private int MatrixIndex(ParameterTensor t) =>
        MatrixHolding(t) is int k and >= 0 && _layout.PackedMatrices[k] is var m && m.Offset == t.Offset && m.Rows * m.Columns == t.Length ? k : -1;

    /// <summary>Runs a load that may write 8-bit matrices packed (<paramref name="load"/> receives and updates the tensor flags) and remembers which it did.</summary>
    private void LoadPacked(bool[] flags, Action<bool[]> load)
    {
        load(flags);
        bool[]? packed = null;
        for (int i = 0; i < flags.Length; i++)
            if (flags[i])
            {
                packed ??= new bool[_layout.PackedMatrices.Length];
                int k = MatrixIndex(_layout.Tensors[i]);
                packed[k] = true;
                WeightMatrix m = _layout.PackedMatrices[k];
                ReleasedWeightBytes += ResidentMemory.Release(ParameterSpans[m], QuantizedMatMul.ByteCount(m.Rows, m.Columns));
            }
        _loadedPacked = packed;
    }

    /// <summary>
    /// Runs <paramref name="load"/> (which reads a checkpoint into the parameters, telling its argument, when not null, the
    /// index of each tensor it has written) with the weights unpacked, then packs them. A fresh bf16 or 8-bit inference
    /// instance packs each matrix as soon as the load has written all of it and gives its fp32 pages back then
    /// (<see cref="PackWhileLoading"/>), so that a load never holds more than the reduced weights and the matrices still
    /// being read: Llama-3.2-3B's 12.85 GB of fp32 never exist at once for its 3.4 GB of 8-bit matrices.
    /// </summary>
    private void LoadParameters(Action<Action<int>?> load)
    {
        PackWhileLoading? packing = Use == ModelUse.Inference && _shared is null && !WeightsPacked && WeightType != WeightType.Float32 ? new(this) : null;
        try
        {
            WithUnpackedWeights(() =>
            {
                load(packing is null ? null : packing.Written);
                return true;
            });
        }
        catch
        {
            packing?.Undo();
            throw;
        }
        if (packing is { Count: > 0 })
        {
            // Beside those an 8-bit checkpoint wrote packed (LoadPacked), if any.
            if (_loadedPacked is { } fromFile)
                for (int k = 0; k < fromFile.Length; k++) packing.Packed[k] |= fromFile[k];
            _loadedPacked = packing.Packed;
        }
        PackLoadedRest();
        OnParametersReplaced();
    }

    /// <summary>Matrices packed during a load, each as soon as every tensor it is made of (q, k and v stacked, say) was written.</summary>
    private sealed class PackWhileLoading
    {
        private readonly TransformerModel _model;
        private readonly int[] _matrixOf;
        private readonly int[] _unwritten;
        private bool _stopped;

        public PackWhileLoading(TransformerModel model)
        {
            _model = model;
            ModelLayout layout = model._layout;
            Packed = new bool[layout.PackedMatrices.Length];
            _unwritten = new int[Packed.Length];
            _matrixOf = new int[layout.Tensors.Count];
            for (int i = 0; i < _matrixOf.Length; i++)
            {
                _matrixOf[i] = model.MatrixHolding(layout.Tensors[i]);
                if (_matrixOf[i] >= 0) _unwritten[_matrixOf[i]]++;
            }
        }

        /// <summary>By matrix: packed during the load.</summary>
        public bool[] Packed { get; }

        /// <summary>Matrices packed so far.</summary>
        public int Count { get; private set; }

        /// <summary>Tensor <paramref name="tensor"/> is written: its matrix is packed if that was its last part.</summary>
        public void Written(int tensor)
        {
            int k = _matrixOf[tensor];
            if (k < 0 || --_unwritten[k] > 0 || _stopped) return;
            // A matrix 8-bit blocks refuse stops the packing: Pack then leaves every matrix as rows and says which.
            if (!_model.PackMatrix(k, checkFirst: true)) _stopped = true;
            else
            {
                Packed[k] = true;
                Count++;
            }
        }

        /// <summary>After a failed load: the matrices packed so far back to rows, as the rest are.</summary>
        public void Undo()
        {
            for (int k = 0; k < Packed.Length; k++)
                if (Packed[k]) _model.UnpackMatrix(k);
            _model.ReleasedWeightBytes = 0;
        }
    }

    /// <summary>After a load that wrote some matrices packed: packs the others too, so that no matrix is left in another form than the instance's.</summary>
    private void PackLoadedRest()
    {
        if (_loadedPacked is not null) Pack();
    }

    private void Pack()
    {
        if (WeightType == WeightType.Float32 && !MatMul.PanelLayoutPays) return;
        bool[]? loaded = _loadedPacked;
        _loadedPacked = null;
        // 8-bit blocks refuse non-finite weights: check every matrix first, so that a refusal leaves all of them as rows
        // (those a load wrote packed are widened back first).
        if (WeightType == WeightType.Int8)
            for (int k = 0; k < _layout.PackedMatrices.Length; k++)
            {
                WeightMatrix m = _layout.PackedMatrices[k];
                if (loaded is not null && loaded[k]) continue;
                try
                {
                    CheckQuantizable(ParameterSpans[m], m);
                }
                catch (ArgumentException)
                {
                    for (int j = 0; loaded is not null && j < loaded.Length; j++)
                        if (loaded[j]) UnpackMatrix(j);
                    ReleasedWeightBytes = 0;
                    throw;
                }
            }
        for (int k = 0; k < _layout.PackedMatrices.Length; k++)
            if (loaded is null || !loaded[k]) PackMatrix(k, checkFirst: false); // those a load packed gave their pages back then
        WeightsPacked = true;
    }

    /// <summary>
    /// Packs weight matrix <paramref name="k"/> into the instance's form and gives back the pages of its fp32 space that form
    /// does not use; with <paramref name="checkFirst"/>, leaves it as rows and returns false where 8-bit blocks refuse it.
    /// </summary>
    private bool PackMatrix(int k, bool checkFirst)
    {
        WeightMatrix m = _layout.PackedMatrices[k];
        Span<float> w = ParameterSpans[m];
        switch (PackedForm(m.Rows, m.Columns))
        {
            case MatrixForm.Panels: MatMul.PackPanels(w, m.Rows, m.Columns); break;
            case MatrixForm.BFloat16:
                BFloat16MatMul.ConvertInPlace(w, m.Rows, m.Columns);
                ReleasedWeightBytes += ResidentMemory.Release(w, FormBytes(m.Rows, m.Columns, MatrixForm.BFloat16));
                break;
            case MatrixForm.Int8:
                if (checkFirst && QuantizedMatMul.FirstUnquantizable(w) >= 0) return false;
                QuantizedMatMul.QuantizeInPlace(w, m.Rows, m.Columns);
                ReleasedWeightBytes += ResidentMemory.Release(w, FormBytes(m.Rows, m.Columns, MatrixForm.Int8));
                break;
        }
        return true;
    }

    /// <summary>
    /// Reads the parameters tensor by tensor in fp32 and PyTorch's layout, whatever form the instance holds them in, without
    /// changing it (shared weights included): for an export that writes one tensor at a time (GGUF). A tensor of a packed
    /// matrix is read from a copy of that matrix unpacked (bf16 values, or 8-bit weights dequantized), made once for all the
    /// tensors stacked in it; so an export holds at most one matrix in fp32 beside the instance, not the whole model.
    /// </summary>
    internal sealed class TensorReader(TransformerModel model)
    {
        private float[]? _copy;
        private int _copied = -1;

        /// <summary>The values of <paramref name="tensor"/>, valid until the next call.</summary>
        public ReadOnlySpan<float> Read(ParameterTensor tensor)
        {
            Span<float> own = model.ParameterSpans[tensor];
            int k = model.MatrixHolding(tensor);
            if (k < 0) return own;
            WeightMatrix m = model._layout.PackedMatrices[k];
            MatrixForm form = model.FormOf(m.Rows, m.Columns);
            if (form == MatrixForm.Rows) return own;
            int length = m.Rows * m.Columns;
            if (_copied != k)
            {
                if (_copy is null || _copy.Length < length) _copy = new float[length];
                model.ParameterSpans[m].CopyTo(_copy);
                ToRows(_copy.AsSpan(0, length), m.Rows, m.Columns, form);
                _copied = k;
            }
            return _copy.AsSpan(tensor.Offset - m.Offset, tensor.Length);
        }
    }

    /// <summary>The weight matrix <paramref name="tensor"/> is (or is stacked in), or -1.</summary>
    private int MatrixHolding(ParameterTensor tensor)
    {
        for (int k = 0; k < _layout.PackedMatrices.Length; k++)
        {
            WeightMatrix m = _layout.PackedMatrices[k];
            if (m.Segment == tensor.Segment && tensor.Offset >= m.Offset && tensor.Offset + (long)tensor.Length <= m.Offset + (long)m.Rows * m.Columns)
                return k;
        }
        return -1;
    }

    /// <summary>Weight matrix <paramref name="k"/>, packed, back to PyTorch's rows (its values as packed: bf16, or dequantized).</summary>
    private void UnpackMatrix(int k)
    {
        WeightMatrix m = _layout.PackedMatrices[k];
        ToRows(ParameterSpans[m], m.Rows, m.Columns, PackedForm(m.Rows, m.Columns));
    }

    /// <summary>
    /// Bytes of the parameter buffer given back to the operating system (Linux) because the weight matrices are held in
    /// bf16 or 8 bits in the first part of their fp32 space: the whole pages of the rest. The buffer keeps its size
    /// (<see cref="BufferBytes"/>), the process's resident memory drops by this much. 0 while the weights are unpacked
    /// (reading <see cref="Parameters"/> writes those pages again), in fp32, or on other systems.
    /// </summary>
    public long ReleasedWeightBytes { get; private set; }

    /// <summary>
    /// Bytes of the parameter buffer that Linux was asked to back with huge pages when it was allocated (the whole huge
    /// pages of <see cref="WeightPageRanges"/>, where those cover two huge pages or more; see
    /// <c>ResidentMemory.AdviseHugePages</c>): 0 for small models, other systems, or a kernel without transparent huge pages.
    /// </summary>
    internal long HugePageWeightBytes
    {
        get
        {
            long bytes = _parameters.HugePageBytes;
            foreach (AlignedBuffer segment in _parameterSegments) bytes += segment.HugePageBytes;
            return bytes;
        }
    }

    /// <summary>
    /// The floats of parameter segment <paramref name="segment"/> to back with huge pages (start and length, in order):
    /// fp32 weights the whole segment; reduced ones (bf16, 8 bits) the first part of each matrix's fp32 space, which its
    /// packed form fills, and never the rest, whose pages are released after packing (<see cref="ResidentMemory.Release"/>):
    /// advice there would split huge pages at every release, and the kernel's background collapsing, which works only
    /// inside advised ranges, could fill released pages back in. Norms, biases and an untied embedding table, which a
    /// reduced instance reads a row or a vector at a time, keep small pages.
    /// </summary>
    private (int Start, int Length)[] WeightPageRanges(int segment)
    {
        int floats = _layout.ParameterSegments[segment];
        if (WeightType == WeightType.Float32) return [(0, floats)];
        var ranges = new System.Collections.Generic.List<(int, int)>();
        foreach (WeightMatrix m in _layout.PackedMatrices)
            if (m.Segment == segment)
            {
                long bytes = FormBytes(m.Rows, m.Columns, PackedForm(m.Rows, m.Columns));
                ranges.Add((m.Offset, (int)((bytes + sizeof(float) - 1) / sizeof(float))));
            }
        ranges.Sort();
        return [.. ranges];
    }

    private void CheckQuantizable(ReadOnlySpan<float> w, WeightMatrix m)
    {
        int i = QuantizedMatMul.FirstUnquantizable(w);
        if (i >= 0)
            throw new ArgumentException($"{_layout.Name}: the weight matrix at parameter offset {(m.Segment == 0 ? "" : $"{m.Segment}:")}{m.Offset} holds {w[i]} at [{i / m.Columns}, {i % m.Columns}]; 8-bit weights need finite values whose block scale fits fp16 (|w| ≤ {127f * (float)Half.MaxValue})");
    }

    private void UnpackWeights()
    {
        foreach (WeightMatrix m in _layout.PackedMatrices)
            ToRows(ParameterSpans[m], m.Rows, m.Columns, FormOf(m.Rows, m.Columns));
        WeightsPacked = false;
        ReleasedWeightBytes = 0;
    }

    private static void ToRows(Span<float> w, int rows, int columns, MatrixForm form)
    {
        switch (form)
        {
            case MatrixForm.Panels: MatMul.UnpackPanels(w, rows, columns); break;
            case MatrixForm.BFloat16: BFloat16MatMul.ConvertBackInPlace(w, rows, columns); break;
            case MatrixForm.Int8: QuantizedMatMul.DequantizeInPlace(w, rows, columns); break;
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> with the parameters in fp32 and PyTorch's layout (what checkpoints read and write),
    /// packing them again afterwards, also when it throws.
    /// </summary>
    protected T WithUnpackedWeights<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        if (_shared is not null) throw SharedWeightsAreReadOnly("Load, Save and SaveOnnx");
        if (!WeightsPacked) return action();
        UnpackWeights();
        try { return action(); }
        finally { Pack(); }
    }
}
