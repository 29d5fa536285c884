// Sophia-G: fast vs scalar-reference kernels at every SIMD level over sizes 0..257 (bit for bit, guard values
// around every output), the first step before any Hessian (lr·sign(m)), the clip, checkpoint round trips and the
// factory. The float64 reference of several steps is in Training.Tests (SophiaReferenceTests).
using LoraSharp.Core.Optim;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Optim;

public class SophiaTests
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
    public void Update_FastEqualsReference_AllSizes(SimdLevel level)
    {
        foreach (var c in new[] { SophiaKernel.Coefficients.For(1e-3, 0.965, 0.04, 1e-15, 0.1), SophiaKernel.Coefficients.For(3e-4, 0.9, 2.0, 1e-3, 0) })
            for (int n = 0; n <= 257; n++)
            {
                var g = Padded(n, n, 0.1f);
                float[] p1 = Padded(n, n + 1), m1 = Padded(n, n + 2, 0.05f), h = Padded(n, n + 3, 0.5f);
                for (int i = 0; i < n; i++) h[Pad + i] = i % 5 == 0 ? 0f : Math.Abs(h[Pad + i]);   // zeros: the ε floor
                if (n > 3) { g[Pad + 3] = float.NaN; }                                              // NaN propagates alike
                float[] p2 = (float[])p1.Clone(), m2 = (float[])m1.Clone();
                using (Simd.Force(level)) SophiaKernel.Update(Inner(g, n), Inner(p1, n), Inner(m1, n), Inner(h, n), c);
                SophiaKernel.UpdateReference(Inner(g, n), Inner(p2, n), Inner(m2, n), Inner(h, n), c);
                AssertSame(p1, p2, n, $"Sophia param at {level}");
                AssertSame(m1, m2, n, $"Sophia exp_avg at {level}");
            }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void UpdateHessian_FastEqualsReference_AllSizes(SimdLevel level)
    {
        var c = SophiaKernel.HessianCoefficients.For(0.99, 4096);
        for (int n = 0; n <= 257; n++)
        {
            var g = Padded(n, n + 7, 0.02f);
            float[] h1 = Padded(n, n + 8, 0.3f);
            for (int i = 0; i < n; i++) h1[Pad + i] = Math.Abs(h1[Pad + i]);
            float[] h2 = (float[])h1.Clone();
            using (Simd.Force(level)) SophiaKernel.UpdateHessian(Inner(g, n), Inner(h1, n), c);
            SophiaKernel.UpdateHessianReference(Inner(g, n), Inner(h2, n), c);
            AssertSame(h1, h2, n, $"Sophia hessian at {level}");
        }
    }

    [Fact]
    public void FirstStep_WithoutHessian_IsSignOfMomentumTimesLr()
    {
        using var set = ParamSet.Random(3, [5, 7]);
        var before = set.Values();
        var opt = new Sophia(beta1: 0.9, weightDecay: 0);
        opt.Step(set.Params, 1e-2);
        for (int i = 0; i < set.Params.Count; i++)
        {
            var p = set.Params[i];
            var g = p.Grad.Floats;
            for (int j = 0; j < p.Length; j++)
                Assert.Equal(before[i][j] - 1e-2f * MathF.Sign(g[j]), p.Value.Floats[j], 6);
        }
    }

    [Fact]
    public void LargeHessian_GivesTheUnclippedNewtonStep()
    {
        using var set = new ParamSet();
        set.Add("w", [1f, 2f], [0.5f, -0.25f], 2);
        var opt = new Sophia(beta1: 0, beta2: 0, gamma: 0.5, weightDecay: 0);
        // ĝ = (1, 2) on B = 4 tokens: h = 4·ĝ² = (4, 16); γ·h = (2, 8).
        set.Params[0].Grad.Floats[0] = 1f; set.Params[0].Grad.Floats[1] = 2f;
        opt.UpdateHessian(set.Params, 4);
        set.Params[0].Grad.Floats[0] = 0.5f; set.Params[0].Grad.Floats[1] = -0.25f;
        opt.Step(set.Params, 0.1);
        Assert.Equal(1f - 0.1f * 0.25f, set.Params[0].Value.Floats[0], 6);     // m/(γh) = 0.5/2
        Assert.Equal(2f + 0.1f * 0.03125f, set.Params[0].Value.Floats[1], 6);  // −0.25/8
        Assert.Equal(1, opt.HessianUpdates);
        Assert.Equal(1, opt.StepCount);   // the Hessian update is not a step
    }

    [Fact]
    public void ExportImport_ContinuesBitIdentically()
    {
        using var a = ParamSet.Random(11, [33], [4, 17]);
        using var b = ParamSet.Random(11, [33], [4, 17]);
        var oa = OptimizerFactory.Create("sophia", new OptimizerOptions { WeightDecay = 0.1 });
        for (int s = 0; s < 3; s++) { a.NewGrads(s); oa.Step(a.Params, 1e-3); if (s == 1) ((Sophia)oa).UpdateHessian(a.Params, 100); }
        var state = oa.ExportState();
        Assert.Contains(state.Buffers.Keys, k => k.EndsWith(".hessian", StringComparison.Ordinal));
        var ob = OptimizerFactory.Create("sophiag", new OptimizerOptions { WeightDecay = 0.1 });
        Assert.IsType<Sophia>(ob);
        for (int i = 0; i < b.Params.Count; i++) a.Params[i].Value.Floats.CopyTo(b.Params[i].Value.Floats);
        ob.ImportState(state);
        for (int s = 3; s < 6; s++)
        {
            a.NewGrads(s); b.NewGrads(s);
            oa.Step(a.Params, 1e-3); ob.Step(b.Params, 1e-3);
            ((Sophia)oa).UpdateHessian(a.Params, 50); ((Sophia)ob).UpdateHessian(b.Params, 50);
        }
        var va = a.Values(); var vb = b.Values();
        for (int i = 0; i < va.Length; i++) Assert.Equal(va[i], vb[i]);
    }

    [Fact]
    public void Constructor_RejectsBadHyperparameters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sophia(beta1: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sophia(beta2: -0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sophia(gamma: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sophia(eps: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sophia(weightDecay: double.NaN));
    }
}
