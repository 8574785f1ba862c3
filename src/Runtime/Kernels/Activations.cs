using System;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TransformerGen.Threading;

namespace TransformerGen.Kernels;

/// <summary>
/// Activations of the feed-forward block: ReLU, GELU (exact erf form, PyTorch's default, and the tanh approximation of
/// GPT-2), SiLU, SwiGLU, the gated SiLU of Llama and Qwen2, and the gated tanh GELU of T5 v1.1; and tanh, of BERT's pooler.
/// </summary>
/// <remarks>
/// All spans of a pointwise activation have the same length (any length; the shape does not matter); SwiGLU's are rows.
/// Backward accumulates into dx, or with <c>overwriteDx</c> stores into it (the first contribution to that gradient,
/// which then needs no clearing). GELU, SiLU and SwiGLU split long spans between threads (see <see cref="Parallelism"/>),
/// with results independent of the thread count.
/// </remarks>
public static partial class Activations
{
    /// <summary>Effectively computes <c>y[i] = max(x[i], 0)</c>. <paramref name="y"/> may be <paramref name="x"/>.</summary>
    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        SpanChecks.SameLength(y.Length, x.Length, nameof(y), nameof(x));
        TensorPrimitives.Max(x, 0f, y);
    }

    /// <summary>Effectively computes <c>dx[i] += x[i] &gt; 0 ? dy[i] : 0</c> (<c>=</c> with <paramref name="overwriteDx"/>).</summary>
    public static void ReluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackward<ReluBackwardOperator>(dy, x, x, dx, !overwriteDx, nameof(dy), nameof(x), nameof(x), nameof(dx));

    /// <summary>
    /// Effectively computes <c>y[i] = 0.5·x[i]·(1 + erf(x[i]/√2))</c>, PyTorch's <c>nn.GELU()</c> (approximate='none').
    /// <paramref name="y"/> may be <paramref name="x"/>. Φ comes from <see cref="ErrorFunction"/>'s erfc (below 6e-8 absolute error).
    /// </summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
        => Elementwise.MapSplit<GeluOperator>(x, y, nameof(x), nameof(y), GeluCost);

    /// <summary>
    /// Effectively computes <c>dx[i] += dy[i]·(Φ(x[i]) + x[i]·φ(x[i]))</c> (<c>=</c> with <paramref name="overwriteDx"/>),
    /// the derivative of <c>x·Φ(x)</c> with Φ(x) = ½(1 + erf(x/√2)) the standard normal CDF and φ(x) = exp(−x²/2)/√(2π)
    /// its density.
    /// </summary>
    public static void GeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackwardSplit<GeluBackwardOperator>(dy, x, x, dx, !overwriteDx, nameof(dy), nameof(x), nameof(x), nameof(dx), 2 * GeluCost);

    /// <summary>
    /// <see cref="GeluBackward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, bool)"/> given also the forward's
    /// output <paramref name="y"/> = <see cref="GeluForward"/>(<paramref name="x"/>), from which Φ(x) = y/x is read back
    /// (½ where |x| &lt; 1e-18, where y/x would be 0/0 or lose precision) instead of computed again: one exp per element
    /// instead of two and an erfc. Φ read back this way is within two roundings of the forward's.
    /// </summary>
    public static void GeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackwardSplit<GeluBackwardFromOutputOperator>(dy, x, y, dx, !overwriteDx, nameof(dy), nameof(x), nameof(y), nameof(dx), GeluCost);

    /// <summary>
    /// Effectively computes <c>y[i] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</c> with x = x[i]: GELU's tanh
    /// approximation (Hendrycks and Gimpel 2016, §2), PyTorch's <c>nn.GELU(approximate='tanh')</c> and Hugging Face's
    /// <c>gelu_new</c> (GPT-2). <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Evaluated as <c>x·σ(z)</c> with z = 2·√(2/π)·(x + 0.044715·x³) (since ½(1 + tanh(z/2)) = σ(z)) and σ from
    /// e^−|z|, which cannot overflow: every finite x gives a finite y, −0 far left and x far right, with no
    /// 1 + tanh ≈ 0 cancellation on the left (in float, 1 + tanh(u) keeps no correct bits once tanh(u) rounds to −1, below x ≈ −5.5).
    /// </para>
    /// <para>
    /// Measured against the formula in double at the same float x over [−12, 12] and the far values (kernel tests): at
    /// most 1.5e-7·max(1, |x|) absolute (the erf GELU's level); within 2 ulps for x ≥ 0; on the left, where y ≈ x·e^z and
    /// float's rounding of z shows, 11 ulps on [−3, 0), 45 on [−6, −3) and 174 on [−12, −6), which is at most 3.3 times
    /// the function's condition number |x·f′(x)/f(x)| (what rounding x itself to float costs).
    /// </para>
    /// </remarks>
    public static void GeluTanhForward(ReadOnlySpan<float> x, Span<float> y)
        => Elementwise.MapSplit<GeluTanhOperator>(x, y, nameof(x), nameof(y), GeluTanhCost);

    /// <summary>
    /// Effectively computes <c>dx[i] += dy[i]·(σ(z) + x·z′·σ(z)·(1 − σ(z)))</c> (<c>=</c> with <paramref name="overwriteDx"/>),
    /// the derivative of <see cref="GeluTanhForward"/>'s <c>x·σ(z)</c> with z = 2·√(2/π)·(x + 0.044715·x³) and
    /// z′ = 2·√(2/π)·(1 + 3·0.044715·x²). Finite for every finite x (exactly 1 or 0 beyond |x| ≈ 10.1).
    /// </summary>
    public static void GeluTanhBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackwardSplit<GeluTanhBackwardOperator>(dy, x, x, dx, !overwriteDx, nameof(dy), nameof(x), nameof(x), nameof(dx), 2 * GeluTanhCost);

    /// <summary>
    /// Effectively computes <c>y[i] = tanh(x[i])</c>: the activation of BERT's pooler and of RoBERTa's classification
    /// head. <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    public static void TanhForward(ReadOnlySpan<float> x, Span<float> y)
    {
        SpanChecks.SameLength(y.Length, x.Length, nameof(y), nameof(x));
        TensorPrimitives.Tanh(x, y);
    }

    /// <summary>
    /// Effectively computes <c>dx[i] += dy[i]·(1 − y[i]²)</c> (<c>=</c> with <paramref name="overwriteDx"/>) from the
    /// forward's output <paramref name="y"/> = tanh(x).
    /// </summary>
    public static void TanhBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx, bool overwriteDx = false)
    {
        SpanChecks.SameLength(y.Length, dy.Length, nameof(y), nameof(dy));
        SpanChecks.SameLength(dx.Length, dy.Length, nameof(dx), nameof(dy));
        for (int i = 0; i < dy.Length; i++)
        {
            float d = dy[i] * (1f - y[i] * y[i]);
            dx[i] = overwriteDx ? d : dx[i] + d;
        }
    }

    /// <summary>
    /// Effectively computes <c>y[i] = x[i]·σ(x[i])</c>, σ(x) = 1/(1 + e^−x): SiLU (swish), PyTorch's <c>nn.SiLU()</c>.
    /// <paramref name="y"/> may be <paramref name="x"/>. σ comes from e^−|x|, so no finite x overflows; measured within
    /// 3.1 ulps of the formula in double over [−12, 12] (kernel tests), −0 far left and x far right.
    /// </summary>
    public static void SiluForward(ReadOnlySpan<float> x, Span<float> y)
        => Elementwise.MapSplit<SiluOperator>(x, y, nameof(x), nameof(y), SiluCost);

    /// <summary>
    /// Effectively computes <c>dx[i] += dy[i]·(σ(x) + x·σ(x)·(1 − σ(x)))</c> with x = x[i] (<c>=</c> with
    /// <paramref name="overwriteDx"/>), the derivative of <see cref="SiluForward"/>.
    /// </summary>
    public static void SiluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool overwriteDx = false)
        => Elementwise.MapBackwardSplit<SiluBackwardOperator>(dy, x, x, dx, !overwriteDx, nameof(dy), nameof(x), nameof(x), nameof(dx), SiluCost);

    /// <summary>
    /// The gated feed-forward activation of Llama and Qwen2 (<c>act_fn(gate_proj(x)) * up_proj(x)</c> with SiLU;
    /// Shazeer 2020, "GLU Variants Improve Transformer"): effectively computes
    /// <c>y[r, j] = silu(gateUp[r, j])·gateUp[r, hidden + j]</c>, where each row of <paramref name="gateUp"/> is the
    /// output of one linear layer whose weight stacks gate_proj's rows above up_proj's. silu(g) is
    /// <see cref="SiluForward"/>'s, to the bit. Overwrites <paramref name="y"/>.
    /// </summary>
    /// <param name="gateUp">Gate and up projections <c>[n, 2·hidden]</c>, each row <c>[gate (hidden) | up (hidden)]</c>.</param>
    /// <param name="y">Output <c>[n, hidden]</c>; must not overlap <paramref name="gateUp"/>.</param>
    /// <param name="n">Rows (tokens).</param>
    /// <param name="hidden">Width of the gate, of the up projection and of the output (intermediate_size).</param>
    public static void SwiGluForward(ReadOnlySpan<float> gateUp, Span<float> y, int n, int hidden)
        => GatedForward<SiluOperator>(gateUp, y, n, hidden, SiluCost);

    /// <summary>
    /// The gradients of <see cref="SwiGluForward"/>, for each row r and j &lt; hidden with g = gateUp[r, j],
    /// u = gateUp[r, hidden + j]: <c>dGateUp[r, j] += dy[r, j]·u·(σ(g) + g·σ(g)·(1 − σ(g)))</c> and
    /// <c>dGateUp[r, hidden + j] += dy[r, j]·silu(g)</c> (<c>=</c> for both halves with <paramref name="overwriteDGateUp"/>).
    /// </summary>
    /// <param name="dy">Gradient of the output <c>[n, hidden]</c>.</param>
    /// <param name="gateUp">The forward input <c>[n, 2·hidden]</c>.</param>
    /// <param name="dGateUp">Gradient of the input <c>[n, 2·hidden]</c>, both halves of every row written (accumulated
    /// unless <paramref name="overwriteDGateUp"/>); must not overlap the other spans.</param>
    /// <param name="n">Rows.</param>
    /// <param name="hidden">Width of each half.</param>
    /// <param name="overwriteDGateUp">Store the gradient rather than add it (its first contribution, which then needs no clearing).</param>
    public static void SwiGluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> gateUp, Span<float> dGateUp, int n, int hidden, bool overwriteDGateUp = false)
    {
        int blocks = GatedBlocks(n, hidden, gateUp.Length, dy.Length, nameof(dy), out int rowsPerBlock);
        SpanChecks.Length(dGateUp.Length, 2L * n * hidden, nameof(dGateUp));
        unsafe
        {
            fixed (float* pdy = dy, pGateUp = gateUp, pdGateUp = dGateUp)
            {
                var work = new SwiGluBackwardWork
                {
                    Dy = pdy, GateUp = pGateUp, DGateUp = pdGateUp, N = n, Hidden = hidden, RowsPerBlock = rowsPerBlock, Accumulate = !overwriteDGateUp,
                };
                WorkerPool.For(ref work, blocks, Parallelism.ThreadsFor(2L * SiluCost * n * hidden, blocks));
            }
        }
    }

    /// <summary>
    /// Checks a gated activation's sizes (<c>[n, 2·hidden]</c> gate | up, <c>[n, hidden]</c> rows named
    /// <paramref name="rowsName"/>) and returns its work items: blocks of <paramref name="rowsPerBlock"/> rows, about
    /// <see cref="Elementwise.ChunkFloats"/> outputs each.
    /// </summary>
    private static int GatedBlocks(int n, int hidden, int gateUpLength, int rowsLength, string rowsName, out int rowsPerBlock)
    {
        SpanChecks.NonNegative(n, nameof(n));
        SpanChecks.Positive(hidden, nameof(hidden));
        SpanChecks.Length(gateUpLength, 2L * n * hidden, "gateUp");
        SpanChecks.Length(rowsLength, (long)n * hidden, rowsName);
        rowsPerBlock = Math.Max(1, Elementwise.ChunkFloats / hidden);
        return (n + rowsPerBlock - 1) / rowsPerBlock;
    }

    // GELU's erf and exp take about 1.1 ns per element on one core, as long as ~150 operations of a matrix product:
    // the work measure by which Parallelism decides whether to split (backward, with a second exp, about twice that;
    // from the forward's output, about the same).
    private const int GeluCost = 150;

    // Below this |x|, Φ(x) = ½ to float precision (Φ(x) − ½ ≈ 0.4·x), and y/x would be 0/0 at x = 0.
    private const float CdfReadBackFloor = 1e-18f;

    private const float InvSqrt2 = 0.7071067811865475f;      // 1/√2
    private const float InvSqrt2Pi = 0.3989422804014327f;    // 1/√(2π)

    /// <summary>x·Φ(x).</summary>
    private readonly struct GeluOperator : IUnaryOperator
    {
        public static float Invoke(float x) => Invoke(Vector128.CreateScalarUnsafe(x)).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> x) => x * NormalCdf(x);
        public static Vector256<float> Invoke(Vector256<float> x) => x * NormalCdf(x);
        public static Vector512<float> Invoke(Vector512<float> x) => x * NormalCdf(x);
    }

    // Φ(x) = ½·erfc(−x/√2), from erfc of z = |x|/√2 alone: ½·erfc(z) for x < 0, 1 − ½·erfc(z) otherwise. The erfc
    // formula's fractional error (below 1.2e-7) makes Φ's absolute error below 6e-8, as good as going through erf,
    // whose series branch near 0 this skips (a quarter of GELU's work).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> NormalCdf(Vector128<float> x)
    {
        Vector128<float> half = Vector128.Create(0.5f) * ErrorFunction.ErfcOfNonNegative(Vector128.Abs(x) * Vector128.Create(InvSqrt2));
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128<float>.Zero), half, Vector128<float>.One - half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> NormalCdf(Vector256<float> x)
    {
        Vector256<float> half = Vector256.Create(0.5f) * ErrorFunction.ErfcOfNonNegative(Vector256.Abs(x) * Vector256.Create(InvSqrt2));
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), half, Vector256<float>.One - half);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> NormalCdf(Vector512<float> x)
    {
        Vector512<float> half = Vector512.Create(0.5f) * ErrorFunction.ErfcOfNonNegative(Vector512.Abs(x) * Vector512.Create(InvSqrt2));
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), half, Vector512<float>.One - half);
    }

    /// <summary>(dy, x, ·) → dy·(Φ(x) + x·φ(x)).</summary>
    private readonly struct GeluBackwardOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y)
            => Invoke(Vector128.CreateScalarUnsafe(dy), Vector128.CreateScalarUnsafe(x), default).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
        {
            Vector128<float> cdf = NormalCdf(x);
            Vector128<float> pdf = Vector128.Create(InvSqrt2Pi) * Exponential.Exp(Vector128.Create(-0.5f) * x * x);
            return dy * Vector128.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
        {
            Vector256<float> cdf = NormalCdf(x);
            Vector256<float> pdf = Vector256.Create(InvSqrt2Pi) * Exponential.Exp(Vector256.Create(-0.5f) * x * x);
            return dy * Vector256.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
        {
            Vector512<float> cdf = NormalCdf(x);
            Vector512<float> pdf = Vector512.Create(InvSqrt2Pi) * Exponential.Exp(Vector512.Create(-0.5f) * x * x);
            return dy * Vector512.FusedMultiplyAdd(x, pdf, cdf);
        }
    }

    /// <summary>(dy, x, y = x·Φ(x)) → dy·(y/x + x·φ(x)).</summary>
    private readonly struct GeluBackwardFromOutputOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y)
            => Invoke(Vector128.CreateScalarUnsafe(dy), Vector128.CreateScalarUnsafe(x), Vector128.CreateScalarUnsafe(y)).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
        {
            Vector128<float> cdf = Vector128.ConditionalSelect(Vector128.LessThan(Vector128.Abs(x), Vector128.Create(CdfReadBackFloor)), Vector128.Create(0.5f), y / x);
            Vector128<float> pdf = Vector128.Create(InvSqrt2Pi) * Exponential.Exp(Vector128.Create(-0.5f) * x * x);
            return dy * Vector128.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
        {
            Vector256<float> cdf = Vector256.ConditionalSelect(Vector256.LessThan(Vector256.Abs(x), Vector256.Create(CdfReadBackFloor)), Vector256.Create(0.5f), y / x);
            Vector256<float> pdf = Vector256.Create(InvSqrt2Pi) * Exponential.Exp(Vector256.Create(-0.5f) * x * x);
            return dy * Vector256.FusedMultiplyAdd(x, pdf, cdf);
        }
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
        {
            Vector512<float> cdf = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(x), Vector512.Create(CdfReadBackFloor)), Vector512.Create(0.5f), y / x);
            Vector512<float> pdf = Vector512.Create(InvSqrt2Pi) * Exponential.Exp(Vector512.Create(-0.5f) * x * x);
            return dy * Vector512.FusedMultiplyAdd(x, pdf, cdf);
        }
    }

    /// <summary>(dy, x, ·) → x &gt; 0 ? dy : 0.</summary>
    private readonly struct ReluBackwardOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y) => x > 0f ? dy : 0f;
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
            => Vector128.ConditionalSelect(Vector128.GreaterThan(x, Vector128<float>.Zero), dy, Vector128<float>.Zero);
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
            => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, Vector256<float>.Zero);
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
            => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
    }

    // SiLU, SwiGLU and the tanh GELU cost one exp and one division per element: measured on one core of a loaded
    // 2-core machine (CPU time), about 0.5 ns per element forward, half the erf GELU's, so half its 150 units. Backward:
    // SiLU about as long as forward, the tanh GELU and SwiGLU (two outputs) about twice.
    private const int SiluCost = 75, GeluTanhCost = 75;

    // z = x·(GeluTanhLinear + GeluTanhCubic·x²) = 2·√(2/π)·(x + 0.044715·x³), twice tanh's argument: ½(1 + tanh(z/2)) = σ(z).
    private const float GeluTanhLinear = 1.5957691216057308f;       // 2·√(2/π)
    private const float GeluTanhCubic = 0.07135481627260025f;       // 2·√(2/π)·0.044715
    private const float GeluTanhCubicSlope = 0.21406444881780076f;  // 3·2·√(2/π)·0.044715, in z′ = dz/dx

    // Beyond |x| ≈ 10.1, |z| > 87.3, e^−|z| is 0 and the tanh GELU's derivative exactly 1 or 0; backward clamps x to ±16
    // so that x·z′ (which grows as x³) stays finite: past |x| ≈ 1e13 it would be ∞, and ∞·0 a NaN.
    private const float GeluTanhSaturation = 16f;

    // σ(z) = 1/(1 + e^−z) and its slope σ′(z) = σ(z)·(1 − σ(z)), both from t = e^−|z| ∈ [0, 1], which cannot overflow:
    // σ = 1/(1 + t) for z ≥ 0 and t/(1 + t) below (two forms of one value), σ′ = t/(1 + t)² for either sign. Neither
    // subtracts nearly equal numbers, so both tails keep their relative accuracy (the exp's 2e-7 and three roundings);
    // beyond |z| = 87.3 t is 0, σ exactly 0 or 1 and σ′ exactly 0. −0 counts as z ≥ 0 (σ = ½); NaN stays NaN.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Logistic(Vector128<float> z, out Vector128<float> slope)
    {
        Vector128<float> t = Exponential.Exp(-Vector128.Abs(z));
        Vector128<float> r = Vector128<float>.One / (Vector128<float>.One + t);
        Vector128<float> tr = t * r;
        slope = tr * r;
        return Vector128.ConditionalSelect(Vector128.LessThan(z, Vector128<float>.Zero), tr, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Logistic(Vector256<float> z, out Vector256<float> slope)
    {
        Vector256<float> t = Exponential.Exp(-Vector256.Abs(z));
        Vector256<float> r = Vector256<float>.One / (Vector256<float>.One + t);
        Vector256<float> tr = t * r;
        slope = tr * r;
        return Vector256.ConditionalSelect(Vector256.LessThan(z, Vector256<float>.Zero), tr, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Logistic(Vector512<float> z, out Vector512<float> slope)
    {
        Vector512<float> t = Exponential.Exp(-Vector512.Abs(z));
        Vector512<float> r = Vector512<float>.One / (Vector512<float>.One + t);
        Vector512<float> tr = t * r;
        slope = tr * r;
        return Vector512.ConditionalSelect(Vector512.LessThan(z, Vector512<float>.Zero), tr, r);
    }

    /// <summary>x·σ(z), z = 2·√(2/π)·(x + 0.044715·x³).</summary>
    private readonly struct GeluTanhOperator : IUnaryOperator
    {
        public static float Invoke(float x) => Invoke(Vector128.CreateScalarUnsafe(x)).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> x)
            => x * Logistic(x * Vector128.FusedMultiplyAdd(x * x, Vector128.Create(GeluTanhCubic), Vector128.Create(GeluTanhLinear)), out _);
        public static Vector256<float> Invoke(Vector256<float> x)
            => x * Logistic(x * Vector256.FusedMultiplyAdd(x * x, Vector256.Create(GeluTanhCubic), Vector256.Create(GeluTanhLinear)), out _);
        public static Vector512<float> Invoke(Vector512<float> x)
            => x * Logistic(x * Vector512.FusedMultiplyAdd(x * x, Vector512.Create(GeluTanhCubic), Vector512.Create(GeluTanhLinear)), out _);
    }

    /// <summary>(dy, x, ·) → dy·(σ(z) + x·z′·σ′(z)).</summary>
    private readonly struct GeluTanhBackwardOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y)
            => Invoke(Vector128.CreateScalarUnsafe(dy), Vector128.CreateScalarUnsafe(x), default).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
        {
            x = Vector128.Min(Vector128.Max(x, Vector128.Create(-GeluTanhSaturation)), Vector128.Create(GeluTanhSaturation));
            Vector128<float> x2 = x * x;
            Vector128<float> s = Logistic(x * Vector128.FusedMultiplyAdd(x2, Vector128.Create(GeluTanhCubic), Vector128.Create(GeluTanhLinear)), out Vector128<float> slope);
            Vector128<float> dz = Vector128.FusedMultiplyAdd(x2, Vector128.Create(GeluTanhCubicSlope), Vector128.Create(GeluTanhLinear));
            return dy * Vector128.FusedMultiplyAdd(x * dz, slope, s);
        }
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
        {
            x = Vector256.Min(Vector256.Max(x, Vector256.Create(-GeluTanhSaturation)), Vector256.Create(GeluTanhSaturation));
            Vector256<float> x2 = x * x;
            Vector256<float> s = Logistic(x * Vector256.FusedMultiplyAdd(x2, Vector256.Create(GeluTanhCubic), Vector256.Create(GeluTanhLinear)), out Vector256<float> slope);
            Vector256<float> dz = Vector256.FusedMultiplyAdd(x2, Vector256.Create(GeluTanhCubicSlope), Vector256.Create(GeluTanhLinear));
            return dy * Vector256.FusedMultiplyAdd(x * dz, slope, s);
        }
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
        {
            x = Vector512.Min(Vector512.Max(x, Vector512.Create(-GeluTanhSaturation)), Vector512.Create(GeluTanhSaturation));
            Vector512<float> x2 = x * x;
            Vector512<float> s = Logistic(x * Vector512.FusedMultiplyAdd(x2, Vector512.Create(GeluTanhCubic), Vector512.Create(GeluTanhLinear)), out Vector512<float> slope);
            Vector512<float> dz = Vector512.FusedMultiplyAdd(x2, Vector512.Create(GeluTanhCubicSlope), Vector512.Create(GeluTanhLinear));
            return dy * Vector512.FusedMultiplyAdd(x * dz, slope, s);
        }
    }

    /// <summary>x·σ(x).</summary>
    private readonly struct SiluOperator : IUnaryOperator
    {
        public static float Invoke(float x) => Invoke(Vector128.CreateScalarUnsafe(x)).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> x) => x * Logistic(x, out _);
        public static Vector256<float> Invoke(Vector256<float> x) => x * Logistic(x, out _);
        public static Vector512<float> Invoke(Vector512<float> x) => x * Logistic(x, out _);
    }

    /// <summary>(dy, x, ·) → dy·(σ(x) + x·σ′(x)).</summary>
    private readonly struct SiluBackwardOperator : IBackwardOperator
    {
        public static float Invoke(float dy, float x, float y)
            => Invoke(Vector128.CreateScalarUnsafe(dy), Vector128.CreateScalarUnsafe(x), default).ToScalar();
        public static Vector128<float> Invoke(Vector128<float> dy, Vector128<float> x, Vector128<float> y)
        {
            Vector128<float> s = Logistic(x, out Vector128<float> slope);
            return dy * Vector128.FusedMultiplyAdd(x, slope, s);
        }
        public static Vector256<float> Invoke(Vector256<float> dy, Vector256<float> x, Vector256<float> y)
        {
            Vector256<float> s = Logistic(x, out Vector256<float> slope);
            return dy * Vector256.FusedMultiplyAdd(x, slope, s);
        }
        public static Vector512<float> Invoke(Vector512<float> dy, Vector512<float> x, Vector512<float> y)
        {
            Vector512<float> s = Logistic(x, out Vector512<float> slope);
            return dy * Vector512.FusedMultiplyAdd(x, slope, s);
        }
    }

    // SwiGLU's two gradients of one element: returns d gate = dy·up·(σ + gate·σ′), sets d up = dy·silu(gate).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SwiGluGradients(Vector128<float> dy, Vector128<float> gate, Vector128<float> up, out Vector128<float> dUp)
    {
        Vector128<float> s = Logistic(gate, out Vector128<float> slope);
        dUp = dy * (gate * s);
        return dy * up * Vector128.FusedMultiplyAdd(gate, slope, s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SwiGluGradients(Vector256<float> dy, Vector256<float> gate, Vector256<float> up, out Vector256<float> dUp)
    {
        Vector256<float> s = Logistic(gate, out Vector256<float> slope);
        dUp = dy * (gate * s);
        return dy * up * Vector256.FusedMultiplyAdd(gate, slope, s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SwiGluGradients(Vector512<float> dy, Vector512<float> gate, Vector512<float> up, out Vector512<float> dUp)
    {
        Vector512<float> s = Logistic(gate, out Vector512<float> slope);
        dUp = dy * (gate * s);
        return dy * up * Vector512.FusedMultiplyAdd(gate, slope, s);
    }

    // Items are blocks of RowsPerBlock rows (about Elementwise.ChunkFloats outputs each); a row is computed the same way
    // whichever block and thread it falls to, so the thread count does not change the bits.
    private unsafe struct SwiGluBackwardWork : IParallelWork
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
                SwiGluBackwardRow(Dy + (nint)r * Hidden, GateUp + offset, GateUp + offset + Hidden, DGateUp + offset, DGateUp + offset + Hidden, Hidden, Accumulate);
            }
        }
    }

    // Both gradients of one row, added into (or, without accumulate, stored in) dGate and dUp; dGate and dUp are not
    // read without accumulate.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SwiGluBackwardRow(float* dy, float* gate, float* up, float* dGate, float* dUp, int hidden, bool accumulate)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= hidden; j += 16)
            {
                Vector512<float> g = SwiGluGradients(Vector512.Load(dy + j), Vector512.Load(gate + j), Vector512.Load(up + j), out Vector512<float> u);
                (accumulate ? Vector512.Load(dGate + j) + g : g).Store(dGate + j);
                (accumulate ? Vector512.Load(dUp + j) + u : u).Store(dUp + j);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; j + 8 <= hidden; j += 8)
            {
                Vector256<float> g = SwiGluGradients(Vector256.Load(dy + j), Vector256.Load(gate + j), Vector256.Load(up + j), out Vector256<float> u);
                (accumulate ? Vector256.Load(dGate + j) + g : g).Store(dGate + j);
                (accumulate ? Vector256.Load(dUp + j) + u : u).Store(dUp + j);
            }
        if (Vector128.IsHardwareAccelerated)
            for (; j + 4 <= hidden; j += 4)
            {
                Vector128<float> g = SwiGluGradients(Vector128.Load(dy + j), Vector128.Load(gate + j), Vector128.Load(up + j), out Vector128<float> u);
                (accumulate ? Vector128.Load(dGate + j) + g : g).Store(dGate + j);
                (accumulate ? Vector128.Load(dUp + j) + u : u).Store(dUp + j);
            }
        for (; j < hidden; j++)
        {
            float g = SwiGluGradients(Vector128.CreateScalarUnsafe(dy[j]), Vector128.CreateScalarUnsafe(gate[j]), Vector128.CreateScalarUnsafe(up[j]), out Vector128<float> u).ToScalar();
            dGate[j] = accumulate ? dGate[j] + g : g;
            dUp[j] = accumulate ? dUp[j] + u.ToScalar() : u.ToScalar();
        }
    }
}
