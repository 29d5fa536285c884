// SiLU (swish) activation, elementwise on any shape:
//   Forward   y = x * sigmoid(x) = x / (1 + exp(-x))
//   Backward  dx += dy * s * (1 + x * (1 - s)),  s = sigmoid(x)
// exp is Elementwise.Exp (float polynomial, <= 3 ulp); the reference uses double Math.Exp.
// Split over threads in 16-aligned chunks; results do not depend on the thread count.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>SiLU activation, forward and backward.</summary>
public static unsafe class Silu
{
    /// <summary>y = x * sigmoid(x).</summary>
    /// <param name="x">Input, any shape.</param>
    /// <param name="y">Output, same length as x (may alias x).</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        Elementwise.CheckSame(x.Length, "x", y.Length, "y");
        if (x.Length == 0) return;
        fixed (float* px = x, py = y)
        {
            var work = new Work { X = px, Y = py, Length = x.Length, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts(x.Length, int.MaxValue));
        }
    }

    /// <summary>dx += dy * silu'(x).</summary>
    /// <param name="dy">Output gradient.</param>
    /// <param name="x">Forward input.</param>
    /// <param name="dx">Input gradient, added into.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        Elementwise.CheckSame(x.Length, "x", dy.Length, "dy");
        Elementwise.CheckSame(x.Length, "x", dx.Length, "dx");
        if (x.Length == 0) return;
        fixed (float* pdy = dy, px = x, pdx = dx)
        {
            var work = new Work { Dy = pdy, X = px, Y = pdx, Length = x.Length, Level = Simd.Level, Backward = true };
            Threads.Run(ref work, Elementwise.Parts(x.Length, int.MaxValue));
        }
    }

    private struct Work : IParallelWork
    {
        public float* X, Y, Dy;
        public int Length;
        public SimdLevel Level;
        public bool Backward;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (s, e) = Threads.SplitAligned(Length, 16, part, parts);
            if (Backward) BackwardRange(Dy + s, X + s, Y + s, e - s, Level);
            else ForwardRange(X + s, Y + s, e - s, Level);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRange(float* x, float* y, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i);
                Vector512.Store(v / (Vector512<float>.One + Elementwise.Exp(-v)), y + i);
            }
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                Vector256.Store(v / (Vector256<float>.One + Elementwise.Exp(-v)), y + i);
            }
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(x + i);
                Vector128.Store(v / (Vector128<float>.One + Elementwise.Exp(-v)), y + i);
            }
        for (; i < n; i++) y[i] = x[i] / (1f + Elementwise.Exp(-x[i]));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRange(float* dy, float* x, float* dx, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i);
                var s = Vector512<float>.One / (Vector512<float>.One + Elementwise.Exp(-v));
                var g = s * (Vector512<float>.One + v * (Vector512<float>.One - s));
                Vector512.Store(Vector512.Load(dx + i) + Vector512.Load(dy + i) * g, dx + i);
            }
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                var s = Vector256<float>.One / (Vector256<float>.One + Elementwise.Exp(-v));
                var g = s * (Vector256<float>.One + v * (Vector256<float>.One - s));
                Vector256.Store(Vector256.Load(dx + i) + Vector256.Load(dy + i) * g, dx + i);
            }
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(x + i);
                var s = Vector128<float>.One / (Vector128<float>.One + Elementwise.Exp(-v));
                var g = s * (Vector128<float>.One + v * (Vector128<float>.One - s));
                Vector128.Store(Vector128.Load(dx + i) + Vector128.Load(dy + i) * g, dx + i);
            }
        for (; i < n; i++) dx[i] += dy[i] * Derivative(x[i]);
    }

    /// <summary>silu'(x) = s (1 + x (1 - s)) with the fast exp (used by tails here and in SwiGLU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Derivative(float x)
    {
        float s = 1f / (1f + Elementwise.Exp(-x));
        return s * (1f + x * (1f - s));
    }

    /// <summary>Plain scalar twins (generic so tests can run them in double).</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="Silu.Forward"/>.</summary>
        public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
        {
            Elementwise.CheckSame(x.Length, "x", y.Length, "y");
            for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(Value(double.CreateTruncating(x[i])));
        }

        /// <summary>Scalar <see cref="Silu.Backward"/>.</summary>
        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
        {
            Elementwise.CheckSame(x.Length, "x", dy.Length, "dy");
            Elementwise.CheckSame(x.Length, "x", dx.Length, "dx");
            for (int i = 0; i < x.Length; i++)
                dx[i] = T.CreateTruncating(double.CreateTruncating(dx[i]) + double.CreateTruncating(dy[i]) * Slope(double.CreateTruncating(x[i])));
        }

        internal static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));

        internal static double Value(double x) => x * Sigmoid(x);

        internal static double Slope(double x)
        {
            double s = Sigmoid(x);
            return s * (1 + x * (1 - s));
        }
    }
}
