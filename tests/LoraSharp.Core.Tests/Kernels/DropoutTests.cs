using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class DropoutTests
{
    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ForwardAndBackward_MatchReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        foreach (int n in OddSizes)
        {
            var x = Uniform(n, n);
            var y = Guarded(n);
            Dropout.Forward(x, Mid(y), 0.3f, 42, 1000 + n);
            var yRef = new float[n];
            Dropout.Reference.Forward(x, yRef, 0.3f, 42, 1000 + n);
            Assert.Equal(yRef, Mid(y).ToArray());
            AssertGuards(y, "y");

            var init = Uniform(n, n + 1);
            var dx = Guarded(n, init);
            var dxRef = (float[])init.Clone();
            Dropout.Backward(x, Mid(dx), 0.3f, 42, 1000 + n);
            Dropout.Reference.Backward(x, dxRef, 0.3f, 42, 1000 + n);
            Assert.Equal(dxRef, Mid(dx).ToArray());
            AssertGuards(dx, "dx");
        }
    }

    [Fact]
    public void SameSeed_SameMask_OnOneAndTwoThreads()
    {
        int n = 200_001;
        var x = Uniform(n, 1);
        float[] a = new float[n], b = new float[n];
        using (Threads.Limit(1)) Dropout.Forward(x, a, 0.1f, 7, 0);
        TestSupport.TwoThreads.Run(() => Dropout.Forward(x, b, 0.1f, 7, 0));
        AssertBitwiseEqual(a, b, "y");
    }

    [Fact]
    public void Mask_DependsOnlyOnSeedAndAbsoluteIndex()
    {
        var x = new float[1000];
        x.AsSpan().Fill(1f);
        var whole = new float[1000];
        Dropout.Forward(x, whole, 0.5f, 99, 5000);
        var part = new float[300];
        Dropout.Forward(x.AsSpan(0, 300), part, 0.5f, 99, 5000 + 417);
        Assert.Equal(whole.AsSpan(417, 300).ToArray(), part);
        var other = new float[1000];
        Dropout.Forward(x, other, 0.5f, 100, 5000);
        Assert.NotEqual(whole, other);
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(0.5f)]
    [InlineData(0.9f)]
    public void KeepRate_IsOneMinusP_AndKeptValuesAreScaled(float p)
    {
        int n = 400_000;
        var x = new float[n];
        x.AsSpan().Fill(1f);
        var y = new float[n];
        Dropout.Forward(x, y, p, 12345, 0);
        int kept = 0;
        foreach (float v in y)
        {
            if (v != 0) { kept++; Assert.Equal(1f / (1f - p), v); }
        }
        double rate = (double)kept / n;
        double sigma = Math.Sqrt(p * (1 - p) / n);
        Assert.True(Math.Abs(rate - (1 - p)) < 5 * sigma, $"keep rate {rate} vs {1 - p} (5 sigma = {5 * sigma})");
    }

    [Fact]
    public void Mask_NeighboursAreUncorrelated()
    {
        int n = 200_000;
        var x = new float[n];
        x.AsSpan().Fill(1f);
        var y = new float[n];
        Dropout.Forward(x, y, 0.5f, 3, 0);
        int both = 0, first = 0;
        for (int i = 0; i + 1 < n; i++)
        {
            if (y[i] != 0) { first++; if (y[i + 1] != 0) both++; }
        }
        double conditional = (double)both / first;
        Assert.InRange(conditional, 0.49, 0.51);
    }

    [Fact]
    public void Backward_UsesTheForwardMask()
    {
        int n = 1001;
        var x = Uniform(n, 5);
        var y = new float[n];
        Dropout.Forward(x, y, 0.25f, 77, 123);
        var ones = new float[n];
        ones.AsSpan().Fill(1f);
        var g = new float[n];
        Dropout.Backward(ones, g, 0.25f, 77, 123);
        for (int i = 0; i < n; i++) Assert.Equal(y[i], x[i] * g[i]);
        // and it is the gradient of the forward (a linear map): finite differences
        var R = Uniform(64, 6);
        var dx = new float[64];
        Dropout.Backward(R, dx, 0.25f, 77, 0);
        CheckGradient(xx => { var o = new float[64]; Dropout.Forward(xx, o, 0.25f, 77, 0); return Dot(o, R); }, x[..64], dx, 1e-2f, 1e-3, 1e-5, "dx");
    }

    [Fact]
    public void ExtremeProbabilities_AndCounterWrap()
    {
        var x = Uniform(40, 8);
        var y = new float[40];
        Dropout.Forward(x, y, 0f, 1, 0);
        Assert.Equal(x, y);
        Dropout.Forward(x, y, 1f, 1, 0);
        Assert.All(y, v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(x, y, 1.5f, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dropout.Forward(x, y, 0.5f, 1, -1));
        // a range crossing 2^32 gives the same mask as the scalar reference
        long offset = (1L << 32) - 20;
        var fast = new float[40];
        var reference = new float[40];
        Dropout.Forward(x, fast, 0.5f, 9, offset);
        Dropout.Reference.Forward(x, reference, 0.5f, 9, offset);
        Assert.Equal(reference, fast);
    }
}
