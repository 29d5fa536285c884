using LoraSharp.Models.Lora;
using LoraSharp.Training.Data;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Methods;

/// <summary>How the Trainer wires LoRA+ and NEFTune from TrainingSettings, and the settings' validation.</summary>
public class TrainerMethodsTests
{
    private static List<TrainingSample> Samples()
    {
        var rng = new Random(3);
        return Enumerable.Range(0, 8).Select(_ =>
        {
            var ids = Enumerable.Range(0, 20).Select(_ => rng.Next(1, 512)).ToArray();
            return new TrainingSample(ids, ids);
        }).ToList();
    }

    private static TrainingSettings Settings() => new()
    {
        MicroBatchSize = 4, BatchSize = 4, MaxSteps = 2, LearningRate = 1e-3, WarmupSteps = 0, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0,
        TargetModules = ["q_proj", "v_proj"], CutoffLen = 32,
    };

    [Fact]
    public void LoraPlus_ScalesTheLearningRateOfLoraBOnly()
    {
        using var model = AdapterFixtures.LoadModel();
        var s = Settings() with { LoraplusLrRatio = 16, NeftuneNoiseAlpha = 5 };
        LoraInjector.Attach(model, s.ToLoraSettings(), s.Seed);
        var trainer = new Trainer(model, s, Samples(), null, 0);
        Assert.All(trainer.Parameters, p => Assert.Equal(p.Name.Contains(".lora_B.") ? 16.0 : 1.0, p.LearningRateScale));
        Assert.Equal(5, model.NeftuneNoiseAlpha);
        trainer.Run();
        Assert.Equal(2, trainer.Step);
    }

    [Fact]
    public void LoraPlus_ChangesTheUpdateOfBAsAGroupAtRatioTimesLr()
    {
        // With a constant schedule, AdamW's first update of every element is ≈ lr·sign(g): B moves ~16x further with ratio 16.
        double MeanUpdate(double ratio, string which)
        {
            using var model = AdapterFixtures.LoadModel();
            var s = Settings() with { LoraplusLrRatio = ratio, MaxSteps = 1, LrSchedulerType = "constant", InitLoraWeights = "none" };
            LoraInjector.Attach(model, s.ToLoraSettings(), s.Seed);
            var trainer = new Trainer(model, s, Samples(), null, 0);
            var before = trainer.Parameters.Where(p => p.Name.Contains(which)).Select(p => p.Value.Floats.ToArray()).ToList();
            trainer.Run();
            var after = trainer.Parameters.Where(p => p.Name.Contains(which)).Select(p => p.Value.Floats.ToArray()).ToList();
            return before.Zip(after).Average(x => x.First.Zip(x.Second).Average(v => Math.Abs(v.First - v.Second)));
        }
        double b1 = MeanUpdate(0, ".lora_B."), b16 = MeanUpdate(16, ".lora_B.");
        double a1 = MeanUpdate(0, ".lora_A."), a16 = MeanUpdate(16, ".lora_A.");
        Assert.InRange(b16 / b1, 15.0, 16.5);
        Assert.InRange(a16 / a1, 0.999, 1.001);
    }

    [Theory]
    [InlineData("loraplus_lr_ratio", -1.0, false, false)]
    [InlineData("loraplus_lr_ratio", 16.0, true, false)]
    [InlineData("neftune_noise_alpha", -5.0, false, false)]
    [InlineData("use_dora", 1.0, true, true)]
    public void BadCombinations_NameTheSetting(string setting, double value, bool full, bool dora)
    {
        var s = Settings() with { FullFineTuning = full, UseDora = dora };
        s = setting switch
        {
            "loraplus_lr_ratio" => s with { LoraplusLrRatio = value },
            "neftune_noise_alpha" => s with { NeftuneNoiseAlpha = value },
            _ => s,
        };
        var e = Assert.ThrowsAny<Core.UserErrorException>(s.Validate);
        Assert.StartsWith(setting, e.Message);
    }
}
