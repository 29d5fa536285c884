// Matrix multiply in the three layouts LoRA training needs (legend: M rows of activations, K in features,
// N out features; W is [N, K] as torch.nn.Linear stores it):
//   Forward         Y[M,N]  (+)= X[M,K] · W[N,K]ᵀ
//   BackwardInput   dX[M,K] +=   dY[M,N] · W[N,K]
//   BackwardWeight  dW[N,K] +=   dY[M,N]ᵀ · X[M,K]
// Backward kernels add into their gradient buffers; callers zero them.
//
// Every layout maps onto one packed, blocked, threaded fp32 GEMM (Gemm/GemmDriver.cs) with AVX-512 / AVX2 /
// Vector128 microkernels (Gemm/GemmKernels.cs); the scalar level runs the reference's operations. Frozen weights
// come pre-packed (PackedWeight); LoRA's A and B, which change every step, are packed per call into reusable scratch.
// Results are identical for any thread count and any SIMD width (fma chains in reduction order, K never split).
// Not here: batched/strided variants, quantized weights (PackedWeight's PanelSource is the seam for those).
using LoraSharp.Core.Kernels.Gemm;

namespace LoraSharp.Core.Kernels;

/// <summary>fp32 matrix multiplies for linear layers.</summary>
public static unsafe partial class MatMul
{
    /// <summary>Scratch memory each compute thread keeps for the GEMM at most (packed operand blocks; for memory estimates).</summary>
    public const long ScratchBytesPerThread = Gemm.GemmDriver.ScratchFloatsPerThread * sizeof(float);

    /// <summary>Y = X·Wᵀ (or Y += X·Wᵀ when <paramref name="accumulate"/>) with a frozen, packed weight.</summary>
    /// <param name="X">Input activations [M, K] row-major (K = <c>W.K</c>).</param>
    /// <param name="W">Packed weight [N, K].</param>
    /// <param name="Y">Output [M, N] row-major.</param>
    /// <param name="M">Rows (tokens).</param>
    /// <param name="accumulate">Add into <paramref name="Y"/> instead of overwriting it.</param>
    /// <param name="q8Activations">Inference only (decode): when M ≤ 4 and W is stored as Q4_0 or Q8_0, quantize each
    /// row of X to Q8_0 and take integer block products, as llama.cpp does: faster, but not exact against the
    /// dequantized weight (the activations' rounding; docs/kernels.md). Training never sets it.</param>
    public static void Forward(ReadOnlySpan<float> X, PackedWeight W, Span<float> Y, int M, bool accumulate = false, bool q8Activations = false)
        => Forward(X, W, Y, M, accumulate, q8Activations, default, default, 0);

    /// <summary>
    /// Y (+)= X·Wᵀ + Z·Uᵀ: the frozen product plus a low-rank term (LoRA's (s·z)·Bᵀ), added onto each output tile while
    /// it is in cache instead of in a second pass over Y. Equals <see cref="Forward(ReadOnlySpan{float}, PackedWeight, Span{float}, int, bool, bool)"/>
    /// followed by <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, bool)"/>(Z, U, Y, M, R, N,
    /// accumulate: true), bit for bit.
    /// </summary>
    /// <param name="Z">[M, R] row-major; empty with <paramref name="R"/> = 0.</param>
    /// <param name="U">[N, R] row-major.</param>
    /// <param name="R">The term's rank; 0: none.</param>
    /// <inheritdoc cref="Forward(ReadOnlySpan{float}, PackedWeight, Span{float}, int, bool, bool)"/>
    public static void Forward(ReadOnlySpan<float> X, PackedWeight W, Span<float> Y, int M, bool accumulate, bool q8Activations,
        ReadOnlySpan<float> Z, ReadOnlySpan<float> U, int R)
    {
        ArgumentNullException.ThrowIfNull(W);
        int N = W.N, K = W.K;
        var shapes = new Shapes(Layout.Forward, M, K, N);
        CheckRows(M, nameof(Forward), shapes);
        Check(X.Length, (long)M * K, nameof(Forward), "X", shapes);
        Check(Y.Length, (long)M * N, nameof(Forward), "Y", shapes);
        if (R < 0) throw new ArgumentException($"MatMul.Forward: the low-rank term's rank R = {R} is negative.", nameof(R));
        if (R > 0)
        {
            Check(Z.Length, (long)M * R, nameof(Forward), "Z", new Shapes(Layout.Forward, M, R, N));
            Check(U.Length, (long)N * R, nameof(Forward), "U", new Shapes(Layout.Forward, M, R, N));
            if (M <= RowDotDriver.MaxRows || Simd.Level == SimdLevel.Scalar)
            {
                // Few rows (decode: the row-dot products) or the scalar reference: as two calls.
                Forward(X, W, Y, M, accumulate, q8Activations);
                Forward(Z, U, Y, M, R, N, accumulate: true);
                return;
            }
        }
        fixed (float* x = X, y = Y, z = Z, u = U)
        {
            var p = Problem(x, W, y, M, accumulate, q8Activations);
            if (R > 0) { p.LowRankZ = z; p.LowRankU = u; p.LowRank = R; }
            Run(p);
        }
    }

