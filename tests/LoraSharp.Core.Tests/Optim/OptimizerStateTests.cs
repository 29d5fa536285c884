// Export/import of optimizer state: a run interrupted after k steps and resumed in a new optimizer from the exported
// state ends bit-identical to an uninterrupted run; mismatched state gives clear errors.
using LoraSharp.Core.Optim;

namespace LoraSharp.Core.Tests.Optim;

public class OptimizerStateTests
{
    private static readonly int[][] Shapes = [[6, 5], [17], [2, 3, 4]];

    private static OptimizerOptions Options => new() { WeightDecay = 0.01, Momentum = 0.9, Nesterov = true, Beta1 = 0.9 };

    [Theory]
    [InlineData("adamw")]
    [InlineData("adam")]
    [InlineData("sgd")]
    [InlineData("adafactor")]
    [InlineData("lion")]
    public void ExportImport_MidRun_ContinuesBitIdentically(string name)
    {
        double[] lrs = [1e-2, 8e-3, 6e-3, 4e-3, 2e-3];
        using var straight = ParamSet.Random(9, Shapes);
        var o1 = OptimizerFactory.Create(name, Options);
        for (int t = 1; t <= 5; t++) { straight.NewGrads(t); o1.Step(straight.Params, lrs[t - 1]); }

        using var resumed = ParamSet.Random(9, Shapes);
        var o2 = OptimizerFactory.Create(name, Options);
        for (int t = 1; t <= 2; t++) { resumed.NewGrads(t); o2.Step(resumed.Params, lrs[t - 1]); }
        var saved = o2.ExportState();
        Assert.Equal(2, saved.Step);
        Assert.Equal(name, saved.Optimizer);
        Assert.NotEmpty(saved.Buffers);
        // Keep stepping the old optimizer: the snapshot must not change with it.
        var snapshot = saved.Buffers.ToDictionary(kv => kv.Key, kv => (float[])kv.Value.Clone());
        o2.Step(resumed.Params, 1.0);
        foreach (var (k, v) in snapshot) Assert.Equal(v, saved.Buffers[k]);

        // Restore the parameters of step 2 (a checkpoint stores them too) by replaying into a fresh set.
        using var restart = ParamSet.Random(9, Shapes);
        var o3 = OptimizerFactory.Create(name, Options);
        for (int t = 1; t <= 2; t++) { restart.NewGrads(t); o3.Step(restart.Params, lrs[t - 1]); }
        var o4 = OptimizerFactory.Create(name, Options);
        o4.ImportState(saved);
        Assert.Equal(2, o4.StepCount);
        for (int t = 3; t <= 5; t++) { restart.NewGrads(t); o4.Step(restart.Params, lrs[t - 1]); }

        for (int i = 0; i < Shapes.Length; i++)
            Assert.True(straight.Params[i].Value.Floats.SequenceEqual(restart.Params[i].Value.Floats),
                $"{name}: parameter {i} differs after resume");
        Assert.Equal(o1.ExportState().Buffers.Keys.Order(), o4.ExportState().Buffers.Keys.Order());
        foreach (var (k, v) in o1.ExportState().Buffers) Assert.Equal(v, o4.ExportState().Buffers[k]);
    }

    [Fact]
    public void Export_UsesTorchBufferNames()
    {
        using var set = ParamSet.Random(1, [2, 3]);
        var adam = new AdamW();
        adam.Step(set.Params, 1e-3);
        Assert.Equal(["layers.0.weight.exp_avg", "layers.0.weight.exp_avg_sq"], adam.ExportState().Buffers.Keys.Order().ToArray());
        var sgd = new Sgd(momentum: 0.9);
        sgd.Step(set.Params, 1e-3);
        Assert.Equal(["layers.0.weight.momentum_buffer"], sgd.ExportState().Buffers.Keys.ToArray());
        var plain = new Sgd();
        plain.Step(set.Params, 1e-3);
        Assert.Empty(plain.ExportState().Buffers);
    }

    [Fact]
    public void Import_FromOtherOptimizer_ThrowsNamingBoth()
    {
        using var set = ParamSet.Random(1, [4]);
        var adam = new AdamW();
        adam.Step(set.Params, 1e-3);
        var e = Assert.Throws<UserErrorException>(() => new Lion().ImportState(adam.ExportState()));
        Assert.Contains("adamw", e.Message);
        Assert.Contains("lion", e.Message);
    }

    [Fact]
    public void Import_WrongLength_ThrowsNamingBufferAndShape()
    {
        using var small = ParamSet.Random(1, [4]);
        using var big = ParamSet.Random(1, [5]);
        var a = new AdamW();
        a.Step(small.Params, 1e-3);
        var b = new AdamW();
        b.ImportState(a.ExportState());
        var e = Assert.Throws<UserErrorException>(() => b.Step(big.Params, 1e-3));
        Assert.Contains("layers.0.weight.exp_avg", e.Message);
        Assert.Contains("[5]", e.Message);
    }

    [Fact]
    public void Import_StateForMissingParameter_ThrowsNamingIt()
    {
        using var two = ParamSet.Random(1, [4], [3]);
        var a = new AdamW();
        a.Step(two.Params, 1e-3);
        var b = new AdamW();
        b.ImportState(a.ExportState());
        var e = Assert.Throws<UserErrorException>(() => b.Step(two.Params.Take(1).ToList(), 1e-3));
        Assert.Contains("layers.1.weight", e.Message);
    }

    [Fact]
    public void Import_UnknownBufferName_Throws()
    {
        var state = new OptimizerState("adamw", 1, new Dictionary<string, float[]> { ["w.momentum_buffer"] = [1f] });
        var e = Assert.Throws<UserErrorException>(() => new AdamW().ImportState(state));
        Assert.Contains("momentum_buffer", e.Message);
    }

    [Fact]
    public void ZeroGrad_ClearsEveryGradient()
    {
        using var set = ParamSet.Random(1, [4], [3, 3]);
        Optimizer.ZeroGrad(set.Params);
        Assert.All(set.Params, p => Assert.All(p.Grad.Floats.ToArray(), g => Assert.Equal(0f, g)));
    }

    [Fact]
    public void Step_DuplicateParameterNames_Throws()
    {
        using var set = new ParamSet();
        set.Add("w", [1f], [0.1f], 1);
        set.Add("w", [2f], [0.2f], 1);
        var e = Assert.Throws<ArgumentException>(() => new AdamW().Step(set.Params, 1e-3));
        Assert.Contains("'w'", e.Message);
    }

    [Fact]
    public void Step_NegativeLearningRate_Throws()
    {
        using var set = ParamSet.Random(1, [4]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW().Step(set.Params, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW().Step(set.Params, double.NaN));
    }
}
