// LoRA's fused row products: every SIMD level against the scalar twins bit for bit (odd shapes, every tail, dropout
// off / on / p = 1, the counter's low-word wrap), 1 vs 2 threads bit for bit, the mask equal to Dropout's, and the
// values against the blocked-GEMM composition they replace.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class LoraRowsTests
{
    private static readonly int[] Ms = [0, 1, 2, 3, 5, 9];
    private static readonly int[] Ks = [0, 1, 7, 15, 16, 17, 31, 33, 48, 100, 257];
    private static readonly int[] Rs = [1, 3, 4, 5, 8];
    private static readonly float[] Ps = [0f, 0.3f, 1f];

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void Project_EqualsReference_BitForBit(SimdLevel level)
    {
        foreach (int M in Ms)
            foreach (int K in Ks)
                foreach (int R in Rs)
                    foreach (float p in Ps)
                    {
                        var x = Uniform(M * K, M + 31 * K);
                        var w = Uniform(R * K, R + 7 * K);
                        int words = M * LoraRows.KeepWords(K);
                        var z = Uniform(M * R, 3);                       // garbage in: overwritten
                        var keep = Enumerable.Repeat(0xA5A5A5A5u, words).ToArray();
                        var zRef = new float[M * R];
                        var keepRef = new uint[words];
                        LoraRows.ProjectReference(x, w, zRef, M, K, R, 0.25f, p, 11, 5, keepRef);
                        using (Simd.Force(level)) LoraRows.Project(x, w, z, M, K, R, 0.25f, p, 11, 5, keep);
                        string at = $"{level} M {M} K {K} R {R} p {p}";
                        AssertBitwiseEqual(z, zRef, "z " + at);
                        if (p > 0) Assert.True(keep.AsSpan().SequenceEqual(keepRef), "keep bits " + at);
                    }
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ProjectBackward_EqualsReference_BitForBit(SimdLevel level)
    {
        foreach (int M in Ms)
            foreach (int K in Ks)
                foreach (int R in Rs)
                    foreach (float p in Ps)
                        foreach (var (withG, withDx) in new[] { (true, true), (true, false), (false, true) })
                        {
                            var c = Uniform(M * R, 1 + M);
                            var x = Uniform(M * K, 2 + K);
                            var w = Uniform(R * K, 3 + R);
                            var keep = new uint[M * LoraRows.KeepWords(K)];
                            if (p > 0) LoraRows.ProjectReference(x, w, new float[M * R], M, K, R, 1f, p, 21, 0, keep);
                            var g0 = withG ? Uniform(R * K, 4) : [];
                            var dx0 = withDx ? Uniform(M * K, 5) : [];
                            float[] g = (float[])g0.Clone(), dx = (float[])dx0.Clone(), gRef = (float[])g0.Clone(), dxRef = (float[])dx0.Clone();
                            LoraRows.ProjectBackwardReference(c, x, keep, p, w, gRef, dxRef, M, K, R);
                            using (Simd.Force(level)) LoraRows.ProjectBackward(c, x, keep, p, w, g, dx, M, K, R);
                            string at = $"{level} M {M} K {K} R {R} p {p} g {withG} dx {withDx}";
                            AssertBitwiseEqual(g, gRef, "g " + at);
                            AssertBitwiseEqual(dx, dxRef, "dx " + at);
                        }
    }

    [Fact]
    public void ProjectBackward_SeveralRowBlocks_EqualsReference_BitForBit()
    {
        // More rows than one 128-row block: g is the blocks' sums added in order, whichever thread ran which block.
        foreach (int M in new[] { 129, 300 })
            foreach (int K in new[] { 17, 64 })
                foreach (int R in new[] { 3, 8 })
                    foreach (float p in new[] { 0f, 0.3f })
                    {
                        var c = Uniform(M * R, 1);
                        var x = Uniform(M * K, 2);
                        var w = Uniform(R * K, 3);
                        var keep = new uint[M * LoraRows.KeepWords(K)];
                        if (p > 0) LoraRows.ProjectReference(x, w, new float[M * R], M, K, R, 1f, p, 8, 0, keep);
                        var g0 = Uniform(R * K, 4);
                        var dx0 = Uniform(M * K, 5);
                        float[] gRef = (float[])g0.Clone(), dxRef = (float[])dx0.Clone();
                        LoraRows.ProjectBackwardReference(c, x, keep, p, w, gRef, dxRef, M, K, R);
                        foreach (var level in new[] { SimdLevel.V256, SimdLevel.V512 })
                            foreach (int threads in new[] { 1, 2 })
                            {
                                float[] g = (float[])g0.Clone(), dx = (float[])dx0.Clone();
                                using (Simd.Force(level))
                                using (Threads.Limit(threads))
                                    LoraRows.ProjectBackward(c, x, keep, p, w, g, dx, M, K, R);
                                string at = $"{level} {threads} threads M {M} K {K} R {R} p {p}";
                                AssertBitwiseEqual(g, gRef, "g " + at);
                                AssertBitwiseEqual(dx, dxRef, "dx " + at);
                            }
                    }
    }

    [Fact]
    public void Project_MaskIsDropouts_AcrossTheCountersLowWordWrap()
    {
        // Rows whose counters cross 2^32 run their wrapping 16 columns in the scalar fallback; the bits must be
        // Dropout.Forward's mask and the sums those of the dropped rows.
        int M = 6, K = 40, R = 3;
        long offset = uint.MaxValue - 100L;
        var x = Uniform(M * K, 9);
        for (int i = 0; i < x.Length; i++) if (x[i] == 0) x[i] = 1;   // a zero would hide its keep bit
        var w = Uniform(R * K, 10);
        var dropped = new float[M * K];
        Dropout.Forward(x, dropped, 0.4f, 77, offset);
        var zDropped = new float[M * R];
        LoraRows.ProjectReference(dropped, w, zDropped, M, K, R, 0.5f);
        foreach (var level in new[] { SimdLevel.Scalar, SimdLevel.V256, SimdLevel.V512 })
        {
            var z = new float[M * R];
            var keep = new uint[M * LoraRows.KeepWords(K)];
            using (Simd.Force(level)) LoraRows.Project(x, w, z, M, K, R, 0.5f, 0.4f, 77, offset, keep);
            AssertBitwiseEqual(z, zDropped, $"z {level}");
            for (int m = 0; m < M; m++)
                for (int k = 0; k < K; k++)
                {
                    bool bit = (keep[m * LoraRows.KeepWords(K) + (k >> 5)] & (1u << (k & 31))) != 0;
                    Assert.True(bit == (dropped[m * K + k] != 0), $"{level}: keep bit [{m}, {k}] is {bit}, Dropout kept {dropped[m * K + k] != 0}");
                }
        }
    }

    [Fact]
    public void BothKernels_OneAndTwoThreads_BitForBit()
    {
        int M = 300, K = 576, R = 8;
        var x = Uniform(M * K, 1);
        var w = Uniform(R * K, 2);
        var c = Uniform(M * R, 3);
        var dx0 = Uniform(M * K, 4);
        (float[] Z, uint[] Keep, float[] G, float[] Dx) Run()
        {
            var z = new float[M * R];
            var keep = new uint[M * LoraRows.KeepWords(K)];
            LoraRows.Project(x, w, z, M, K, R, 2f, 0.1f, 5, 0, keep);
            var g = new float[R * K];
            var dx = (float[])dx0.Clone();
            LoraRows.ProjectBackward(c, x, keep, 0.1f, w, g, dx, M, K, R);
            return (z, keep, g, dx);
        }
        (float[] Z, uint[] Keep, float[] G, float[] Dx) one, two = default;
        using (Threads.Limit(1)) one = Run();
        TwoThreads.Run(() => two = Run());
        AssertBitwiseEqual(two.Z, one.Z, "z");
        Assert.True(two.Keep.AsSpan().SequenceEqual(one.Keep), "keep bits");
        AssertBitwiseEqual(two.G, one.G, "g");
        AssertBitwiseEqual(two.Dx, one.Dx, "dx");
    }

    [Fact]
    public void Kernels_MatchTheBlockedGemmComposition()
    {
        // What Linear ran before: Dropout.Forward, MatMul.Forward with A, times the scale; for the backward
        // MatMul.BackwardWeight (dA += dzᵀ·u), MatMul.BackwardInput (du = dz·A) and Dropout.Backward (dx += mask·du).
        int M = 70, K = 200, R = 8;
        float p = 0.2f, s = 2f;
        var x = Uniform(M * K, 1);
        var a = Uniform(R * K, 2);
        var u = new float[M * K];
        Dropout.Forward(x, u, p, 3, 0);
        var zGemm = new float[M * R];
        MatMul.Forward(u, a, zGemm, M, K, R);
        for (int i = 0; i < zGemm.Length; i++) zGemm[i] *= s;
        var z = new float[M * R];
        var keep = new uint[M * LoraRows.KeepWords(K)];
        LoraRows.Project(x, a, z, M, K, R, s, p, 3, 0, keep);
        TestData.AssertClose(z, zGemm, 1e-5, 1e-5, "z");

        var dz = Uniform(M * R, 4);
        var dA0 = Uniform(R * K, 5);
        var dx0 = Uniform(M * K, 6);
        float[] dAGemm = (float[])dA0.Clone(), dxGemm = (float[])dx0.Clone(), du = new float[M * K];
        MatMul.BackwardWeight(dz, u, dAGemm, M, R, K);
        MatMul.BackwardInput(dz, a, du, M, R, K, accumulate: false);
        Dropout.Backward(du, dxGemm, p, 3, 0);
        float[] dA = (float[])dA0.Clone(), dx = (float[])dx0.Clone();
        LoraRows.ProjectBackward(dz, x, keep, p, a, dA, dx, M, K, R);
        TestData.AssertClose(dA, dAGemm, 1e-5, 1e-5, "dA");
        TestData.AssertClose(dx, dxGemm, 1e-5, 1e-5, "dx");
    }

    [Fact]
    public void BadShapes_AreRejectedWithTheShape()
    {
        var e = Assert.Throws<ArgumentException>(() => LoraRows.Project(new float[6], new float[4], new float[4], 2, 3, 2, 1f));
        Assert.Contains("w", e.Message);
        Assert.Throws<ArgumentException>(() => LoraRows.Project(new float[6], new float[6], new float[4], 2, 3, 2, 1f, 0.1f, 0, 0, new uint[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoraRows.Project(new float[6], new float[6], new float[4], 2, 3, 2, 1f, 1.5f, 0, 0, new uint[2]));
        Assert.Throws<ArgumentException>(() => LoraRows.ProjectBackward(new float[4], new float[6], [], 0f, new float[6], new float[6], new float[5], 2, 3, 2));
    }
}
