// `lorasharp bench random-model --family F` at the tiny check shape: each family's folder loads through ModelLoader as
// that family (its own fields and tensors), and one LoRA step through the path `bench train --model` times (the
// session's model, all-linear targets resolved per family) gives a finite loss near ln(vocab), as random weights at
// N(0, 0.02) must. No timing here: the real measurement is the loop in docs/models.md on a quiet machine.
using LoraSharp.Bench;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class BenchRandomModelTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-bench-random-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string Write(string family, string dtype = "f32")
    {
        string folder = Path.Combine(_dir, family);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(["bench", "random-model", "--shape", "tiny", "--family", family, "--dtype", dtype, "-o", folder,
            "--tokenizer-from", SharedFixtures.Stories260KHf], o, e);
        Assert.True(code == 0, $"random-model --family {family} failed: {e}{o}");
        return folder;
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("smollm3")]
    [InlineData("gemma3_text")]
    [InlineData("gemma2")]
    [InlineData("phi3")]
    public void RandomModel_Family_LoadsAsThatFamilyAndTrainsOneStep(string family)
    {
        string folder = Write(family);
        var tiny = MethodsBench.Tiny.Config;
        using (var loaded = ModelLoader.Load(folder, new ModelLoadOptions { BaseDType = "stored" }))
        {
            var c = loaded.Config;
            Assert.Equal(family, c.ModelType);
            Assert.Equal((tiny.HiddenSize, tiny.NumHiddenLayers, tiny.NumAttentionHeads, tiny.NumKeyValueHeads, tiny.HeadDim, tiny.VocabSize),
                (c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.VocabSize));
            // Each family's own fields arrive as the loader reads them (a missing one would load as a different model).
            switch (family)
            {
                case "qwen2": Assert.True(c.QkvBias); break;
                case "qwen3": Assert.True(c.QkNorm); break;
                case "smollm3": Assert.Equal(Enumerable.Range(0, c.NumHiddenLayers).Select(l => (l + 1) % 4 != 0 ? 1 : 0), c.NoRopeLayers!); break;
                case "gemma3_text":
                    Assert.True(c.SandwichNorms && c.QkNorm && c.GatedGelu);
                    Assert.Equal((10000.0, 512, (double)c.HeadDim), (c.RopeLocalTheta!.Value, c.SlidingWindow!.Value, c.QueryPreAttnScalar!.Value));
                    break;
                case "gemma2":
                    Assert.True(c.SandwichNorms && !c.QkNorm && c.GatedGelu);
                    Assert.Equal((50.0, 30.0, 4096, (double)c.HeadDim),
                        (c.AttnLogitSoftcapping!.Value, c.FinalLogitSoftcapping!.Value, c.SlidingWindow!.Value, c.QueryPreAttnScalar!.Value));
                    break;
                case "phi3": Assert.True(c.FusedProjections); break;
                default: Assert.Equal("llama", c.ModelType); break;
            }
        }
        var result = TrainBench.MeasureHere(TrainBench.ForModel(folder, 16), steps: 1, warmup: 0, baseDType: "auto");
        double lnV = Math.Log(tiny.VocabSize);
        Assert.True(double.IsFinite(result.Loss) && Math.Abs(result.Loss - lnV) < 1.0,
            $"{family}: the first step's loss is {result.Loss}; random N(0, 0.02) weights should give about ln({tiny.VocabSize}) = {lnV:F2}.");
        Assert.Equal("f32", result.BaseDType);
    }

    [Fact]
    public void BenchTrain_Phi3_AllLinearTargetsItsFusedProjections()
    {
        string folder = Write("phi3", "bf16");
        var shape = TrainBench.ForModel(folder, 8) with { TargetModules = ["all-linear"] };
        shape.CheckTargets();
        Assert.True(double.IsFinite(TrainBench.MeasureHere(shape, steps: 1, warmup: 0, baseDType: "auto").Loss));
        var fused = shape with { TargetModules = ["qkv_proj", "gate_up_proj"] };
        fused.CheckTargets();
        Assert.True(double.IsFinite(TrainBench.MeasureHere(fused, steps: 1, warmup: 0, baseDType: "auto").Loss));
    }

    [Fact]
    public void BenchTrain_Phi3_UnfusedTarget_IsAClearError()
    {
        string folder = Write("phi3");
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(["bench", "train", "--model", folder, "--seq", "8", "--no-peer", "--target-modules", "q_proj"], o, e);
        Assert.Equal(1, code);
        Assert.Contains("'q_proj' is not a projection of this phi3 model", e.ToString());
        Assert.Contains("qkv_proj", e.ToString());
    }

    [Fact]
    public void RandomModel_UnknownFamily_IsAClearError()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(["bench", "random-model", "--shape", "tiny", "--family", "mixtral", "-o", Path.Combine(_dir, "x"),
            "--tokenizer-from", SharedFixtures.Stories260KHf], o, e);
        Assert.Equal(1, code);
        Assert.Contains("--family 'mixtral'", e.ToString());
        Assert.Contains("gemma3_text", e.ToString());
        Assert.False(Directory.Exists(Path.Combine(_dir, "x")), "a refused family must not leave a folder behind");
    }
}