    /// <summary>
    /// Y0 = X·W0ᵀ, Y1 = X·W1ᵀ (and Y2 = X·W2ᵀ when <paramref name="W2"/> is given): products that read the same input,
    /// as decode's q/k/v and gate/up projections do. Few-row products over compressed weights run in one parallel
    /// region (one hand-off instead of one per weight); anything else runs as separate <see cref="Forward(ReadOnlySpan{float}, PackedWeight, Span{float}, int, bool)"/>
    /// calls. The results are those of the separate calls, bit for bit. <paramref name="q8Activations"/>: as in Forward.
    /// </summary>
    public static void ForwardShared(ReadOnlySpan<float> X, int M, PackedWeight W0, Span<float> Y0, PackedWeight W1, Span<float> Y1,
        PackedWeight? W2 = null, Span<float> Y2 = default, bool q8Activations = false)
    {
        ArgumentNullException.ThrowIfNull(W0);
        ArgumentNullException.ThrowIfNull(W1);
        int K = W0.K;
        if (W1.K != K || (W2 != null && W2.K != K))
            throw new ArgumentException($"MatMul.ForwardShared: the weights read one input, so they need the same K (got {W0.K}, {W1.K}{(W2 != null ? ", " + W2.K : "")}).");
        var level = Simd.Level;
        if (level != SimdLevel.Scalar && M > 0)
        {
            CheckRows(M, nameof(ForwardShared), new Shapes(Layout.Forward, M, K, W0.N));
            Check(X.Length, (long)M * K, nameof(ForwardShared), "X", new Shapes(Layout.Forward, M, K, W0.N));
            Check(Y0.Length, (long)M * W0.N, nameof(ForwardShared), "Y0", new Shapes(Layout.Forward, M, K, W0.N));
            Check(Y1.Length, (long)M * W1.N, nameof(ForwardShared), "Y1", new Shapes(Layout.Forward, M, K, W1.N));
            if (W2 != null) Check(Y2.Length, (long)M * W2.N, nameof(ForwardShared), "Y2", new Shapes(Layout.Forward, M, K, W2.N));
            fixed (float* x = X, y0 = Y0, y1 = Y1, y2 = Y2)
            {
                var p0 = Problem(x, W0, y0, M, accumulate: false, q8Activations);
                var p1 = Problem(x, W1, y1, M, accumulate: false, q8Activations);
                var p2 = W2 != null ? Problem(x, W2, y2, M, accumulate: false, q8Activations) : p1;
                if (GemmDriver.TryRunShared(p0, p1, p2, W2 != null ? 3 : 2, level)) return;
            }
        }
        Forward(X, W0, Y0, M, q8Activations: q8Activations);
        Forward(X, W1, Y1, M, q8Activations: q8Activations);
        if (W2 != null) Forward(X, W2, Y2, M, q8Activations: q8Activations);
    }

    // Y[M, N] (+)= X·Wᵀ over a frozen weight's forward panels.
    private static GemmProblem Problem(float* x, PackedWeight w, float* y, int M, bool accumulate, bool q8Activations) => new()
    {
        A = x, Lda = w.K, B = null, BLayout = BLayout.Frozen, Frozen = w.Source, FrozenBackward = false,
        C = y, Rows = M, Cols = w.N, Depth = w.K, Accumulate = accumulate, Q8Activations = q8Activations,
    };

