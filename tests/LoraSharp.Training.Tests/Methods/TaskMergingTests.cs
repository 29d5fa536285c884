// TIES / DARE / magnitude-prune merging (PEFT add_weighted_adapter's combination types): the task merges against the
// float64 reference (tests/references/methods_reference.py, PEFT merge_utils semantics), DARE's statistics, and the
// combiner's A/B and _svd variants.
using System.Text.Json;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Methods;

public class TaskMergingTests
{
    [Fact]
    public void TiesAndMagnitudePrune_MatchReference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(MethodReferences.Path("task_merging.json")));
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var tensors = c.GetProperty("tensors").EnumerateArray().Select(t => t.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToList();
            var weights = c.GetProperty("weights").EnumerateArray().Select(v => v.GetDouble()).ToList();
            var expected = c.GetProperty("result").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            string method = c.GetProperty("method").GetString()!;
            var actual = TaskMerging.Merge(tensors, weights, method, c.GetProperty("density").GetDouble(), c.GetProperty("sign_method").GetString()!, 0);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"{method} [{i}]: {actual[i]} vs {expected[i]}");
            n++;
        }
        Assert.Equal(5, n);
    }

    [Fact]
    public void Dare_KeepsAboutDensity_RescalesKept_AndIsUnbiased()
    {
        var t = Enumerable.Range(0, 20000).Select(i => 1.0 + (i % 7)).ToArray();
        var p = TaskMerging.RandomPrune(t, 0.3, 5);
        int kept = p.Count(v => v != 0);
        Assert.InRange(kept / 20000.0, 0.28, 0.32);
        for (int i = 0; i < t.Length; i++) Assert.True(p[i] == 0 || Math.Abs(p[i] - t[i] / 0.3) < 1e-12);
        Assert.InRange(p.Sum() / t.Sum(), 0.95, 1.05);
        Assert.Equal(p, TaskMerging.RandomPrune(t, 0.3, 5));          // seeded
        Assert.NotEqual(p, TaskMerging.RandomPrune(t, 0.3, 6));
        Assert.Equal(t, TaskMerging.RandomPrune(t, 1.0, 5));          // density 1: untouched
        Assert.Throws<ArgumentException>(() => TaskMerging.Merge([t], [1.0], "dare_linear", 0, "total", 0));
    }

    [Fact]
    public void Combiner_DensityOne_DareLinearEqualsLinear_AndSvdVariantsEqualSvd()
    {
        var x = AdapterFixtures.RandomAdapter(1, 4, 2.0);
        var y = AdapterFixtures.RandomAdapter(2, 4, 2.0);
        var linear = AdapterCombiner.Combine([(x, 0.6), (y, 0.4)], CombineMethod.Linear);
        var dare = AdapterCombiner.Combine([(x, 0.6), (y, 0.4)], CombineMethod.DareLinear, density: 1.0);
        Assert.True(AdapterFixtures.MaxDeltaDiff(linear, dare) < 1e-6);
        var svd = AdapterCombiner.Combine([(x, 0.6), (y, 0.4)], CombineMethod.Svd, targetRank: 8);
        var mp = AdapterCombiner.Combine([(x, 0.6), (y, 0.4)], CombineMethod.MagnitudePruneSvd, targetRank: 8, density: 1.0);
        Assert.True(AdapterFixtures.MaxDeltaDiff(svd, mp) < 1e-5);
    }

    [Fact]
    public void Combiner_TiesSvd_IsTiesOfTheDeltas()
    {
        LoraWeights QOnly(LoraWeights w) => new(w.Modules.Where(m => m.Module.EndsWith("q_proj", StringComparison.Ordinal)), w.Source);
        var x = QOnly(AdapterFixtures.RandomAdapter(3, 4, 2.0));
        var y = QOnly(AdapterFixtures.RandomAdapter(4, 4, 2.0));
        var ties = AdapterCombiner.Combine([(x, 1.0), (y, 1.0)], CombineMethod.TiesSvd, targetRank: 64, density: 0.5);
        var module = x.Modules[0];
        var expected = TaskMerging.Merge([module.Delta(), y.Find(module.Module)!.Delta()], [1.0, 1.0], "ties", 0.5, "total", 0);
        var actual = ties.Find(module.Module)!.Delta();   // rank 64 = full rank for q_proj (64 x 64): exact up to f32
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 * scale, $"[{i}] {actual[i]} vs {expected[i]}");
        Assert.Equal(CombineMethod.DareTiesSvd, AdapterCombiner.ParseMethod("dare_ties_svd"));
        var e = Assert.ThrowsAny<Core.UserErrorException>(() => AdapterCombiner.ParseMethod("tie"));
        Assert.Contains("magnitude_prune_svd", e.Message);
        Assert.ThrowsAny<Core.UserErrorException>(() => AdapterCombiner.Combine([(x, 1.0)], CombineMethod.Ties, density: 1.5));
    }
}
