// Frozen weights kept in a stored dtype (QLoRA): every matmul that decodes W on the fly equals the reference
// matmul over W dequantized to f32 up front, for every stored type, both orientations, the few-row (decode) path,
// odd sizes, every SIMD level and 1 or 2 threads; the memory held is the stored size.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public class StoredWeightTests
{
    public static TheoryData<DType> Types => new(QuantTestData.StoredTypes);

    private static float[] Widen(Tensor w) => QuantTestData.Dequantize(w);

    // (M, K-blocks, N): one-row decode, the few-row path's edge (4) and the GEMM past it, N off the 32-column panels,
    // K over several reduction blocks.
    private static readonly (int M, int Blocks, int N)[] Sizes = [(1, 3, 45), (4, 2, 33), (5, 3, 31), (37, 1, 70), (70, 9, 100)];

    private static int K(DType t, int blocks) => DTypeInfo.BlockSize(t) == 1 ? blocks * 29 : blocks * DTypeInfo.BlockSize(t);

    [Theory]
    [MemberData(nameof(Types))]
    public void ForwardAndBackwardInput_EqualReferenceOnDequantizedWeights(DType type)
    {
        foreach (var (m, blocks, n) in Sizes)
        {
            int k = K(type, blocks);
            using var w = QuantTestData.RandomTensor(type, n, k, seed: m + n, amplitude: 0.5);
            var wf = Widen(w);
            var packed = PackedWeight.FromStored(w);
            var x = TestData.Uniform(m * k, 1);
            var dy = TestData.Uniform(m * n, 2);
            var yRef = new float[m * n];
            var dxRef = TestData.Uniform(m * k, 3);
            MatMul.Reference.Forward(x, wf, yRef, m, k, n);
            var dxStart = (float[])dxRef.Clone();
            MatMul.Reference.BackwardInput(dy, wf, dxRef, m, n, k);
            foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128, SimdLevel.Scalar })
            {
                using var _ = Simd.Force(level);
                var y = new float[m * n + 3];
                y.AsSpan(m * n).Fill(777f);
                MatMul.Forward(x, packed, y.AsSpan(0, m * n), m);
                TestData.AssertClose(y.AsSpan(0, m * n), yRef, atol: 2e-6 * k, rtol: 1e-5, what: $"{type} forward {level} M={m} K={k} N={n}");
                Assert.All(y[(m * n)..], g => Assert.Equal(777f, g));
                var dx = (float[])dxStart.Clone();
                MatMul.BackwardInput(dy, packed, dx, m);
                TestData.AssertClose(dx, dxRef, atol: 2e-6 * n, rtol: 1e-5, what: $"{type} backward input {level} M={m} K={k} N={n}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void OneAndTwoThreads_AreBitIdentical(DType type)
    {
        // Shapes with enough work for the decode and GEMM paths to split across two threads (small blocks: 8x as many).
        int scale = DTypeInfo.BlockSize(type) >= 256 ? 1 : 8;
        foreach (var (m, blocks, n) in new[] { (1, 5, 4001), (3, 4, 1999), (40, 5, 701) })
        {
            int k = K(type, blocks * scale);
            using var w = QuantTestData.RandomTensor(type, n, k, seed: 9, amplitude: 0.5);
            var packed = PackedWeight.FromStored(w);
            var x = TestData.Uniform(m * k, 4);
            var dy = TestData.Uniform(m * n, 5);
            float[] Run(int threads, bool backward)
            {
                var o = new float[backward ? m * k : m * n];
                void Work() { if (backward) MatMul.BackwardInput(dy, packed, o, m); else MatMul.Forward(x, packed, o, m); }
                if (threads == 1) { using (Threads.Limit(1)) Work(); }
                else TestSupport.TwoThreads.Run(Work);
                return o;
            }
            Assert.Equal(Run(1, false), Run(2, false));
            Assert.Equal(Run(1, true), Run(2, true));
        }
    }

    [Fact]
    public void Accumulate_AddsToTheOutput_OnTheFewRowAndGemmPaths()
    {
        using var w = QuantTestData.RandomTensor(DType.Q4_0, 40, 64, seed: 1, amplitude: 0.5);
        var packed = PackedWeight.FromStored(w);
        foreach (int m in new[] { 2, 9 })
        {
            var x = TestData.Uniform(m * 64, 6);
            var y0 = TestData.Uniform(m * 40, 7);
            var plain = new float[m * 40];
            MatMul.Forward(x, packed, plain, m);
            var acc = (float[])y0.Clone();
            MatMul.Forward(x, packed, acc, m, accumulate: true);
            for (int i = 0; i < acc.Length; i++) Assert.Equal(y0[i] + plain[i], acc[i], 1e-5f);
        }
    }

    [Fact]
    public void Bytes_AreTheStoredSize_AndAViewCountsNothing()
    {
        using var w = QuantTestData.RandomTensor(DType.Q4_0, 64, 256, seed: 1, amplitude: 0.5);
        Assert.Equal(64 * 256 / 32 * 18, PackedWeight.FromStored(w).Bytes);
        Assert.Equal(0, PackedWeight.ViewStored(w).Bytes);
        var f32 = PackedWeight.FromF32(new float[64 * 256], 64, 256);
        Assert.Equal(DType.F32, f32.StorageDType);
        Assert.True(f32.Bytes >= 64 * 256 * 4);
    }

    [Fact]
    public void ViewStored_AfterTheTensorIsDisposed_ThrowsInsteadOfReadingFreedMemory()
    {
        var w = QuantTestData.RandomTensor(DType.Q8_0, 8, 32, seed: 1, amplitude: 0.5);
        var view = PackedWeight.ViewStored(w);
        w.Dispose();
        Assert.Throws<ObjectDisposedException>(() => MatMul.Forward(new float[32], view, new float[8], 1));
    }

    [Fact]
    public void FromStored_F32OrAVector_IsRefusedClearly()
    {
        using var f = Tensor.Zeros(DType.F32, 4, 4);
        Assert.Contains("FromF32", Assert.Throws<ArgumentException>(() => PackedWeight.FromStored(f)).Message);
        using var v = Tensor.Zeros(DType.Q8_0, 32);
        Assert.Contains("2-D", Assert.Throws<ArgumentException>(() => PackedWeight.FromStored(v)).Message);
    }
}
