// RMSNorm as Hugging Face LlamaRMSNorm computes it (legend: N rows = B*T tokens, C channels):
//   rstd[n]     = 1 / sqrt(mean_c x[n,c]^2 + eps)          (mean accumulated in double)
//   out[n,c]    = weight[c] * (x[n,c] * rstd[n])
// Backward (adds into dx and dWeight; callers zero them):
//   dx[n,c]     += rstd[n] * weight[c] * dOut[n,c] - x[n,c] * rstd[n]^3 / C * sum_j weight[j] dOut[n,j] x[n,j]
//   dWeight[c]  += sum_n dOut[n,c] * x[n,c] * rstd[n]      (skipped when dWeight is empty: frozen norms in LoRA)
// Rows are split over threads; dWeight is split over columns (each column summed over rows in order), so every
// output is identical for any thread count. Not here: a bias, mean-centering (that is LayerNorm), bf16 inputs.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>Root-mean-square layer normalisation, forward and backward.</summary>
public static unsafe class RmsNorm
{
    /// <summary>out = weight * x * rstd per row; also stores rstd for the backward pass.</summary>
    /// <param name="x">Input [N, C].</param>
    /// <param name="weight">Scale [C].</param>
    /// <param name="output">Output [N, C] (may not alias x).</param>
    /// <param name="rstd">Per-row 1/rms [N], written.</param>
    /// <param name="N">Rows (B*T).</param>
    /// <param name="C">Channels.</param>
    /// <param name="eps">Added to the mean square (config rms_norm_eps).</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> output, Span<float> rstd, int N, int C, float eps)
    {
        CheckForward(x.Length, weight.Length, output.Length, rstd.Length, N, C);
        if (N == 0) return;
        fixed (float* px = x, pw = weight, po = output, pr = rstd)
        {
            var work = new ForwardWork { X = px, W = pw, Out = po, Rstd = pr, N = N, C = C, Eps = eps, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts((long)N * C, N));
        }
    }

