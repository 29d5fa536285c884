// MatMul.Forward with a low-rank term (LoRA's (s·z)·Bᵀ added onto each output tile in cache) equals the frozen product
// followed by the separate Z·Uᵀ GEMM, bit for bit: f32 and every stored type, edge rows and columns, accumulate or
// not, every SIMD level, the few-row fallback, and two threads.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public class MatMulLowRankTests
{
    public static IEnumerable<object[]> Types() => QuantTestData.StoredTypes.Append(DType.F32).Select(t => new object[] { t });

    private static PackedWeight Weight(DType type, int n, int k, int seed)
    {
        if (type == DType.F32) return PackedWeight.FromF32(TestData.Uniform(n * k, seed), n, k);
        using var w = QuantTestData.RandomTensor(type, n, k, seed: seed, amplitude: 0.5);
        return PackedWeight.FromStored(w);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void LowRankTerm_EqualsTheSeparateGemm_BitForBit(DType type)
    {
        int K = DTypeInfo.BlockSize(type) == 1 ? 40 : 2 * DTypeInfo.BlockSize(type);
        foreach (int N in new[] { 5, 32, 47 })
        {
            var w = Weight(type, N, K, seed: N);
            foreach (int M in new[] { 1, 4, 5, 9, 17 })
                foreach (int R in new[] { 1, 8, 20 })
                    foreach (bool accumulate in new[] { false, true })
                        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128, SimdLevel.Scalar })
                        {
                            using var _ = Simd.Force(level);
                            var x = TestData.Uniform(M * K, 1);
                            var z = TestData.Uniform(M * R, 2);
                            var u = TestData.Uniform(N * R, 3);
                            var y0 = TestData.Uniform(M * N, 4);
                            var separate = (float[])y0.Clone();
                            MatMul.Forward(x, w, separate, M, accumulate);
                            MatMul.Forward(z, u, separate, M, R, N, accumulate: true);
                            var fused = (float[])y0.Clone();
                            MatMul.Forward(x, w, fused, M, accumulate, false, z, u, R);
                            ElementwiseTestKit.AssertBitwiseEqual(fused, separate, $"{type} M {M} K {K} N {N} R {R} accumulate {accumulate} {level}");
                        }
        }
    }

    [Fact]
    public void LowRankTerm_TwoThreads_EqualsOneThreadAndTheSeparateGemm()
    {
        int M = 300, K = 576, N = 200, R = 8;
        var w = PackedWeight.FromF32(TestData.Uniform(N * K, 1), N, K);
        var x = TestData.Uniform(M * K, 2);
        var z = TestData.Uniform(M * R, 3);
        var u = TestData.Uniform(N * R, 4);
        var separate = new float[M * N];
        using (Threads.Limit(1))
        {
            MatMul.Forward(x, w, separate, M);
            MatMul.Forward(z, u, separate, M, R, N, accumulate: true);
        }
        var fused = new float[M * N];
        TwoThreads.Run(() => MatMul.Forward(x, w, fused, M, false, false, z, u, R));
        ElementwiseTestKit.AssertBitwiseEqual(fused, separate, "2 threads");
    }

    [Fact]
    public void LowRankTerm_WrongShapes_AreRejected()
    {
        var w = PackedWeight.FromF32(new float[4 * 8], 4, 8);
        Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[2 * 8], w, new float[2 * 4], 2, false, false, new float[3], new float[8], 2));
        Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[2 * 8], w, new float[2 * 4], 2, false, false, new float[4], new float[7], 2));
        Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[2 * 8], w, new float[2 * 4], 2, false, false, default, default, -1));
    }
}
