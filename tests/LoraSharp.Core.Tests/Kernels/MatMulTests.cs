// MatMul: fast kernels vs the scalar reference for every layout, SIMD level and odd size; guards after outputs;
// 1 vs 2 threads and every SIMD width bit-identical; bf16 packing; shape errors; finite-difference gradients.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public class MatMulTests
{
    public enum Layout { ForwardPacked, BackwardInputPacked, ForwardUnpacked, BackwardInputUnpacked, BackwardWeight }

    private const float Guard = 12345.5f;
    private const int GuardCount = 7;

    // (M, K, N): tails of the 6-row and 32-column tiles, K past one 256 reduction block, skinny LoRA shapes.
    public static readonly TheoryData<int, int, int> Sizes = new()
    {
        { 1, 1, 1 }, { 3, 17, 33 }, { 17, 33, 3 }, { 33, 3, 17 }, { 64, 64, 64 }, { 1, 257, 65 },
        { 257, 33, 31 }, { 13, 600, 40 }, { 70, 8, 100 }, { 100, 96, 8 }, { 6, 513, 32 },
    };

    public static IEnumerable<object[]> LevelsAndLayouts()
    {
        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128, SimdLevel.Scalar })
            foreach (var layout in Enum.GetValues<Layout>())
                yield return [level, layout];
    }

    /// <summary>Inputs for one case; the output array has guards after the M*N (or M*K, N*K) elements.</summary>
    private sealed class Case
    {
        public readonly int M, K, N;
        public readonly float[] X, W, dY;
        public readonly PackedWeight Packed;

        public Case(int m, int k, int n, int seed, PackedWeight? packed = null)
        {
            M = m; K = k; N = n;
            X = TestData.Uniform(m * k, seed);
            W = TestData.Uniform(n * k, seed + 1);
            dY = TestData.Uniform(m * n, seed + 2);
            Packed = packed ?? PackedWeight.FromF32(W, n, k);
        }

        public int OutLength(Layout l) => l switch
        {
            Layout.ForwardPacked or Layout.ForwardUnpacked => M * N,
            Layout.BackwardWeight => N * K,
            _ => M * K,
        };

        /// <summary>A start value for the output (backward layouts add into it) followed by guards.</summary>
        public float[] Output(Layout l, int seed)
        {
            int n = OutLength(l);
            var o = new float[n + GuardCount];
            TestData.Uniform(n, seed).CopyTo(o, 0);
            o.AsSpan(n).Fill(Guard);
            return o;
        }

        public void Fast(Layout l, float[] o, bool accumulate)
        {
            var y = o.AsSpan(0, OutLength(l));
            switch (l)
            {
                case Layout.ForwardPacked: MatMul.Forward(X, Packed, y, M, accumulate); break;
                case Layout.BackwardInputPacked: MatMul.BackwardInput(dY, Packed, y, M); break;
                case Layout.ForwardUnpacked: MatMul.Forward(X, W, y, M, K, N, accumulate); break;
                case Layout.BackwardInputUnpacked: MatMul.BackwardInput(dY, W, y, M, N, K); break;
                default: MatMul.BackwardWeight(dY, X, y, M, N, K); break;
            }
        }

        public void Reference(Layout l, float[] o, bool accumulate)
        {
            var y = o.AsSpan(0, OutLength(l));
            switch (l)
            {
                case Layout.ForwardPacked or Layout.ForwardUnpacked: MatMul.Reference.Forward(X, W, y, M, K, N, accumulate); break;
                case Layout.BackwardInputPacked or Layout.BackwardInputUnpacked: MatMul.Reference.BackwardInput(dY, W, y, M, N, K); break;
                default: MatMul.Reference.BackwardWeight(dY, X, y, M, N, K); break;
            }
        }

        public int Depth(Layout l) => l switch
        {
            Layout.ForwardPacked or Layout.ForwardUnpacked => K,
            Layout.BackwardWeight => M,
            _ => N,
        };
    }

    private static void AssertGuards(float[] o, int n)
    {
        for (int i = n; i < o.Length; i++) Assert.True(o[i] == Guard, $"guard {i - n} after the output was overwritten with {o[i]}");
    }

    [Theory]
    [MemberData(nameof(LevelsAndLayouts))]
    public void Fast_MatchesReference_OverOddSizes(SimdLevel level, Layout layout)
    {
        foreach (var row in Sizes)
        {
            int m = (int)row[0], k = (int)row[1], n = (int)row[2];
            var c = new Case(m, k, n, seed: m * 1000 + k * 10 + n);
            foreach (bool accumulate in new[] { false, true })
            {
                if (!accumulate && layout is not (Layout.ForwardPacked or Layout.ForwardUnpacked)) continue;
                var expected = c.Output(layout, 99);
                var actual = (float[])expected.Clone();
                c.Reference(layout, expected, accumulate);
                using (Simd.Force(level)) c.Fast(layout, actual, accumulate);
                int len = c.OutLength(layout);
                AssertGuards(actual, len);
                if (level == SimdLevel.Scalar)
                    Assert.Equal(expected, actual);   // the scalar path performs the reference's operations
                else
                    TestData.AssertClose(actual.AsSpan(0, len), expected.AsSpan(0, len), atol: 2e-6 * c.Depth(layout) + 1e-6, rtol: 1e-5,
                        what: $"{layout} {level} M={m} K={k} N={n} accumulate={accumulate}");
            }
        }
    }

    // LoRA's A and B at decode (M <= 4, small unpacked W) take one dot product per output (RowDotDriver), every
    // reduction length through the 16-, 8-wide and scalar parts of the dot; these match the reference to rounding.
    [Theory]
    [InlineData(SimdLevel.V512)]
    [InlineData(SimdLevel.V256)]
    public void FewRowsUnpackedForward_MatchesReference_EveryReductionLength(SimdLevel level)
    {
        foreach (int m in new[] { 1, 2, 4 })
            foreach (int k in new[] { 1, 7, 8, 9, 16, 17, 25, 33, 576 })
                foreach (int n in new[] { 1, 8, 37 })
                    foreach (bool accumulate in new[] { false, true })
                    {
                        var c = new Case(m, k, n, seed: 31 * k + n);
                        var expected = c.Output(Layout.ForwardUnpacked, 3);
                        var actual = (float[])expected.Clone();
                        c.Reference(Layout.ForwardUnpacked, expected, accumulate);
                        using (Simd.Force(level)) c.Fast(Layout.ForwardUnpacked, actual, accumulate);
                        AssertGuards(actual, m * n);
                        TestData.AssertClose(actual.AsSpan(0, m * n), expected.AsSpan(0, m * n), atol: 2e-6 * k + 1e-6, rtol: 1e-5,
                            what: $"{level} M={m} K={k} N={n} accumulate={accumulate}");
                    }
    }

    [Theory]
    [InlineData(Layout.ForwardPacked)]
    [InlineData(Layout.BackwardInputPacked)]
    [InlineData(Layout.ForwardUnpacked)]
    [InlineData(Layout.BackwardInputUnpacked)]
    [InlineData(Layout.BackwardWeight)]
    public void OneAndTwoThreads_AndEverySimdWidth_AreBitIdentical(Layout layout)
    {
        // Odd shapes for the tails, each with enough work (>= 2 x 4 MFLOP, Threads.ForFlops) to split across two threads.
        foreach (var (m, k, n) in new[] { (67, 300, 250), (257, 33, 600), (12, 520, 900) })
        {
            var c = new Case(m, k, n, seed: 7);
            var one = c.Output(layout, 5);
            var two = (float[])one.Clone();
            var v256 = (float[])one.Clone();
            var v128 = (float[])one.Clone();
            using (Threads.Limit(1)) c.Fast(layout, one, accumulate: true);
            TestSupport.TwoThreads.Run(() => c.Fast(layout, two, accumulate: true));
            using (Simd.Force(SimdLevel.V256)) c.Fast(layout, v256, accumulate: true);
            using (Simd.Force(SimdLevel.V128)) c.Fast(layout, v128, accumulate: true);
            Assert.Equal(one, two);
            if (Simd.Level == SimdLevel.V512)
            {
                Assert.Equal(one, v256);
                Assert.Equal(one, v128);
            }
        }
    }

    // The f32 backward panels are packed from the forward panels per reduction block (32 x 32 transposes; blocks cut
    // mid-panel by the reduction split or the edges go element by element), a chunk of at most 40 panels at a time.
    // (20, 1400, 1700): 3 reduction blocks of 567/567/566 rows (unaligned), 44 panels of which the last has 24 columns.
    // The result must equal the same product over the row-major W (packed by plain copies) bit for bit, on 1 and 2
    // threads and every SIMD width; and a bf16 weight decoded inside the forward over 47 panels must equal the f32
    // panels of its widened values.
    [Fact]
    public void PackedBackwardInput_FromForwardPanels_EqualsRowMajorProduct_OverChunksAndUnalignedBlocks()
    {
        const int M = 20, K = 1400, N = 1700;
        var c = new Case(M, K, N, seed: 11);
        var expected = c.Output(Layout.BackwardInputUnpacked, 4);
        var start = (float[])expected.Clone();
        using (Threads.Limit(1)) c.Fast(Layout.BackwardInputUnpacked, expected, accumulate: true);
        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128 })
            foreach (int threads in new[] { 1, 2 })
            {
                var actual = (float[])start.Clone();
                using (Threads.Limit(threads))
                using (Simd.Force(level))
                    c.Fast(Layout.BackwardInputPacked, actual, accumulate: true);
                AssertGuards(actual, M * K);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{level}, {threads} thread(s): packed backward differs from the row-major product");
            }
        Assert.Equal((long)(N + 28) * K * 4, c.Packed.Bytes);   // one copy: forward panels only, N rounded up to 32
    }

    [Fact]
    public void StoredBf16Forward_OverManyPanelChunks_EqualsF32PanelsOfTheWidenedWeight()
    {
        const int M = 30, K = 300, N = 1500;
        var w = TestData.Uniform(N * K, 5);
        var bits = new ushort[N * K];
        Bf16.FromFloatScalar(w, bits);
        var widened = new float[N * K];
        for (int i = 0; i < widened.Length; i++) widened[i] = Bf16.ToFloat(bits[i]);
        using var stored = Tensor.Zeros(DType.BF16, N, K);
        bits.CopyTo(stored.AsSpan<ushort>());
        var decoded = PackedWeight.FromStored(stored);
        var f32 = PackedWeight.FromF32(widened, N, K);
        var x = TestData.Uniform(M * K, 6);
        var expected = new float[M * N];
        MatMul.Forward(x, f32, expected, M);
        foreach (int threads in new[] { 1, 2 })
        {
            var actual = new float[M * N];
            using (Threads.Limit(threads)) MatMul.Forward(x, decoded, actual, M);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{threads} thread(s): decoded bf16 forward differs from f32 panels");
        }
    }

    // A tied f32 embedding lives only in the output projection's panels: the lookup gathers rows from them (and from
    // a compressed weight's decoded rows); both must give W's rows exactly, including rows of the last, partial panel.
    [Fact]
    public void GatherRows_ReturnsTheWeightsRows_FromF32PanelsAndStoredBf16()
    {
        const int N = 70, K = 45;
        var w = TestData.Uniform(N * K, 9);
        var bits = new ushort[N * K];
        Bf16.FromFloatScalar(w, bits);
        using var stored = Tensor.Zeros(DType.BF16, N, K);
        bits.CopyTo(stored.AsSpan<ushort>());
        int[] ids = [0, 69, 31, 32, 64, 5, 69];
        foreach (var (packed, row) in new (PackedWeight, Func<int, int, float>)[]
                 {
                     (PackedWeight.FromF32(w, N, K), (n, k) => w[n * K + k]),
                     (PackedWeight.FromStored(stored), (n, k) => Bf16.ToFloat(bits[n * K + k])),
                 })
        {
            var x = new float[ids.Length * K];
            packed.GatherRows(ids, x);
            for (int i = 0; i < ids.Length; i++)
                for (int k = 0; k < K; k++)
                    Assert.Equal(row(ids[i], k), x[i * K + k]);
            Assert.Throws<ArgumentOutOfRangeException>(() => packed.GatherRows([N], new float[K]));
        }
    }

    // PiSSA/OLoRA subtract their principal part from the frozen f32 panels in place: the forward AND the backward
    // (whose panels are transposed from the forward ones) must both see the changed rows, the partial last panel too.
    [Fact]
    public void AddToRow_ChangesF32PanelsInPlace_ForwardAndBackwardSeeIt_StoredRefuses()
    {
        const int M = 5, N = 70, K = 45;
        var w = TestData.Uniform(N * K, 21);
        var packed = PackedWeight.FromF32(w, N, K);
        var delta = TestData.Uniform(K, 22);
        foreach (int n in new[] { 0, 33, 69 })
        {
            packed.AddToRow(n, delta);
            for (int k = 0; k < K; k++) w[n * K + k] += delta[k];
        }
        var x = TestData.Uniform(M * K, 23);
        var dy = TestData.Uniform(M * N, 24);
        var y = new float[M * N];
        var yRef = new float[M * N];
        MatMul.Forward(x, packed, y, M);
        MatMul.Reference.Forward(x, w, yRef, M, K, N);
        TestData.AssertClose(y, yRef, atol: 1e-5, rtol: 1e-5, what: "forward after AddToRow");
        var dx = new float[M * K];
        var dxRef = new float[M * K];
        MatMul.BackwardInput(dy, packed, dx, M);
        MatMul.Reference.BackwardInput(dy, w, dxRef, M, N, K);
        TestData.AssertClose(dx, dxRef, atol: 1e-5, rtol: 1e-5, what: "backward input after AddToRow");

        using var stored = Tensor.Zeros(DType.BF16, N, K);
        var ex = Assert.Throws<InvalidOperationException>(() => PackedWeight.FromStored(stored).AddToRow(0, delta));
        Assert.Contains("BF16", ex.Message);
        Assert.Throws<ArgumentException>(() => packed.AddToRow(0, new float[K - 1]));
    }

    [Fact]
    public void FromBf16_WidensWhilePacking_MatchesReferenceOnWidenedWeights()
    {
        const int m = 19, k = 70, n = 45;
        var w = TestData.Uniform(n * k, 3);
        var bits = new ushort[w.Length];
        Bf16.FromFloat(w, bits);
        var widened = new float[w.Length];
        Bf16.ToFloat(bits, widened);
        var x = TestData.Uniform(m * k, 4);
        var dy = TestData.Uniform(m * n, 5);
        var packed = PackedWeight.FromBf16(bits, n, k);
        Assert.Equal((n, k), (packed.N, packed.K));

        var y = new float[m * n];
        var yRef = new float[m * n];
        MatMul.Forward(x, packed, y, m);
        MatMul.Reference.Forward(x, widened, yRef, m, k, n);
        TestData.AssertClose(y, yRef, atol: 1e-4, rtol: 1e-5, what: "bf16 forward");

        var dx = new float[m * k];
        var dxRef = new float[m * k];
        MatMul.BackwardInput(dy, packed, dx, m);
        MatMul.Reference.BackwardInput(dy, widened, dxRef, m, n, k);
        TestData.AssertClose(dx, dxRef, atol: 1e-4, rtol: 1e-5, what: "bf16 backward input");
    }

    [Fact]
    public void ZeroDepth_OverwritesWithZeros_OrLeavesAccumulatorAlone()
    {
        var y = new float[] { 1, 2, 3, 4, 5, 6 };
        MatMul.Forward([], [], y, 2, 0, 3, accumulate: true);
        Assert.Equal([1f, 2, 3, 4, 5, 6], y);
        MatMul.Forward([], [], y, 2, 0, 3);
        Assert.All(y, v => Assert.Equal(0f, v));
        MatMul.Forward([], PackedWeight.FromF32([1f, 2, 3], 3, 1), Span<float>.Empty, 0);   // M = 0 is a no-op
    }

    [Fact]
    public void ShapeMismatch_ThrowsArgumentException_NamingBothShapes()
    {
        var packed = PackedWeight.FromF32(new float[3 * 5], 3, 5);
        var e = Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[4 * 6], packed, new float[4 * 3], 4));
        Assert.Contains("X [M, K] = [4, 5]", e.Message);
        Assert.Contains("W [N, K] = [3, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => MatMul.BackwardInput(new float[4 * 3], packed, new float[4 * 4], 4));
        Assert.Contains("dX [M, K] = [4, 5]", e.Message);
        Assert.Contains("W [N, K] = [3, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[8], new float[7], new float[4], 2, 4, 2));
        Assert.Contains("W [N, K] = [2, 4]", e.Message);
        Assert.Contains("X [M, K] = [2, 4]", e.Message);
        e = Assert.Throws<ArgumentException>(() => MatMul.BackwardInput(new float[4], new float[8], new float[9], 2, 2, 4));
        Assert.Contains("dX [M, K] = [2, 4]", e.Message);
        e = Assert.Throws<ArgumentException>(() => MatMul.BackwardWeight(new float[4], new float[8], new float[9], 2, 2, 4));
        Assert.Contains("dW [N, K] = [2, 4]", e.Message);
        Assert.Contains("dY [M, N] = [2, 2]", e.Message);
        e = Assert.Throws<ArgumentException>(() => PackedWeight.FromF32(new float[14], 3, 5));
        Assert.Contains("[3, 5]", e.Message);
    }

    // L(X, W) = Σ G ⊙ (X·Wᵀ); dL/dX = G·W (BackwardInput), dL/dW = Gᵀ·X (BackwardWeight). Y is linear in X and W,
    // so central differences are exact up to rounding; h is large to keep that rounding small.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gradients_MatchCentralDifferences(bool fast)
    {
        const int m = 9, k = 40, n = 35;
        var x = TestData.Uniform(m * k, 11);
        var w = TestData.Uniform(n * k, 12);
        var g = TestData.Uniform(m * n, 13);
        var dx = new float[m * k];
        var dw = new float[n * k];
        var dxPacked = new float[m * k];
        if (fast)
        {
            MatMul.BackwardInput(g, w, dx, m, n, k);
            MatMul.BackwardInput(g, PackedWeight.FromF32(w, n, k), dxPacked, m);
            MatMul.BackwardWeight(g, x, dw, m, n, k);
        }
        else
        {
            MatMul.Reference.BackwardInput(g, w, dx, m, n, k);
            MatMul.Reference.BackwardWeight(g, x, dw, m, n, k);
            dxPacked = dx;
        }

        double Loss()
        {
            var y = new float[m * n];
            if (fast) MatMul.Forward(x, PackedWeight.FromF32(w, n, k), y, m);
            else MatMul.Reference.Forward(x, w, y, m, k, n);
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)g[i] * y[i];
            return s;
        }

        double tol = fast ? 2e-3 : 1e-4;
        var rng = new Random(14);
        for (int t = 0; t < 12; t++)
        {
            int i = rng.Next(m * k);
            Assert.InRange(Numeric(x, i) - dx[i], -tol, tol);
            Assert.InRange(dxPacked[i] - dx[i], -1e-5, 1e-5);
            int j = rng.Next(n * k);
            Assert.InRange(Numeric(w, j) - dw[j], -tol, tol);
        }

        double Numeric(float[] p, int i)
        {
            float saved = p[i];
            p[i] = saved + 0.25f;
            double plus = Loss();
            p[i] = saved - 0.25f;
            double minus = Loss();
            double h = (double)(saved + 0.25f) - (saved - 0.25f);
            p[i] = saved;
            return (plus - minus) / h;
        }
    }
}

