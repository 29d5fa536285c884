// Row kernels of Adafactor (see Adafactor.cs for the algorithm). Legend: C = row length (the parameter's last
// dimension); colFactor [C] is rsqrt(exp_avg_sq_col) of the row's matrix (or rsqrt(exp_avg_sq) for unfactored
// parameters with rowFactor = 1, which is exact since 1·x = x); rowFactor = rsqrt(row / mean(row)).
//   AccumulateSquares:     u = g² + eps1;  colSum[c] += u (double);  returns Σ u (double)
//   PreconditionedSquares: returns Σ (rowFactor·colFactor[c]·g[c])² (double)
//   Apply:                 u = rowFactor·colFactor[c]·g[c] / divisor · lr;  m = β1·m + (1−β1)·u, u = m (with β1);
//                          p = p + (−wd·lr)·p − u
// Apply and the colSum of AccumulateSquares agree bit for bit across SIMD paths; the returned sums are accumulated
// in a different order by the vector paths (double, so they differ by ~1e-16 relative).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Optim;

/// <summary>Adafactor row kernels (vectorized and scalar reference).</summary>
public static class AdafactorKernel
{
    /// <summary>The per-parameter scalars of the final update, rounded to float.</summary>
    public readonly struct Coefficients
    {
        /// <summary>max(rms(u)/clip_threshold, 1).</summary>
        public float Divisor { get; init; }
        /// <summary>The step's learning rate (after relative step and parameter scaling).</summary>
        public float Lr { get; init; }
        /// <summary>−wd·lr (applied as p + decay·p when <see cref="WeightDecay"/>).</summary>
        public float Decay { get; init; }
        /// <summary>Whether weight decay is applied.</summary>
        public bool WeightDecay { get; init; }
        /// <summary>Whether the first moment exp_avg is kept.</summary>
        public bool Momentum { get; init; }
        /// <summary>β1.</summary>
        public float Beta1 { get; init; }
        /// <summary>1 − β1.</summary>
        public float OneMinusBeta1 { get; init; }
    }

    /// <summary>u = g² + eps1 per element: adds u to colSum and returns Σ u.</summary>
    /// <param name="gRow">[C] gradient row.</param>
    /// <param name="eps1">Regularizer eps[0].</param>
    /// <param name="colSum">[C] running column sums, added to.</param>
    public static double AccumulateSquares(ReadOnlySpan<float> gRow, float eps1, Span<double> colSum)
        => AccumulateSquares(gRow, eps1, colSum, Simd.Level);

    /// <summary>The scalar twin of <see cref="AccumulateSquares(ReadOnlySpan{float}, float, Span{double})"/>.</summary>
    public static double AccumulateSquaresReference(ReadOnlySpan<float> gRow, float eps1, Span<double> colSum)
    {
        CheckLength(gRow.Length, colSum.Length, "colSum");
        double s = 0;
        for (int c = 0; c < gRow.Length; c++)
        {
            float u = gRow[c] * gRow[c] + eps1;
            colSum[c] += u;
            s += u;
        }
        return s;
    }

