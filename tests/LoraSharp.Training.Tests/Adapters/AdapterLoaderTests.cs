// Import of PEFT folders made elsewhere: rank_pattern / alpha_pattern and rsLoRA give the right scale per module,
// whichever entry point reads them; adapter specs PATH[:SCALE].
using System.Text.Json.Nodes;
using LoraSharp.Formats.Peft;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training.Tests.Adapters;

public class AdapterLoaderTests
{
    // Writes a PEFT folder the way PEFT does for rank/alpha patterns (short pattern keys) or rsLoRA.
    private static LoraWeights WritePeft(string folder, bool rsLora)
    {
        var w = AdapterFixtures.RandomAdapter(11, 4, 1.0, rankOf: m => m.EndsWith("down_proj", StringComparison.Ordinal) ? 8 : 4);
        new LoraWeights(w.Modules, "x").SavePeft(folder);
        string cfgPath = Path.Combine(folder, PeftAdapterConfig.FileName);
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["r"] = 4;
        cfg["lora_alpha"] = 16;
        cfg["rank_pattern"] = new JsonObject { ["down_proj"] = 8 };
        cfg["alpha_pattern"] = new JsonObject { ["v_proj"] = 2 };
        cfg["use_rslora"] = rsLora;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        double Scale(LoraModuleWeights m)
        {
            double alpha = m.Module.EndsWith("v_proj", StringComparison.Ordinal) ? 2 : 16;
            return rsLora ? alpha / Math.Sqrt(m.Rank) : alpha / m.Rank;
        }
        return new LoraWeights(w.Modules.Select(m => new LoraModuleWeights(m.Module, m.Rank, m.InFeatures, m.OutFeatures, m.A, m.B, Scale(m))), "expected");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadPeft_RankAlphaPatternsAndRsLora_ScalePerModule(bool rsLora)
    {
        using var dir = new TempDir();
        var expected = WritePeft(dir["a"], rsLora);
        var read = AdapterLoader.Read(dir["a"], null);
        foreach (var m in expected.Modules) Assert.Equal(m.Scale, read.Find(m.Module)!.Scale, 12);
        Assert.Equal(8, read.Find("model.layers.2.mlp.down_proj")!.Rank);

        // Attached, the adapter changes the model.
        var batch = AdapterFixtures.GoldenBatch();
        using var m2 = AdapterFixtures.LoadModel();
        AdapterLoader.Attach(m2, dir["a"]);
        using var baseModel = AdapterFixtures.LoadModel();
        Assert.NotEqual(baseModel.Loss(batch), m2.Loss(batch), 6);
    }

    [Fact]
    public void SavePeft_MixedRanksAndScales_RoundTripsThroughAdapterLoader()
    {
        using var dir = new TempDir();
        var w = AdapterFixtures.RandomAdapter(12, 3, 0.75, rankOf: m => m.Contains("layers.1.", StringComparison.Ordinal) ? 5 : 3);
        var mixed = new LoraWeights(w.Modules.Select(m => new LoraModuleWeights(m.Module, m.Rank, m.InFeatures, m.OutFeatures, m.A, m.B, m.Module.EndsWith("q_proj", StringComparison.Ordinal) ? 4.0 : m.Scale)), "mixed");
        mixed.SavePeft(dir["a"]);
        using var model = AdapterFixtures.LoadModel();
        AdapterLoader.Attach(model, dir["a"]);
        var back = LoraWeights.FromModel(model);
        Assert.True(AdapterFixtures.MaxDeltaDiff(mixed, back) < 1e-7);
    }

    [Fact]
    public void Read_SafetensorsFileInsideFolder_ReadsTheFolder()
    {
        var w = AdapterLoader.Read(Path.Combine(AdapterFixtures.LoraFolder, "adapter_model.safetensors"), null);
        Assert.Equal(35, w.Modules.Count);
        Assert.All(w.Modules, m => Assert.Equal(2.0, m.Scale));
    }

    [Fact]
    public void ReadPeft_LoraBMissing_ThrowsNamingTheModule()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["a"]);
        using var a = Core.Tensors.Tensor.Zeros(Core.Tensors.DType.F32, 4, 64);
        Formats.Safetensors.SafetensorsWriter.Write(Path.Combine(dir["a"], PeftAdapter.WeightsFile),
            [new("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", a)]);
        File.Copy(Path.Combine(AdapterFixtures.LoraFolder, PeftAdapterConfig.FileName), Path.Combine(dir["a"], PeftAdapterConfig.FileName));
        var e = Assert.Throws<LoraSharp.Formats.ModelFormatException>(() => AdapterLoader.Read(dir["a"], null));
        Assert.Contains("model.layers.0.self_attn.q_proj", e.Message);
        Assert.Contains("lora_B missing", e.Message);
    }

    [Fact]
    public void Read_MissingPath_ThrowsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => AdapterLoader.Read("/no/such/adapter", null));
    }

    [Theory]
    [InlineData("out/lora", "out/lora", 1.0)]
    [InlineData("out/lora:0.5", "out/lora", 0.5)]
    [InlineData("a.gguf:-1", "a.gguf", -1.0)]
    [InlineData("weird:name", "weird:name", 1.0)]
    public void ParseSpec_PathAndOptionalScale(string spec, string path, double scale)
    {
        Assert.Equal((path, scale), AdapterLoader.ParseSpec(spec));
    }
}
