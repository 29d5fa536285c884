using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class SiluTests
{
    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ForwardAndBackward_MatchReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        foreach (int n in OddSizes)
        {
            var x = Uniform(n, n, 12f);
            if (n > 3) { x[0] = -100f; x[1] = 100f; x[2] = 0f; }
            var y = Guarded(n);
            Silu.Forward(x, Mid(y));
            var yRef = new float[n];
            Silu.Reference.Forward<float>(x, yRef);
            TestData.AssertClose(Mid(y), yRef, 1e-7, 2e-6, $"y n={n}");
            AssertGuards(y, "y");

            var dy = Uniform(n, n + 1);
            var init = Uniform(n, n + 2);
            var dx = Guarded(n, init);
            var dxRef = (float[])init.Clone();
            Silu.Backward(dy, x, Mid(dx));
            Silu.Reference.Backward<float>(dy, x, dxRef);
            TestData.AssertClose(Mid(dx), dxRef, 1e-6, 2e-6, $"dx n={n}");
            AssertGuards(dx, "dx");
        }
    }

    [Fact]
    public void Backward_Reference_MatchesFiniteDifferences_InDouble()
    {
        var x = ToDouble(Uniform(40, 1, 8f));
        var R = ToDouble(Uniform(40, 2));
        var dx = new double[40];
        Silu.Reference.Backward<double>(R, x, dx);
        CheckGradient(xx => { var y = new double[40]; Silu.Reference.Forward<double>(xx, y); return Dot(y, R); }, x, dx, 1e-6, 1e-7, 1e-9, "dx");
    }

    [Fact]
    public void Backward_Fast_MatchesFiniteDifferences_InFloat()
    {
        var x = Uniform(45, 3, 6f);
        var R = Uniform(45, 4);
        var dx = new float[45];
        Silu.Backward(R, x, dx);
        CheckGradient(xx => { var y = new float[45]; Silu.Forward(xx, y); return Dot(y, R); }, x, dx, 1e-2f, 1e-2, 1e-4, "dx");
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        int n = 100_003;
        var x = Uniform(n, 5, 10f);
        var dy = Uniform(n, 6);
        float[] y1 = new float[n], y2 = new float[n], d1 = new float[n], d2 = new float[n];
        using (Threads.Limit(1)) { Silu.Forward(x, y1); Silu.Backward(dy, x, d1); }
        TestSupport.TwoThreads.Run(() => { Silu.Forward(x, y2); Silu.Backward(dy, x, d2); });
        AssertBitwiseEqual(y1, y2, "y");
        AssertBitwiseEqual(d1, d2, "dx");
    }

    [Fact]
    public void MismatchedLengths_Throw()
    {
        var e = Assert.Throws<ArgumentException>(() => Silu.Forward(new float[4], new float[5]));
        Assert.Contains("5", e.Message);
        Assert.Contains("4", e.Message);
    }
}
