// Shared pieces of the elementwise kernel tests: SIMD levels, guarded buffers, finite-difference checks.
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

internal static class ElementwiseTestKit
{
    public const int Pad = 16;
    public const float Sentinel = -7777.25f;

    public static TheoryData<SimdLevel> Levels => [SimdLevel.Scalar, SimdLevel.V128, SimdLevel.V256, SimdLevel.V512];

    /// <summary>Lengths that hit every vector tail (0..17, around 32/64 and a few larger odd ones).</summary>
    public static readonly int[] OddSizes = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 129, 257];

    /// <summary>An array of n values (copied from init, or zeros) with Pad sentinels on both sides.</summary>
    public static float[] Guarded(int n, ReadOnlySpan<float> init = default)
    {
        var a = new float[n + 2 * Pad];
        a.AsSpan().Fill(Sentinel);
        if (init.Length != 0) init.CopyTo(a.AsSpan(Pad, n));
        else a.AsSpan(Pad, n).Clear();
        return a;
    }

    public static Span<float> Mid(float[] a) => a.AsSpan(Pad, a.Length - 2 * Pad);

    public static void AssertGuards(float[] a, string what)
    {
        for (int i = 0; i < Pad; i++)
        {
            Assert.True(a[i] == Sentinel, $"{what}: guard before the buffer was overwritten at {i - Pad}");
            Assert.True(a[^(i + 1)] == Sentinel, $"{what}: guard after the buffer was overwritten at +{i}");
        }
    }

    public static double[] ToDouble(float[] a) => Array.ConvertAll(a, v => (double)v);

    public static float[] Uniform(int n, int seed, float scale = 1f) => TestData.Uniform(n, seed, scale);

    /// <summary>Central differences of a double loss compared with an analytic gradient.</summary>
    public static void CheckGradient(Func<double[], double> loss, double[] x, ReadOnlySpan<double> analytic, double eps, double rtol, double atol, string what)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + eps; double lp = loss(x);
            x[i] = keep - eps; double lm = loss(x);
            x[i] = keep;
            double fd = (lp - lm) / (2 * eps);
            double tol = atol + rtol * Math.Abs(fd);
            Assert.True(Math.Abs(fd - analytic[i]) <= tol, $"{what}[{i}]: analytic {analytic[i]} vs finite difference {fd}");
        }
    }

    /// <summary>Central differences in float (the fast path); the loss is still summed in double.</summary>
    public static void CheckGradient(Func<float[], double> loss, float[] x, ReadOnlySpan<float> analytic, float eps, double rtol, double atol, string what)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float keep = x[i];
            x[i] = keep + eps; double lp = loss(x);
            x[i] = keep - eps; double lm = loss(x);
            x[i] = keep;
            double fd = (lp - lm) / (2.0 * eps);
            double tol = atol + rtol * Math.Abs(fd);
            Assert.True(Math.Abs(fd - analytic[i]) <= tol, $"{what}[{i}]: analytic {analytic[i]} vs finite difference {fd}");
        }
    }

    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    public static void AssertBitwiseEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b, string what)
    {
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i]))
                Assert.Fail($"{what}[{i}]: {a[i]} != {b[i]}");   // formatted only on failure: callers pass big arrays
    }
}