    /// <summary>Adds the gradients of <see cref="Forward"/> into dx and dWeight.</summary>
    /// <param name="dOut">Gradient of the output [N, C].</param>
    /// <param name="x">Forward input [N, C].</param>
    /// <param name="weight">Scale [C].</param>
    /// <param name="rstd">Per-row 1/rms [N] from the forward pass.</param>
    /// <param name="dx">Input gradient [N, C], added into.</param>
    /// <param name="dWeight">Scale gradient [C], added into; empty to skip (frozen weight).</param>
    /// <param name="N">Rows.</param>
    /// <param name="C">Channels.</param>
    public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dWeight, int N, int C)
    {
        CheckBackward(dOut.Length, x.Length, weight.Length, rstd.Length, dx.Length, dWeight.Length, N, C);
        if (N == 0 || C == 0) return;
        fixed (float* pdo = dOut, px = x, pw = weight, pr = rstd, pdx = dx, pdw = dWeight)
        {
            var level = Simd.Level;
            var rows = new BackwardRowsWork { DOut = pdo, X = px, W = pw, Rstd = pr, Dx = pdx, N = N, C = C, Level = level };
            Threads.Run(ref rows, Elementwise.Parts((long)N * C, N));
            if (dWeight.Length != 0)
            {
                var cols = new WeightGradWork { DOut = pdo, X = px, Rstd = pr, DW = pdw, N = N, C = C, Level = level };
                Threads.Run(ref cols, Elementwise.Parts((long)N * C, (C + 15) / 16));
            }
        }
    }

    private static void CheckForward(int x, int w, int o, int r, int N, int C)
    {
        Elementwise.CheckDims(N, C);
        Elementwise.CheckLength(x, N, C, "x");
        Elementwise.CheckLength(w, C, "weight");
        Elementwise.CheckLength(o, N, C, "output");
        Elementwise.CheckLength(r, N, "rstd");
    }

    private static void CheckBackward(int dOut, int x, int w, int r, int dx, int dw, int N, int C)
    {
        Elementwise.CheckDims(N, C);
        Elementwise.CheckLength(dOut, N, C, "dOut");
        Elementwise.CheckLength(x, N, C, "x");
        Elementwise.CheckLength(w, C, "weight");
        Elementwise.CheckLength(r, N, "rstd");
        Elementwise.CheckLength(dx, N, C, "dx");
        if (dw != 0) Elementwise.CheckLength(dw, C, "dWeight", " (or empty to skip)");
    }

    private struct ForwardWork : IParallelWork
    {
        public float* X, W, Out, Rstd;
        public int N, C;
        public float Eps;
        public SimdLevel Level;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (n0, n1) = Threads.Split(N, part, parts);
            if (n0 >= n1) return;
            // Software-pipelined by one row: the loop that writes row n also sums the squares of row n + 1, so one
            // stream reads from DRAM while the other writes, as in a plain y = a·x (two separate passes per row left
            // memory half idle: 58-62% of the bandwidth probe). Each row's arithmetic is unchanged.
            double ss = SumSquares(X + (long)n0 * C, C, Level);
            for (int n = n0; n < n1; n++)
            {
                float* x = X + (long)n * C, o = Out + (long)n * C;
                float r = (float)(1.0 / Math.Sqrt(ss / C + Eps));
                Rstd[n] = r;
                if (n + 1 < n1) ss = ScaleAndSumNext(x, W, o, r, x + C, C, Level);
                else Scale(x, W, o, r, C, Level);
            }
        }
    }

    // sum x[i]^2 in double: each float vector is widened to two double vectors before the FMA.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double SumSquares(float* x, int C, SimdLevel level)
    {
        int i = 0;
        double s = 0;
        if (level >= SimdLevel.V512 && C >= 16)
        {
            Vector512<double> a0 = default, a1 = default;
            for (; i + 16 <= C; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(x + i));
                a0 = Vector512.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector512.FusedMultiplyAdd(hi, hi, a1);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && C >= 8)
        {
            Vector256<double> a0 = default, a1 = default;
            for (; i + 8 <= C; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                a0 = Vector256.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector256.FusedMultiplyAdd(hi, hi, a1);
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && C >= 4)
        {
            Vector128<double> a0 = default, a1 = default;
            for (; i + 4 <= C; i += 4)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(x + i));
                a0 = Vector128.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector128.FusedMultiplyAdd(hi, hi, a1);
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; i < C; i++) s += (double)x[i] * x[i];
        return s;
    }

    // o = w * (x * r), and returns SumSquares(next): the two loops of consecutive rows fused, with the same
    // operations in the same order as Scale and SumSquares (bit-identical to running them one after the other).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double ScaleAndSumNext(float* x, float* w, float* o, float r, float* next, int C, SimdLevel level)
    {
        int i = 0;
        double s = 0;
        if (level >= SimdLevel.V512 && C >= 16)
        {
            var rv = Vector512.Create(r);
            Vector512<double> a0 = default, a1 = default;
            for (; i + 16 <= C; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(next + i));
                a0 = Vector512.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector512.FusedMultiplyAdd(hi, hi, a1);
                Vector512.Store(Vector512.Load(w + i) * (Vector512.Load(x + i) * rv), o + i);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && C >= 8)
        {
            var rv = Vector256.Create(r);
            Vector256<double> a0 = default, a1 = default;
            for (; i + 8 <= C; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(next + i));
                a0 = Vector256.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector256.FusedMultiplyAdd(hi, hi, a1);
                Vector256.Store(Vector256.Load(w + i) * (Vector256.Load(x + i) * rv), o + i);
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && C >= 4)
        {
            var rv = Vector128.Create(r);
            Vector128<double> a0 = default, a1 = default;
            for (; i + 4 <= C; i += 4)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(next + i));
                a0 = Vector128.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector128.FusedMultiplyAdd(hi, hi, a1);
                Vector128.Store(Vector128.Load(w + i) * (Vector128.Load(x + i) * rv), o + i);
            }
            s = Vector128.Sum(a0 + a1);
        }
        // Tails: the rest of this row through Scale's narrower steps, the rest of the sum as SumSquares ends.
        Scale(x + i, w + i, o + i, r, C - i, level);
        for (int j = i; j < C; j++) s += (double)next[j] * next[j];
        return s;
    }

    // o = w * (x * r)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale(float* x, float* w, float* o, float r, int C, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
        {
            var rv = Vector512.Create(r);
            for (; i + 16 <= C; i += 16) Vector512.Store(Vector512.Load(w + i) * (Vector512.Load(x + i) * rv), o + i);
        }
        if (level >= SimdLevel.V256)
        {
            var rv = Vector256.Create(r);
            for (; i + 8 <= C; i += 8) Vector256.Store(Vector256.Load(w + i) * (Vector256.Load(x + i) * rv), o + i);
        }
        if (level >= SimdLevel.V128)
        {
            var rv = Vector128.Create(r);
            for (; i + 4 <= C; i += 4) Vector128.Store(Vector128.Load(w + i) * (Vector128.Load(x + i) * rv), o + i);
        }
        for (; i < C; i++) o[i] = w[i] * (x[i] * r);
    }

    private struct BackwardRowsWork : IParallelWork
    {
        public float* DOut, X, W, Rstd, Dx;
        public int N, C;
        public SimdLevel Level;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (n0, n1) = Threads.Split(N, part, parts);
            for (int n = n0; n < n1; n++)
            {
                float* dy = DOut + (long)n * C, x = X + (long)n * C, dx = Dx + (long)n * C;
                double r = Rstd[n];
                double dot = Dot3(W, dy, x, C, Level);
                Row(dy, x, W, dx, (float)r, (float)(r * r * r * dot / C), C, Level);
            }
        }
    }

    // sum w[i]*dy[i]*x[i] in double
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double Dot3(float* w, float* dy, float* x, int C, SimdLevel level)
    {
        int i = 0;
        double s = 0;
        if (level >= SimdLevel.V512 && C >= 16)
        {
            Vector512<double> a0 = default, a1 = default;
            for (; i + 16 <= C; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(w + i) * Vector512.Load(dy + i));
                var (xl, xh) = Vector512.Widen(Vector512.Load(x + i));
                a0 = Vector512.FusedMultiplyAdd(lo, xl, a0);
                a1 = Vector512.FusedMultiplyAdd(hi, xh, a1);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && C >= 8)
        {
            Vector256<double> a0 = default, a1 = default;
            for (; i + 8 <= C; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(w + i) * Vector256.Load(dy + i));
                var (xl, xh) = Vector256.Widen(Vector256.Load(x + i));
                a0 = Vector256.FusedMultiplyAdd(lo, xl, a0);
                a1 = Vector256.FusedMultiplyAdd(hi, xh, a1);
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && C >= 4)
        {
            Vector128<double> a0 = default, a1 = default;
            for (; i + 4 <= C; i += 4)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(w + i) * Vector128.Load(dy + i));
                var (xl, xh) = Vector128.Widen(Vector128.Load(x + i));
                a0 = Vector128.FusedMultiplyAdd(lo, xl, a0);
                a1 = Vector128.FusedMultiplyAdd(hi, xh, a1);
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; i < C; i++) s += (double)(w[i] * dy[i]) * x[i];
        return s;
    }

    // dx += a * (w*dy) - b * x
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(float* dy, float* x, float* w, float* dx, float a, float b, int C, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
        {
            var av = Vector512.Create(a);
            var bv = Vector512.Create(b);
            for (; i + 16 <= C; i += 16)
            {
                var g = av * (Vector512.Load(w + i) * Vector512.Load(dy + i)) - bv * Vector512.Load(x + i);
                Vector512.Store(Vector512.Load(dx + i) + g, dx + i);
            }
        }
        if (level >= SimdLevel.V256)
        {
            var av = Vector256.Create(a);
            var bv = Vector256.Create(b);
            for (; i + 8 <= C; i += 8)
            {
                var g = av * (Vector256.Load(w + i) * Vector256.Load(dy + i)) - bv * Vector256.Load(x + i);
                Vector256.Store(Vector256.Load(dx + i) + g, dx + i);
            }
        }
        if (level >= SimdLevel.V128)
        {
            var av = Vector128.Create(a);
            var bv = Vector128.Create(b);
            for (; i + 4 <= C; i += 4)
            {
                var g = av * (Vector128.Load(w + i) * Vector128.Load(dy + i)) - bv * Vector128.Load(x + i);
                Vector128.Store(Vector128.Load(dx + i) + g, dx + i);
            }
        }
        for (; i < C; i++) dx[i] += a * (w[i] * dy[i]) - b * x[i];
    }

    // dWeight over a column range: 64 columns at a time, summed over all rows in order in double accumulators.
    private struct WeightGradWork : IParallelWork
    {
        public float* DOut, X, Rstd, DW;
        public int N, C;
        public SimdLevel Level;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            const int Block = 64;
            var (c0, c1) = Threads.SplitAligned(C, 16, part, parts);
            double* acc = stackalloc double[Block];
            for (int cb = c0; cb < c1; cb += Block)
            {
                int width = Math.Min(Block, c1 - cb);
                for (int j = 0; j < width; j++) acc[j] = 0;
                for (int n = 0; n < N; n++)
                    AccumulateRow(DOut + (long)n * C + cb, X + (long)n * C + cb, Rstd[n], acc, width, Level);
                for (int j = 0; j < width; j++) DW[cb + j] = (float)(DW[cb + j] + acc[j]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateRow(float* dy, float* x, float r, double* acc, int width, SimdLevel level)
    {
        int j = 0;
        if (level >= SimdLevel.V512)
        {
            var rv = Vector512.Create(r);
            for (; j + 16 <= width; j += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(dy + j) * Vector512.Load(x + j) * rv);
                Vector512.Store(Vector512.Load(acc + j) + lo, acc + j);
                Vector512.Store(Vector512.Load(acc + j + 8) + hi, acc + j + 8);
            }
        }
        if (level >= SimdLevel.V256)
        {
            var rv = Vector256.Create(r);
            for (; j + 8 <= width; j += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(dy + j) * Vector256.Load(x + j) * rv);
                Vector256.Store(Vector256.Load(acc + j) + lo, acc + j);
                Vector256.Store(Vector256.Load(acc + j + 4) + hi, acc + j + 4);
            }
        }
        if (level >= SimdLevel.V128)
        {
            var rv = Vector128.Create(r);
            for (; j + 4 <= width; j += 4)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(dy + j) * Vector128.Load(x + j) * rv);
                Vector128.Store(Vector128.Load(acc + j) + lo, acc + j);
                Vector128.Store(Vector128.Load(acc + j + 2) + hi, acc + j + 2);
            }
        }
        for (; j < width; j++) acc[j] += dy[j] * x[j] * r;
    }

    /// <summary>Plain scalar twins (generic so tests can run them in double for finite differences).</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="RmsNorm.Forward"/>.</summary>
        public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, Span<T> output, Span<T> rstd, int N, int C, T eps)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            CheckForward(x.Length, weight.Length, output.Length, rstd.Length, N, C);
            for (int n = 0; n < N; n++)
            {
                double ss = 0;
                for (int c = 0; c < C; c++) { double v = double.CreateTruncating(x[n * C + c]); ss += v * v; }
                T r = T.CreateTruncating(1.0 / Math.Sqrt(ss / C + double.CreateTruncating(eps)));
                rstd[n] = r;
                for (int c = 0; c < C; c++) output[n * C + c] = weight[c] * (x[n * C + c] * r);
            }
        }

        /// <summary>Scalar <see cref="RmsNorm.Backward"/>.</summary>
        public static void Backward<T>(ReadOnlySpan<T> dOut, ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<T> rstd,
            Span<T> dx, Span<T> dWeight, int N, int C)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            CheckBackward(dOut.Length, x.Length, weight.Length, rstd.Length, dx.Length, dWeight.Length, N, C);
            for (int n = 0; n < N; n++)
            {
                double r = double.CreateTruncating(rstd[n]);
                double dot = 0;
                for (int c = 0; c < C; c++)
                    dot += double.CreateTruncating(weight[c]) * double.CreateTruncating(dOut[n * C + c]) * double.CreateTruncating(x[n * C + c]);
                double b = r * r * r * dot / C;
                for (int c = 0; c < C; c++)
                {
                    double g = r * double.CreateTruncating(weight[c]) * double.CreateTruncating(dOut[n * C + c]) - b * double.CreateTruncating(x[n * C + c]);
                    dx[n * C + c] = T.CreateTruncating(double.CreateTruncating(dx[n * C + c]) + g);
                }
            }
            if (dWeight.Length == 0) return;
            for (int c = 0; c < C; c++)
            {
                double s = 0;
                for (int n = 0; n < N; n++)
                    s += double.CreateTruncating(dOut[n * C + c]) * double.CreateTruncating(x[n * C + c]) * double.CreateTruncating(rstd[n]);
                dWeight[c] = T.CreateTruncating(double.CreateTruncating(dWeight[c]) + s);
            }
        }
    }
}
