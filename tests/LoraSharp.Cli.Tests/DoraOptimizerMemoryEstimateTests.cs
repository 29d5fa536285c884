// The memory estimate's DoRA buffers and optimizer state against what a run really holds on stories260K: DoRA's
// per-projection bytes after a training forward/backward (with dropout, the larger workspace) equal the estimate's
// exactly, and each optimizer's exported state has exactly the floats per parameter the estimate counts.
using LoraSharp.App;
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;
using LoraSharp.Training;
using LoraSharp.Training.Data;

namespace LoraSharp.Cli.Tests;

public class DoraOptimizerMemoryEstimateTests
{
    private static TrainingSettings Settings(bool dora, string optimizer = "adamw") => new()
    {
        MicroBatchSize = 2, BatchSize = 2, MaxSteps = 1, LearningRate = 1e-3, WarmupSteps = 0, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.1,
        TargetModules = ["all-linear"], CutoffLen = 16, UseDora = dora, Optimizer = optimizer, Momentum = optimizer == "sgd" ? 0.9 : 0,
    };

    private static List<TrainingSample> Samples(int n, int length)
    {
        var rng = new Random(7);
        return Enumerable.Range(0, n).Select(_ => { var ids = Enumerable.Range(0, length).Select(_ => rng.Next(1, 512)).ToArray(); return new TrainingSample(ids, ids); }).ToList();
    }

    [Fact]
    public void DoraBytes_EqualWhatTheDoraBuffersHoldAfterAStep()
    {
        using var session = ModelSession.Open(SharedFixtures.Path("models", "stories260K-hf"));
        var model = session.Model;
        var s = Settings(dora: true);
        LoraInjector.Attach(model, s.ToLoraSettings(), s.Seed);
        int B = s.MicroBatchSize, T = s.CutoffLen;
        var ids = Samples(B, T).SelectMany(x => x.InputIds).ToArray();
        Optimizer.ZeroGrad(model.TrainableParameters());
        model.ForwardBackward(new Batch(B, T, ids), 1f / (B * (T - 1)), dropoutSeed: 3, out _);
        var projections = model.Layers.SelectMany(l => l.Projections).ToList();
        long held = projections.Sum(p => p.DoraBufferBytes);
        var modules = projections.SelectMany(p => p.Adapters.Where(a => a.IsDora).Select(a => (p.OutFeatures, p.InFeatures, a.Rank))).ToList();
        Assert.Equal(7 * model.Config.NumHiddenLayers, modules.Count);
        var estimate = LoraMemoryEstimate.Compute(model.Config, model.BaseWeightBytes, 0, s.LoraRank, T, B, outputF32: true, threads: 1, doraModules: modules);
        Assert.True(held > 0);
        Assert.Equal(held, estimate.DoraBytes);
        var plain = LoraMemoryEstimate.Compute(model.Config, model.BaseWeightBytes, 0, s.LoraRank, T, B, outputF32: true, threads: 1);
        Assert.Equal(plain.TotalBytes + held, estimate.TotalBytes);
        // inspect's all-linear line is the same sum (plus the magnitudes' value, grad and AdamW state)
        long allLinears = LoraMemoryEstimate.AllLinears(model.Config).Sum(m => LoraMemoryEstimate.DoraBufferBytes(m.Out, m.In, s.LoraRank, T * B));
        Assert.Equal(held, allLinears);
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("sophia")]
    [InlineData("lion")]
    [InlineData("sgd")]
    public void OptimizerState_HasTheFloatsPerParameterTheEstimateCounts(string optimizer)
    {
        using var session = ModelSession.Open(SharedFixtures.Path("models", "stories260K-hf"));
        var model = session.Model;
        var s = Settings(dora: false, optimizer) with { HessianUpdateInterval = 1 };
        LoraInjector.Attach(model, s.ToLoraSettings(), s.Seed);
        var trainer = new Trainer(model, s, Samples(4, 12), null, 0);
        trainer.Run();
        long parameters = trainer.Parameters.Sum(p => (long)p.Length);
        long state = trainer.Optimizer.ExportState().Buffers.Values.Sum(v => (long)v.Length);
        int floats = LoraMemoryEstimate.OptimizerStateFloats(optimizer, s.Momentum, s.AdamBeta1);
        Assert.Equal(parameters * floats, state);
        var estimate = LoraMemoryEstimate.Compute(model.Config, 0, parameters, s.LoraRank, 12, 2, outputF32: true, threads: 1, optimizer, floats);
        Assert.Equal(parameters * 4 * (2 + floats), estimate.TrainableBytes);
        Assert.Equal(optimizer, estimate.Optimizer);
    }
}
