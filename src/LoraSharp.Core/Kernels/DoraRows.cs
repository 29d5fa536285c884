// DoRA's O(M·N) row passes (Models/Linear.Dora.cs), parallel over rows (they ran on the calling thread only):
//   RowScale           y[m] (+)= g ⊙ x[m]                                   forward y = g ⊙ S; (g − 1) ⊙ u·Wᵀ
//   MagnitudeGradRows  P[b, n] = Σ_{m in block b} dy[m, n]·S[m, n]  (float, rows in order, blocks of 64 rows)
//                      then S[m] = g ⊙ dy[m]                          (S's buffer becomes dyg, as the serial code did)
// The caller adds P's blocks into a double sum in block order, so dm is bit-identical to the serial loop for any thread
// count. Static split by rows (RowScale) or by 64-row blocks (MagnitudeGradRows); each part writes disjoint rows.
// Legend: M rows (tokens), N out features, NB = ceil(M / 64) blocks.
using System.Runtime.CompilerServices;
using LoraSharp.Core.Threading;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LoraSharp.Core.Kernels;

/// <summary>DoRA's row-scale and magnitude-gradient passes (vectorized rows, parallel; with scalar twins).</summary>
public static unsafe class DoraRows
{
    /// <summary>Rows per block of <see cref="MagnitudeGradRows"/>' partial sums.</summary>
    public const int BlockRows = 64;

    /// <summary>Blocks of <see cref="BlockRows"/> rows in M rows.</summary>
    public static int Blocks(int M) => (M + BlockRows - 1) / BlockRows;

    /// <summary>y[m, :] = g ⊙ x[m, :] (or += when <paramref name="accumulate"/>) for every row m.</summary>
    /// <param name="x">[M, N] input.</param>
    /// <param name="g">[N] per-column scale.</param>
    /// <param name="y">[M, N] output (may alias <paramref name="x"/> when not accumulating).</param>
    /// <param name="M">Rows.</param>
    /// <param name="N">Columns.</param>
    /// <param name="accumulate">Add into y instead of overwriting it.</param>
    public static void RowScale(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> y, int M, int N, bool accumulate)
    {
        Check(x.Length, y.Length, g.Length, M, N);
        if (M == 0 || N == 0) return;
        fixed (float* px = x, pg = g, py = y)
        {
            var work = new ScaleWork { X = px, G = pg, Y = py, M = M, N = N, Accumulate = accumulate };
            Threads.Run(ref work, Elementwise.Parts((long)M * N, M));
        }
    }

    /// <summary>The scalar twin of <see cref="RowScale"/>.</summary>
    public static void RowScaleReference(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> y, int M, int N, bool accumulate)
    {
        Check(x.Length, y.Length, g.Length, M, N);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
                y[m * N + n] = accumulate ? x[m * N + n] * g[n] + y[m * N + n] : x[m * N + n] * g[n];
    }

    /// <summary>
    /// Per 64-row block b: partials[b, n] = Σ_m dy[m, n]·S[m, n] (float, rows in order) when
    /// <paramref name="partials"/> is not empty; then S[m, :] = g ⊙ dy[m, :] for every row.
    /// </summary>
    /// <param name="dy">[M, N] output gradient.</param>
    /// <param name="S">[M, N] the forward's saved product; overwritten with g ⊙ dy.</param>
    /// <param name="g">[N] row scale m / ‖W + sBA‖.</param>
    /// <param name="partials">[NB, N] block sums, or empty to skip them (a frozen magnitude).</param>
    /// <param name="M">Rows.</param>
    /// <param name="N">Columns.</param>
    public static void MagnitudeGradRows(ReadOnlySpan<float> dy, Span<float> S, ReadOnlySpan<float> g, Span<float> partials, int M, int N)
    {
        Check(dy.Length, S.Length, g.Length, M, N);
        if (!partials.IsEmpty && partials.Length < Blocks(M) * N)
            throw new ArgumentException($"partials has {partials.Length} floats; [{Blocks(M)}, {N}] needs {Blocks(M) * N}.", nameof(partials));
        if (M == 0 || N == 0) return;
        fixed (float* pdy = dy, ps = S, pg = g, pp = partials)
        {
            var work = new GradWork { Dy = pdy, S = ps, G = pg, P = partials.IsEmpty ? null : pp, M = M, N = N };
            int blocks = Blocks(M);
            Threads.Run(ref work, Elementwise.Parts((long)M * N, blocks));
        }
    }

    /// <summary>The scalar twin of <see cref="MagnitudeGradRows"/>.</summary>
    public static void MagnitudeGradRowsReference(ReadOnlySpan<float> dy, Span<float> S, ReadOnlySpan<float> g, Span<float> partials, int M, int N)
    {
        Check(dy.Length, S.Length, g.Length, M, N);
        for (int b = 0; b < Blocks(M); b++)
        {
            if (!partials.IsEmpty) partials.Slice(b * N, N).Clear();
            for (int m = b * BlockRows; m < Math.Min(M, (b + 1) * BlockRows); m++)
                for (int n = 0; n < N; n++)
                {
                    if (!partials.IsEmpty) partials[b * N + n] = dy[m * N + n] * S[m * N + n] + partials[b * N + n];
                    S[m * N + n] = dy[m * N + n] * g[n];
                }
        }
    }

    private static void Check(int x, int y, int g, int M, int N)
    {
        long need = (long)M * N;
        if (x < need || y < need || g < N)
            throw new ArgumentException($"DoRA row pass: [{M}, {N}] needs {need} floats in and out and {N} scales; got {x}, {y}, {g}.");
    }

    private struct ScaleWork : IParallelWork
    {
        public float* X, G, Y;
        public int M, N;
        public bool Accumulate;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            int m0 = (int)((long)M * part / parts), m1 = (int)((long)M * (part + 1) / parts);
            var g = new ReadOnlySpan<float>(G, N);
            for (int m = m0; m < m1; m++)
            {
                var x = new ReadOnlySpan<float>(X + (long)m * N, N);
                var y = new Span<float>(Y + (long)m * N, N);
                if (Accumulate) TensorPrimitives.MultiplyAdd(x, g, y, y);
                else TensorPrimitives.Multiply(x, g, y);
            }
        }
    }

    private struct GradWork : IParallelWork
    {
        public float* Dy, S, G, P;
        public int M, N;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            int blocks = Blocks(M);
            int b0 = (int)((long)blocks * part / parts), b1 = (int)((long)blocks * (part + 1) / parts);
            var g = new ReadOnlySpan<float>(G, N);
            for (int b = b0; b < b1; b++)
            {
                var p = P == null ? default : new Span<float>(P + (long)b * N, N);
                p.Clear();
                for (int m = b * BlockRows; m < Math.Min(M, (b + 1) * BlockRows); m++)
                {
                    var dy = new ReadOnlySpan<float>(Dy + (long)m * N, N);
                    var s = new Span<float>(S + (long)m * N, N);
                    if (P != null) TensorPrimitives.MultiplyAdd(dy, s, p, p);
                    TensorPrimitives.Multiply(dy, g, s);
                }
            }
        }
    }
}