    /// <summary>dX += dY·W with a frozen, packed weight.</summary>
    /// <param name="dY">Gradient of the output [M, N] row-major (N = <c>W.N</c>).</param>
    /// <param name="W">Packed weight [N, K].</param>
    /// <param name="dX">Gradient of the input [M, K] row-major; added into.</param>
    /// <param name="M">Rows (tokens).</param>
    public static void BackwardInput(ReadOnlySpan<float> dY, PackedWeight W, Span<float> dX, int M)
    {
        ArgumentNullException.ThrowIfNull(W);
        int N = W.N, K = W.K;
        var shapes = new Shapes(Layout.BackwardInput, M, K, N);
        CheckRows(M, nameof(BackwardInput), shapes);
        Check(dY.Length, (long)M * N, nameof(BackwardInput), "dY", shapes);
        Check(dX.Length, (long)M * K, nameof(BackwardInput), "dX", shapes);
        fixed (float* dy = dY, dx = dX)
        {
            var p = new GemmProblem
            {
                A = dy, Lda = N, B = null, BLayout = BLayout.Frozen, Frozen = W.Source, FrozenBackward = true,
                C = dx, Rows = M, Cols = K, Depth = N, Accumulate = true,
            };
            Run(p);
        }
    }

    /// <summary>Y = X·Wᵀ (or +=) for a weight that changes every step (LoRA A and B), unpacked.</summary>
    /// <param name="X">Input [M, K] row-major.</param>
    /// <param name="W">Weight [N, K] row-major.</param>
    /// <param name="Y">Output [M, N] row-major.</param>
    /// <param name="M">Rows.</param>
    /// <param name="K">In features.</param>
    /// <param name="N">Out features (the LoRA rank R for A, the layer's out features for B).</param>
    /// <param name="accumulate">Add into <paramref name="Y"/> instead of overwriting it.</param>
    public static void Forward(ReadOnlySpan<float> X, ReadOnlySpan<float> W, Span<float> Y, int M, int K, int N, bool accumulate = false)
    {
        var shapes = new Shapes(Layout.Forward, M, K, N);
        CheckDims(M, K, N, nameof(Forward), shapes);
        Check(X.Length, (long)M * K, nameof(Forward), "X", shapes);
        Check(W.Length, (long)N * K, nameof(Forward), "W", shapes);
        Check(Y.Length, (long)M * N, nameof(Forward), "Y", shapes);
        var level = Simd.Level;
        if (level == SimdLevel.Scalar) { Reference.Forward(X, W, Y, M, K, N, accumulate); return; }
        fixed (float* x = X, w = W, y = Y)
        {
            if (RowDotDriver.Applies(M, K, N, level))
            {
                RowDotDriver.Forward(x, w, y, M, K, N, accumulate, level);
                return;
            }
            var p = new GemmProblem
            {
                A = x, Lda = K, B = w, Ldb = K, BLayout = BLayout.Transposed,
                C = y, Rows = M, Cols = N, Depth = K, Accumulate = accumulate,
            };
            Run(p);
        }
    }

    /// <summary>dX += dY·W for an unpacked weight (dX = dY·W when not <paramref name="accumulate"/>).</summary>
    /// <param name="dY">Gradient of the output [M, N] row-major.</param>
    /// <param name="W">Weight [N, K] row-major.</param>
    /// <param name="dX">Gradient of the input [M, K] row-major; added into unless <paramref name="accumulate"/> is false.</param>
    /// <param name="M">Rows.</param>
    /// <param name="N">Out features of W.</param>
    /// <param name="K">In features of W.</param>
    /// <param name="accumulate">False overwrites dX (no clearing pass needed).</param>
    public static void BackwardInput(ReadOnlySpan<float> dY, ReadOnlySpan<float> W, Span<float> dX, int M, int N, int K, bool accumulate = true)
    {
        var shapes = new Shapes(Layout.BackwardInput, M, K, N);
        CheckDims(M, K, N, nameof(BackwardInput), shapes);
        Check(dY.Length, (long)M * N, nameof(BackwardInput), "dY", shapes);
        Check(W.Length, (long)N * K, nameof(BackwardInput), "W", shapes);
        Check(dX.Length, (long)M * K, nameof(BackwardInput), "dX", shapes);
        if (Simd.Level == SimdLevel.Scalar) { Reference.BackwardInput(dY, W, dX, M, N, K, accumulate); return; }
        fixed (float* dy = dY, w = W, dx = dX)
        {
            var p = new GemmProblem
            {
                A = dy, Lda = N, B = w, Ldb = K, BLayout = BLayout.RowMajor,
                C = dx, Rows = M, Cols = K, Depth = N, Accumulate = accumulate,
            };
            Run(p);
        }
    }

