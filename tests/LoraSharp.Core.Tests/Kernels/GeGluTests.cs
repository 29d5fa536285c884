// GeGLU (Gemma MLP gate, gelu tanh approximation): the same checks as SwiGLU's: every SIMD width against the
// double scalar twin at odd sizes, finite differences in double and float, thread-count independence.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class GeGluTests
{
    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ForwardAndBackward_MatchReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        foreach (int n in OddSizes)
        {
            var g = Uniform(n, n, 10f);
            var u = Uniform(n, n + 1, 3f);
            var h = Guarded(n);
            GeGlu.Forward(g, u, Mid(h));
            var hRef = new float[n];
            GeGlu.Reference.Forward<float>(g, u, hRef);
            TestData.AssertClose(Mid(h), hRef, 1e-6, 2e-6, $"h n={n}");
            AssertGuards(h, "h");

            var dh = Uniform(n, n + 2);
            var gInit = Uniform(n, n + 3);
            var uInit = Uniform(n, n + 4);
            var dg = Guarded(n, gInit);
            var du = Guarded(n, uInit);
            var dgRef = (float[])gInit.Clone();
            var duRef = (float[])uInit.Clone();
            GeGlu.Backward(dh, g, u, Mid(dg), Mid(du));
            GeGlu.Reference.Backward<float>(dh, g, u, dgRef, duRef);
            TestData.AssertClose(Mid(dg), dgRef, 2e-6, 2e-6, $"dGate n={n}");
            TestData.AssertClose(Mid(du), duRef, 2e-6, 2e-6, $"dUp n={n}");
            AssertGuards(dg, "dGate");
            AssertGuards(du, "dUp");
        }
    }

    [Fact]
    public void Backward_Reference_MatchesFiniteDifferences_InDouble()
    {
        const int n = 30;
        var g = ToDouble(Uniform(n, 1, 6f));
        var u = ToDouble(Uniform(n, 2, 2f));
        var R = ToDouble(Uniform(n, 3));
        var dg = new double[n];
        var du = new double[n];
        GeGlu.Reference.Backward<double>(R, g, u, dg, du);
        double Loss(double[] gg, double[] uu) { var h = new double[n]; GeGlu.Reference.Forward<double>(gg, uu, h); return Dot(h, R); }
        CheckGradient(gg => Loss(gg, u), g, dg, 1e-6, 1e-7, 1e-9, "dGate");
        CheckGradient(uu => Loss(g, uu), u, du, 1e-6, 1e-7, 1e-9, "dUp");
    }

    [Fact]
    public void Backward_Fast_MatchesFiniteDifferences_InFloat()
    {
        const int n = 37;
        var g = Uniform(n, 4, 5f);
        var u = Uniform(n, 5, 2f);
        var R = Uniform(n, 6);
        var dg = new float[n];
        var du = new float[n];
        GeGlu.Backward(R, g, u, dg, du);
        double Loss(float[] gg, float[] uu) { var h = new float[n]; GeGlu.Forward(gg, uu, h); return Dot(h, R); }
        CheckGradient(gg => Loss(gg, u), g, dg, 1e-2f, 1e-2, 2e-4, "dGate");
        CheckGradient(uu => Loss(g, uu), u, du, 1e-2f, 1e-2, 2e-4, "dUp");
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        int n = 99_999;
        var g = Uniform(n, 7, 8f);
        var u = Uniform(n, 8);
        var dh = Uniform(n, 9);
        float[] h1 = new float[n], h2 = new float[n], dg1 = new float[n], dg2 = new float[n], du1 = new float[n], du2 = new float[n];
        using (Threads.Limit(1)) { GeGlu.Forward(g, u, h1); GeGlu.Backward(dh, g, u, dg1, du1); }
        using (Threads.Limit(2)) { GeGlu.Forward(g, u, h2); GeGlu.Backward(dh, g, u, dg2, du2); }
        AssertBitwiseEqual(h1, h2, "h");
        AssertBitwiseEqual(dg1, dg2, "dGate");
        AssertBitwiseEqual(du1, du2, "dUp");
    }

    [Fact]
    public void MismatchedLengths_Throw()
    {
        var e = Assert.Throws<ArgumentException>(() => GeGlu.Forward(new float[6], new float[7], new float[6]));
        Assert.Contains("up", e.Message);
    }
}
