// The integer decode products (MatMul.Forward with q8Activations: X quantized to Q8_0, Q4_0/Q8_0 weights multiplied
// in integers, Q8Dot.cs): the quantizer follows ggml's quantize_row_q8_0; every SIMD path equals the scalar twin bit
// for bit at every block count (both tails); the scalar twin equals an independent double computation of the same
// quantized sum; the products stay within the activation-rounding bound of the float products; and everything
// else (other types, more than 4 rows, the flag off, a NaN in X) is the float path bit for bit.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Kernels.Gemm;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;
using System.Runtime.InteropServices;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public unsafe class Q8DecodeTests
{
    public static TheoryData<DType> Types => new(DType.Q4_0, DType.Q8_0);

    // The types MatMul.Forward takes the integer path for (StoredPanelSource.SupportsQ8Dot): Q4_0 only; Q8_0's kernel is
    // tested directly above but decode keeps its float products (faster there: bandwidth-bound).
    public static TheoryData<DType> ForwardTypes => new(DType.Q4_0);

    private static readonly SimdLevel[] VectorLevels = [SimdLevel.V512, SimdLevel.V256, SimdLevel.V128];

    // X quantized by Q8Row: its codes, scales and Q4_0 corrections (four a block) as managed arrays, and the scratch
    // that holds the row (for Q8Row.At).
    private static (sbyte[] Q, float[] D, int[] Off, bool Ok, float[] Scratch) Quantize(float[] x)
    {
        int K = x.Length;
        var buf = new float[Q8Row.Floats(K)];
        fixed (float* px = x, pb = buf)
        {
            var row = Q8Row.At(pb, K);
            bool ok = Q8Row.Quantize(px, K, row);
            var off = new int[K / 8];
            for (int b = 0; b < K / 32; b++) new Span<int>(row.Q4Offset(b), 4).CopyTo(off.AsSpan(4 * b));
            return (new Span<sbyte>(row.Q, K).ToArray(), new Span<float>(row.D, K / 32).ToArray(), off, ok, buf);
        }
    }

    [Fact]
    public void Quantize_FollowsGgmlQuantizeRowQ8_0()
    {
        var x = TestData.Uniform(32 * 7, 3, scale: 2f);
        x.AsSpan(32, 32).Clear();                  // an all-zero block: d = 0, q = 0
        x[70] = -5f;                               // a block whose max magnitude is negative
        var (q, d, off, ok, _) = Quantize(x);
        Assert.True(ok);
        for (int b = 0; b < 7; b++)
        {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = Math.Max(amax, Math.Abs(x[b * 32 + i]));
            Assert.Equal(amax / 127f, d[b]);
            float id = d[b] != 0 ? 1f / d[b] : 0f;
            for (int i = 0; i < 32; i++)
            {
                int k = b * 32 + i;
                Assert.Equal((int)MathF.Round(x[k] * id, MidpointRounding.ToEven), q[k]);
                Assert.InRange(q[k], -127, 127);
                Assert.True(Math.Abs(x[k] - d[b] * q[k]) <= 0.5001 * d[b], $"element {k}: {x[k]} vs {d[b] * q[k]}");
            }
            for (int j = 0; j < 4; j++)   // c_b,j: the codes of elements 4j..4j+3 and 16+4j..16+4j+3
            {
                int sum = 0;
                for (int i = 4 * j; i < 4 * j + 4; i++) sum += q[b * 32 + i] + q[b * 32 + 16 + i];
                Assert.Equal(8 * sum, off[b * 4 + j]);
            }
        }
        Assert.Equal(-127, q[70]);
        Assert.All(q.AsSpan(32, 32).ToArray(), v => Assert.Equal(0, v));
    }

    [Fact]
    public void Quantize_VectorPath_WritesTheScalarTwinsBytes()
    {
        foreach (int K in new[] { 32, 96, 128, 576, 1536, 2080 })
        {
            var x = TestData.Uniform(K, K, scale: 3f);
            x.AsSpan(32, Math.Min(32, K - 32)).Clear();              // an all-zero block (when K > 32)
            for (int i = 0; i < 32; i++) x[i] = i - 15.5f;            // block 0: amax 15.5, ties at x·id = k + 0.5 for even and odd k
            x[0] = 127f;                                              // d = 1, id = 1: x = 2.5 -> 2, 3.5 -> 4 (to even)
            x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f; x[4] = -0.5f; x[5] = 0.5f; x[6] = -127f;
            if (K >= 128) x[127] = 1e8f;                              // d·2^112 overflows: the grouped copy is marked unusable
            var scalar = new float[Q8Row.Floats(K)];
            var vector = new float[Q8Row.Floats(K)];
            scalar.AsSpan().Fill(float.NaN);
            vector.AsSpan().Fill(float.NaN);
            fixed (float* px = x, ps = scalar, pv = vector)
            {
                Assert.True(Q8Row.QuantizeScalar(px, K, Q8Row.At(ps, K)));
                Assert.True(Q8Row.Quantize(px, K, Q8Row.At(pv, K)));
                Assert.Equal(2, Q8Row.At(ps, K).Q[1]);
                Assert.Equal(4, Q8Row.At(ps, K).Q[2]);
                if (K >= 128) Assert.False(Q8Row.At(pv, K).Grouped);
                Assert.Equal(MemoryMarshal.AsBytes(scalar.AsSpan()).ToArray(), MemoryMarshal.AsBytes(vector.AsSpan()).ToArray());
                if (K >= 128) x[127] = 1f;                            // and again with every block grouped
                Assert.True(Q8Row.QuantizeScalar(px, K, Q8Row.At(ps, K)));
                Assert.True(Q8Row.Quantize(px, K, Q8Row.At(pv, K)));
                Assert.True(Q8Row.At(pv, K).Grouped);
            }
            Assert.Equal(MemoryMarshal.AsBytes(scalar.AsSpan()).ToArray(), MemoryMarshal.AsBytes(vector.AsSpan()).ToArray());
        }
    }

    [Fact]
    public void Quantize_NonFiniteInput_IsRefused()
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var x = TestData.Uniform(64, 1);
            x[40] = bad;
            Assert.False(Quantize(x).Ok, $"{bad} accepted");
            var scratch = new float[Q8Row.Floats(64)];
            fixed (float* px = x, ps = scratch) Assert.False(Q8Row.QuantizeScalar(px, 64, Q8Row.At(ps, 64)), $"{bad} accepted by the scalar twin");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryPath_EqualsTheScalarTwin_AndTheScalarTwinEqualsDouble(DType type)
    {
        int bb = DTypeInfo.BlockBytes(type);
        foreach (int blocks in new[] { 1, 2, 3, 4, 5, 7, 8, 9, 18, 33, 48 })
        {
            int K = blocks * 32;
            var w = QuantTestData.RandomBlocks(type, blocks, seed: blocks, amplitude: 0.5);
            var x = TestData.Uniform(K, blocks + 100, scale: 3f);
            x[0] = 3f;                              // a code of exactly ±127
            var (q, d, _, _, scratch) = Quantize(x);
            var wf = new float[K];
            Dequant.DequantizeRowScalar(type, w, wf);
            fixed (byte* pw = w)
            fixed (float* ps = scratch)
            {
                var row = Q8Row.At(ps, K);
                float scalar = Q8Dot.DotScalar(type, pw, row, blocks);
                foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.Scalar })
                    Assert.Equal(scalar, Q8Dot.Dot(type, pw, row, blocks, level));

                // The same quantized sum in double: Σ_b s_b Σ_i w_i q_i with w_i = dequantized weight / its scale.
                double exact = 0, magnitude = 0;
                for (int b = 0; b < blocks; b++)
                {
                    float dw = Fp16.ToFloat(BitConverter.ToUInt16(w, b * bb));
                    float s = dw * d[b];
                    for (int i = 0; i < 32; i++)
                    {
                        double term = (double)s * Math.Round(wf[b * 32 + i] / (double)dw) * q[b * 32 + i];
                        exact += term;
                        magnitude += Math.Abs(term);
                    }
                }
                Assert.True(Math.Abs(scalar - exact) <= 4e-6 * magnitude + 1e-30, $"{type} blocks={blocks}: {scalar} vs {exact} (magnitude {magnitude})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(ForwardTypes))]
    public void Forward_IsTheSameOnEveryVectorLevelAndThreadCount_AndWithinTheActivationRoundingOfFloat(DType type)
    {
        foreach (var (m, blocks, n) in new[] { (1, 18, 70), (4, 3, 33), (2, 1, 5), (3, 48, 64) })
        {
            int k = blocks * 32;
            using var w = QuantTestData.RandomTensor(type, n, k, seed: m + n, amplitude: 0.5);
            var wf = QuantTestData.Dequantize(w);
            var packed = PackedWeight.FromStored(w);
            var x = TestData.Uniform(m * k, 7, scale: 2f);
            var yFloat = new float[m * n];
            MatMul.Forward(x, packed, yFloat, m);
            float[]? first = null;
            foreach (var level in VectorLevels)
                foreach (int threads in new[] { 1, 2 })
                {
                    using var _ = Simd.Force(level);
                    using var __ = Threads.Limit(threads);
                    var y = new float[m * n];
                    MatMul.Forward(x, packed, y, m, q8Activations: true);
                    first ??= y;
                    Assert.True(first.AsSpan().SequenceEqual(y), $"{type} M={m} K={k} N={n}: {level}, {threads} threads differs from the first run");
                }
            Assert.False(first!.AsSpan().SequenceEqual(yFloat), "the integer path was not taken");

            // |Δy[i, j]| ≤ Σ_b (d_b / 2) Σ_i∈b |W[j, i]|: each activation moves by at most half its block's step.
            for (int i = 0; i < m; i++)
            {
                var (_, d, _, _, _) = Quantize(x[(i * k)..((i + 1) * k)]);
                for (int j = 0; j < n; j++)
                {
                    double bound = 0, mag = 0;
                    for (int r = 0; r < k; r++)
                    {
                        bound += d[r / 32] / 2 * Math.Abs(wf[j * k + r]);
                        mag += Math.Abs(wf[j * k + r] * x[i * k + r]);
                    }
                    double diff = Math.Abs(first![i * n + j] - yFloat[i * n + j]);
                    Assert.True(diff <= bound + 1e-5 * mag, $"{type} M={m} K={k} row {i} col {j}: |Δ| {diff} > bound {bound}");
                }
            }
        }
    }

    [Fact]
    public void Forward_WithQ8Activations_LeavesEveryOtherCaseOnTheFloatPath()
    {
        var x = TestData.Uniform(6 * 256, 3);
        foreach (var type in QuantTestData.StoredTypes)
        {
            int k = DTypeInfo.BlockSize(type) == 1 ? 64 : Math.Max(64, DTypeInfo.BlockSize(type));
            using var w = QuantTestData.RandomTensor(type, 40, k, seed: 5, amplitude: 0.5);
            var packed = PackedWeight.FromStored(w);
            foreach (int m in new[] { 1, 5, 6 })
            {
                if (m <= DecodedGemv.MaxRows && Q8Dot.Supports(type)) continue;   // the integer path's own case
                var a = new float[m * 40];
                var b = new float[m * 40];
                MatMul.Forward(x.AsSpan(0, m * k), packed, a, m);
                MatMul.Forward(x.AsSpan(0, m * k), packed, b, m, q8Activations: true);
                Assert.True(a.AsSpan().SequenceEqual(b), $"{type} M={m}: q8Activations changed a product it must not touch");
            }
        }
        using var _ = Simd.Force(SimdLevel.Scalar);   // the scalar level is the exact reference: never quantized
        using var q4 = QuantTestData.RandomTensor(DType.Q4_0, 40, 64, seed: 5, amplitude: 0.5);
        var pq4 = PackedWeight.FromStored(q4);
        var ya = new float[40];
        var yb = new float[40];
        MatMul.Forward(x.AsSpan(0, 64), pq4, ya, 1);
        MatMul.Forward(x.AsSpan(0, 64), pq4, yb, 1, q8Activations: true);
        Assert.Equal(ya, yb);
    }

    [Fact]
    public void Forward_NaNInX_TakesTheFloatPath()
    {
        using var w = QuantTestData.RandomTensor(DType.Q4_0, 40, 64, seed: 5, amplitude: 0.5);
        var packed = PackedWeight.FromStored(w);
        var x = TestData.Uniform(64, 3);
        x[10] = float.NaN;
        var a = new float[40];
        var b = new float[40];
        MatMul.Forward(x, packed, a, 1);
        MatMul.Forward(x, packed, b, 1, q8Activations: true);
        Assert.Equal(a, b);
        Assert.All(b, v => Assert.True(float.IsNaN(v)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ForwardShared_WithQ8Activations_EqualsSeparateForwards(int M)
    {
        const int K = 128;
        using var w0 = QuantTestData.RandomTensor(DType.Q4_0, 70, K, seed: 1, amplitude: 0.5);
        using var w1 = QuantTestData.RandomTensor(DType.Q8_0, 33, K, seed: 2, amplitude: 0.5);
        using var w2 = QuantTestData.RandomTensor(DType.NF4, 33, K, seed: 3, amplitude: 0.5);   // float products in the same region
        var ws = new[] { PackedWeight.FromStored(w0), PackedWeight.FromStored(w1), PackedWeight.FromStored(w2) };
        var x = TestData.Uniform(M * K, 4);
        foreach (var level in VectorLevels)
        {
            using var _ = Simd.Force(level);
            var separate = ws.Select(w => { var y = new float[M * w.N]; MatMul.Forward(x, w, y, M, q8Activations: true); return y; }).ToArray();
            var shared = ws.Select(w => new float[M * w.N]).ToArray();
            MatMul.ForwardShared(x, M, ws[0], shared[0], ws[1], shared[1], ws[2], shared[2], q8Activations: true);
            for (int i = 0; i < 3; i++) Assert.True(separate[i].AsSpan().SequenceEqual(shared[i]), $"M={M} {level}: product {i}");
        }
    }

    [Fact]
    public void Forward_Accumulate_AddsTheIntegerProduct()
    {
        using var w = QuantTestData.RandomTensor(DType.Q4_0, 33, 64, seed: 8, amplitude: 0.5);
        var packed = PackedWeight.FromStored(w);
        var x = TestData.Uniform(2 * 64, 9);
        var y = new float[2 * 33];
        MatMul.Forward(x, packed, y, 2, q8Activations: true);
        var acc = TestData.Uniform(2 * 33, 10);
        var expected = acc.Zip(y, (a, b) => a + b).ToArray();
        MatMul.Forward(x, packed, acc, 2, accumulate: true, q8Activations: true);
        Assert.Equal(expected, acc);
    }

    // ---- Several rows a pass (StoredPanelSource.DotRowsQ8 -> Q8Dot.DotRowsQ4_0G512 for Q4_0 at V512) ----

    // y[n] of DotRowsQ8 over rows [0, N) against DotScalar per row, for every rows-a-pass setting and SIMD width.
    private static void AssertRowsEqualScalarTwin(DType type, Tensor w, float[] x, string what)
    {
        int N = w.Shape[0], K = w.Shape[1], blocks = K / 32;
        long rowBytes = DTypeInfo.ByteCount(type, K);
        var scratch = new float[Q8Row.Floats(K) + 16];
        scratch.AsSpan().Fill(float.NaN);   // stale bytes, as in a reused buffer: the row must not read what Quantize did not write
        fixed (float* px = x, ps = scratch)
        {
            float* aligned = (float*)(((nint)ps + 63) & ~(nint)63);
            var row = Q8Row.At(aligned, K);
            Assert.True(Q8Row.Quantize(px, K, row));
            var expected = new float[N];
            for (int n = 0; n < N; n++) expected[n] = Q8Dot.DotScalar(type, (byte*)w.Pointer + n * rowBytes, row, blocks);
            var src = new StoredPanelSource(w, owned: false);
            int saved = StoredPanelSource.GroupedRows;
            bool savedPaired = StoredPanelSource.PairedRows;
            try
            {
                foreach (int rows in new[] { 4, 2, 1, 0 })
                    foreach (bool paired in new[] { true, false })
                    foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.Scalar })
                    {
                        StoredPanelSource.GroupedRows = rows;
                        StoredPanelSource.PairedRows = paired;
                        var y = new float[N + 1];
                        y[N] = 12345f;   // a sentinel past the last row
                        fixed (float* py = y) src.DotRowsQ8(0, N, row, py, level);
                        for (int n = 0; n < N; n++)
                            Assert.True(BitConverter.SingleToInt32Bits(expected[n]) == BitConverter.SingleToInt32Bits(y[n]),
                                $"{what} {type} N={N} blocks={blocks} rows a pass {rows} paired {paired} {level}: row {n} {y[n]} vs scalar {expected[n]}");
                        Assert.Equal(12345f, y[N]);
                    }
            }
            finally
            {
                StoredPanelSource.GroupedRows = saved;
                StoredPanelSource.PairedRows = savedPaired;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DotRowsQ8_EveryRowCountAndBlockCount_EqualsTheScalarTwinPerRow(DType type)
    {
        foreach (int blocks in new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 18, 48 })
            for (int N = 1; N <= 9; N++)
            {
                int K = blocks * 32;
                using var w = QuantTestData.RandomTensor(type, N, K, seed: 31 * blocks + N, amplitude: 0.5);
                var x = TestData.Uniform(K, 1000 + blocks, scale: 3f);
                x[K - 1] = -3.5f;   // a code of exactly -127 in the last block
                AssertRowsEqualScalarTwin(type, w, x, "random");
            }
    }

    [Fact]
    public void DotRowsQ8_Q4_0ScalesOfEveryKind_EqualTheScalarTwin()
    {
        // f16 scales the grouped kernel converts with integer operations: zero, -0, subnormal (smallest, largest),
        // the smallest normal, negative, the largest finite; and an all-zero activation block (d = 0).
        ushort[] halves = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x8400, 0xB555, 0x7BFF, 0xFBFF, 0x3C00, 0x83FF, 0x2E66];
        const int N = 6, blocks = 9, K = blocks * 32;
        using var w = QuantTestData.RandomTensor(DType.Q4_0, N, K, seed: 77, amplitude: 0.5);
        var bytes = w.Bytes;
        for (int i = 0; i < N * blocks; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.Slice(i * 18), halves[i % halves.Length]);
        var x = TestData.Uniform(K, 5, scale: 1e3f);
        x.AsSpan(64, 32).Clear();
        AssertRowsEqualScalarTwin(DType.Q4_0, w, x, "scales");
        var tiny = TestData.Uniform(K, 6, scale: 1e-35f);   // d_x subnormal
        AssertRowsEqualScalarTwin(DType.Q4_0, w, tiny, "tiny x");
    }

    [Fact]
    public void DotRowsQ8_Q4_0InfiniteScaleOrHugeX_FallsBackAndStillEqualsTheScalarTwin()
    {
        const int N = 5, blocks = 8, K = blocks * 32;
        using var w = QuantTestData.RandomTensor(DType.Q4_0, N, K, seed: 78, amplitude: 0.5);
        var x = TestData.Uniform(K, 7);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(w.Bytes.Slice(3 * 18), 0x7C00);   // +inf in row 0
        fixed (byte* pw = w.Bytes) Assert.False(Q8Dot.ScalesFinite(pw, N * blocks));
        AssertRowsEqualScalarTwin(DType.Q4_0, w, x, "infinite scale");

        using var finite = QuantTestData.RandomTensor(DType.Q4_0, N, K, seed: 79, amplitude: 0.5);
        var huge = TestData.Uniform(K, 8);
        huge[200] = 1e8f;   // d = 1e8 / 127 > 2^16: d·2^112 overflows, so the row is not grouped
        var scratch = new float[Q8Row.Floats(K)];
        fixed (float* ph = huge, ps = scratch)
        {
            var row = Q8Row.At(ps, K);
            Assert.True(Q8Row.Quantize(ph, K, row));
            Assert.False(row.Grouped);
            Assert.True(Q8Row.Quantize(ph + 0, 128, Q8Row.At(ps, 128)) && Q8Row.At(ps, 128).Grouped, "a block without the huge value is grouped");
        }
        AssertRowsEqualScalarTwin(DType.Q4_0, finite, huge, "huge x");
    }

    [Fact]
    public void Q8RowFloats_KeepsStackedRowsOn64Bytes()
    {
        foreach (int K in new[] { 32, 64, 96, 128, 576, 1536, 2080 })
            Assert.Equal(0, Q8Row.Floats(K) % 16);
    }
}
