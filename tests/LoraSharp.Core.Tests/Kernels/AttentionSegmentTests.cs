// Tests of attention with segment ids (packed samples): the tiled kernel against its scalar twin over odd sizes and
// random segment layouts, forward and backward, at every SIMD width; a packed row against each of its segments
// run alone; tiles wholly in earlier segments are never read; chunked prefill (Tq < Tk) with segments; the
// backward's segment chunks give the same bits on 1 and 2 threads; a second call allocates nothing; empty ids
// equal the unsegmented call bit for bit; bad ids are refused.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public class AttentionSegmentTests
{
    private sealed record Case(int B, int T, int NH, int NKV, int HS, int Window, int[] Seg, byte[] Mask)
    {
        public int QLen => B * T * NH * HS;
        public int KLen => B * T * NKV * HS;
        public float Scale => 1f / MathF.Sqrt(HS);
        public override string ToString() => $"B={B} T={T} NH={NH} NKV={NKV} HS={HS} W={Window} segs=[{string.Join(",", Seg.Take(40))}]";
    }

    private sealed record Result(float[] Out, float[] Lse, float[] DQ, float[] DK, float[] DV);

    /// <summary>Non-decreasing ids per row with random run lengths; ids start anywhere and may skip values.</summary>
    private static int[] RandomSegments(int B, int T, Random rng, int maxRun)
    {
        var seg = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            int id = rng.Next(0, 5), left = 0;
            for (int t = 0; t < T; t++)
            {
                if (left == 0) { id += rng.Next(1, 3); left = rng.Next(1, maxRun + 1); }
                seg[b * T + t] = id;
                left--;
            }
        }
        return seg;
    }

    private static Result Run(Case c, int seed, bool reference, ReadOnlySpan<int> seg)
    {
        float[] q = TestData.Uniform(c.QLen, seed, 1.5f), k = TestData.Uniform(c.KLen, seed + 1, 1.5f), v = TestData.Uniform(c.KLen, seed + 2);
        float[] dOut = TestData.Uniform(c.QLen, seed + 3);
        float[] dq = TestData.Uniform(c.QLen, seed + 4, 0.5f), dk = TestData.Uniform(c.KLen, seed + 5, 0.5f), dv = TestData.Uniform(c.KLen, seed + 6, 0.5f);
        var o = new float[c.QLen];
        var lse = new float[c.B * c.NH * c.T];
        if (reference)
        {
            Attention.Reference.Forward(q, k, v, c.Mask, seg, o, lse, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale, c.Window);
            Attention.Reference.Backward(dOut, q, k, v, o, lse, c.Mask, seg, dq, dk, dv, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale, c.Window);
        }
        else
        {
            Attention.Forward(q, k, v, c.Mask, seg, o, lse, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale, c.Window);
            Attention.Backward(dOut, q, k, v, o, lse, c.Mask, seg, dq, dk, dv, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale, c.Window);
        }
        return new Result(o, lse, dq, dk, dv);
    }

    private static void AssertMatches(Result fast, Result expected, string what)
    {
        TestData.AssertClose(fast.Out, expected.Out, 2e-6, 2e-5, $"{what}: output");
        for (int i = 0; i < expected.Lse.Length; i++)
        {
            if (float.IsNegativeInfinity(expected.Lse[i])) { Assert.True(float.IsNegativeInfinity(fast.Lse[i]), $"{what}: lse[{i}] = {fast.Lse[i]}, expected -inf"); continue; }
            Assert.True(Math.Abs(fast.Lse[i] - expected.Lse[i]) <= 2e-6 + 2e-6 * Math.Abs(expected.Lse[i]), $"{what}: lse[{i}] = {fast.Lse[i]}, expected {expected.Lse[i]}");
        }
        TestData.AssertClose(fast.DQ, expected.DQ, 1e-5, 1e-4, $"{what}: dq");
        TestData.AssertClose(fast.DK, expected.DK, 1e-5, 1e-4, $"{what}: dk");
        TestData.AssertClose(fast.DV, expected.DV, 1e-5, 1e-4, $"{what}: dv");
    }

    private static readonly int[] Ts = [1, 3, 7, 17, 33, 65, 130, 200];
    private static readonly (int NH, int NKV, int HS)[] Heads = [(8, 4, 8), (6, 6, 16), (9, 3, 48)];

    /// <summary>Odd T x heads, B alternating 1/2, segment runs short and long, every third with padding, every fourth with a window.</summary>
    private static readonly Lazy<List<(Case C, Result Expected)>> Cases = new(() =>
    {
        var list = new List<(Case, Result)>();
        var rng = new Random(15);
        int n = 0;
        foreach (int T in Ts)
            foreach (var (nh, nkv, hs) in Heads)
            {
                int B = 1 + n % 2;
                var seg = RandomSegments(B, T, rng, n % 2 == 0 ? 9 : 90);
                var mask = n % 3 == 2 ? Enumerable.Range(0, B * T).Select(i => (byte)(i % T < T - T / 4 ? 1 : 0)).ToArray() : [];
                var c = new Case(B, T, nh, nkv, hs, n % 4 == 3 ? 5 + n : 0, seg, mask);
                list.Add((c, Run(c, 300 + n, reference: true, seg)));
                n++;
            }
        return list;
    });

    public static TheoryData<SimdLevel> Levels => new() { SimdLevel.Scalar, SimdLevel.V128, SimdLevel.V256, SimdLevel.V512 };

    [Theory]
    [MemberData(nameof(Levels))]
    public void FastMatchesReference_RandomSegmentLayouts_ForwardAndBackward(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        int i = 0;
        foreach (var (c, expected) in Cases.Value)
            AssertMatches(Run(c, 300 + i++, reference: false, c.Seg), expected, $"{level} {c}");
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void PackedRow_EqualsEachSegmentRunAlone(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        // Three samples of different lengths, crossing tile edges (64) in different places; GQA 8/4, HS 16.
        int[] lengths = [5, 70, 61];
        int T = lengths.Sum(), NH = 8, NKV = 4, HS = 16;
        float scale = 1f / MathF.Sqrt(HS);
        int QD = NH * HS, KD = NKV * HS;
        float[] q = TestData.Uniform(T * QD, 1, 1.5f), k = TestData.Uniform(T * KD, 2, 1.5f), v = TestData.Uniform(T * KD, 3);
        float[] dOut = TestData.Uniform(T * QD, 4);
        var seg = new int[T];
        for (int s = 0, t = 0; s < lengths.Length; s++) for (int r = 0; r < lengths[s]; r++) seg[t++] = s;
        var o = new float[T * QD];
        var lse = new float[NH * T];
        float[] dq = new float[T * QD], dk = new float[T * KD], dv = new float[T * KD];
        Attention.Forward(q, k, v, [], seg, o, lse, 1, T, T, NH, NKV, HS, scale);
        Attention.Backward(dOut, q, k, v, o, lse, [], seg, dq, dk, dv, 1, T, T, NH, NKV, HS, scale);

        int start = 0;
        foreach (int L in lengths)
        {
            var oS = new float[L * QD];
            var lseS = new float[NH * L];
            float[] dqS = new float[L * QD], dkS = new float[L * KD], dvS = new float[L * KD];
            var qS = q.AsSpan(start * QD, L * QD);
            var kS = k.AsSpan(start * KD, L * KD);
            var vS = v.AsSpan(start * KD, L * KD);
            Attention.Forward(qS, kS, vS, [], oS, lseS, 1, L, L, NH, NKV, HS, scale);
            Attention.Backward(dOut.AsSpan(start * QD, L * QD), qS, kS, vS, oS, lseS, [], dqS, dkS, dvS, 1, L, L, NH, NKV, HS, scale);
            string what = $"{level} segment at {start} of length {L}";
            TestData.AssertClose(o.AsSpan(start * QD, L * QD), oS, 1e-6, 1e-5, $"{what}: output");
            for (int h = 0; h < NH; h++)
                TestData.AssertClose(lse.AsSpan(h * T + start, L), lseS.AsSpan(h * L, L), 1e-6, 1e-6, $"{what}: lse head {h}");
            TestData.AssertClose(dq.AsSpan(start * QD, L * QD), dqS, 1e-6, 1e-5, $"{what}: dq");
            TestData.AssertClose(dk.AsSpan(start * KD, L * KD), dkS, 1e-6, 1e-5, $"{what}: dk");
            TestData.AssertClose(dv.AsSpan(start * KD, L * KD), dvS, 1e-6, 1e-5, $"{what}: dv");
            start += L;
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void KeyTilesWhollyInEarlierSegments_AreNeverRead(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        // Segment 0 fills the first two tiles exactly (128 positions); its values are NaN. Had the query tiles of
        // segment 1 visited those key tiles, the masked products 0·NaN would have made their outputs NaN.
        int T = 200, NH = 4, NKV = 2, HS = 16, KD = NKV * HS, first = 128;
        float scale = 1f / MathF.Sqrt(HS);
        float[] q = TestData.Uniform(T * NH * HS, 5, 1.5f), k = TestData.Uniform(T * KD, 6, 1.5f), v = TestData.Uniform(T * KD, 7);
        float[] dOut = TestData.Uniform(T * NH * HS, 8);
        v.AsSpan(0, first * KD).Fill(float.NaN);
        var seg = Enumerable.Range(0, T).Select(t => t < first ? 0 : 1).ToArray();
        var o = new float[T * NH * HS];
        var lse = new float[NH * T];
        float[] dq = new float[T * NH * HS], dk = new float[T * KD], dv = new float[T * KD];
        Attention.Forward(q, k, v, [], seg, o, lse, 1, T, T, NH, NKV, HS, scale);
        Attention.Backward(dOut, q, k, v, o, lse, [], seg, dq, dk, dv, 1, T, T, NH, NKV, HS, scale);
        int QD = NH * HS;
        Assert.All(o.AsSpan(first * QD).ToArray(), x => Assert.True(float.IsFinite(x)));
        Assert.All(dq.AsSpan(first * QD).ToArray(), x => Assert.True(float.IsFinite(x)));
        Assert.All(dk.AsSpan(first * KD).ToArray(), x => Assert.True(float.IsFinite(x)));
        Assert.All(dv.AsSpan(first * KD).ToArray(), x => Assert.True(float.IsFinite(x)));
        // Decoding path (Tq <= 8): the last query alone, against the whole cache.
        var o1 = new float[QD];
        Attention.Forward(q.AsSpan((T - 1) * QD, QD), k, v, [], seg, o1, new float[NH], 1, 1, T, NH, NKV, HS, scale);
        TestData.AssertClose(o1, o.AsSpan((T - 1) * QD, QD), 1e-6, 1e-5, "row path");
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void ChunkedPrefill_TqBelowTk_WithSegments_MatchesReference(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        // The last 70 of 300 positions are queries; segments (runs up to 90) straddle the query start.
        int B = 2, Tq = 70, Tk = 300, NH = 6, NKV = 2, HS = 16;
        float scale = 1f / MathF.Sqrt(HS);
        var seg = RandomSegments(B, Tk, new Random(3), 90);
        int qLen = B * Tq * NH * HS, kLen = B * Tk * NKV * HS;
        float[] q = TestData.Uniform(qLen, 1, 1.5f), k = TestData.Uniform(kLen, 2, 1.5f), v = TestData.Uniform(kLen, 3), dOut = TestData.Uniform(qLen, 4);
        Result Go(bool reference)
        {
            float[] o = new float[qLen], lse = new float[B * NH * Tq], dq = new float[qLen], dk = new float[kLen], dv = new float[kLen];
            if (reference)
            {
                Attention.Reference.Forward(q, k, v, [], seg, o, lse, B, Tq, Tk, NH, NKV, HS, scale);
                Attention.Reference.Backward(dOut, q, k, v, o, lse, [], seg, dq, dk, dv, B, Tq, Tk, NH, NKV, HS, scale);
            }
            else
            {
                Attention.Forward(q, k, v, [], seg, o, lse, B, Tq, Tk, NH, NKV, HS, scale);
                Attention.Backward(dOut, q, k, v, o, lse, [], seg, dq, dk, dv, B, Tq, Tk, NH, NKV, HS, scale);
            }
            return new Result(o, lse, dq, dk, dv);
        }
        AssertMatches(Go(false), Go(true), $"{level} Tq={Tq} Tk={Tk}");
    }

    [Fact]
    public void SegmentedBackward_OneAndTwoThreads_GiveBitIdenticalResults()
    {
        // A packed row long enough for several backward chunks (of whole segments), so the threads share one row.
        var rng = new Random(8);
        var c = new Case(1, 1100, 6, 3, 16, 0, RandomSegments(1, 1100, rng, 300), []);
        Result one, two = default!;
        using (Threads.Limit(1)) one = Run(c, 40, reference: false, c.Seg);
        TestSupport.TwoThreads.Run(() => two = Run(c, 40, reference: false, c.Seg));
        Assert.Equal(one.Out, two.Out);
        Assert.Equal(one.DQ, two.DQ);
        Assert.Equal(one.DK, two.DK);
        Assert.Equal(one.DV, two.DV);
        AssertMatches(one, Run(c, 40, reference: true, c.Seg), "packed row of 1100");
    }

    [Fact]
    public void EmptySegmentIds_EqualTheUnsegmentedCallBitForBit()
    {
        var c = new Case(2, 130, 8, 4, 16, 0, [], [.. Enumerable.Range(0, 260).Select(i => (byte)(i % 130 < 100 ? 1 : 0))]);
        float[] q = TestData.Uniform(c.QLen, 1, 1.5f), k = TestData.Uniform(c.KLen, 2, 1.5f), v = TestData.Uniform(c.KLen, 3), dOut = TestData.Uniform(c.QLen, 4);
        float[] o1 = new float[c.QLen], o2 = new float[c.QLen], l1 = new float[c.B * c.NH * c.T], l2 = new float[c.B * c.NH * c.T];
        float[] dq1 = new float[c.QLen], dq2 = new float[c.QLen], dk1 = new float[c.KLen], dk2 = new float[c.KLen], dv1 = new float[c.KLen], dv2 = new float[c.KLen];
        Attention.Forward(q, k, v, c.Mask, o1, l1, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale);
        Attention.Forward(q, k, v, c.Mask, [], o2, l2, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale);
        Attention.Backward(dOut, q, k, v, o1, l1, c.Mask, dq1, dk1, dv1, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale);
        Attention.Backward(dOut, q, k, v, o2, l2, c.Mask, [], dq2, dk2, dv2, c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale);
        Assert.Equal(o1, o2);
        Assert.Equal(l1, l2);
        Assert.Equal(dq1, dq2);
        Assert.Equal(dk1, dk2);
        Assert.Equal(dv1, dv2);
        // One segment per row is the same thing as no ids.
        var one = new int[c.B * c.T];
        var o3 = new float[c.QLen];
        Attention.Forward(q, k, v, c.Mask, one, o3, new float[l1.Length], c.B, c.T, c.T, c.NH, c.NKV, c.HS, c.Scale);
        Assert.Equal(o1, o3);
    }

    [Fact]
    public void SegmentedCall_SecondTime_AllocatesNothing()
    {
        int T = 700, NH = 4, NKV = 2, HS = 16;
        float scale = 1f / MathF.Sqrt(HS);
        var seg = RandomSegments(1, T, new Random(2), 200);
        float[] q = TestData.Uniform(T * NH * HS, 1), k = TestData.Uniform(T * NKV * HS, 2), v = TestData.Uniform(T * NKV * HS, 3);
        float[] o = new float[q.Length], lse = new float[NH * T], dq = new float[q.Length], dk = new float[k.Length], dv = new float[k.Length];
        void Call()
        {
            Attention.Forward(q, k, v, [], seg, o, lse, 1, T, T, NH, NKV, HS, scale);
            Attention.Backward(o, q, k, v, o, lse, [], seg, dq, dk, dv, 1, T, T, NH, NKV, HS, scale);
        }
        Call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Call();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void BadSegmentIds_AreRefusedWithTheRowAndPosition()
    {
        int T = 5, NH = 2, NKV = 1, HS = 4;
        float[] q = new float[T * NH * HS], k = new float[T * NKV * HS], v = new float[T * NKV * HS], o = new float[T * NH * HS], lse = new float[NH * T];
        var e = Assert.Throws<ArgumentException>(() => Attention.Forward(q, k, v, [], [0, 0, 1, 0, 1], o, lse, 1, T, T, NH, NKV, HS, 1f));
        Assert.Contains("non-decreasing", e.Message);
        Assert.Contains("row 0 has 1 at position 2 and 0 at 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => Attention.Reference.Forward(q, k, v, [], [0, 0, 1], o, lse, 1, T, T, NH, NKV, HS, 1f));
        Assert.Contains("segmentIds has 3", e.Message);
    }
}
