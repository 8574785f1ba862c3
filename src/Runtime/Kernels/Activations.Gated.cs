using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

// GEGLU with the tanh GELU (Shazeer 2020, "GLU Variants Improve Transformer"), T5 v1.1's and Flan-T5's feed-forward
// (`feed_forward_proj = "gated-gelu"`, whose activation transformers takes as gelu_new): y = gelu_tanh(gate)·up over
// a packed [gate | up] projection, as SwiGluForward lays it out. The gate's value and slope are GeluTanhForward's and
// GeluTanhBackward's operators, to the bit. SwiGLU's forward runs on the same gated rows with SiLU's operator; its
// backward keeps a fused form of its own, which shares one exponential between the two gradients. GEGLU with the erf
// GELU (ModernBERT's `act(input)·gate` over its packed `Wi`) runs on the same rows with GeluForward's operators.
public static partial class Activations
{
    /// <summary>
    /// Effectively computes <c>y[r, j] = gelu_tanh(gateUp[r, j])·gateUp[r, hidden + j]</c>, each row of
    /// <paramref name="gateUp"/> being one linear layer's output whose weight stacks the gate's rows (T5's <c>wi_0</c>) above
    /// the up projection's (<c>wi_1</c>). gelu_tanh is <see cref="GeluTanhForward"/>'s, to the bit. Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="gateUp">Gate and up projections <c>[n, 2·hidden]</c>.</param>
    /// <param name="y">Output <c>[n, hidden]</c>; must not overlap <paramref name="gateUp"/>.</param>
    /// <param name="n">Rows (tokens).</param>
    /// <param name="hidden">Width of each half and of the output (d_ff).</param>
    public static void GeGluTanhForward(ReadOnlySpan<float> gateUp, Span<float> y, int n, int hidden)
        => GatedForward<GeluTanhOperator>(gateUp, y, n, hidden, GeluTanhCost);

    /// <summary>
    /// Effectively computes <c>y[r, j] = gelu(gateUp[r, j])·gateUp[r, hidden + j]</c> with the erf GELU, to the bit
    /// <see cref="GeluForward"/>'s: ModernBERT's feed-forward, whose <c>Wi</c> projects to <c>input | gate</c> and which
    /// multiplies <c>gelu(input)</c> by <c>gate</c> (the first half is the activated one, as here). Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="gateUp">The activated and the multiplying projections <c>[n, 2·hidden]</c>.</param>
    /// <param name="y">Output <c>[n, hidden]</c>; must not overlap <paramref name="gateUp"/>.</param>
    /// <param name="n">Rows (tokens).</param>
    /// <param name="hidden">Width of each half and of the output (intermediate_size).</param>
    public static void GeGluForward(ReadOnlySpan<float> gateUp, Span<float> y, int n, int hidden)
        => GatedForward<GeluOperator>(gateUp, y, n, hidden, GeluCost);