public class MatMulOneRowTests
{
    // Decode runs one-row products through GemvDriver; they must equal the blocked GEMM (V128 path) bit for bit,
    // across two reduction blocks (K > 512) and a partial last panel.
    [Theory]
    [InlineData(600, 77, false)]
    [InlineData(600, 77, true)]
    [InlineData(64, 32, false)]
    [InlineData(1100, 1, true)]
    public void OneRowForward_EqualsBlockedGemmBitForBit(int K, int N, bool accumulate)
    {
        var x = LoraSharp.TestSupport.TestData.Uniform(K, 1);
        var w = LoraSharp.TestSupport.TestData.Uniform(N * K, 2);
        var packed = PackedWeight.FromF32(w, N, K);
        float[] Run(SimdLevel level)
        {
            var y = LoraSharp.TestSupport.TestData.Uniform(N, 3);
            using var _ = Simd.Force(level);
            MatMul.Forward(x, packed, y, 1, accumulate);
            return y;
        }
        var blocked = Run(SimdLevel.V128);
        Assert.Equal(blocked, Run(SimdLevel.V512));
        Assert.Equal(blocked, Run(SimdLevel.V256));
        var reference = LoraSharp.TestSupport.TestData.Uniform(N, 3);
        MatMul.Reference.Forward(x, w, reference, 1, K, N, accumulate);
        LoraSharp.TestSupport.TestData.AssertClose(blocked, reference, 1e-4, 1e-4);
    }
}

