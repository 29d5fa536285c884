// Fast vs scalar-reference optimizer kernels at every SIMD level over sizes 0..257 (every tail), bit for bit,
// with guard values around every output; and 1-thread vs N-thread optimizer steps.
using LoraSharp.Core.Optim;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Optim;

public class KernelSimdTests
{
    public static TheoryData<SimdLevel> Levels => new() { SimdLevel.Scalar, SimdLevel.V128, SimdLevel.V256, SimdLevel.V512 };

    private const int Pad = 8;
    private const float Guard = 12345.678f;

    private static float[] Padded(int n, int seed, float scale = 1f)
    {
        var a = new float[n + 2 * Pad];
        Array.Fill(a, Guard);
        TestData.Uniform(n, seed, scale).CopyTo(a, Pad);
        return a;
    }

    private static Span<float> Inner(float[] a, int n) => a.AsSpan(Pad, n);

    private static void AssertSame(float[] fast, float[] reference, int n, string what)
    {
        for (int i = 0; i < Pad; i++)
        {
            Assert.Equal(Guard, fast[i]);
            Assert.Equal(Guard, fast[Pad + n + i]);
        }
        for (int i = 0; i < n; i++)
            if (BitConverter.SingleToInt32Bits(fast[Pad + i]) != BitConverter.SingleToInt32Bits(reference[Pad + i]))
                Assert.Fail($"{what}, n={n}: element {i} is {fast[Pad + i]} but the scalar reference gives {reference[Pad + i]}");
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Adam_FastEqualsReference_AllSizes(SimdLevel level)
    {
        foreach (var (decoupled, l2) in new[] { (0.01, 0.0), (0.0, 0.05) })
        {
            var c = AdamKernel.Coefficients.For(1e-3, 0.9, 0.999, 1e-8, decoupled, l2, step: 3);
            for (int n = 0; n <= 257; n++)
            {
                var g = Padded(n, n, 0.1f);
                float[] p1 = Padded(n, n + 1), m1 = Padded(n, n + 2, 0.01f), v1 = Padded(n, n + 3, 0.001f);
                for (int i = 0; i < n; i++) v1[Pad + i] = Math.Abs(v1[Pad + i]);
                float[] p2 = (float[])p1.Clone(), m2 = (float[])m1.Clone(), v2 = (float[])v1.Clone();
                using (Simd.Force(level)) AdamKernel.Update(Inner(g, n), Inner(p1, n), Inner(m1, n), Inner(v1, n), c);
                AdamKernel.UpdateReference(Inner(g, n), Inner(p2, n), Inner(m2, n), Inner(v2, n), c);
                AssertSame(p1, p2, n, $"Adam param at {level}");
                AssertSame(m1, m2, n, $"Adam exp_avg at {level}");
                AssertSame(v1, v2, n, $"Adam exp_avg_sq at {level}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Sgd_FastEqualsReference_AllSizes(SimdLevel level)
    {
        SgdKernel.Coefficients[] cases =
        [
            SgdKernel.Coefficients.For(0.1, 0, 0, 0, false, false),
            SgdKernel.Coefficients.For(0.1, 0.9, 0.1, 0.01, false, false),
            SgdKernel.Coefficients.For(0.1, 0.9, 0, 0.01, true, false),
            SgdKernel.Coefficients.For(0.1, 0.9, 0, 0, true, true),
        ];
        foreach (var c in cases)
            for (int n = 0; n <= 257; n++)
            {
                var g = Padded(n, n, 0.1f);
                float[] p1 = Padded(n, n + 1), b1 = Padded(n, n + 2);
                float[] p2 = (float[])p1.Clone(), b2 = (float[])b1.Clone();
                using (Simd.Force(level)) SgdKernel.Update(Inner(g, n), Inner(p1, n), Inner(b1, n), c);
                SgdKernel.UpdateReference(Inner(g, n), Inner(p2, n), Inner(b2, n), c);
                AssertSame(p1, p2, n, $"SGD param at {level}");
                AssertSame(b1, b2, n, $"SGD momentum_buffer at {level}");
            }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Lion_FastEqualsReference_AllSizes(SimdLevel level)
    {
        var c = LionKernel.Coefficients.For(1e-4, 0.9, 0.99, 0.1);
        for (int n = 0; n <= 257; n++)
        {
            var g = Padded(n, n, 0.1f);
            float[] p1 = Padded(n, n + 1), m1 = Padded(n, n + 2, 0.1f);
            if (n > 3) { g[Pad + 1] = 0; m1[Pad + 1] = 0; g[Pad + 2] = float.NaN; }   // sign(0) = 0, sign(NaN) = NaN
            float[] p2 = (float[])p1.Clone(), m2 = (float[])m1.Clone();
            using (Simd.Force(level)) LionKernel.Update(Inner(g, n), Inner(p1, n), Inner(m1, n), c);
            LionKernel.UpdateReference(Inner(g, n), Inner(p2, n), Inner(m2, n), c);
            AssertSame(p1, p2, n, $"Lion param at {level}");
            AssertSame(m1, m2, n, $"Lion exp_avg at {level}");
            if (n > 3)
            {
                Assert.Equal(p2[Pad + 1], (float)(Inner(Padded(n, n + 1), n)[1] * c.Decay));
                Assert.True(float.IsNaN(p1[Pad + 2]));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Adafactor_RowKernels_FastMatchReference_AllSizes(SimdLevel level)
    {
        AdafactorKernel.Coefficients[] cases =
        [
            new() { Divisor = 1.5f, Lr = 1e-2f, Decay = -1e-3f, WeightDecay = true, Momentum = true, Beta1 = 0.9f, OneMinusBeta1 = 0.1f },
            new() { Divisor = 1f, Lr = 3e-3f },
        ];
        for (int n = 0; n <= 257; n++)
        {
            var g = Padded(n, n, 0.1f);
            var f = TestData.Uniform(n, n + 5).Select(x => 0.5f + Math.Abs(x)).ToArray();
            // AccumulateSquares: column sums bit for bit, the returned row sum within double rounding.
            double[] cs1 = TestData.Uniform(n, n + 6).Select(x => (double)x).ToArray(), cs2 = (double[])cs1.Clone();
            double s1, s2 = AdafactorKernel.AccumulateSquaresReference(Inner(g, n), 1e-30f, cs2);
            using (Simd.Force(level)) s1 = AdafactorKernel.AccumulateSquares(Inner(g, n), 1e-30f, cs1);
            Assert.Equal(cs2, cs1);
            Assert.True(Math.Abs(s1 - s2) <= 1e-14 * Math.Max(1, s2), $"AccumulateSquares n={n} at {level}: {s1} vs {s2}");
            double q1, q2 = AdafactorKernel.PreconditionedSquaresReference(Inner(g, n), f, 1.25f);
            using (Simd.Force(level)) q1 = AdafactorKernel.PreconditionedSquares(Inner(g, n), f, 1.25f);
            Assert.True(Math.Abs(q1 - q2) <= 1e-14 * Math.Max(1, q2), $"PreconditionedSquares n={n} at {level}: {q1} vs {q2}");
            foreach (var k in cases)
            {
                float[] p1 = Padded(n, n + 1), m1 = Padded(n, n + 2, 0.01f);
                float[] p2 = (float[])p1.Clone(), m2 = (float[])m1.Clone();
                using (Simd.Force(level)) AdafactorKernel.Apply(Inner(g, n), f, 1.25f, Inner(p1, n), Inner(m1, n), k);
                AdafactorKernel.ApplyReference(Inner(g, n), f, 1.25f, Inner(p2, n), Inner(m2, n), k);
                AssertSame(p1, p2, n, $"Adafactor param at {level}");
                AssertSame(m1, m2, n, $"Adafactor exp_avg at {level}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void SumOfSquares_FastMatchesReference_AllSizes(SimdLevel level)
    {
        for (int n = 0; n <= 257; n++)
        {
            var x = TestData.Uniform(n, n);
            double reference = GradientClipping.SumOfSquaresReference(x);
            double fast;
            using (Simd.Force(level)) fast = GradientClipping.SumOfSquares(x);
            Assert.True(Math.Abs(fast - reference) <= 1e-13 * Math.Max(1, reference), $"n={n} at {level}: {fast} vs {reference}");
        }
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("adam")]
    [InlineData("sgd")]
    [InlineData("lion")]
    public void Step_OneThreadAndAllThreads_GiveIdenticalBits(string name)
    {
        // 1_048_583 + 70_007 elements: above the parallel threshold, odd sizes so parts split inside parameters.
        int[][] shapes = [[1_048_583], [7, 10_001], [3]];
        var options = new OptimizerOptions { WeightDecay = 0.01, Momentum = 0.9 };
        using var a = ParamSet.Random(2, shapes);
        using var b = ParamSet.Random(2, shapes);
        var oa = OptimizerFactory.Create(name, options);
        var ob = OptimizerFactory.Create(name, options);
        for (int t = 1; t <= 2; t++)
        {
            a.NewGrads(t); b.NewGrads(t);
            using (Threads.Limit(1)) oa.Step(a.Params, 1e-3);
            ob.Step(b.Params, 1e-3);
        }
        for (int i = 0; i < shapes.Length; i++)
            Assert.True(a.Params[i].Value.Floats.SequenceEqual(b.Params[i].Value.Floats), $"{name}: parameter {i} differs between 1 and {Threads.Hardware} threads");
        using var fresh = ParamSet.Random(2, shapes);
        Assert.False(a.Params[0].Value.Floats.SequenceEqual(fresh.Params[0].Value.Floats), "the step changed nothing");
    }
}
