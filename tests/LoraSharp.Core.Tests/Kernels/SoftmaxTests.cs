using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class SoftmaxTests
{
    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ForwardAndBackward_MatchReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        const int rows = 3;
        foreach (int cols in OddSizes)
        {
            int n = rows * cols;
            var x = Uniform(n, cols, 20f);
            if (cols > 2) x[1] = float.NegativeInfinity;   // masked entry
            var y = Guarded(n);
            Softmax.Forward(x, Mid(y), rows, cols);
            var yRef = new float[n];
            Softmax.Reference.Forward<float>(x, yRef, rows, cols);
            TestData.AssertClose(Mid(y), yRef, 1e-7, 1e-5, $"y cols={cols}");
            AssertGuards(y, "y");

            var dy = Uniform(n, cols + 1);
            var init = Uniform(n, cols + 2);
            var dx = Guarded(n, init);
            var dxRef = (float[])init.Clone();
            Softmax.Backward(dy, yRef, Mid(dx), rows, cols);
            Softmax.Reference.Backward<float>(dy, yRef, dxRef, rows, cols);
            TestData.AssertClose(Mid(dx), dxRef, 1e-6, 1e-5, $"dx cols={cols}");
            AssertGuards(dx, "dx");
        }
    }

    [Fact]
    public void Forward_LargeLogits_DoNotOverflow_AndRowsSumToOne()
    {
        float[] x = [1000f, 999f, -1000f, 0f, 88f, 89f, 90f, 91f];
        var y = new float[8];
        Softmax.Forward(x, y, 2, 4);
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(1.0, y[0] + y[1] + y[2] + y[3], 1e-6);
        Assert.Equal(1.0, y[4] + y[5] + y[6] + y[7], 1e-6);
        Assert.Equal(1 / (1 + Math.Exp(-1)), y[0], 1e-6);
    }

    [Fact]
    public void Backward_Reference_MatchesFiniteDifferences_InDouble()
    {
        const int rows = 2, cols = 9;
        var x = ToDouble(Uniform(rows * cols, 1, 3f));
        var R = ToDouble(Uniform(rows * cols, 2));
        var y = new double[rows * cols];
        Softmax.Reference.Forward<double>(x, y, rows, cols);
        var dx = new double[rows * cols];
        Softmax.Reference.Backward<double>(R, y, dx, rows, cols);
        CheckGradient(xx => { var yy = new double[rows * cols]; Softmax.Reference.Forward<double>(xx, yy, rows, cols); return Dot(yy, R); },
            x, dx, 1e-6, 1e-6, 1e-9, "dx");
    }

    [Fact]
    public void Backward_Fast_MatchesFiniteDifferences_InFloat()
    {
        const int rows = 2, cols = 21;
        var x = Uniform(rows * cols, 3, 2f);
        var R = Uniform(rows * cols, 4);
        var y = new float[rows * cols];
        Softmax.Forward(x, y, rows, cols);
        var dx = new float[rows * cols];
        Softmax.Backward(R, y, dx, rows, cols);
        CheckGradient(xx => { var yy = new float[rows * cols]; Softmax.Forward(xx, yy, rows, cols); return Dot(yy, R); },
            x, dx, 1e-2f, 2e-2, 5e-4, "dx");
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        const int rows = 130, cols = 1001;
        var x = Uniform(rows * cols, 5, 10f);
        var dy = Uniform(rows * cols, 6);
        float[] y1 = new float[rows * cols], y2 = new float[rows * cols], d1 = new float[rows * cols], d2 = new float[rows * cols];
        using (Threads.Limit(1)) { Softmax.Forward(x, y1, rows, cols); Softmax.Backward(dy, y1, d1, rows, cols); }
        TestSupport.TwoThreads.Run(() => { Softmax.Forward(x, y2, rows, cols); Softmax.Backward(dy, y2, d2, rows, cols); });
        AssertBitwiseEqual(y1, y2, "y");
        AssertBitwiseEqual(d1, d2, "dx");
    }

    [Fact]
    public void WrongShape_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => Softmax.Forward(new float[6], new float[6], 2, 4));
        Assert.Contains("[2, 4]", e.Message);
    }
}
