// Extract: the golden merged model minus its base gives back the rank-4 delta; energy-driven ranks; truncated SVD
// accuracy on known low-rank and full-rank matrices; errors for impossible ranks and mismatched models.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Loading;
using LoraSharp.Training.Adapters;

namespace LoraSharp.Training.Tests.Adapters;

public class ExtractTests
{
    private static (LoraWeights, ExtractReport) ExtractGolden(ExtractOptions options)
    {
        using var b = ModelLoader.Load(AdapterFixtures.HfFolder, new ModelLoadOptions { BaseDType = "stored" });
        using var st = SafetensorsFile.Open(AdapterFixtures.Golden("lora", "merged.safetensors"));
        var tuned = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in st.Tensors) tuned[info.Name] = st.GetTensor(info.Name);
            return LoraExtractor.Extract(b.Tensors, b.SourcePath, tuned, st.Path, options);
        }
        finally
        {
            foreach (var t in tuned.Values) t.Dispose();
        }
    }

    [Fact]
    public void Extract_MergedMinusBaseAtRank4_RecoversTheDeltaWithin1e5()
    {
        var (weights, report) = ExtractGolden(new ExtractOptions { Rank = 4 });
        Assert.Equal(35, weights.Modules.Count);
        Assert.All(weights.Modules, m => Assert.Equal(4, m.Rank));
        var golden = AdapterLoader.Read(AdapterFixtures.LoraFolder, null);
        double worst = AdapterFixtures.MaxDeltaDiff(golden, weights);
        Assert.True(worst < 1e-5, $"max |ΔW_extracted − 2·B·A| = {worst}");
        Assert.True(report.EnergyKept > 0.999999, $"energy kept {report.EnergyKept}");
        Assert.All(report.Modules, m => Assert.True(m.EnergyKept > 0.99999));
    }

    [Fact]
    public void Extract_LowerRank_ReportsEnergyBelowOne()
    {
        var (weights, report) = ExtractGolden(new ExtractOptions { Rank = 2 });
        Assert.All(weights.Modules, m => Assert.Equal(2, m.Rank));
        Assert.InRange(report.EnergyKept, 0.3, 0.99);
        // Overall share is the energy-weighted mean of the per-module shares.
        double kept = report.Modules.Sum(m => m.EnergyKept * m.DeltaEnergy), total = report.Modules.Sum(m => m.DeltaEnergy);
        Assert.Equal(kept / total, report.EnergyKept, 12);
    }

    [Fact]
    public void Extract_TargetEnergy_ChoosesSmallestRankPerModule()
    {
        var (weights, report) = ExtractGolden(new ExtractOptions { Energy = 0.9 });
        Assert.All(report.Modules, m => Assert.True(m.EnergyKept >= 0.9 - 1e-12, $"{m.Module} kept {m.EnergyKept}"));
        Assert.All(weights.Modules, m => Assert.InRange(m.Rank, 1, 4));
        // Ranks differ between modules, and the written PEFT folder records them in rank_pattern.
        Assert.True(weights.Modules.Select(m => m.Rank).Distinct().Count() > 1);
        using var dir = new TempDir();
        weights.SavePeft(dir["x"]);
        var back = AdapterLoader.Read(dir["x"], null);
        Assert.True(AdapterFixtures.MaxDeltaDiff(weights, back) < 1e-9);
    }

    [Fact]
    public void Extract_RankLargerThanMatrix_ThrowsNamingTheTensor()
    {
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => ExtractGolden(new ExtractOptions { Rank = 40 }));
        Assert.Contains("k_proj", e.Message);
        Assert.Contains("at most 32", e.Message);
    }

    [Fact]
    public void Extract_ShapeMismatch_ThrowsNamingBothShapes()
    {
        using var b = ModelLoader.Load(AdapterFixtures.HfFolder, new ModelLoadOptions { BaseDType = "stored" });
        var tuned = b.Tensors.ToDictionary(p => p.Key, p => p.Value);
        using var wrong = Tensor.Zeros(DType.F32, 64, 63);
        tuned["model.layers.1.mlp.up_proj.weight"] = wrong;
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => LoraExtractor.Extract(b.Tensors, "base", tuned, "tuned", new ExtractOptions { Rank = 2 }));
        Assert.Contains("[172, 64]", e.Message);
        Assert.Contains("[64, 63]", e.Message);
    }

    [Fact]
    public void Extract_NeitherRankNorEnergy_Throws()
    {
        Assert.Throws<LoraSharp.Core.UserErrorException>(() => ExtractGolden(new ExtractOptions()));
        Assert.Throws<LoraSharp.Core.UserErrorException>(() => ExtractGolden(new ExtractOptions { Rank = 2, Energy = 0.5 }));
    }

    [Theory]
    [InlineData(40, 300, 5)]     // wide, randomized path
    [InlineData(300, 40, 5)]     // tall
    [InlineData(33, 17, 17)]     // exact path, full rank
    public void TruncatedSvd_LowRankMatrix_ReconstructsIt(int M, int N, int rank)
    {
        var rng = new Random(M * 1000 + N);
        var x = new double[M * rank];
        var y = new double[rank * N];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() - 0.5;
        for (int i = 0; i < y.Length; i++) y[i] = rng.NextDouble() - 0.5;
        var d = new float[M * N];
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
            {
                double s = 0;
                for (int r = 0; r < rank; r++) s += x[m * rank + r] * y[r * N + n];
                d[m * N + n] = (float)s;
            }
        var svd = TruncatedSvd.Compute(d, M, N, rank, seed: 3);
        double worst = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
            {
                double s = 0;
                for (int r = 0; r < rank; r++) s += svd.U[m * rank + r] * svd.S[r] * svd.Vt[r * N + n];
                worst = Math.Max(worst, Math.Abs(s - d[m * N + n]));
            }
        Assert.True(worst < 1e-5, $"reconstruction error {worst}");
        Assert.Equal(1.0, svd.EnergyKept(rank), 6);
        for (int r = 1; r < rank; r++) Assert.True(svd.S[r - 1] >= svd.S[r] - 1e-9);
        // U has orthonormal columns.
        for (int a = 0; a < rank; a++)
            for (int b = 0; b < rank; b++)
            {
                double dot = 0;
                for (int m = 0; m < M; m++) dot += svd.U[m * rank + a] * svd.U[m * rank + b];
                Assert.Equal(a == b ? 1.0 : 0.0, dot, 5);
            }
    }

    [Fact]
    public void TruncatedSvd_OneAndTwoThreads_GiveIdenticalResults()
    {
        var d = TestSupport.TestData.Uniform(400 * 700, seed: 5);   // big enough for the products inside to split
        SvdResult one;
        using (Core.Threading.Threads.Limit(1)) one = TruncatedSvd.Compute(d, 400, 700, 6, seed: 2);
        SvdResult two = default!;
        TestSupport.TwoThreads.Run(() => two = TruncatedSvd.Compute(d, 400, 700, 6, seed: 2));
        Assert.Equal(one.S, two.S);
        Assert.Equal(one.U, two.U);
        Assert.Equal(one.Vt, two.Vt);
    }

    [Fact]
    public void TruncatedSvd_KnownSpectrum_GivesSingularValues()
    {
        // D = diag(5, 4, 3, 2, 1) padded to [5, 9]: singular values are the diagonal.
        var d = new float[5 * 9];
        for (int i = 0; i < 5; i++) d[i * 9 + i] = 5 - i;
        var svd = TruncatedSvd.Compute(d, 5, 9, 3);
        Assert.Equal([5.0, 4.0, 3.0], svd.S.Select(s => Math.Round(s, 6)));
        Assert.Equal((25.0 + 16 + 9) / 55, svd.EnergyKept(3), 9);
    }

    [Fact]
    public void TruncatedSvd_RankOutOfRange_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => TruncatedSvd.Compute(new float[12], 3, 4, 4));
        Assert.Contains("between 1 and 3", e.Message);
    }
}
