// Row-wise softmax (legend: rows x cols, softmax over the last axis):
//   Forward   m = max_j x[r,j];  y[r,j] = exp(x[r,j] - m) / sum_j exp(x[r,j] - m)   (sum in double)
//   Backward  dx[r,j] += y[r,j] * (dy[r,j] - sum_k dy[r,k] y[r,k])                   (sum in double)
// A row of all -inf gives NaN, as torch.softmax does. Rows are split over threads (identical for any count).
// The row helpers (Max, ExpSum, Scale, Dot) are shared with CrossEntropy.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>Softmax over the last axis, forward and backward.</summary>
public static unsafe class Softmax
{
    /// <summary>y = softmax(x) per row.</summary>
    /// <param name="x">Input [rows, cols].</param>
    /// <param name="y">Output [rows, cols] (may alias x).</param>
    /// <param name="rows">Rows.</param>
    /// <param name="cols">Columns (the softmax axis).</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        CheckForward(x.Length, y.Length, rows, cols);
        if (rows == 0 || cols == 0) return;
        fixed (float* px = x, py = y)
        {
            var work = new Work { X = px, Y = py, Rows = rows, Cols = cols, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts((long)rows * cols, rows));
        }
    }

    /// <summary>dx += y ⊙ (dy - rowsum(dy ⊙ y)).</summary>
    /// <param name="dy">Output gradient [rows, cols].</param>
    /// <param name="y">Forward output [rows, cols].</param>
    /// <param name="dx">Input gradient [rows, cols], added into.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="cols">Columns.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx, int rows, int cols)
    {
        CheckBackward(dy.Length, y.Length, dx.Length, rows, cols);
        if (rows == 0 || cols == 0) return;
        fixed (float* pdy = dy, py = y, pdx = dx)
        {
            var work = new Work { Dy = pdy, Y = py, Dx = pdx, Rows = rows, Cols = cols, Level = Simd.Level, Backward = true };
            Threads.Run(ref work, Elementwise.Parts((long)rows * cols, rows));
        }
    }

    private static void CheckForward(int x, int y, int rows, int cols)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"Dimensions must not be negative (rows = {rows}, cols = {cols}).");
        Elementwise.CheckLength(x, rows, cols, "x");
        Elementwise.CheckLength(y, rows, cols, "y");
    }

    private static void CheckBackward(int dy, int y, int dx, int rows, int cols)
    {
        CheckForward(dy, y, rows, cols);
        Elementwise.CheckLength(dx, rows, cols, "dx");
    }

    private struct Work : IParallelWork
    {
        public float* X, Y, Dy, Dx;
        public int Rows, Cols;
        public SimdLevel Level;
        public bool Backward;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (r0, r1) = Threads.Split(Rows, part, parts);
            for (int r = r0; r < r1; r++)
            {
                long o = (long)r * Cols;
                if (Backward)
                {
                    double dot = Dot(Dy + o, Y + o, Cols, Level);
                    AddScaledDifference(Dy + o, Y + o, Dx + o, (float)dot, Cols, Level);
                }
                else
                {
                    float m = Max(X + o, Cols, Level);
                    // While this row's exp pass runs from L1 (about ten cycles a cache line), prefetch the next row,
                    // so its max pass finds it in cache instead of waiting on DRAM: 42-55% -> 61-77% of the bandwidth
                    // probe. (Fusing the next row's max into this row's scale pass instead measured slower, 57-68%.)
                    double sum = ExpSum(X + o, Y + o, m, Cols, Level, r + 1 < r1 ? X + o + Cols : null);
                    Scale(Y + o, (float)(1.0 / sum), Cols, Level);
                }
            }
        }
    }

    /// <summary>max_j x[j] (NaN-propagating is not guaranteed; inputs are finite or -inf).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Max(float* x, int n, SimdLevel level)
    {
        int i = 0;
        float m = float.NegativeInfinity;
        if (level >= SimdLevel.V512 && n >= 16)
        {
            var v = Vector512.Create(float.NegativeInfinity);
            for (; i + 16 <= n; i += 16) v = Vector512.MaxNative(v, Vector512.Load(x + i));
            for (int k = 0; k < 16; k++) m = Math.Max(m, v.GetElement(k));
        }
        else if (level >= SimdLevel.V256 && n >= 8)
        {
            var v = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= n; i += 8) v = Vector256.MaxNative(v, Vector256.Load(x + i));
            for (int k = 0; k < 8; k++) m = Math.Max(m, v.GetElement(k));
        }
        else if (level >= SimdLevel.V128 && n >= 4)
        {
            var v = Vector128.Create(float.NegativeInfinity);
            for (; i + 4 <= n; i += 4) v = Vector128.MaxNative(v, Vector128.Load(x + i));
            for (int k = 0; k < 4; k++) m = Math.Max(m, v.GetElement(k));
        }
        for (; i < n; i++) m = Math.Max(m, x[i]);
        return m;
    }

    /// <summary>
    /// y[j] = exp(x[j] - shift) for shift &gt;= max x; returns sum_j y[j] in double. With <paramref name="prefetch"/>,
    /// also prefetches n floats from there (the next row), one cache line per 16 elements done.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double ExpSum(float* x, float* y, float shift, int n, SimdLevel level, float* prefetch = null)
    {
        int i = 0;
        double s = 0;
        if (level >= SimdLevel.V512 && n >= 16)
        {
            var sv = Vector512.Create(shift);
            Vector512<double> a0 = default, a1 = default;
            for (; i + 16 <= n; i += 16)
            {
                if (prefetch != null && Sse.IsSupported) Sse.Prefetch0(prefetch + i);
                var e = Elementwise.ExpNonPositive(Vector512.Load(x + i) - sv);
                Vector512.Store(e, y + i);
                var (lo, hi) = Vector512.Widen(e);
                a0 += lo;
                a1 += hi;
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && n >= 8)
        {
            var sv = Vector256.Create(shift);
            Vector256<double> a0 = default, a1 = default;
            for (; i + 8 <= n; i += 8)
            {
                if (prefetch != null && Sse.IsSupported && (i & 15) == 0) Sse.Prefetch0(prefetch + i);
                var e = Elementwise.ExpNonPositive(Vector256.Load(x + i) - sv);
                Vector256.Store(e, y + i);
                var (lo, hi) = Vector256.Widen(e);
                a0 += lo;
                a1 += hi;
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && n >= 4)
        {
            var sv = Vector128.Create(shift);
            Vector128<double> a0 = default, a1 = default;
            for (; i + 4 <= n; i += 4)
            {
                var e = Elementwise.ExpNonPositive(Vector128.Load(x + i) - sv);
                Vector128.Store(e, y + i);
                var (lo, hi) = Vector128.Widen(e);
                a0 += lo;
                a1 += hi;
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; i < n; i++)
        {
            float e = Elementwise.ExpNonPositive(x[i] - shift);
            y[i] = e;
            s += e;
        }
        return s;
    }

    /// <summary>y[j] *= scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Scale(float* y, float scale, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
        {
            var sv = Vector512.Create(scale);
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(y + i) * sv, y + i);
        }
        if (level >= SimdLevel.V256)
        {
            var sv = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(y + i) * sv, y + i);
        }
        if (level >= SimdLevel.V128)
        {
            var sv = Vector128.Create(scale);
            for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Load(y + i) * sv, y + i);
        }
        for (; i < n; i++) y[i] *= scale;
    }

    /// <summary>sum_j a[j] b[j] in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double Dot(float* a, float* b, int n, SimdLevel level)
    {
        int i = 0;
        double s = 0;
        if (level >= SimdLevel.V512 && n >= 16)
        {
            Vector512<double> a0 = default, a1 = default;
            for (; i + 16 <= n; i += 16)
            {
                var (al, ah) = Vector512.Widen(Vector512.Load(a + i));
                var (bl, bh) = Vector512.Widen(Vector512.Load(b + i));
                a0 = Vector512.FusedMultiplyAdd(al, bl, a0);
                a1 = Vector512.FusedMultiplyAdd(ah, bh, a1);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && n >= 8)
        {
            Vector256<double> a0 = default, a1 = default;
            for (; i + 8 <= n; i += 8)
            {
                var (al, ah) = Vector256.Widen(Vector256.Load(a + i));
                var (bl, bh) = Vector256.Widen(Vector256.Load(b + i));
                a0 = Vector256.FusedMultiplyAdd(al, bl, a0);
                a1 = Vector256.FusedMultiplyAdd(ah, bh, a1);
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && n >= 4)
        {
            Vector128<double> a0 = default, a1 = default;
            for (; i + 4 <= n; i += 4)
            {
                var (al, ah) = Vector128.Widen(Vector128.Load(a + i));
                var (bl, bh) = Vector128.Widen(Vector128.Load(b + i));
                a0 = Vector128.FusedMultiplyAdd(al, bl, a0);
                a1 = Vector128.FusedMultiplyAdd(ah, bh, a1);
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; i < n; i++) s += (double)a[i] * b[i];
        return s;
    }

    // dx += y * (dy - dot)
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddScaledDifference(float* dy, float* y, float* dx, float dot, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
        {
            var d = Vector512.Create(dot);
            for (; i + 16 <= n; i += 16)
                Vector512.Store(Vector512.Load(dx + i) + Vector512.Load(y + i) * (Vector512.Load(dy + i) - d), dx + i);
        }
        if (level >= SimdLevel.V256)
        {
            var d = Vector256.Create(dot);
            for (; i + 8 <= n; i += 8)
                Vector256.Store(Vector256.Load(dx + i) + Vector256.Load(y + i) * (Vector256.Load(dy + i) - d), dx + i);
        }
        if (level >= SimdLevel.V128)
        {
            var d = Vector128.Create(dot);
            for (; i + 4 <= n; i += 4)
                Vector128.Store(Vector128.Load(dx + i) + Vector128.Load(y + i) * (Vector128.Load(dy + i) - d), dx + i);
        }
        for (; i < n; i++) dx[i] += y[i] * (dy[i] - dot);
    }

    /// <summary>Plain scalar twins (generic so tests can run them in double).</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="Softmax.Forward"/>.</summary>
        public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int cols) where T : unmanaged, IFloatingPointIeee754<T>
        {
            CheckForward(x.Length, y.Length, rows, cols);
            for (int r = 0; r < rows; r++)
            {
                var xr = x.Slice(r * cols, cols);
                var yr = y.Slice(r * cols, cols);
                double m = double.NegativeInfinity;
                for (int j = 0; j < cols; j++) m = Math.Max(m, double.CreateTruncating(xr[j]));
                double s = 0;
                for (int j = 0; j < cols; j++) s += Math.Exp(double.CreateTruncating(xr[j]) - m);
                for (int j = 0; j < cols; j++) yr[j] = T.CreateTruncating(Math.Exp(double.CreateTruncating(xr[j]) - m) / s);
            }
        }

        /// <summary>Scalar <see cref="Softmax.Backward"/>.</summary>
        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx, int rows, int cols) where T : unmanaged, IFloatingPointIeee754<T>
        {
            CheckBackward(dy.Length, y.Length, dx.Length, rows, cols);
            for (int r = 0; r < rows; r++)
            {
                int o = r * cols;
                double dot = 0;
                for (int j = 0; j < cols; j++) dot += double.CreateTruncating(dy[o + j]) * double.CreateTruncating(y[o + j]);
                for (int j = 0; j < cols; j++)
                    dx[o + j] = T.CreateTruncating(double.CreateTruncating(dx[o + j])
                        + double.CreateTruncating(y[o + j]) * (double.CreateTruncating(dy[o + j]) - dot));
            }
        }
    }
}
