using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class RmsNormTests
{
    private const float Eps = 1e-5f;

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void Forward_MatchesReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        const int N = 3;
        foreach (int C in OddSizes)
        {
            if (C == 0) continue;
            var x = Uniform(N * C, C, 3f);
            var w = Uniform(C, C + 1000);
            var o = Guarded(N * C);
            var r = Guarded(N);
            RmsNorm.Forward(x, w, Mid(o), Mid(r), N, C, Eps);
            var oRef = new float[N * C];
            var rRef = new float[N];
            RmsNorm.Reference.Forward<float>(x, w, oRef, rRef, N, C, Eps);
            TestData.AssertClose(Mid(o), oRef, 1e-6, 1e-6, $"output C={C}");
            TestData.AssertClose(Mid(r), rRef, 0, 1e-6, $"rstd C={C}");
            AssertGuards(o, "output");
            AssertGuards(r, "rstd");
        }
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void Backward_AddsAndMatchesReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        const int N = 5;
        foreach (int C in OddSizes)
        {
            if (C == 0) continue;
            var x = Uniform(N * C, C, 2f);
            var w = Uniform(C, C + 1);
            var dy = Uniform(N * C, C + 2);
            var rstd = new float[N];
            RmsNorm.Reference.Forward<float>(x, w, new float[N * C], rstd, N, C, Eps);
            var dxInit = Uniform(N * C, C + 3);
            var dwInit = Uniform(C, C + 4);
            var dx = Guarded(N * C, dxInit);
            var dw = Guarded(C, dwInit);
            RmsNorm.Backward(dy, x, w, rstd, Mid(dx), Mid(dw), N, C);
            var dxRef = (float[])dxInit.Clone();
            var dwRef = (float[])dwInit.Clone();
            RmsNorm.Reference.Backward<float>(dy, x, w, rstd, dxRef, dwRef, N, C);
            TestData.AssertClose(Mid(dx), dxRef, 2e-6, 1e-5, $"dx C={C}");
            TestData.AssertClose(Mid(dw), dwRef, 2e-6, 1e-5, $"dWeight C={C}");
            AssertGuards(dx, "dx");
            AssertGuards(dw, "dWeight");
        }
    }

    [Fact]
    public void Backward_EmptyWeightGrad_SkipsIt()
    {
        const int N = 2, C = 9;
        var x = Uniform(N * C, 1);
        var w = Uniform(C, 2);
        var dy = Uniform(N * C, 3);
        var rstd = new float[N];
        RmsNorm.Forward(x, w, new float[N * C], rstd, N, C, Eps);
        var dx = new float[N * C];
        var dxFull = new float[N * C];
        RmsNorm.Backward(dy, x, w, rstd, dx, Span<float>.Empty, N, C);
        RmsNorm.Backward(dy, x, w, rstd, dxFull, new float[C], N, C);
        Assert.Equal(dxFull, dx);
    }

    [Fact]
    public void Backward_Reference_MatchesFiniteDifferences_InDouble()
    {
        const int N = 3, C = 7;
        var x = ToDouble(Uniform(N * C, 11));
        var w = ToDouble(Uniform(C, 12));
        var R = ToDouble(Uniform(N * C, 13));
        double Loss(double[] xx, double[] ww)
        {
            var o = new double[N * C];
            RmsNorm.Reference.Forward<double>(xx, ww, o, new double[N], N, C, 1e-5);
            return Dot(o, R);
        }
        var rstd = new double[N];
        RmsNorm.Reference.Forward<double>(x, w, new double[N * C], rstd, N, C, 1e-5);
        var dx = new double[N * C];
        var dw = new double[C];
        RmsNorm.Reference.Backward<double>(R, x, w, rstd, dx, dw, N, C);
        CheckGradient(xx => Loss(xx, w), x, dx, 1e-6, 1e-7, 1e-9, "dx");
        CheckGradient(ww => Loss(x, ww), w, dw, 1e-6, 1e-7, 1e-9, "dWeight");
    }

    [Fact]
    public void Backward_Fast_MatchesFiniteDifferences_InFloat()
    {
        const int N = 2, C = 37;
        var x = Uniform(N * C, 21);
        var w = Uniform(C, 22);
        var R = Uniform(N * C, 23);
        double Loss(float[] xx, float[] ww)
        {
            var o = new float[N * C];
            RmsNorm.Forward(xx, ww, o, new float[N], N, C, Eps);
            return Dot(o, R);
        }
        var rstd = new float[N];
        RmsNorm.Forward(x, w, new float[N * C], rstd, N, C, Eps);
        var dx = new float[N * C];
        var dw = new float[C];
        RmsNorm.Backward(R, x, w, rstd, dx, dw, N, C);
        CheckGradient(xx => Loss(xx, w), x, dx, 1e-2f, 2e-2, 2e-3, "dx");
        CheckGradient(ww => Loss(x, ww), w, dw, 1e-2f, 2e-2, 2e-3, "dWeight");
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        const int N = 67, C = 1031;   // enough work for two parts
        var x = Uniform(N * C, 31);
        var w = Uniform(C, 32);
        var dy = Uniform(N * C, 33);
        float[] o1 = new float[N * C], r1 = new float[N], dx1 = new float[N * C], dw1 = new float[C];
        float[] o2 = new float[N * C], r2 = new float[N], dx2 = new float[N * C], dw2 = new float[C];
        using (Threads.Limit(1))
        {
            RmsNorm.Forward(x, w, o1, r1, N, C, Eps);
            RmsNorm.Backward(dy, x, w, r1, dx1, dw1, N, C);
        }
        TestSupport.TwoThreads.Run(() =>
        {
            RmsNorm.Forward(x, w, o2, r2, N, C, Eps);
            RmsNorm.Backward(dy, x, w, r2, dx2, dw2, N, C);
        });
        AssertBitwiseEqual(o1, o2, "output");
        AssertBitwiseEqual(dx1, dx2, "dx");
        AssertBitwiseEqual(dw1, dw2, "dWeight");
    }

    [Fact]
    public void Forward_WrongShape_ThrowsNamingBothShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => RmsNorm.Forward(new float[10], new float[5], new float[12], new float[2], 2, 5, Eps));
        Assert.Contains("output", e.Message);
        Assert.Contains("12", e.Message);
        Assert.Contains("[2, 5]", e.Message);
    }
}
