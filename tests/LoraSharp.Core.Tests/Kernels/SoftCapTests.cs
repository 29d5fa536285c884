// Logit soft-capping (Gemma 2): the elementwise kernel against its double twin, and the two fused users (the tiled
// attention's forward/backward/decode path and the fused cross-entropy) against their scalar twins at every SIMD
// level and against finite differences of double-precision oracles written here. Caps are small (1-3) so the
// scores and logits of these inputs sit in tanh's curved part, where a missing or misplaced cap shows.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class SoftCapTests
{
    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void Forward_MatchesDoubleTanh_OverOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        foreach (int n in OddSizes)
        {
            var x = Uniform(n, n + 1, 8f);
            if (n > 2) { x[0] = 200f; x[1] = -200f; }   // saturated: exactly ±cap
            var expected = new float[n];
            SoftCap.Reference.Forward(x, expected, 2.5f);
            var y = Guarded(n);
            SoftCap.Forward(x, Mid(y), 2.5f);
            TestData.AssertClose(Mid(y), expected, 1e-6, 0, $"{level} n={n}");
            AssertGuards(y, "y");
            Assert.All(Mid(y).ToArray(), v => Assert.True(Math.Abs(v) <= 2.5f, $"|{v}| > cap"));
        }
    }

    [Fact]
    public void Backward_MatchesDerivativeOfTanh()
    {
        var x = Uniform(37, 3, 6f);
        var y = new float[37];
        SoftCap.Forward(x, y, 1.5f);
        var dy = Uniform(37, 4);
        var dx = Uniform(37, 5);
        var expected = (float[])dx.Clone();
        SoftCap.Reference.BackwardFromInput(dy, x, expected, 1.5f);
        SoftCap.Backward(dy, y, dx, 1.5f);
        TestData.AssertClose(dx, expected, 2e-6, 0, "dx");
    }

    [Fact]
    public void BadCap_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftCap.Forward(new float[2], new float[2], 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftCap.Forward(new float[2], new float[2], float.NaN));
        Assert.Throws<ArgumentException>(() => Attention.Forward(new float[4], new float[4], new float[4], [], new float[4], new float[1],
            1, 1, 1, 1, 1, 4, 1f, 0, -1f));
    }

    // ---- attention ----

    private static (float[] Out, float[] Lse, float[] DQ, float[] DK, float[] DV) RunAttention(bool reference, float[] q, float[] k, float[] v, float[] dOut,
        byte[] mask, int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int window, float cap, bool backward = true)
    {
        var o = new float[B * Tq * NH * HS];
        var lse = new float[B * NH * Tq];
        if (reference) Attention.Reference.Forward(q, k, v, mask, o, lse, B, Tq, Tk, NH, NKV, HS, scale, window, cap);
        else Attention.Forward(q, k, v, mask, o, lse, B, Tq, Tk, NH, NKV, HS, scale, window, cap);
        var dq = new float[q.Length];
        var dk = new float[k.Length];
        var dv = new float[v.Length];
        if (backward)
        {
            if (reference) Attention.Reference.Backward(dOut, q, k, v, o, lse, mask, dq, dk, dv, B, Tq, Tk, NH, NKV, HS, scale, window, cap);
            else Attention.Backward(dOut, q, k, v, o, lse, mask, dq, dk, dv, B, Tq, Tk, NH, NKV, HS, scale, window, cap);
        }
        return (o, lse, dq, dk, dv);
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void Attention_Capped_FastMatchesReference(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        int n = 0;
        foreach (var (T, NH, NKV, HS, window, padded) in new[] { (1, 2, 1, 8, 0, false), (17, 4, 2, 16, 0, true), (70, 4, 2, 16, 5, false), (130, 3, 1, 48, 0, true) })
        {
            int B = 2;
            var q = Uniform(B * T * NH * HS, 10 + n, 1.5f);
            var k = Uniform(B * T * NKV * HS, 11 + n, 1.5f);
            var v = Uniform(B * T * NKV * HS, 12 + n);
            var dOut = Uniform(B * T * NH * HS, 13 + n);
            var mask = new byte[padded ? B * T : 0];
            for (int i = 0; i < mask.Length; i++) mask[i] = (byte)(i % T < T - T / 4 ? 1 : 0);
            float scale = 1f / MathF.Sqrt(HS);
            var r = RunAttention(true, q, k, v, dOut, mask, B, T, T, NH, NKV, HS, scale, window, 1.25f);
            var f = RunAttention(false, q, k, v, dOut, mask, B, T, T, NH, NKV, HS, scale, window, 1.25f);
            string what = $"{level} T={T} HS={HS} W={window}";
            TestData.AssertClose(f.Out, r.Out, 3e-6, 2e-5, $"{what}: output");
            TestData.AssertClose(f.Lse, r.Lse, 3e-6, 3e-6, $"{what}: lse");
            TestData.AssertClose(f.DQ, r.DQ, 1e-5, 1e-4, $"{what}: dq");
            TestData.AssertClose(f.DK, r.DK, 1e-5, 1e-4, $"{what}: dk");
            TestData.AssertClose(f.DV, r.DV, 1e-5, 1e-4, $"{what}: dv");
            // The cap changes the result (these scores reach past it), so a kernel that ignores it fails above.
            var plain = RunAttention(true, q, k, v, dOut, mask, B, T, T, NH, NKV, HS, scale, window, 0f, backward: false);
            if (T > 1) Assert.True(TestData.MaxAbsDiff(plain.Out, r.Out) > 1e-3, $"{what}: the cap made no difference");
            n++;
        }
    }

    [Theory]
    [InlineData(1, 40, 0)]
    [InlineData(3, 70, 9)]
    public void Attention_Capped_DecodeRowsEqualLastRowsOfFullComputation(int Tq, int Tk, int window)
    {
        const int NH = 4, NKV = 2, HS = 16;
        var q = Uniform(Tk * NH * HS, 21, 1.5f);
        var k = Uniform(Tk * NKV * HS, 22, 1.5f);
        var v = Uniform(Tk * NKV * HS, 23);
        float scale = 0.25f;
        var full = RunAttention(false, q, k, v, q, [], 1, Tk, Tk, NH, NKV, HS, scale, window, 2f, backward: false);
        var qLast = q.AsSpan((Tk - Tq) * NH * HS).ToArray();
        var dec = RunAttention(false, qLast, k, v, qLast, [], 1, Tq, Tk, NH, NKV, HS, scale, window, 2f, backward: false);
        TestData.AssertClose(dec.Out, full.Out.AsSpan((Tk - Tq) * NH * HS).ToArray(), 2e-6, 2e-5, "decode vs full");
    }

    // Double oracle: loss = Σ w·out with capped scores, for finite differences.
    private static double AttentionLossDouble(double[] q, double[] k, double[] v, double[] w, int T, int NH, int NKV, int HS, double scale, double cap)
    {
        double loss = 0;
        int G = NH / NKV;
        var sc = new double[T];
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j <= i; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < HS; d++) dot += q[(i * NH + h) * HS + d] * k[(j * NKV + h / G) * HS + d];
                    sc[j] = cap * Math.Tanh(scale * dot / cap);
                    max = Math.Max(max, sc[j]);
                }
                double z = 0;
                for (int j = 0; j <= i; j++) z += Math.Exp(sc[j] - max);
                for (int d = 0; d < HS; d++)
                {
                    double o = 0;
                    for (int j = 0; j <= i; j++) o += Math.Exp(sc[j] - max) / z * v[(j * NKV + h / G) * HS + d];
                    loss += w[(i * NH + h) * HS + d] * o;
                }
            }
        return loss;
    }

    [Fact]
    public void Attention_Capped_BackwardsMatchCentralDifferences()
    {
        const int T = 7, NH = 2, NKV = 1, HS = 4;
        const float scale = 0.5f, cap = 1f;
        var q = Uniform(T * NH * HS, 31, 2f);
        var k = Uniform(T * NKV * HS, 32, 2f);
        var v = Uniform(T * NKV * HS, 33);
        var w = Uniform(T * NH * HS, 34);
        double[] qd = ToDouble(q), kd = ToDouble(k), vd = ToDouble(v), wd = ToDouble(w);
        foreach (bool reference in new[] { true, false })
        {
            var r = RunAttention(reference, q, k, v, w, [], 1, T, T, NH, NKV, HS, scale, 0, cap);
            double tol = reference ? 1e-5 : 2e-4;
            CheckGradient(x => AttentionLossDouble(x, kd, vd, wd, T, NH, NKV, HS, scale, cap), qd, ToDouble(r.DQ), 1e-5, tol, tol, $"dq ref={reference}");
            CheckGradient(x => AttentionLossDouble(qd, x, vd, wd, T, NH, NKV, HS, scale, cap), kd, ToDouble(r.DK), 1e-5, tol, tol, $"dk ref={reference}");
            CheckGradient(x => AttentionLossDouble(qd, kd, x, wd, T, NH, NKV, HS, scale, cap), vd, ToDouble(r.DV), 1e-5, tol, tol, $"dv ref={reference}");
        }
    }

    // ---- cross-entropy ----

    private static double CappedLossDouble(double[] h, float[] w, int[] targets, int N, int C, int V, double cap)
    {
        double total = 0;
        var z = new double[V];
        for (int n = 0; n < N; n++)
        {
            if (targets[n] == -100) continue;
            for (int v = 0; v < V; v++)
            {
                double s = 0;
                for (int c = 0; c < C; c++) s += h[n * C + c] * w[v * C + c];
                z[v] = cap * Math.Tanh(s / cap);
            }
            double m = z.Max();
            total += m + Math.Log(z.Sum(l => Math.Exp(l - m))) - z[targets[n]];
        }
        return total;
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void CrossEntropy_Capped_FusedMatchesReference(SimdLevel level)
    {
        using var force = Simd.Force(level);
        const int N = 23, C = 13;
        foreach (int V in new[] { 1, 5, 17, 33, 100 })
        {
            var h = Uniform(N * C, V, 2f);
            var w = Uniform(V * C, V + 1);
            var packed = PackedWeight.FromF32(w, V, C);
            var targets = new int[N];
            var rng = new Random(V);
            for (int n = 0; n < N; n++) targets[n] = n % 4 == 3 ? -100 : rng.Next(V);
            var dhRef = Uniform(N * C, V + 3);
            double lossRef = CrossEntropy.Reference.ForwardBackward(h, packed, targets, dhRef, 0.25f, new CrossEntropyWorkspace(1, V), N, C, out int countRef, 1.5f);
            Assert.Equal(CappedLossDouble(ToDouble(h), w, targets, N, C, V, 1.5), lossRef, 1e-4);
            foreach (int chunk in new[] { 1, 7, 64 })
            {
                var ws = new CrossEntropyWorkspace(chunk, V);
                var dh = Guarded(N * C, Uniform(N * C, V + 3));
                double loss = CrossEntropy.ForwardBackward(h, packed, targets, Mid(dh), 0.25f, ws, N, C, out int count, 1.5f);
                Assert.Equal(countRef, count);
                Assert.Equal(lossRef, loss, 1e-5 * Math.Max(1, Math.Abs(lossRef)));
                TestData.AssertClose(Mid(dh), dhRef, 1e-6, 1e-5, $"dh V={V} chunk={chunk}");
                AssertGuards(dh, "dh");
                var losses = new float[N];
                double sum = CrossEntropy.RowLosses(h, packed, targets, losses, ws, N, C, out _, 1.5f);
                Assert.Equal(lossRef, sum, 1e-5 * Math.Max(1, Math.Abs(lossRef)));
            }
            if (V > 1)
            {
                double plain = CrossEntropy.ForwardBackward(h, packed, targets, [], 0f, new CrossEntropyWorkspace(8, V), N, C, out _);
                Assert.True(Math.Abs(plain - lossRef) > 1e-2, $"V={V}: the cap made no difference ({plain} vs {lossRef})");
            }
        }
    }

    [Fact]
    public void CrossEntropy_Capped_GradientMatchesFiniteDifferences()
    {
        const int N = 5, C = 6, V = 11;
        var h = Uniform(N * C, 4, 1.5f);
        var w = Uniform(V * C, 5);
        var packed = PackedWeight.FromF32(w, V, C);
        int[] targets = [1, -100, 10, 0, 4];
        foreach (bool reference in new[] { true, false })
        {
            var dh = new float[N * C];
            var ws = new CrossEntropyWorkspace(2, V);
            if (reference) CrossEntropy.Reference.ForwardBackward(h, packed, targets, dh, 0.5f, ws, N, C, out _, 1f);
            else CrossEntropy.ForwardBackward(h, packed, targets, dh, 0.5f, ws, N, C, out _, 1f);
            CheckGradient(hh => 0.5 * CappedLossDouble(hh, w, targets, N, C, V, 1.0), ToDouble(h), ToDouble(dh), 1e-6, 1e-4, 1e-6, $"dh reference={reference}");
        }
    }

    [Fact]
    public void CrossEntropy_WeightGrad_Capped_MatchesFiniteDifferences()
    {
        const int N = 3, C = 4, V = 6;
        var h = Uniform(N * C, 8, 1.5f);
        var w = Uniform(V * C, 9, 1.5f);
        int[] targets = [2, 5, 0];
        var dW = new float[V * C];
        CrossEntropy.ForwardBackwardWithWeightGrad(h, null, targets, [], 1f, new CrossEntropyWorkspace(2, V), N, C, out _, dW, w, 2f);
        var hd = ToDouble(h);
        CheckGradient(ww => CappedLossDouble(hd, Array.ConvertAll(ww, x => (float)x), targets, N, C, V, 2.0), ToDouble(w), ToDouble(dW), 1e-3, 1e-3, 1e-4, "dW");
    }
}