public class MatMulChainOrderTests
{
    // The fast path's documented summation order (GemmDriver.Chains): reduction blocks of at most 768, each summed as
    // up to 4 in-order fma chains of at least 16 terms, every chain after the first added onto C. An emulation in
    // scalar floats must match every SIMD width bit for bit; a single chain per block (the old order) does not.
    [Theory]
    [InlineData(9, 15, 33, false)]
    [InlineData(9, 64, 33, false)]
    [InlineData(9, 67, 40, true)]
    [InlineData(17, 600, 32, false)]
    [InlineData(3, 1100, 65, true)]
    public void Forward_SumsEachBlockAsUpToFourFmaChains(int M, int K, int N, bool accumulate)
    {
        var x = TestData.Uniform(M * K, 1);
        var w = TestData.Uniform(N * K, 2);
        var start = TestData.Uniform(M * N, 3);
        var packed = PackedWeight.FromF32(w, N, K);

        var expected = new float[M * N];
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
                expected[m * N + n] = ChainOrder.Emulate(K, 768, k => (x[m * K + k], w[n * K + k]), start[m * N + n], accumulate);

        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128 })
        {
            var y = (float[])start.Clone();
            using (Simd.Force(level)) MatMul.Forward(x, packed, y, M, accumulate);
            Assert.True(expected.AsSpan().SequenceEqual(y), $"{level}: the forward differs from the documented chain order");
        }
    }
}

