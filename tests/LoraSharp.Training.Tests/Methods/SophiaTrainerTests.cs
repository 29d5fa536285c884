// Sophia-G in the training loop: the sampled labels (same counted positions, softmax frequencies, seeded), the GNB
// Hessian pass every hessian_update_interval steps on stories260K, training lowering the loss, and the settings.
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.Training.Data;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Methods;

public class SophiaTrainerTests
{
    private static List<TrainingSample> Samples()
    {
        var rng = new Random(5);
        return Enumerable.Range(0, 8).Select(_ =>
        {
            var ids = Enumerable.Range(0, 20).Select(_ => rng.Next(1, 512)).ToArray();
            var labels = ids.Select((id, i) => i < 5 ? Batch.IgnoreIndex : id).ToArray();   // a masked prompt
            return new TrainingSample(ids, labels);
        }).ToList();
    }

    private static TrainingSettings Settings() => new()
    {
        MicroBatchSize = 4, BatchSize = 8, MaxSteps = 3, LearningRate = 1e-3, WarmupSteps = 0, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0,
        TargetModules = ["q_proj", "v_proj"], CutoffLen = 32, Optimizer = "sophia", HessianUpdateInterval = 2, LrSchedulerType = "constant",
    };

    [Fact]
    public void SampleRow_FollowsTheSoftmax()
    {
        float[] logits = [0.5f, -1f, 2f, float.NegativeInfinity, 0f, 1.25f];
        double max = logits.Max(), z = logits.Sum(l => Math.Exp(l - max));
        const int N = 200_000;
        var counts = new int[logits.Length];
        for (int i = 0; i < N; i++) counts[LlamaModel.SampleRow(logits, (i + 0.5) / N)]++;   // stratified u: frequencies exact to 1/N
        for (int v = 0; v < logits.Length; v++)
            Assert.True(Math.Abs(counts[v] / (double)N - Math.Exp(logits[v] - max) / z) <= 2.0 / N, $"token {v}: {counts[v] / (double)N} vs {Math.Exp(logits[v] - max) / z}");
        Assert.Equal(0, counts[3]);
    }

    [Fact]
    public void WithSampledLabels_KeepsTheCountedPositions_AndIsSeeded()
    {
        using var model = AdapterFixtures.LoadModel();
        var rng = new Random(9);
        int B = 2, T = 12;
        var ids = Enumerable.Range(0, B * T).Select(_ => rng.Next(1, 512)).ToArray();
        var labels = ids.Select((id, i) => i % T < 4 ? Batch.IgnoreIndex : id).ToArray();
        int[] seq = [.. Enumerable.Repeat(0, 7), .. Enumerable.Repeat(1, 5), .. Enumerable.Repeat(0, 12)];   // row 0 packs two samples
        var batch = new Batch(B, T, ids, labels: labels, sequenceIds: seq);
        var a = model.WithSampledLabels(batch, 42);
        var b = model.WithSampledLabels(batch, 42);
        var c = model.WithSampledLabels(batch, 43);
        Assert.Equal(batch.TargetCount, a.TargetCount);
        var t0 = new int[B * T]; var t1 = new int[B * T];
        batch.ShiftedTargets(t0); a.ShiftedTargets(t1);
        for (int i = 0; i < B * T; i++) Assert.Equal(t0[i] == Batch.IgnoreIndex, t1[i] == Batch.IgnoreIndex);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Labels, c.Labels);
        Assert.Equal(batch.InputIds, a.InputIds);
        Assert.All(a.Labels, l => Assert.True(l == Batch.IgnoreIndex || (l >= 0 && l < 512)));
    }

    [Fact]
    public void Trainer_RefreshesTheHessianEveryInterval_AndLowersTheLoss()
    {
        using var model = AdapterFixtures.LoadModel();
        var s = Settings() with { MaxSteps = 8, LearningRate = 5e-3 };
        LoraInjector.Attach(model, s.ToLoraSettings(), s.Seed);
        var trainer = new Trainer(model, s, Samples(), null, 0);
        var sophia = Assert.IsType<Sophia>(trainer.Optimizer);
        Assert.Equal(0.965, sophia.Beta1);
        trainer.Run();
        Assert.Equal(8, trainer.Step);
        Assert.Equal(4, sophia.HessianUpdates);   // after steps 2, 4, 6, 8
        var state = sophia.ExportState().Buffers;
        var hessians = state.Where(kv => kv.Key.EndsWith(".hessian", StringComparison.Ordinal)).ToList();
        Assert.Equal(trainer.Parameters.Count, hessians.Count);
        Assert.All(hessians, kv => Assert.True(kv.Value.All(v => v >= 0 && float.IsFinite(v)) && kv.Value.Any(v => v > 0), $"{kv.Key} is not a positive estimate"));
        Assert.All(trainer.Parameters, p => Assert.True(p.Grad.Floats.ToArray().All(g => g == 0), "the Hessian pass leaves gradients zeroed"));
        Assert.True(trainer.History[^1].Loss < trainer.History[0].Loss - 0.05, $"loss {trainer.History[0].Loss} -> {trainer.History[^1].Loss}");
    }

    [Fact]
    public void Settings_ReachTheOptimizer()
    {
        using var model = AdapterFixtures.LoadModel();
        var s = Settings() with { AdamBeta1 = 0.9, AdamBeta2 = 0.95, SophiaRho = 0.02, WeightDecay = 0.2 };
        LoraInjector.Attach(model, s.ToLoraSettings(), s.Seed);
        var sophia = Assert.IsType<Sophia>(new Trainer(model, s, Samples(), null, 0).Optimizer);
        Assert.Equal((0.9, 0.95, 0.02, 0.2), (sophia.Beta1, sophia.Beta2, sophia.Gamma, sophia.WeightDecay));
    }

    [Theory]
    [InlineData("hessian_update_interval")]
    [InlineData("sophia_rho")]
    [InlineData("adam_beta2")]
    [InlineData("optimizer")]
    public void BadSettings_NameTheSetting(string setting)
    {
        var s = setting switch
        {
            "hessian_update_interval" => Settings() with { HessianUpdateInterval = 0 },
            "sophia_rho" => Settings() with { SophiaRho = 0 },
            "adam_beta2" => Settings() with { AdamBeta2 = 1 },
            _ => Settings() with { Objective = "dpo" },
        };
        var e = Assert.ThrowsAny<Core.UserErrorException>(s.Validate);
        Assert.StartsWith(setting, e.Message);
    }
}
