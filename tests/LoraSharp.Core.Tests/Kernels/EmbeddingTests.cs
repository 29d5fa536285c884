using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class EmbeddingTests
{
    private static int[] Ids(int N, int V, int seed)
    {
        var rng = new Random(seed);
        var ids = new int[N];
        for (int n = 0; n < N; n++) ids[n] = rng.Next(V);
        return ids;
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ForwardAndBackward_MatchReference_AtOddSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        const int N = 9, V = 5;   // repeated ids: the backward must add every occurrence
        foreach (int C in OddSizes)
        {
            if (C == 0) continue;
            var ids = Ids(N, V, C);
            var table = Uniform(V * C, C);
            var o = Guarded(N * C);
            Embedding.Forward(ids, table, Mid(o), N, C);
            var oRef = new float[N * C];
            Embedding.Reference.Forward(ids, table, oRef, N, C);
            Assert.Equal(oRef, Mid(o).ToArray());
            AssertGuards(o, "output");

            var dOut = Uniform(N * C, C + 1);
            var init = Uniform(V * C, C + 2);
            var dt = Guarded(V * C, init);
            var dtRef = (float[])init.Clone();
            Embedding.Backward(dOut, ids, Mid(dt), N, C);
            Embedding.Reference.Backward(dOut, ids, dtRef, N, C);
            Assert.Equal(dtRef, Mid(dt).ToArray());
            AssertGuards(dt, "dTable");
        }
    }

    [Fact]
    public void Backward_MatchesFiniteDifferences()
    {
        const int N = 4, V = 3, C = 5;
        int[] ids = [2, 0, 2, 1];
        var table = Uniform(V * C, 1);
        var R = Uniform(N * C, 2);
        var dt = new float[V * C];
        Embedding.Backward(R, ids, dt, N, C);
        CheckGradient(tt => { var o = new float[N * C]; Embedding.Forward(ids, tt, o, N, C); return Dot(o, R); }, table, dt, 1e-2f, 1e-3, 1e-5, "dTable");
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        const int N = 700, V = 50, C = 200;
        var ids = Ids(N, V, 3);
        var dOut = Uniform(N * C, 4);
        float[] a = new float[V * C], b = new float[V * C];
        using (Threads.Limit(1)) Embedding.Backward(dOut, ids, a, N, C);
        TestSupport.TwoThreads.Run(() => Embedding.Backward(dOut, ids, b, N, C));
        AssertBitwiseEqual(a, b, "dTable");
    }

    [Fact]
    public void IdOutOfRange_ThrowsNamingIdAndVocabulary()
    {
        var e = Assert.Throws<ArgumentException>(() => Embedding.Forward([1, 7], new float[12], new float[8], 2, 4));
        Assert.Contains("7", e.Message);
        Assert.Contains("V = 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => Embedding.Backward(new float[4], [-1], new float[12], 1, 4));
        Assert.Contains("-1", e.Message);
    }
}