public class MatMulNarrowWeightGradTests
{
    // BackwardWeight with fewer than 32 output columns (LoRA's dB, K = r) runs as dWᵀ = Xᵀ·dY. It must keep the
    // documented order: reduction blocks of at most 512 tokens (transposed A), up to 4 fma chains each, every chain
    // added onto dW; a scalar emulation of that order matches every SIMD width bit for bit.
    [Theory]
    [InlineData(1100, 40, 8)]
    [InlineData(64, 33, 4)]
    [InlineData(300, 100, 31)]
    public void NarrowDw_IsBitIdenticalToTheDocumentedOrder(int M, int N, int K)
    {
        var dy = TestData.Uniform(M * N, 1);
        var x = TestData.Uniform(M * K, 2);
        var start = TestData.Uniform(N * K, 3);
        var expected = new float[N * K];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++)
                expected[n * K + k] = ChainOrder.Emulate(M, 512, m => (dy[m * N + n], x[m * K + k]), start[n * K + k], accumulate: true);

        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128 })
        {
            var dw = (float[])start.Clone();
            using (Simd.Force(level)) MatMul.BackwardWeight(dy, x, dw, M, N, K);
            Assert.True(expected.AsSpan().SequenceEqual(dw), $"{level}: the narrow dW differs from the documented order");
        }
    }
}

