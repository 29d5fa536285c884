// DoRA's row passes: fast (TensorPrimitives rows, parallel) vs scalar twins bit for bit over odd shapes (every SIMD
// tail, partial last block), and identical for 1 and 2 threads.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public class DoraRowsTests
{
    public static TheoryData<int, int> Shapes => new() { { 0, 5 }, { 1, 1 }, { 3, 17 }, { 64, 33 }, { 65, 257 }, { 200, 130 }, { 1030, 80 } };

    private static void AssertBits(ReadOnlySpan<float> a, ReadOnlySpan<float> b, string what)
    {
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i]))
                Assert.Fail($"{what}: element {i} is {a[i]}, the reference gives {b[i]}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RowScale_FastEqualsReference(int M, int N)
    {
        var x = TestData.Uniform(M * N, 1);
        var g = TestData.Uniform(N, 2);
        foreach (bool acc in new[] { false, true })
        {
            var y1 = TestData.Uniform(M * N, 3);
            var y2 = (float[])y1.Clone();
            DoraRows.RowScale(x, g, y1, M, N, acc);
            DoraRows.RowScaleReference(x, g, y2, M, N, acc);
            AssertBits(y1, y2, $"RowScale [{M},{N}] accumulate {acc}");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MagnitudeGradRows_FastEqualsReference_AnyThreadCount(int M, int N)
    {
        var dy = TestData.Uniform(M * N, 4);
        var g = TestData.Uniform(N, 5);
        var s0 = TestData.Uniform(M * N, 6);
        var expectedS = (float[])s0.Clone();
        var expectedP = new float[DoraRows.Blocks(M) * N];
        DoraRows.MagnitudeGradRowsReference(dy, expectedS, g, expectedP, M, N);
        foreach (int threads in new[] { 1, 2 })
        {
            var s = (float[])s0.Clone();
            var p = TestData.Uniform(expectedP.Length, 7);   // garbage in: every block is cleared first
            using (Threads.Limit(threads)) DoraRows.MagnitudeGradRows(dy, s, g, p, M, N);
            AssertBits(s, expectedS, $"dyg [{M},{N}] {threads} threads");
            AssertBits(p, expectedP, $"partials [{M},{N}] {threads} threads");
            var s2 = (float[])s0.Clone();
            using (Threads.Limit(threads)) DoraRows.MagnitudeGradRows(dy, s2, g, [], M, N);   // frozen magnitude: dyg only
            AssertBits(s2, expectedS, $"dyg without partials [{M},{N}]");
        }
    }

    [Fact]
    public void ShortBuffers_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => DoraRows.RowScale(new float[5], new float[3], new float[6], 2, 3, false));
        Assert.Throws<ArgumentException>(() => DoraRows.MagnitudeGradRows(new float[6], new float[6], new float[3], new float[2], 2, 3));
    }
}
