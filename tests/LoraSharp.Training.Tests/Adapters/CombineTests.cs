// Combine: PEFT add_weighted_adapter semantics for linear / cat / svd, and the errors for mixed ranks and ranks
// larger than a matrix.
using LoraSharp.Training.Adapters;

namespace LoraSharp.Training.Tests.Adapters;

public class CombineTests
{
    private static LoraWeights Golden() => AdapterLoader.Read(AdapterFixtures.LoraFolder, null);

    [Fact]
    public void Linear_OneAdapterWeight1_ReturnsTheAdapter()
    {
        var golden = Golden();
        var combined = AdapterCombiner.Combine([(golden, 1.0)], CombineMethod.Linear);
        Assert.All(combined.Modules, m => Assert.Equal(4, m.Rank));
        Assert.All(combined.Modules, m => Assert.Equal(1.0, m.Scale));
        Assert.True(AdapterFixtures.MaxDeltaDiff(golden, combined) < 1e-7);
        // A and B are the adapter's, each scaled by √s = √2.
        var g = golden.Modules[0];
        var c = combined.Find(g.Module)!;
        for (int i = 0; i < g.A.Length; i++) Assert.Equal(g.A[i] * Math.Sqrt(2), c.A[i], 1e-6);
    }

    [Fact]
    public void Linear_NegativeWeight_NegatesDelta()
    {
        var golden = Golden();
        var combined = AdapterCombiner.Combine([(golden, -0.5)], CombineMethod.Linear);
        Assert.True(AdapterFixtures.MaxDeltaDiff(combined, golden, -0.5) < 1e-7);
    }

    [Fact]
    public void Linear_TwoAdapters_FollowsPeftWithCrossTerms()
    {
        var x = AdapterFixtures.RandomAdapter(1, 4, 2.0);
        var y = AdapterFixtures.RandomAdapter(2, 4, 0.5);
        var combined = AdapterCombiner.Combine([(x, 1.0), (y, 2.0)], CombineMethod.Linear);
        var mx = x.Modules[3];
        var my = y.Find(mx.Module)!;
        var mc = combined.Find(mx.Module)!;
        // PEFT: A' = Σ √(w s) A_i, B' = Σ √(w s) B_i with w·s = 2 and 1.
        for (int i = 0; i < mx.A.Length; i++) Assert.Equal(Math.Sqrt(2) * mx.A[i] + my.A[i], mc.A[i], 1e-6);
        for (int i = 0; i < mx.B.Length; i++) Assert.Equal(Math.Sqrt(2) * mx.B[i] + my.B[i], mc.B[i], 1e-6);
    }

    [Fact]
    public void Cat_TwoAdapters_DeltaIsWeightedSumAndRanksAdd()
    {
        var x = AdapterFixtures.RandomAdapter(1, 4, 2.0);
        var y = AdapterFixtures.RandomAdapter(2, 3, 0.5);
        var combined = AdapterCombiner.Combine([(x, 0.7), (y, -1.5)], CombineMethod.Cat);
        Assert.All(combined.Modules, m => Assert.Equal(7, m.Rank));
        foreach (var m in combined.Modules)
        {
            var d = m.Delta();
            var dx = x.Find(m.Module)!.Delta(0.7);
            var dy = y.Find(m.Module)!.Delta(-1.5);
            for (int i = 0; i < d.Length; i++) Assert.Equal(dx[i] + dy[i], d[i], 1e-6);
        }
    }

    [Fact]
    public void Svd_TwoAdaptersFullRank_MergesToSumOfTheTwoMerges()
    {
        var golden = Golden();
        var other = AdapterFixtures.RandomAdapter(7, 4, 1.5);
        var combined = AdapterCombiner.Combine([(golden, 1.0), (other, 1.0)], CombineMethod.Svd, targetRank: 8);
        Assert.All(combined.Modules, m => Assert.Equal(8, m.Rank));
        double worst = 0;
        foreach (var m in combined.Modules)
        {
            var d = m.Delta();
            var d1 = golden.Find(m.Module)!.Delta();
            var d2 = other.Find(m.Module)!.Delta();
            for (int i = 0; i < d.Length; i++) worst = Math.Max(worst, Math.Abs(d1[i] + d2[i] - d[i]));
        }
        Assert.True(worst < 1e-5, $"max |ΔW_svd − (ΔW_1 + ΔW_2)| = {worst}");

        // And merging the combination equals merging both adapters.
        using var dir = new TempDir();
        combined.SavePeft(dir["svd"]);
        golden.SavePeft(dir["golden"]);
        other.SavePeft(dir["other"]);
        AdapterMerger.Merge(AdapterFixtures.HfFolder, [(dir["svd"], 1.0)], dir["m1"], new MergeOptions());
        AdapterMerger.Merge(AdapterFixtures.HfFolder, [(dir["golden"], 1.0), (dir["other"], 1.0)], dir["m2"], new MergeOptions());
        var a = AdapterFixtures.ReadAll(Path.Combine(dir["m1"], "model.safetensors"));
        var b = AdapterFixtures.ReadAll(Path.Combine(dir["m2"], "model.safetensors"));
        foreach (var (name, v) in b) TestSupport.TestData.AssertClose(a[name], v, 1e-5, what: name);
    }

    [Fact]
    public void Svd_DefaultRank_IsLargestInputRank()
    {
        var x = AdapterFixtures.RandomAdapter(1, 2, 1.0);
        var y = AdapterFixtures.RandomAdapter(2, 5, 1.0);
        var combined = AdapterCombiner.Combine([(x, 1.0), (y, 1.0)], CombineMethod.Svd);
        Assert.All(combined.Modules, m => Assert.Equal(5, m.Rank));
    }

    [Fact]
    public void Linear_MixedRanks_ThrowsNamingModuleAndRanks()
    {
        var x = AdapterFixtures.RandomAdapter(1, 4, 1.0, "x");
        var y = AdapterFixtures.RandomAdapter(2, 8, 1.0, "y");
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterCombiner.Combine([(x, 1.0), (y, 1.0)], CombineMethod.Linear));
        Assert.Contains("rank 4", e.Message);
        Assert.Contains("8", e.Message);
        Assert.Contains("cat or svd", e.Message);
    }

    [Fact]
    public void Svd_TargetRankLargerThanMatrix_Throws()
    {
        var x = AdapterFixtures.RandomAdapter(1, 4, 1.0);
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterCombiner.Combine([(x, 1.0)], CombineMethod.Svd, targetRank: 65));
        Assert.Contains("at most", e.Message);
    }

    [Fact]
    public void Combine_AdaptersForDifferentBases_Throws()
    {
        var x = AdapterFixtures.RandomAdapter(1, 4, 1.0, "x");
        var y = new LoraWeights([new LoraModuleWeights(x.Modules[0].Module, 4, 10, 10, new float[40], new float[40], 1.0)], "y");
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterCombiner.Combine([(x, 1.0), (y, 1.0)], CombineMethod.Cat));
        Assert.Contains("different bases", e.Message);
    }
}
