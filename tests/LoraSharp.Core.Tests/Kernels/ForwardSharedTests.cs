// MatMul.ForwardShared (decode's q/k/v and gate/up in one parallel region) equals separate Forward calls bit for bit:
// every stored type on the few-row path it fuses, the GEMM fallback past it, f32 weights, and every SIMD level.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Kernels;

public class ForwardSharedTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (var type in QuantTestData.StoredTypes.Append(DType.F32))
            foreach (int m in new[] { 1, 4, 6 })
                yield return [type, m];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForwardShared_EqualsSeparateForwards(DType type, int M)
    {
        int K = DTypeInfo.BlockSize(type) == 1 ? 96 : 3 * DTypeInfo.BlockSize(type);
        int[] ns = [70, 33, 33];
        var weights = ns.Select((n, i) => Weight(type, n, K, seed: 10 + i)).ToArray();
        var x = TestData.Uniform(M * K, 1);
        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128, SimdLevel.Scalar })
        {
            using var _ = Simd.Force(level);
            var separate = weights.Select((w, i) => { var y = new float[M * ns[i]]; MatMul.Forward(x, w, y, M); return y; }).ToArray();
            var shared = ns.Select(n => Enumerable.Repeat(float.NaN, M * n).ToArray()).ToArray();
            MatMul.ForwardShared(x, M, weights[0], shared[0], weights[1], shared[1], weights[2], shared[2]);
            for (int i = 0; i < 3; i++) Assert.True(separate[i].AsSpan().SequenceEqual(shared[i]), $"{type} M={M} {level}: product {i}");

            var two = ns[..2].Select(n => new float[M * n]).ToArray();
            MatMul.ForwardShared(x, M, weights[0], two[0], weights[1], two[1]);
            Assert.Equal(separate[0], two[0]);
            Assert.Equal(separate[1], two[1]);
        }
    }

    /// <summary>Decode of an f32 model: one row over three f32 weights big enough to split, on two threads.</summary>
    [Fact]
    public void ForwardShared_F32OneRow_TwoThreads_EqualsSeparateForwards()
    {
        const int K = 576;
        int[] ns = [576, 192, 200];
        var weights = ns.Select((n, i) => PackedWeight.FromF32(TestData.Uniform(n * K, 20 + i), n, K)).ToArray();
        var x = TestData.Uniform(K, 3);
        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256 })
        {
            using var _ = Simd.Force(level);
            var separate = weights.Select((w, i) => { var y = new float[ns[i]]; MatMul.Forward(x, w, y, 1); return y; }).ToArray();
            var shared = ns.Select(n => Enumerable.Repeat(float.NaN, n).ToArray()).ToArray();
            TwoThreads.Run(() => MatMul.ForwardShared(x, 1, weights[0], shared[0], weights[1], shared[1], weights[2], shared[2]));
            for (int i = 0; i < 3; i++) Assert.True(separate[i].AsSpan().SequenceEqual(shared[i]), $"{level}: product {i}");
        }
    }

    [Fact]
    public void ForwardShared_WeightsOfDifferentK_Throw()
    {
        var a = PackedWeight.FromF32(TestData.Uniform(8 * 16, 1), 8, 16);
        var b = PackedWeight.FromF32(TestData.Uniform(8 * 32, 2), 8, 32);
        var e = Assert.Throws<ArgumentException>(() => MatMul.ForwardShared(new float[16], 1, a, new float[8], b, new float[8]));
        Assert.Contains("same K", e.Message);
    }

    private static PackedWeight Weight(DType type, int n, int k, int seed)
    {
        if (type == DType.F32) return PackedWeight.FromF32(TestData.Uniform(n * k, seed), n, k);
        using var w = QuantTestData.RandomTensor(type, n, k, seed: seed, amplitude: 0.5);
        return PackedWeight.FromStored(w);
    }
}