public class MatMulOverwriteTests
{
    // BackwardInput with accumulate: false overwrites dX, whatever it held (LoRA's dz and du skip a clearing pass).
    [Theory]
    [InlineData(SimdLevel.V512)]
    [InlineData(SimdLevel.V256)]
    [InlineData(SimdLevel.V128)]
    [InlineData(SimdLevel.Scalar)]
    public void UnpackedBackwardInput_WithoutAccumulate_OverwritesDx(SimdLevel level)
    {
        const int M = 37, N = 8, K = 70;
        var dy = TestData.Uniform(M * N, 1);
        var w = TestData.Uniform(N * K, 2);
        var expected = new float[M * K];
        MatMul.Reference.BackwardInput(dy, w, expected, M, N, K);
        var dx = Enumerable.Repeat(float.NaN, M * K).ToArray();
        using (Simd.Force(level)) MatMul.BackwardInput(dy, w, dx, M, N, K, accumulate: false);
        TestData.AssertClose(dx, expected, 1e-5, 1e-5, $"{level}");
    }
}

/// <summary>The fast GEMM's documented summation order for one output element, in scalar floats.</summary>
internal static class ChainOrder
{
    /// <summary>
    /// Reduction blocks of at most <paramref name="kcMax"/> (split evenly), each summed as up to 4 in-order fma chains of
    /// at least 16 terms; the first chain is stored unless <paramref name="accumulate"/>, every other one added.
    /// </summary>
    public static float Emulate(int depth, int kcMax, Func<int, (float A, float B)> term, float start, bool accumulate)
    {
        float c = start;
        bool first = !accumulate;
        int blocks = (depth + kcMax - 1) / kcMax;
        for (int blk = 0; blk < blocks; blk++)
        {
            var (b0, b1) = Threads.Split(depth, blk, blocks);
            int chains = Math.Clamp((b1 - b0) / 16, 1, 4);
            for (int ch = 0; ch < chains; ch++)
            {
                var (s0, s1) = Threads.Split(b1 - b0, ch, chains);
                float acc = 0;
                for (int r = b0 + s0; r < b0 + s1; r++)
                {
                    var (a, b) = term(r);
                    acc = MathF.FusedMultiplyAdd(a, b, acc);
                }
                c = first ? acc : c + acc;
                first = false;
            }
        }
        return c;
    }
}