    /// <summary>
    /// The gradients of <see cref="GeGluForward"/>, for each row r and j &lt; hidden with g = gateUp[r, j],
    /// u = gateUp[r, hidden + j]: <c>dGateUp[r, j] += gelu′(g)·(dy[r, j]·u)</c> (<see cref="GeluBackward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/>'s
    /// slope) and <c>dGateUp[r, hidden + j] += dy[r, j]·gelu(g)</c> (<c>=</c> for both with <paramref name="overwriteDGateUp"/>).
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[n, hidden]</c>.</param>
    /// <param name="gateUp">The forward input <c>[n, 2·hidden]</c>.</param>
    /// <param name="dGateUp">Gradient of the input <c>[n, 2·hidden]</c>; must not overlap the other spans.</param>
    /// <param name="n">Rows.</param>
    /// <param name="hidden">Width of each half.</param>
    /// <param name="overwriteDGateUp">Store the gradient rather than add it.</param>
    public static void GeGluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> gateUp, Span<float> dGateUp, int n, int hidden, bool overwriteDGateUp = false)
        => GatedBackward<GeluOperator, GeluBackwardOperator>(dy, gateUp, dGateUp, n, hidden, overwriteDGateUp, 3L * GeluCost);

    /// <summary>
    /// <c>y[r, j] = TGate(gateUp[r, j])·gateUp[r, hidden + j]</c> over blocks of rows, on as many threads as the work
    /// (<paramref name="cost"/> per output, as Parallelism measures it) is worth; one thread runs the same rows in order.
    /// </summary>
    private static void GatedForward<TGate>(ReadOnlySpan<float> gateUp, Span<float> y, int n, int hidden, int cost) where TGate : IUnaryOperator
    {
        int blocks = GatedBlocks(n, hidden, gateUp.Length, y.Length, nameof(y), out int rowsPerBlock);
        unsafe
        {
            fixed (float* pGateUp = gateUp, py = y)
            {
                var work = new GatedForwardWork<TGate> { GateUp = pGateUp, Y = py, Hidden = hidden, N = n, RowsPerBlock = rowsPerBlock };
                WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor((long)cost * n * hidden, blocks));
            }
        }
    }

    /// <summary>
    /// The gradients of <see cref="GeGluTanhForward"/>, for each row r and j &lt; hidden with g = gateUp[r, j],
    /// u = gateUp[r, hidden + j]: <c>dGateUp[r, j] += gelu_tanh′(g)·(dy[r, j]·u)</c> and
    /// <c>dGateUp[r, hidden + j] += dy[r, j]·gelu_tanh(g)</c> (<c>=</c> for both with <paramref name="overwriteDGateUp"/>).
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[n, hidden]</c>.</param>
    /// <param name="gateUp">The forward input <c>[n, 2·hidden]</c>.</param>
    /// <param name="dGateUp">Gradient of the input <c>[n, 2·hidden]</c>; must not overlap the other spans.</param>
    /// <param name="n">Rows.</param>
    /// <param name="hidden">Width of each half.</param>
    /// <param name="overwriteDGateUp">Store the gradient rather than add it.</param>
    public static void GeGluTanhBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> gateUp, Span<float> dGateUp, int n, int hidden, bool overwriteDGateUp = false)
        => GatedBackward<GeluTanhOperator, GeluTanhBackwardOperator>(dy, gateUp, dGateUp, n, hidden, overwriteDGateUp, 3L * GeluTanhCost);

    // The gated backward over blocks of rows, threads chosen from cost per output as in GatedForward.
    private static void GatedBackward<TGate, TSlope>(ReadOnlySpan<float> dy, ReadOnlySpan<float> gateUp, Span<float> dGateUp, int n, int hidden, bool overwriteDGateUp, long cost)
        where TGate : IUnaryOperator where TSlope : IBackwardOperator
    {
        int blocks = GatedBlocks(n, hidden, gateUp.Length, dy.Length, nameof(dy), out int rowsPerBlock);
        SpanChecks.Length(dGateUp.Length, 2L * n * hidden, nameof(dGateUp));
        unsafe
        {
            fixed (float* pdy = dy, pGateUp = gateUp, pdGateUp = dGateUp)
            {
                var work = new GatedBackwardWork<TGate, TSlope>
                {
                    Dy = pdy, GateUp = pGateUp, DGateUp = pdGateUp, Hidden = hidden, N = n, RowsPerBlock = rowsPerBlock, Accumulate = !overwriteDGateUp,
                };
                WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor(cost * n * hidden, blocks));
            }
        }
    }

    // Blocks of RowsPerBlock rows, each row computed the same way on whichever thread.
    private unsafe struct GatedForwardWork<TGate> : IParallelWork where TGate : IUnaryOperator
    {
        public float* GateUp, Y;
        public int N, Hidden, RowsPerBlock;

        public readonly void Execute(int item)
        {
            int end = Math.Min(N, (item + 1) * RowsPerBlock);
            for (int r = item * RowsPerBlock; r < end; r++)
            {
                float* gate = GateUp + 2 * (nint)r * Hidden;
                GatedRow<TGate>(gate, gate + Hidden, Y + (nint)r * Hidden, Hidden);
            }
        }
    }

    private unsafe struct GatedBackwardWork<TGate, TSlope> : IParallelWork where TGate : IUnaryOperator where TSlope : IBackwardOperator
    {
        public float* Dy, GateUp, DGateUp;
        public int N, Hidden, RowsPerBlock;
        public bool Accumulate;

        public readonly void Execute(int item)
        {
            int end = Math.Min(N, (item + 1) * RowsPerBlock);
            for (int r = item * RowsPerBlock; r < end; r++)
            {
                nint offset = 2 * (nint)r * Hidden;
                GatedBackwardRow<TGate, TSlope>(Dy + (nint)r * Hidden, GateUp + offset, GateUp + offset + Hidden, DGateUp + offset, DGateUp + offset + Hidden, Hidden, Accumulate);
            }
        }
    }

    // y[j] = TGate(gate[j])·up[j], widest vectors first and a scalar tail.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void GatedRow<TGate>(float* gate, float* up, float* y, int hidden) where TGate : IUnaryOperator
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= hidden; j += 16)
                (TGate.Invoke(Vector512.Load(gate + j)) * Vector512.Load(up + j)).Store(y + j);
        else if (Vector256.IsHardwareAccelerated)
            for (; j + 8 <= hidden; j += 8)
                (TGate.Invoke(Vector256.Load(gate + j)) * Vector256.Load(up + j)).Store(y + j);
        if (Vector128.IsHardwareAccelerated)
            for (; j + 4 <= hidden; j += 4)
                (TGate.Invoke(Vector128.Load(gate + j)) * Vector128.Load(up + j)).Store(y + j);
        for (; j < hidden; j++) y[j] = TGate.Invoke(gate[j]) * up[j];
    }

    // dGate[j] (+)= TSlope(dy[j]·up[j], gate[j]) and dUp[j] (+)= dy[j]·TGate(gate[j]).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void GatedBackwardRow<TGate, TSlope>(float* dy, float* gate, float* up, float* dGate, float* dUp, int hidden, bool accumulate)
        where TGate : IUnaryOperator where TSlope : IBackwardOperator
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= hidden; j += 16)
            {
                Vector512<float> d = Vector512.Load(dy + j), g = Vector512.Load(gate + j);
                Vector512<float> dg = TSlope.Invoke(d * Vector512.Load(up + j), g, g), du = d * TGate.Invoke(g);
                (accumulate ? Vector512.Load(dGate + j) + dg : dg).Store(dGate + j);
                (accumulate ? Vector512.Load(dUp + j) + du : du).Store(dUp + j);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; j + 8 <= hidden; j += 8)
            {
                Vector256<float> d = Vector256.Load(dy + j), g = Vector256.Load(gate + j);
                Vector256<float> dg = TSlope.Invoke(d * Vector256.Load(up + j), g, g), du = d * TGate.Invoke(g);
                (accumulate ? Vector256.Load(dGate + j) + dg : dg).Store(dGate + j);
                (accumulate ? Vector256.Load(dUp + j) + du : du).Store(dUp + j);
            }
        if (Vector128.IsHardwareAccelerated)
            for (; j + 4 <= hidden; j += 4)
            {
                Vector128<float> d = Vector128.Load(dy + j), g = Vector128.Load(gate + j);
                Vector128<float> dg = TSlope.Invoke(d * Vector128.Load(up + j), g, g), du = d * TGate.Invoke(g);
                (accumulate ? Vector128.Load(dGate + j) + dg : dg).Store(dGate + j);
                (accumulate ? Vector128.Load(dUp + j) + du : du).Store(dUp + j);
            }
        for (; j < hidden; j++)
        {
            float dg = TSlope.Invoke(dy[j] * up[j], gate[j], gate[j]), du = dy[j] * TGate.Invoke(gate[j]);
            dGate[j] = accumulate ? dGate[j] + dg : dg;
            dUp[j] = accumulate ? dUp[j] + du : du;
        }
    }
}
