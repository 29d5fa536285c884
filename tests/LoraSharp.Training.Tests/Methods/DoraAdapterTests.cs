// DoRA adapters as files and through the adapter tools: PEFT save/load (lora_magnitude_vector keys), merge exactly,
// GGUF export refused without conversion, SVD conversion to a plain LoRA with its error reported, combine refused.
using System.Text.Json;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Peft;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Methods;

public class DoraAdapterTests
{
    private static readonly LoraSettings Dora = new() { Rank = 4, Alpha = 8, TargetModules = ["all-linear"], UseDora = true, Init = "none" };

    // A DoRA adapter away from its init: random A and B, and magnitudes 0.8..1.2 x the row norms.
    private static LlamaModel TrainedDoraModel()
    {
        var model = AdapterFixtures.LoadModel();
        LoraInjector.Attach(model, Dora, seed: 11);
        var rng = new Random(12);
        foreach (var (_, _, _, a) in LoraInjector.Enumerate(model))
        {
            var m = a.Magnitude!.Floats;
            for (int i = 0; i < m.Length; i++) m[i] *= (float)(0.8 + 0.4 * rng.NextDouble());
        }
        return model;
    }

    [Fact]
    public void PeftFolder_RoundTrip_KeepsMagnitudesUnderPeftKeys_AndTheLogits()
    {
        using var dir = new TempDir();
        using var model = TrainedDoraModel();
        var batch = AdapterFixtures.GoldenBatch();
        var logits = model.Logits(batch);
        var config = PeftAdapter.ToConfig(Dora, "stories260K");
        Directory.CreateDirectory(dir["dora"]);
        PeftAdapter.WriteFiles(model, "default", config, dir["dora"]);

        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["dora"], "adapter_config.json"))))
            Assert.True(doc.RootElement.GetProperty("use_dora").GetBoolean());
        using (var st = SafetensorsFile.Open(Path.Combine(dir["dora"], PeftAdapter.WeightsFile)))
        {
            var info = st.Info("base_model.model.model.layers.2.mlp.up_proj.lora_magnitude_vector");   // PEFT's key: no ".weight"
            Assert.Equal([172], info.Shape);
            Assert.Equal(35 * 3, st.Tensors.Count);
        }

        var read = LoraWeights.ReadPeft(dir["dora"]);
        Assert.All(read.Modules, m => Assert.True(m.IsDora));
        using var fresh = AdapterFixtures.LoadModel();
        read.AttachTo(fresh);
        Assert.Equal(logits, fresh.Logits(batch));
    }

    [Fact]
    public void Merge_DoraAdapter_GivesTheAdapterModelsLoss()
    {
        using var dir = new TempDir();
        using var model = TrainedDoraModel();
        var batch = AdapterFixtures.GoldenBatch();
        double loss = model.Loss(batch);
        using var baseModel = AdapterFixtures.LoadModel();
        Assert.True(Math.Abs(loss - baseModel.Loss(batch)) > 1e-3, "the test adapter must change the model");
        var weights = LoraWeights.FromModel(model, baseModel: "stories260K");
        using var loaded = Models.Loading.ModelLoader.Load(AdapterFixtures.HfFolder, new Models.Loading.ModelLoadOptions { BaseDType = "stored" });
        AdapterMerger.Merge(loaded, [(weights, 1.0)], dir["merged"], new MergeOptions());
        using var merged = AdapterFixtures.LoadModel(dir["merged"]);
        var a = model.Logits(batch);
        var b = merged.Logits(batch);
        double scale = a.Max(v => Math.Abs(v));
        Assert.True(TestData.MaxAbsDiff(a, b) <= 1e-5 * scale, $"merged logits differ by {TestData.MaxAbsDiff(a, b):E3} (max |logit| {scale:F2})");
        Assert.Equal(loss, merged.Loss(batch), 1e-5);
    }

    [Fact]
    public void GgufExport_OfDora_IsRefusedWithHowToFix_AndCombineToo()
    {
        using var model = TrainedDoraModel();
        var weights = LoraWeights.FromModel(model);
        using var dir = new TempDir();
        var e = Assert.ThrowsAny<Core.UserErrorException>(() => GgufLoraAdapter.Write(weights, AdapterFixtures.Config(), dir["x.gguf"]));
        Assert.Contains("--to-lora", e.Message);
        Assert.Contains("merge", e.Message);
        Assert.False(File.Exists(dir["x.gguf"]));
        var c = Assert.ThrowsAny<Core.UserErrorException>(() => AdapterCombiner.Combine([(weights, 1.0)], CombineMethod.Cat));
        Assert.Contains("lora_magnitude_vector", c.Message);
    }

    [Fact]
    public void ConversionToLora_ReportsItsError_AndAtFullRankIsExact()
    {
        using var model = TrainedDoraModel();
        var batch = AdapterFixtures.GoldenBatch();
        var doraLogits = model.Logits(batch);
        var weights = LoraWeights.FromModel(model);
        using var loaded = Models.Loading.ModelLoader.Load(AdapterFixtures.HfFolder, new Models.Loading.ModelLoadOptions { BaseDType = "stored" });

        var (plain, report) = DoraConversion.ToPlainLora(weights, loaded.Tensors);
        Assert.All(plain.Modules, m => Assert.False(m.IsDora));
        Assert.Equal(35, report.Modules.Count);
        Assert.InRange(report.RelativeError, 1e-3, 1.0);   // the row scale makes ΔW full rank: rank 4 cannot hold it all

        // Check the reported error against the factors themselves for one module.
        var mod = report.Modules[0];
        var dora = weights.Find(mod.Module)!;
        var w = LoraExtractor_ToF32(loaded.Tensors[dora.WeightName]);
        double num = 0, den = 0;
        var delta = plain.Find(mod.Module)!.Delta();
        var row = new double[dora.InFeatures];
        for (int n = 0; n < dora.OutFeatures; n++)
        {
            for (int k = 0; k < row.Length; k++) row[k] = w[n * row.Length + k];
            dora.AddDeltaToRow(n, row, 1.0);
            dora.ApplyDoraToRow(n, row);
            for (int k = 0; k < row.Length; k++)
            {
                double d = row[k] - w[n * row.Length + k];
                num += Math.Pow(d - delta[n * row.Length + k], 2);
                den += d * d;
            }
        }
        Assert.Equal(Math.Sqrt(num / den), mod.RelativeError, 1e-4);

        // At full rank (64 covers every module of stories260K) the conversion is exact up to f32 rounding.
        var (full, fullReport) = DoraConversion.ToPlainLora(weights, loaded.Tensors, rank: 172);
        Assert.True(fullReport.RelativeError < 1e-5, $"full-rank conversion error {fullReport.RelativeError:E3}");
        using var converted = AdapterFixtures.LoadModel();
        full.AttachTo(converted);
        Assert.True(TestData.MaxAbsDiff(doraLogits, converted.Logits(batch)) <= 1e-4);
    }

    private static float[] LoraExtractor_ToF32(Core.Tensors.Tensor t) => t.Floats.ToArray();

    [Fact]
    public void PeftFile_WithMagnitudesButUseDoraFalse_IsAClearError()
    {
        using var dir = new TempDir();
        using var model = TrainedDoraModel();
        Directory.CreateDirectory(dir["bad"]);
        PeftAdapter.WriteFiles(model, "default", PeftAdapter.ToConfig(Dora, "stories260K"), dir["bad"]);
        var cfg = Path.Combine(dir["bad"], "adapter_config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"use_dora\": true", "\"use_dora\": false"));
        var e = Assert.ThrowsAny<Core.UserErrorException>(() => LoraWeights.ReadPeft(dir["bad"]));
        Assert.Contains("use_dora", e.Message);
    }
}