    /// <summary>dW += dYᵀ·X (the weight gradient; M, the token count, is the reduction).</summary>
    /// <param name="dY">Gradient of the output [M, N] row-major.</param>
    /// <param name="X">Input activations [M, K] row-major.</param>
    /// <param name="dW">Weight gradient [N, K] row-major; added into.</param>
    /// <param name="M">Rows of dY and X.</param>
    /// <param name="N">Out features.</param>
    /// <param name="K">In features.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dY, ReadOnlySpan<float> X, Span<float> dW, int M, int N, int K)
    {
        var shapes = new Shapes(Layout.BackwardWeight, M, K, N);
        CheckDims(M, K, N, nameof(BackwardWeight), shapes);
        Check(dY.Length, (long)M * N, nameof(BackwardWeight), "dY", shapes);
        Check(X.Length, (long)M * K, nameof(BackwardWeight), "X", shapes);
        Check(dW.Length, (long)N * K, nameof(BackwardWeight), "dW", shapes);
        if (Simd.Level == SimdLevel.Scalar) { Reference.BackwardWeight(dY, X, dW, M, N, K); return; }
        fixed (float* dy = dY, x = X, dw = dW)
        {
            if (K < GemmKernels.NR && N > K)
            {
                BackwardWeightNarrow(dy, x, dw, M, N, K);
                return;
            }
            // C = dW [N, K], A = dYᵀ (A[n, m] = dY[m*N + n]), B = X [M, K] row-major over the reduction m.
            var p = new GemmProblem
            {
                A = dy, Lda = N, ATransposed = true, B = x, Ldb = K, BLayout = BLayout.RowMajor,
                C = dw, Rows = N, Cols = K, Depth = M, Accumulate = true,
            };
            Run(p);
        }
    }

    [ThreadStatic] private static AlignedBuffer? t_narrow;   // dWᵀ of BackwardWeightNarrow, grown, never freed

    // dW [N, K] with fewer than 32 columns (LoRA's B gradient: K = r) would be one 32-column panel of mostly padding
    // (4x the FMAs at r = 8) behind a pack of all of dYᵀ. Its transpose dWᵀ [K, N] = Xᵀ·dY has N columns. With dW's
    // values copied in first, every element is the same chain of fmas over m (fma(a, b, c) = fma(b, a, c)), so the
    // result is bit-identical to the direct product. Measured at (M, N, K) = (2048, 576, 8): 0.70-0.75 -> 0.41-0.42 ms.
    private static void BackwardWeightNarrow(float* dy, float* x, float* dw, int M, int N, int K)
    {
        float* t = (t_narrow ??= new AlignedBuffer()).Ensure((long)K * N);
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) t[(long)k * N + n] = dw[(long)n * K + k];
        var p = new GemmProblem
        {
            A = x, Lda = K, ATransposed = true, B = dy, Ldb = N, BLayout = BLayout.RowMajor,
            C = t, Rows = K, Cols = N, Depth = M, Accumulate = true,
        };
        Run(p);
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) dw[(long)n * K + k] = t[(long)k * N + n];
    }

    private static void Run(in GemmProblem p)
    {
        var level = Simd.Level;
        if (level == SimdLevel.Scalar) GemmDriver.RunScalar(p);
        else GemmDriver.Run(p, level);
    }

    private static void CheckRows(int M, string op, in Shapes shapes)
    {
        if (M < 0) throw new ArgumentException($"MatMul.{op}: M = {M} is negative ({shapes}).", nameof(M));
    }

    private static void CheckDims(int M, int K, int N, string op, in Shapes shapes)
    {
        if (M < 0 || K < 0 || N < 0)
            throw new ArgumentException($"MatMul.{op}: dimensions must not be negative ({shapes}).");
    }

    private static void Check(int actual, long expected, string op, string name, in Shapes shapes)
    {
        if (actual != expected)
            throw new ArgumentException(
                $"MatMul.{op}: {name} has {actual} elements but needs {expected} for the shapes {shapes}. " +
                "Check M and the weight's [N, K] against the tensors passed.", name);
    }

    private enum Layout { Forward, BackwardInput, BackwardWeight }

    // The shapes of one call, formatted only when a check fails: an interpolated string per call allocated on every
    // matmul of a training step.
    private readonly record struct Shapes(Layout Layout, int M, int K, int N)
    {
        public override string ToString() => Layout switch
        {
            Layout.Forward => $"X [M, K] = [{M}, {K}], W [N, K] = [{N}, {K}], Y [M, N] = [{M}, {N}]",
            Layout.BackwardInput => $"dY [M, N] = [{M}, {N}], W [N, K] = [{N}, {K}], dX [M, K] = [{M}, {K}]",
            _ => $"dY [M, N] = [{M}, {N}], X [M, K] = [{M}, {K}], dW [N, K] = [{N}, {K}]",
        };
    }
}
