// Logit soft-capping (Gemma 2's attn_logit_softcapping and final_logit_softcapping), elementwise:
//   Forward   y = cap · tanh(x / cap)
//   Backward  dx += dy · (1 − (y / cap)²)      (the derivative written with the capped value y, which is what the
//                                              fused kernels still hold when they need it)
// The fused users call the pointer forms: Attention applies the cap to each score tile right after the q·k product
// (forward, backward and the decode row path), CrossEntropy to each logits row before its softmax (forward and
// gradient). tanh(z) = 1 − 2 / (1 + exp(2z)) with Elementwise.Exp's polynomial: exp saturates to 0 or +∞, giving −1
// and 1 exactly; the absolute error is a few float ulps of 1, so cap·tanh is within ~cap·2e-7 of the exact value.
// cap must be positive: a model without a cap never calls these (zero cost on the Llama path).
// Not here: -∞ inputs are mapped to −cap, so callers mask (−∞) after capping, never before.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Kernels;

/// <summary>Logit soft-capping y = cap·tanh(x/cap), forward and backward, with a double-precision scalar twin.</summary>
public static unsafe class SoftCap
{
    /// <summary>y = cap·tanh(x/cap) elementwise.</summary>
    /// <param name="x">Input [n].</param>
    /// <param name="y">Output [n] (may be x itself).</param>
    /// <param name="cap">The cap, &gt; 0.</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, float cap)
    {
        CheckCap(cap);
        Elementwise.CheckSame(x.Length, "x", y.Length, "y");
        fixed (float* px = x, py = y) Apply(px, py, x.Length, cap, Simd.Level);
    }

    /// <summary>dx += dy·(1 − (y/cap)²), the gradient of <see cref="Forward"/> given its output y.</summary>
    /// <param name="dy">Output gradient [n].</param>
    /// <param name="y">The forward's output [n].</param>
    /// <param name="dx">Input gradient [n], added into.</param>
    /// <param name="cap">The cap used in the forward.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx, float cap)
    {
        CheckCap(cap);
        Elementwise.CheckSame(y.Length, "y", dy.Length, "dy");
        Elementwise.CheckSame(y.Length, "y", dx.Length, "dx");
        float inv = 1f / cap;
        for (int i = 0; i < y.Length; i++)
        {
            float t = y[i] * inv;
            dx[i] += dy[i] * Math.Max(0f, 1f - t * t);
        }
    }

    private static void CheckCap(float cap)
    {
        if (!(cap > 0) || float.IsInfinity(cap))
            throw new ArgumentOutOfRangeException(nameof(cap), cap, "The soft-cap must be a positive finite number (a model without a cap does not call SoftCap).");
    }

    /// <summary>cap·tanh(x/cap) of one value, by the same formula as the vector paths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Apply(float x, float cap)
    {
        float z = x * (2f / cap);
        return cap - 2f * cap / (1f + Elementwise.Exp(z));
    }

    /// <summary>y[i] = cap·tanh(x[i]/cap) for i &lt; n (y may be x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Apply(float* x, float* y, int n, float cap, SimdLevel level)
    {
        int i = 0;
        float twoOverCap = 2f / cap, twoCap = 2f * cap;
        if (level >= SimdLevel.V512)
        {
            Vector512<float> s = Vector512.Create(twoOverCap), c = Vector512.Create(cap), c2 = Vector512.Create(twoCap);
            for (; i + 16 <= n; i += 16)
                Vector512.Store(c - c2 / (Vector512<float>.One + Elementwise.Exp(Vector512.Load(x + i) * s)), y + i);
        }
        if (level >= SimdLevel.V256)
        {
            Vector256<float> s = Vector256.Create(twoOverCap), c = Vector256.Create(cap), c2 = Vector256.Create(twoCap);
            for (; i + 8 <= n; i += 8)
                Vector256.Store(c - c2 / (Vector256<float>.One + Elementwise.Exp(Vector256.Load(x + i) * s)), y + i);
        }
        if (level >= SimdLevel.V128)
        {
            Vector128<float> s = Vector128.Create(twoOverCap), c = Vector128.Create(cap), c2 = Vector128.Create(twoCap);
            for (; i + 4 <= n; i += 4)
                Vector128.Store(c - c2 / (Vector128<float>.One + Elementwise.Exp(Vector128.Load(x + i) * s)), y + i);
        }
        for (; i < n; i++) y[i] = cap - twoCap / (1f + Elementwise.Exp(x[i] * twoOverCap));
    }

