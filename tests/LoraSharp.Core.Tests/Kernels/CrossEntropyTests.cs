using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class CrossEntropyTests
{
    private static int[] Targets(int N, int V, int seed, double ignoreRate)
    {
        var rng = new Random(seed);
        var t = new int[N];
        for (int n = 0; n < N; n++) t[n] = rng.NextDouble() < ignoreRate ? -100 : rng.Next(V);
        return t;
    }

    // Plain double implementation written independently: full logits, log-softmax, loss and dLoss/dh.
    private static double NaiveDouble(double[] h, float[] w, int[] targets, int N, int C, int V, double[]? dh, double scale)
    {
        double total = 0;
        var logits = new double[V];
        for (int n = 0; n < N; n++)
        {
            if (targets[n] == -100) continue;
            for (int v = 0; v < V; v++)
            {
                double s = 0;
                for (int c = 0; c < C; c++) s += h[n * C + c] * w[v * C + c];
                logits[v] = s;
            }
            double m = logits.Max();
            double lse = m + Math.Log(logits.Sum(l => Math.Exp(l - m)));
            total += lse - logits[targets[n]];
            if (dh is null) continue;
            for (int v = 0; v < V; v++)
            {
                double g = scale * (Math.Exp(logits[v] - lse) - (v == targets[n] ? 1 : 0));
                for (int c = 0; c < C; c++) dh[n * C + c] += g * w[v * C + c];
            }
        }
        return total;
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void Fused_MatchesUnfusedReference_ForEveryChunkSize(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        const int N = 23, C = 13;
        foreach (int V in new[] { 1, 5, 17, 33, 100 })
        {
            var h = Uniform(N * C, V, 2f);
            var w = Uniform(V * C, V + 1);
            var packed = PackedWeight.FromF32(w, V, C);
            var targets = Targets(N, V, V + 2, 0.3);
            var dhRef = Uniform(N * C, V + 3);
            double lossRef = CrossEntropy.Reference.ForwardBackward(h, packed, targets, dhRef, 0.25f, new CrossEntropyWorkspace(1, V), N, C, out int countRef);
            foreach (int chunk in new[] { 1, 3, 7, 64 })
            {
                var ws = new CrossEntropyWorkspace(chunk, V);
                var dh = Guarded(N * C, Uniform(N * C, V + 3));
                double loss = CrossEntropy.ForwardBackward(h, packed, targets, Mid(dh), 0.25f, ws, N, C, out int count);
                Assert.Equal(countRef, count);
                Assert.Equal(lossRef, loss, 1e-5 * Math.Max(1, Math.Abs(lossRef)));
                TestData.AssertClose(Mid(dh), dhRef, 1e-6, 1e-5, $"dh V={V} chunk={chunk}");
                AssertGuards(dh, "dh");
            }
        }
    }

    [Fact]
    public void IgnoredRows_AreNotCounted_AndTheirGradientIsUntouched()
    {
        const int N = 6, C = 4, V = 9;
        var h = Uniform(N * C, 1);
        var packed = PackedWeight.FromF32(Uniform(V * C, 2), V, C);
        int[] targets = [-100, 3, -100, -100, 8, 0];
        var init = Uniform(N * C, 3);
        var dh = (float[])init.Clone();
        double loss = CrossEntropy.ForwardBackward(h, packed, targets, dh, 1f, new CrossEntropyWorkspace(4, V), N, C, out int count);
        Assert.Equal(3, count);
        foreach (int n in new[] { 0, 2, 3 })
            AssertBitwiseEqual(dh.AsSpan(n * C, C), init.AsSpan(n * C, C), $"dh row {n}");
        var dhOnly = new float[N * C];
        double expected = NaiveDouble(ToDouble(h), Uniform(V * C, 2), targets, N, C, V, null, 1);
        Assert.Equal(expected, loss, 1e-5);
        // all rows ignored: zero loss, zero count, nothing computed
        double none = CrossEntropy.ForwardBackward(h, packed, new int[N].Select(_ => -100).ToArray(), dhOnly, 1f, new CrossEntropyWorkspace(4, V), N, C, out int zero);
        Assert.Equal(0, zero);
        Assert.Equal(0.0, none);
        Assert.All(dhOnly, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Gradient_MatchesFiniteDifferences_OfADoubleNaiveLoss()
    {
        const int N = 5, C = 6, V = 11;
        var h = Uniform(N * C, 4, 1.5f);
        var w = Uniform(V * C, 5);
        var packed = PackedWeight.FromF32(w, V, C);
        int[] targets = [1, -100, 10, 0, 4];
        var dh = new float[N * C];
        CrossEntropy.ForwardBackward(h, packed, targets, dh, 0.5f, new CrossEntropyWorkspace(2, V), N, C, out _);
        var analytic = ToDouble(dh);
        var hd = ToDouble(h);
        CheckGradient(hh => 0.5 * NaiveDouble(hh, w, targets, N, C, V, null, 1), hd, analytic, 1e-6, 1e-4, 1e-6, "dh");
        // and the double naive gradient agrees with its own finite differences
        var dhd = new double[N * C];
        NaiveDouble(hd, w, targets, N, C, V, dhd, 0.5);
        CheckGradient(hh => 0.5 * NaiveDouble(hh, w, targets, N, C, V, null, 1), hd, dhd, 1e-6, 1e-7, 1e-9, "naive dh");
    }

    [Fact]
    public void Gradient_Fast_MatchesFiniteDifferences_InFloat()
    {
        const int N = 3, C = 5, V = 7;
        var h = Uniform(N * C, 6);
        var packed = PackedWeight.FromF32(Uniform(V * C, 7), V, C);
        int[] targets = [6, 2, -100];
        var ws = new CrossEntropyWorkspace(2, V);
        var dh = new float[N * C];
        CrossEntropy.ForwardBackward(h, packed, targets, dh, 1f, ws, N, C, out _);
        CheckGradient(hh => CrossEntropy.ForwardBackward(hh, packed, targets, Span<float>.Empty, 1f, ws, N, C, out _),
            h, dh, 1e-2f, 1e-2, 1e-4, "dh");
    }

    [Fact]
    public void WeightGrad_MatchesNaive_PackedAndUnpacked()
    {
        const int N = 7, C = 5, V = 13;
        var h = Uniform(N * C, 8);
        var w = Uniform(V * C, 9);
        var packed = PackedWeight.FromF32(w, V, C);
        int[] targets = [0, 12, -100, 5, 5, -100, 7];
        const float scale = 0.3f;
        var dwExpected = new double[V * C];
        for (int n = 0; n < N; n++)
        {
            if (targets[n] == -100) continue;
            var logits = new double[V];
            for (int v = 0; v < V; v++) for (int c = 0; c < C; c++) logits[v] += (double)h[n * C + c] * w[v * C + c];
            double m = logits.Max(), lse = m + Math.Log(logits.Sum(l => Math.Exp(l - m)));
            for (int v = 0; v < V; v++)
            {
                double g = scale * (Math.Exp(logits[v] - lse) - (v == targets[n] ? 1 : 0));
                for (int c = 0; c < C; c++) dwExpected[v * C + c] += g * h[n * C + c];
            }
        }
        var ws = new CrossEntropyWorkspace(3, V);
        var dh1 = new float[N * C];
        var dw1 = Uniform(V * C, 10);
        var dwInit = (float[])dw1.Clone();
        double l1 = CrossEntropy.ForwardBackwardWithWeightGrad(h, packed, targets, dh1, scale, ws, N, C, out int c1, dw1, default);
        var dh2 = new float[N * C];
        var dw2 = (float[])dwInit.Clone();
        double l2 = CrossEntropy.ForwardBackwardWithWeightGrad(h, null, targets, dh2, scale, ws, N, C, out int c2, dw2, w);
        var dh3 = new float[N * C];
        double l3 = CrossEntropy.ForwardBackward(h, packed, targets, dh3, scale, ws, N, C, out _);
        Assert.Equal(5, c1);
        Assert.Equal(c1, c2);
        Assert.Equal(l1, l2, 1e-6);
        Assert.Equal(l1, l3, 1e-9);
        TestData.AssertClose(dh1, dh3, 1e-7, 1e-6, "dh with vs without weight grad");
        TestData.AssertClose(dh2, dh3, 1e-6, 1e-5, "dh unpacked");
        var expected = new float[V * C];
        for (int i = 0; i < expected.Length; i++) expected[i] = (float)(dwInit[i] + dwExpected[i]);
        TestData.AssertClose(dw1, expected, 1e-6, 1e-5, "dWOut packed");
        TestData.AssertClose(dw2, expected, 1e-6, 1e-5, "dWOut unpacked");
    }

    [Fact]
    public void RowLosses_MatchNaive_AndSumToForwardLoss()
    {
        const int N = 9, C = 8, V = 21;
        var h = Uniform(N * C, 11, 3f);
        var w = Uniform(V * C, 12);
        var packed = PackedWeight.FromF32(w, V, C);
        var targets = Targets(N, V, 13, 0.25);
        var ws = new CrossEntropyWorkspace(4, V);
        var losses = Guarded(N);
        double sum = CrossEntropy.RowLosses(h, packed, targets, Mid(losses), ws, N, C, out int count);
        var refLosses = new float[N];
        double refSum = CrossEntropy.Reference.RowLosses(h, packed, targets, refLosses, ws, N, C, out int refCount);
        Assert.Equal(refCount, count);
        Assert.Equal(refSum, sum, 1e-5);
        TestData.AssertClose(Mid(losses), refLosses, 1e-6, 1e-5, "losses");
        AssertGuards(losses, "losses");
        for (int n = 0; n < N; n++)
        {
            double expected = NaiveDouble(ToDouble(h), w, targets.Select((t, i) => i == n ? t : -100).ToArray(), N, C, V, null, 1);
            Assert.Equal(expected, Mid(losses)[n], 1e-5);
        }
        double forward = CrossEntropy.ForwardBackward(h, packed, targets, Span<float>.Empty, 1f, ws, N, C, out _);
        Assert.Equal(sum, forward);
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        const int N = 40, C = 64, V = 20011;   // enough rows x vocab for the softmax pass to split across two threads
        var h = Uniform(N * C, 14);
        var packed = PackedWeight.FromF32(Uniform(V * C, 15), V, C);
        var targets = Targets(N, V, 16, 0.1);
        var ws = new CrossEntropyWorkspace(32, V);
        float[] a = new float[N * C], b = new float[N * C];
        double la, lb = 0;
        using (Threads.Limit(1)) la = CrossEntropy.ForwardBackward(h, packed, targets, a, 0.1f, ws, N, C, out _);
        TestSupport.TwoThreads.Run(() => lb = CrossEntropy.ForwardBackward(h, packed, targets, b, 0.1f, ws, N, C, out _));
        Assert.Equal(la, lb);
        AssertBitwiseEqual(a, b, "dh");
    }

    [Fact]
    public void BadInput_ThrowsClearErrors()
    {
        const int N = 2, C = 3, V = 4;
        var packed = PackedWeight.FromF32(new float[V * C], V, C);
        var e = Assert.Throws<ArgumentException>(() =>
            CrossEntropy.ForwardBackward(new float[N * C], packed, [1, 4], new float[N * C], 1f, new CrossEntropyWorkspace(2, V), N, C, out _));
        Assert.Contains("targets[1] = 4", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            CrossEntropy.ForwardBackward(new float[N * C], packed, [1, 2], new float[N * C], 1f, new CrossEntropyWorkspace(2, V + 1), N, C, out _));
        Assert.Contains("V = 5", e.Message);
        e = Assert.Throws<ArgumentException>(() =>
            CrossEntropy.ForwardBackward(new float[N * C], packed, [1, 2], new float[5], 1f, new CrossEntropyWorkspace(2, V), N, C, out _));
        Assert.Contains("dh", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new CrossEntropyWorkspace(0, V));
    }
}
