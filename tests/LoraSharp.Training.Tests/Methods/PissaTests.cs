// PiSSA / OLoRA init (PissaInit) and the conversion to a plain LoRA (PissaConversion) on stories260K, against the
// float64 PyTorch reference tests/references/golden/pissa_stories.safetensors (PEFT's pissa_init / olora_init):
// the factors, the residual base (in place, step 0 = the base model), the loss of trained factors on the residual
// and of the converted rank-2r LoRA on the original base; pissa_niter_K seeded; the refusals with how to fix.
using System.Globalization;
using System.Text.Json;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Peft;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Methods;

public class PissaTests
{
    private static LoraSettings Settings(string init) => new() { Rank = 4, Alpha = 8, TargetModules = ["all-linear"], Init = init };

    private static double Meta(SafetensorsFile st, string key) => double.Parse(st.Metadata[key], CultureInfo.InvariantCulture);

    private static double[] Golden(SafetensorsFile st, string key)
    {
        using var t = st.GetTensor(key);
        return t.Floats.ToArray().Select(v => (double)v).ToArray();
    }

    // The reference's "trained" factors: A' = A0 + 0.01·sin(1 + i), B' = B0 + 0.01·cos(1 + i), rounded to f32.
    private static void Wave(Span<float> x, Func<double, double> fn)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)(x[i] + 0.01 * fn(i + 1));
    }

    [Theory]
    [InlineData("pissa")]
    [InlineData("olora")]
    public void Attach_OnStories_MatchesFloat64Reference_AndStep0IsTheBaseModel(string init)
    {
        using var st = SafetensorsFile.Open(MethodReferences.Path("pissa_stories.safetensors"));
        var batch = AdapterFixtures.GoldenBatch();
        using var original = AdapterFixtures.LoadModel();
        double baseLoss = original.Loss(batch);
        var baseLogits = original.Logits(batch);

        using var model = AdapterFixtures.LoadModel();
        var result = PissaInit.Attach(model, Settings(init), seed: 3);
        Assert.Equal(35, result.Adapters.Count);
        foreach (var (_, _, linear, a) in LoraInjector.Enumerate(model))
        {
            MethodReferences.AssertRelative(a.A.Floats, Golden(st, $"{init}.{linear.Name}.lora_A"), 1e-5, $"{init} {linear.Name} A");
            MethodReferences.AssertRelative(a.B.Floats, Golden(st, $"{init}.{linear.Name}.lora_B"), 1e-5, $"{init} {linear.Name} B");
            // The frozen weight is now W − s·B·A (in its f32 panels), W read from the untouched model.
            int N = linear.OutFeatures, K = linear.InFeatures, R = a.Rank;
            var ids = Enumerable.Range(0, N).ToArray();
            var res = new float[N * K];
            var w = new float[N * K];
            linear.Packed.GatherRows(ids, res);
            original.FindLinear(linear.Name)!.Packed.GatherRows(ids, w);
            double worst = 0, scale = w.Max(Math.Abs);
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++)
                {
                    double ba = 0;
                    for (int r = 0; r < R; r++) ba += (double)a.B.Floats[n * R + r] * a.A.Floats[r * K + k];
                    worst = Math.Max(worst, Math.Abs(res[n * K + k] - (w[n * K + k] - a.Scale * ba)));
                }
            Assert.True(worst <= 1e-6 * scale, $"{linear.Name}: residual off by {worst:E3}");
        }
        Assert.Equal(baseLoss, model.Loss(batch), 1e-5);
        var logits = model.Logits(batch);
        Assert.True(TestData.MaxAbsDiff(baseLogits, logits) <= 1e-4, $"step-0 logits differ from the base by {TestData.MaxAbsDiff(baseLogits, logits):E3}");
    }

    [Theory]
    [InlineData("pissa")]
    [InlineData("olora")]
    public void TrainedFactors_OnResidual_AndConvertedOnOriginalBase_GiveTheReferenceLoss_AndRoundTripThroughPeftAndGguf(string init)
    {
        using var dir = new TempDir();
        using var st = SafetensorsFile.Open(MethodReferences.Path("pissa_stories.safetensors"));
        var batch = AdapterFixtures.GoldenBatch();
        using var model = AdapterFixtures.LoadModel();
        var result = PissaInit.Attach(model, Settings(init), seed: 3);
        foreach (var a in result.Adapters)
        {
            Wave(a.A.Floats, Math.Sin);
            Wave(a.B.Floats, Math.Cos);
        }
        double expected = Meta(st, $"loss_{init}_f64");
        Assert.Equal(expected, model.Loss(batch), 1e-5);

        // The converted adapter on the ORIGINAL base: rank 2r, same scale, the same model.
        var converted = PissaConversion.ToPlainLora(LoraWeights.FromModel(model), result.Initial);
        Assert.All(converted.Modules, m => Assert.Equal(8, m.Rank));
        using (var fresh = AdapterFixtures.LoadModel())
        {
            converted.AttachTo(fresh);
            Assert.Equal(Meta(st, $"converted_loss_{init}_f64"), fresh.Loss(batch), 1e-5);
        }

        // Written as the finished run writes it: a PEFT folder any tool reads (r 8, alpha 16, init true) ...
        var config = PeftAdapter.ToConfig(Settings(init), "stories260K");
        Assert.Equal(init, config.InitLoraWeights.Method);
        Directory.CreateDirectory(dir["run"]);
        PissaConversion.WriteFiles(model, "default", result.Initial, config, dir["run"]);
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["run"], "adapter_config.json"))))
        {
            Assert.Equal(8, doc.RootElement.GetProperty("r").GetInt32());
            Assert.Equal(16.0, doc.RootElement.GetProperty("lora_alpha").GetDouble());
            Assert.True(doc.RootElement.GetProperty("init_lora_weights").GetBoolean());
        }
        var read = AdapterLoader.Read(dir["run"], AdapterFixtures.Config());
        Assert.Equal(0, AdapterFixtures.MaxDeltaDiff(read, converted));
        // ... and a llama.cpp GGUF LoRA that reads back to the same ΔW.
        GgufLoraAdapter.Write(read, AdapterFixtures.Config(), dir["a.gguf"]);
        var gguf = AdapterLoader.Read(dir["a.gguf"], AdapterFixtures.Config());
        Assert.True(AdapterFixtures.MaxDeltaDiff(gguf, converted) <= 1e-6, "GGUF LoRA round trip");
    }

    [Theory]
    [InlineData("pissa")]
    [InlineData("olora")]
    public void UnconvertedAdapter_ConvertsExactlyOnTheOriginalBase_AsTheRunWould(string init)
    {
        using var dir = new TempDir();
        using var model = AdapterFixtures.LoadModel();
        var result = PissaInit.Attach(model, Settings(init), seed: 3);
        foreach (var a in result.Adapters)
        {
            Wave(a.A.Floats, Math.Sin);
            Wave(a.B.Floats, Math.Cos);
        }
        Directory.CreateDirectory(dir["raw"]);
        PeftAdapter.WriteFiles(model, "default", PeftAdapter.ToConfig(Settings(init), "stories260K"), dir["raw"]);   // a checkpoint / PEFT's plain save
        var raw = AdapterLoader.Read(dir["raw"], AdapterFixtures.Config(), residualRelative: true);
        Assert.Equal(init, raw.ResidualInit);
        using var loaded = ModelLoader.Load(AdapterFixtures.HfFolder, new ModelLoadOptions { BaseDType = "stored" });
        var converted = PissaConversion.FromOriginalBase(raw, loaded.Tensors);
        var expected = PissaConversion.ToPlainLora(LoraWeights.FromModel(model), result.Initial);
        double diff = AdapterFixtures.MaxDeltaDiff(converted, expected);
        Assert.True(diff <= 1e-5, $"recomputed conversion differs by {diff:E3}");
    }

    [Fact]
    public void UnconvertedAdapter_IsRefusedByEveryTool_WithHowToFix()
    {
        using var dir = new TempDir();
        using var model = AdapterFixtures.LoadModel();
        PissaInit.Attach(model, Settings("pissa_niter_2"), seed: 3);
        Directory.CreateDirectory(dir["raw"]);
        PeftAdapter.WriteFiles(model, "default", PeftAdapter.ToConfig(Settings("pissa_niter_2"), "stories260K"), dir["raw"]);   // what a checkpoint holds
        var e = Assert.ThrowsAny<Core.UserErrorException>(() => AdapterLoader.Read(dir["raw"], AdapterFixtures.Config()));
        Assert.Contains("'pissa_niter_2'", e.Message);
        Assert.Contains("residual", e.Message);
        Assert.Contains("path_initial_model_for_weight_conversion", e.Message);
        Assert.Contains("--to-lora", e.Message);
        var raw = AdapterLoader.Read(dir["raw"], AdapterFixtures.Config(), residualRelative: true);
        using var loaded = ModelLoader.Load(AdapterFixtures.HfFolder, new ModelLoadOptions { BaseDType = "stored" });
        Assert.Contains("randomized", Assert.ThrowsAny<Core.UserErrorException>(() => PissaConversion.FromOriginalBase(raw, loaded.Tensors)).Message);
    }

    [Fact]
    public void PissaNiter_IsSeeded_AndCloseToTheExactSvd()
    {
        using var loaded = ModelLoader.Load(AdapterFixtures.HfFolder);
        var w = loaded.Tensors[TensorNames.Linear(2, "gate_proj")].Floats.ToArray();   // [172, 64]
        const int N = 172, K = 64, R = 4;
        var (a1, b1) = PissaInit.Factors(w, N, K, R, 2.0, "pissa_niter_4", seed: 9);
        var (a2, b2) = PissaInit.Factors(w, N, K, R, 2.0, "pissa_niter_4", seed: 9);
        Assert.Equal(a1, a2);
        Assert.Equal(b1, b2);
        // This weight's σ4/σ5 is 1.013, so the rank-4 subspace itself is ill-defined (torch.svd_lowrank(q=4, niter=4)
        // misses it by 94%); what matters to PiSSA is how much of W the adapter takes: ‖W − s·B·A‖_F near the optimum.
        var (ae, be) = PissaInit.Factors(w, N, K, R, 2.0, "pissa");
        double ResidualNorm(float[] a, float[] b)
        {
            double sum = 0;
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++)
                {
                    double ba = 0;
                    for (int r = 0; r < R; r++) ba += (double)b[n * R + r] * a[r * K + k];
                    double d = w[n * K + k] - 2.0 * ba;
                    sum += d * d;
                }
            return Math.Sqrt(sum);
        }
        double exact = ResidualNorm(ae, be), fast = ResidualNorm(a1, b1);
        Assert.True(fast >= exact * (1 - 1e-9), "no rank-4 residual is smaller than the exact SVD's");
        Assert.True(fast <= exact * (1 + 1e-3), $"pissa_niter_4 leaves ‖W_res‖ {fast:F6}, the exact SVD {exact:F6}");
    }

    [Fact]
    public void QuantizedBase_IsRefusedWithHowToFix_AndNothingStaysAttached()
    {
        using var stored = ModelLoader.Load(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-Q8_0.gguf"), new ModelLoadOptions { BaseDType = "stored" });
        using var q8 = LlamaModel.FromTensors(stored.Config, stored.Tensors, stored.SourcePath);
        var e = Assert.ThrowsAny<Core.UserErrorException>(() => PissaInit.Attach(q8, Settings("olora"), seed: 1));
        Assert.Contains("Q8_0", e.Message);
        Assert.Contains("--base-dtype f32", e.Message);
        Assert.Empty(LoraInjector.Enumerate(q8));
    }

    [Fact]
    public void Settings_AcceptPeftSpellings_AndRefuseBadCombinations()
    {
        using (var model = AdapterFixtures.LoadModel())
            Assert.Throws<ArgumentException>(() => LoraInjector.Attach(model, Settings("olora"), 1));
        Assert.True(LoraSettings.TryParsePissaNiter("pissa_niter_16", out int k) && k == 16);
        Assert.False(LoraSettings.IsBaseDerivedInit("pissa_niter_0"));
        Assert.False(LoraSettings.IsBaseDerivedInit("pissa_niter_x"));
        Settings("true").Validate();
        Settings("false").Validate();
        Assert.Contains("pissa_niter_K", Assert.Throws<Core.UserErrorException>(() => Settings("pissa_niter_0").Validate()).Message);
        Assert.Contains("use_dora", Assert.Throws<Core.UserErrorException>(() => (Settings("pissa") with { UseDora = true }).Validate()).Message);
        var t = new TrainingSettings { InitLoraWeights = "pissa", Objective = "dpo", Dataset = "x.json" };
        Assert.Contains("DPO", Assert.Throws<Core.UserErrorException>(() => t.Validate()).Message);
        Assert.Contains("full_fine_tuning", Assert.Throws<Core.UserErrorException>(() => (new TrainingSettings { InitLoraWeights = "olora", FullFineTuning = true }).Validate()).Message);
        new TrainingSettings { InitLoraWeights = "pissa_niter_16" }.Validate();
        Assert.Throws<Core.UserErrorException>(() => new TrainingSettings { InitLoraWeights = "svd" }.Validate());
    }
}