    internal static double AccumulateSquares(ReadOnlySpan<float> gRow, float eps1, Span<double> colSum, SimdLevel level)
    {
        CheckLength(gRow.Length, colSum.Length, "colSum");
        int n = gRow.Length, c = 0;
        ref float g = ref MemoryMarshal.GetReference(gRow);
        ref double cs = ref MemoryMarshal.GetReference(colSum);
        double s = 0;
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var e = Vector512.Create(eps1);
            Vector512<double> acc = default;
            for (; c <= n - Vector512<float>.Count; c += Vector512<float>.Count)
            {
                var gi = Vector512.LoadUnsafe(ref g, (nuint)c);
                var (lo, hi) = Vector512.Widen(gi * gi + e);
                (Vector512.LoadUnsafe(ref cs, (nuint)c) + lo).StoreUnsafe(ref cs, (nuint)c);
                (Vector512.LoadUnsafe(ref cs, (nuint)(c + 8)) + hi).StoreUnsafe(ref cs, (nuint)(c + 8));
                acc += lo + hi;
            }
            s = Vector512.Sum(acc);
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var e = Vector256.Create(eps1);
            Vector256<double> acc = default;
            for (; c <= n - Vector256<float>.Count; c += Vector256<float>.Count)
            {
                var gi = Vector256.LoadUnsafe(ref g, (nuint)c);
                var (lo, hi) = Vector256.Widen(gi * gi + e);
                (Vector256.LoadUnsafe(ref cs, (nuint)c) + lo).StoreUnsafe(ref cs, (nuint)c);
                (Vector256.LoadUnsafe(ref cs, (nuint)(c + 4)) + hi).StoreUnsafe(ref cs, (nuint)(c + 4));
                acc += lo + hi;
            }
            s = Vector256.Sum(acc);
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var e = Vector128.Create(eps1);
            Vector128<double> acc = default;
            for (; c <= n - Vector128<float>.Count; c += Vector128<float>.Count)
            {
                var gi = Vector128.LoadUnsafe(ref g, (nuint)c);
                var (lo, hi) = Vector128.Widen(gi * gi + e);
                (Vector128.LoadUnsafe(ref cs, (nuint)c) + lo).StoreUnsafe(ref cs, (nuint)c);
                (Vector128.LoadUnsafe(ref cs, (nuint)(c + 2)) + hi).StoreUnsafe(ref cs, (nuint)(c + 2));
                acc += lo + hi;
            }
            s = Vector128.Sum(acc);
        }
        for (; c < n; c++)
        {
            float u = gRow[c] * gRow[c] + eps1;
            colSum[c] += u;
            s += u;
        }
        return s;
    }

    /// <summary>Σ (rowFactor·colFactor[c]·g[c])² in double.</summary>
    /// <param name="gRow">[C] gradient row.</param>
    /// <param name="colFactor">[C] column factors.</param>
    /// <param name="rowFactor">The row's factor.</param>
    public static double PreconditionedSquares(ReadOnlySpan<float> gRow, ReadOnlySpan<float> colFactor, float rowFactor)
        => PreconditionedSquares(gRow, colFactor, rowFactor, Simd.Level);

    /// <summary>The scalar twin of <see cref="PreconditionedSquares(ReadOnlySpan{float}, ReadOnlySpan{float}, float)"/>.</summary>
    public static double PreconditionedSquaresReference(ReadOnlySpan<float> gRow, ReadOnlySpan<float> colFactor, float rowFactor)
    {
        CheckLength(gRow.Length, colFactor.Length, "colFactor");
        double s = 0;
        for (int c = 0; c < gRow.Length; c++)
        {
            float u = rowFactor * colFactor[c] * gRow[c];
            s += (double)u * u;
        }
        return s;
    }

    internal static double PreconditionedSquares(ReadOnlySpan<float> gRow, ReadOnlySpan<float> colFactor, float rowFactor, SimdLevel level)
    {
        CheckLength(gRow.Length, colFactor.Length, "colFactor");
        int n = gRow.Length, c = 0;
        ref float g = ref MemoryMarshal.GetReference(gRow);
        ref float f = ref MemoryMarshal.GetReference(colFactor);
        double s = 0;
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var rf = Vector512.Create(rowFactor);
            Vector512<double> a0 = default, a1 = default;
            for (; c <= n - Vector512<float>.Count; c += Vector512<float>.Count)
            {
                var (lo, hi) = Vector512.Widen(rf * Vector512.LoadUnsafe(ref f, (nuint)c) * Vector512.LoadUnsafe(ref g, (nuint)c));
                a0 += lo * lo; a1 += hi * hi;
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var rf = Vector256.Create(rowFactor);
            Vector256<double> a0 = default, a1 = default;
            for (; c <= n - Vector256<float>.Count; c += Vector256<float>.Count)
            {
                var (lo, hi) = Vector256.Widen(rf * Vector256.LoadUnsafe(ref f, (nuint)c) * Vector256.LoadUnsafe(ref g, (nuint)c));
                a0 += lo * lo; a1 += hi * hi;
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var rf = Vector128.Create(rowFactor);
            Vector128<double> a0 = default, a1 = default;
            for (; c <= n - Vector128<float>.Count; c += Vector128<float>.Count)
            {
                var (lo, hi) = Vector128.Widen(rf * Vector128.LoadUnsafe(ref f, (nuint)c) * Vector128.LoadUnsafe(ref g, (nuint)c));
                a0 += lo * lo; a1 += hi * hi;
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; c < n; c++)
        {
            float u = rowFactor * colFactor[c] * gRow[c];
            s += (double)u * u;
        }
        return s;
    }

    /// <summary>The final update of one row (see the file header).</summary>
    /// <param name="gRow">[C] gradient row.</param>
    /// <param name="colFactor">[C] column factors.</param>
    /// <param name="rowFactor">The row's factor.</param>
    /// <param name="param">[C] values, updated in place.</param>
    /// <param name="expAvg">[C] first moment, updated in place; empty without β1.</param>
    /// <param name="k">The parameter's scalars.</param>
    public static void Apply(ReadOnlySpan<float> gRow, ReadOnlySpan<float> colFactor, float rowFactor, Span<float> param, Span<float> expAvg, in Coefficients k)
        => Apply(gRow, colFactor, rowFactor, param, expAvg, k, Simd.Level);

    /// <summary>The scalar twin of <see cref="Apply(ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float}, Span{float}, in Coefficients)"/>.</summary>
    public static void ApplyReference(ReadOnlySpan<float> gRow, ReadOnlySpan<float> colFactor, float rowFactor, Span<float> param, Span<float> expAvg, in Coefficients k)
    {
        CheckApply(gRow, colFactor, param, expAvg, k);
        for (int c = 0; c < gRow.Length; c++) ApplyOne(gRow, colFactor, rowFactor, param, expAvg, k, c);
    }

    internal static void Apply(ReadOnlySpan<float> gRow, ReadOnlySpan<float> colFactor, float rowFactor, Span<float> param, Span<float> expAvg, in Coefficients k, SimdLevel level)
    {
        CheckApply(gRow, colFactor, param, expAvg, k);
        int n = gRow.Length, c = 0;
        ref float g = ref MemoryMarshal.GetReference(gRow);
        ref float f = ref MemoryMarshal.GetReference(colFactor);
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float m = ref MemoryMarshal.GetReference(expAvg);
        bool mom = k.Momentum, wd = k.WeightDecay;
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var rf = Vector512.Create(rowFactor); var div = Vector512.Create(k.Divisor); var lr = Vector512.Create(k.Lr);
            var b1 = Vector512.Create(k.Beta1); var omb1 = Vector512.Create(k.OneMinusBeta1); var decay = Vector512.Create(k.Decay);
            for (; c <= n - Vector512<float>.Count; c += Vector512<float>.Count)
            {
                var u = rf * Vector512.LoadUnsafe(ref f, (nuint)c) * Vector512.LoadUnsafe(ref g, (nuint)c) / div * lr;
                if (mom) { u = Vector512.LoadUnsafe(ref m, (nuint)c) * b1 + omb1 * u; u.StoreUnsafe(ref m, (nuint)c); }
                var pi = Vector512.LoadUnsafe(ref p, (nuint)c);
                if (wd) pi += decay * pi;
                (pi - u).StoreUnsafe(ref p, (nuint)c);
            }
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var rf = Vector256.Create(rowFactor); var div = Vector256.Create(k.Divisor); var lr = Vector256.Create(k.Lr);
            var b1 = Vector256.Create(k.Beta1); var omb1 = Vector256.Create(k.OneMinusBeta1); var decay = Vector256.Create(k.Decay);
            for (; c <= n - Vector256<float>.Count; c += Vector256<float>.Count)
            {
                var u = rf * Vector256.LoadUnsafe(ref f, (nuint)c) * Vector256.LoadUnsafe(ref g, (nuint)c) / div * lr;
                if (mom) { u = Vector256.LoadUnsafe(ref m, (nuint)c) * b1 + omb1 * u; u.StoreUnsafe(ref m, (nuint)c); }
                var pi = Vector256.LoadUnsafe(ref p, (nuint)c);
                if (wd) pi += decay * pi;
                (pi - u).StoreUnsafe(ref p, (nuint)c);
            }
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var rf = Vector128.Create(rowFactor); var div = Vector128.Create(k.Divisor); var lr = Vector128.Create(k.Lr);
            var b1 = Vector128.Create(k.Beta1); var omb1 = Vector128.Create(k.OneMinusBeta1); var decay = Vector128.Create(k.Decay);
            for (; c <= n - Vector128<float>.Count; c += Vector128<float>.Count)
            {
                var u = rf * Vector128.LoadUnsafe(ref f, (nuint)c) * Vector128.LoadUnsafe(ref g, (nuint)c) / div * lr;
                if (mom) { u = Vector128.LoadUnsafe(ref m, (nuint)c) * b1 + omb1 * u; u.StoreUnsafe(ref m, (nuint)c); }
                var pi = Vector128.LoadUnsafe(ref p, (nuint)c);
                if (wd) pi += decay * pi;
                (pi - u).StoreUnsafe(ref p, (nuint)c);
            }
        }
        for (; c < n; c++) ApplyOne(gRow, colFactor, rowFactor, param, expAvg, k, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ApplyOne(ReadOnlySpan<float> g, ReadOnlySpan<float> f, float rowFactor, Span<float> param, Span<float> expAvg, in Coefficients k, int c)
    {
        float u = rowFactor * f[c] * g[c] / k.Divisor * k.Lr;
        if (k.Momentum) { u = expAvg[c] * k.Beta1 + k.OneMinusBeta1 * u; expAvg[c] = u; }
        float p = param[c];
        if (k.WeightDecay) p += k.Decay * p;
        param[c] = p - u;
    }

    private static void CheckApply(ReadOnlySpan<float> g, ReadOnlySpan<float> f, Span<float> p, Span<float> m, in Coefficients k)
    {
        CheckLength(g.Length, f.Length, "colFactor");
        CheckLength(g.Length, p.Length, "param");
        if (k.Momentum) CheckLength(g.Length, m.Length, "exp_avg");
    }

    private static void CheckLength(int expected, int actual, string what)
    {
        if (expected != actual)
            throw new ArgumentException($"Adafactor row kernel: {what} has {actual} elements but the gradient row has {expected}.");
    }
}