    /// <summary>Σ_i exp(z[i] − shift) in double (shift ≥ max z), z unchanged: Softmax.ExpSum without its store (the
    /// capped row must survive for the gradient pass).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double ExpSum(float* z, float shift, int n, SimdLevel level)
    {
        int i = 0;
        double s = 0;
        if (level >= SimdLevel.V512 && n >= 16)
        {
            var sv = Vector512.Create(shift);
            Vector512<double> a = default;
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Elementwise.ExpNonPositive(Vector512.Load(z + i) - sv));
                a += lo + hi;
            }
            s = Vector512.Sum(a);
        }
        else if (level >= SimdLevel.V256 && n >= 8)
        {
            var sv = Vector256.Create(shift);
            Vector256<double> a = default;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Elementwise.ExpNonPositive(Vector256.Load(z + i) - sv));
                a += lo + hi;
            }
            s = Vector256.Sum(a);
        }
        else if (level >= SimdLevel.V128 && n >= 4)
        {
            var sv = Vector128.Create(shift);
            Vector128<double> a = default;
            for (; i + 4 <= n; i += 4)
            {
                var (lo, hi) = Vector128.Widen(Elementwise.ExpNonPositive(Vector128.Load(z + i) - sv));
                a += lo + hi;
            }
            s = Vector128.Sum(a);
        }
        for (; i < n; i++) s += Elementwise.ExpNonPositive(z[i] - shift);
        return s;
    }

    /// <summary>
    /// The cross-entropy gradient through the cap, in place over a capped row z:
    /// z[i] = k·exp(z[i] − shift)·(1 − (z[i]/cap)²) (k = gradScale / Σ exp; the target's −gradScale·(1 − (z_t/cap)²)
    /// is the caller's).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SoftmaxGrad(float* z, float shift, float k, float cap, int n, SimdLevel level)
    {
        int i = 0;
        float inv = 1f / cap;
        if (level >= SimdLevel.V512)
        {
            Vector512<float> sv = Vector512.Create(shift), kv = Vector512.Create(k), iv = Vector512.Create(inv);
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(z + i);
                var t = v * iv;
                Vector512.Store(kv * Elementwise.ExpNonPositive(v - sv) * Vector512.MaxNative(Vector512<float>.One - t * t, Vector512<float>.Zero), z + i);
            }
        }
        if (level >= SimdLevel.V256)
        {
            Vector256<float> sv = Vector256.Create(shift), kv = Vector256.Create(k), iv = Vector256.Create(inv);
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(z + i);
                var t = v * iv;
                Vector256.Store(kv * Elementwise.ExpNonPositive(v - sv) * Vector256.MaxNative(Vector256<float>.One - t * t, Vector256<float>.Zero), z + i);
            }
        }
        if (level >= SimdLevel.V128)
        {
            Vector128<float> sv = Vector128.Create(shift), kv = Vector128.Create(k), iv = Vector128.Create(inv);
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(z + i);
                var t = v * iv;
                Vector128.Store(kv * Elementwise.ExpNonPositive(v - sv) * Vector128.MaxNative(Vector128<float>.One - t * t, Vector128<float>.Zero), z + i);
            }
        }
        for (; i < n; i++)
        {
            float t = z[i] * inv;
            z[i] = k * Elementwise.ExpNonPositive(z[i] - shift) * Math.Max(0f, 1f - t * t);
        }
    }

    /// <summary>The derivative factor 1 − (y/cap)² of a capped value y (clamped at 0, so a masked −∞ gives 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float GradFactor(float y, float cap)
    {
        float t = y / cap;
        return Math.Max(0f, 1f - t * t);
    }

    /// <summary>Scalar twins in double (Math.Tanh), for tests.</summary>
    public static class Reference
    {
        /// <summary>y = cap·tanh(x/cap) in double, rounded to float.</summary>
        public static void Forward(ReadOnlySpan<float> x, Span<float> y, float cap)
        {
            Elementwise.CheckSame(x.Length, "x", y.Length, "y");
            for (int i = 0; i < x.Length; i++) y[i] = (float)(cap * Math.Tanh((double)x[i] / cap));
        }

        /// <summary>dx += dy·(1 − tanh²(x/cap)), from the input x (not the capped output).</summary>
        public static void BackwardFromInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, float cap)
        {
            for (int i = 0; i < x.Length; i++)
            {
                double t = Math.Tanh((double)x[i] / cap);
                dx[i] = (float)(dx[i] + dy[i] * (1 - t * t));
            }
        }
    }
}
