// GGUF LoRA export/import: llama.cpp's names, dims and alpha; q/k lora_b rows in GGUF order; export → our GGUF
// reader → import reproduces the adapter's logits; scales that differ per module survive; bad files are refused.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training.Tests.Adapters;

public class GgufLoraTests
{
    [Fact]
    public void Export_GoldenAdapter_WritesLlamaCppNamesDimsAndAlpha()
    {
        using var dir = new TempDir();
        var golden = AdapterLoader.Read(AdapterFixtures.LoraFolder, null);
        GgufLoraAdapter.Write(golden, AdapterFixtures.Config(), dir["a.gguf"]);
        using var g = GgufFile.Open(dir["a.gguf"]);
        Assert.Equal("adapter", g.Get("general.type")!.AsString());
        Assert.Equal("lora", g.Get("adapter.type")!.AsString());
        Assert.Equal("llama", g.Get("general.architecture")!.AsString());
        Assert.Equal(GgufValueType.Float32, g.Get("adapter.lora.alpha")!.Type);
        Assert.Equal(8.0, g.Get("adapter.lora.alpha")!.AsDouble());   // s·r = 2·4
        Assert.Equal(70, g.Tensors.Count);
        Assert.Equal(new long[] { 64, 4 }, g.Info("blk.0.attn_q.weight.lora_a").Dims);     // ne = [in, r]
        Assert.Equal(new long[] { 4, 32 }, g.Info("blk.0.attn_k.weight.lora_b").Dims);     // ne = [r, out]
        Assert.Equal(new long[] { 172, 4 }, g.Info("blk.4.ffn_down.weight.lora_a").Dims);
        Assert.Equal(new long[] { 4, 64 }, g.Info("blk.4.ffn_down.weight.lora_b").Dims);
        Assert.Equal(DType.F32, g.Info("blk.0.attn_q.weight.lora_a").DType);
    }

    [Fact]
    public void Export_QueryAndKeyLoraB_RowsPermutedLikeTheBaseWeight()
    {
        using var dir = new TempDir();
        var golden = AdapterLoader.Read(AdapterFixtures.LoraFolder, null);
        GgufLoraAdapter.Write(golden, AdapterFixtures.Config(), dir["a.gguf"]);
        using var g = GgufFile.Open(dir["a.gguf"]);
        foreach (var (module, gguf) in new[] { ("model.layers.1.self_attn.q_proj", "blk.1.attn_q.weight.lora_b"), ("model.layers.1.self_attn.k_proj", "blk.1.attn_k.weight.lora_b"), ("model.layers.1.self_attn.v_proj", "blk.1.attn_v.weight.lora_b") })
        {
            var hf = golden.Find(module)!;
            using var t = g.GetTensor(gguf);
            var rows = t.Floats;
            bool permuted = !module.EndsWith("v_proj", StringComparison.Ordinal);
            for (int row = 0; row < hf.OutFeatures; row++)
            {
                int src = permuted ? RopePermutation.GgufToHfRow(row, 8) : row;
                for (int r = 0; r < 4; r++) Assert.Equal(hf.B[src * 4 + r], rows[row * 4 + r]);
            }
        }
        // The same permutation the base GGUF applies: ΔW rows in GGUF order = merged GGUF weight − base GGUF weight.
        AdapterMerger.Merge(AdapterFixtures.GgufF32, [(AdapterFixtures.LoraFolder, 1.0)], dir["m.gguf"], new MergeOptions { Format = "gguf" });
        using var merged = GgufFile.Open(dir["m.gguf"]);
        using var baseG = GgufFile.Open(AdapterFixtures.GgufF32);
        using var wm = merged.GetTensor("blk.1.attn_q.weight");
        using var wb = baseG.GetTensor("blk.1.attn_q.weight");
        using var ga = g.GetTensor("blk.1.attn_q.weight.lora_a");
        using var gb = g.GetTensor("blk.1.attn_q.weight.lora_b");
        for (int n = 0; n < 64; n++)
            for (int k = 0; k < 64; k++)
            {
                double d = 0;
                for (int r = 0; r < 4; r++) d += 2.0 * gb.Floats[n * 4 + r] * ga.Floats[r * 64 + k];   // alpha/r = 2
                Assert.Equal(wm.Floats[n * 64 + k] - wb.Floats[n * 64 + k], d, 1e-6);
            }
    }

    [Fact]
    public void ExportThenImport_ReproducesTheAdapterLogits()
    {
        using var dir = new TempDir();
        var golden = AdapterLoader.Read(AdapterFixtures.LoraFolder, null);
        GgufLoraAdapter.Write(golden, AdapterFixtures.Config(), dir["a.gguf"]);
        var batch = AdapterFixtures.GoldenBatch();
        using var peft = AdapterFixtures.LoadModel();
        AdapterLoader.Attach(peft, AdapterFixtures.LoraFolder);
        using var imported = AdapterFixtures.LoadModel();
        GgufLoraAdapter.Attach(imported, dir["a.gguf"]);
        TestData.AssertClose(imported.Logits(batch), peft.Logits(batch), 1e-6, what: "logits");
        Assert.Equal(AdapterFixtures.GoldenLoss, imported.Loss(batch), 5e-6);
        // Through the one entry point too.
        using var viaLoader = AdapterFixtures.LoadModel();
        AdapterLoader.Attach(viaLoader, dir["a.gguf"]);
        Assert.Equal(imported.Loss(batch), viaLoader.Loss(batch));
    }

    [Fact]
    public void ExportThenImport_PerModuleScalesAndF16_KeepEveryDelta()
    {
        using var dir = new TempDir();
        // Ranks 2 and 6 with different scales (as rank/alpha patterns or rsLoRA produce): alpha folds into B.
        var w = AdapterFixtures.RandomAdapter(5, 2, 1.0, rankOf: m => m.Contains("mlp", StringComparison.Ordinal) ? 6 : 2);
        var scaled = new LoraWeights(w.Modules.Select(m => new LoraModuleWeights(m.Module, m.Rank, m.InFeatures, m.OutFeatures, m.A, m.B, m.Rank == 6 ? 0.25 : 3.0)), "scaled");
        GgufLoraAdapter.Write(scaled, AdapterFixtures.Config(), dir["a.gguf"]);
        var back = GgufLoraAdapter.Read(dir["a.gguf"], AdapterFixtures.Config());
        Assert.True(AdapterFixtures.MaxDeltaDiff(scaled, back) < 1e-7);
        GgufLoraAdapter.Write(scaled, AdapterFixtures.Config(), dir["h.gguf"], DType.F16);
        var half = GgufLoraAdapter.Read(dir["h.gguf"], AdapterFixtures.Config());
        Assert.True(AdapterFixtures.MaxDeltaDiff(scaled, half) < 1e-4);
    }

    [Fact]
    public void Import_BaseModelGguf_ThrowsNotAnAdapter()
    {
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterLoader.Read(AdapterFixtures.GgufF32, AdapterFixtures.Config()));
        Assert.Contains("not a LoRA adapter", e.Message);
    }

    [Fact]
    public void Import_AdapterForAnotherBase_ThrowsBeforeAttaching()
    {
        using var dir = new TempDir();
        var wrong = new LoraWeights([new LoraModuleWeights("model.layers.0.mlp.up_proj", 2, 64, 100, new float[128], new float[200], 1.0)], "wrong");
        var bigger = AdapterFixtures.Config() with { IntermediateSize = 100 };
        GgufLoraAdapter.Write(wrong, bigger, dir["w.gguf"]);
        using var model = AdapterFixtures.LoadModel();
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterLoader.Attach(model, dir["w.gguf"]));
        Assert.Contains("[172, 64]", e.Message);
        Assert.All(model.Layers, l => Assert.All(l.Projections, p => Assert.Empty(p.Adapters)));
    }

    [Fact]
    public void Import_GgufWithoutBaseConfig_AsksForTheModel()
    {
        using var dir = new TempDir();
        GgufLoraAdapter.Write(AdapterLoader.Read(AdapterFixtures.LoraFolder, null), AdapterFixtures.Config(), dir["a.gguf"]);
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterLoader.Read(dir["a.gguf"], null));
        Assert.Contains("--model", e.Message);
    }

    [Fact]
    public void Import_LoraAWithoutLoraB_ThrowsNamingTheTensor()
    {
        using var dir = new TempDir();
        using var a = Tensor.Zeros(DType.F32, 4, 64);
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.From("llama")),
            new("general.type", GgufValue.From("adapter")),
            new("adapter.type", GgufValue.From("lora")),
            new("adapter.lora.alpha", GgufValue.From(8f)),
        };
        GgufWriter.Write(dir["half.gguf"], meta, [new("blk.0.attn_v.weight.lora_a", a)]);
        var e = Assert.Throws<LoraSharp.Formats.ModelFormatException>(() => GgufLoraAdapter.Read(dir["half.gguf"], AdapterFixtures.Config()));
        Assert.Contains("blk.0.attn_v.weight", e.Message);
        Assert.Contains(".lora_b missing", e.Message);
    }

    [Fact]
    public void Import_OtherAdapterType_Refused()
    {
        using var dir = new TempDir();
        using var a = Tensor.Zeros(DType.F32, 4, 64);
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.From("llama")),
            new("general.type", GgufValue.From("adapter")),
            new("adapter.type", GgufValue.From("control_vector")),
        };
        GgufWriter.Write(dir["cv.gguf"], meta, [new("direction.1", a)]);
        var e = Assert.Throws<LoraSharp.Formats.ModelFormatException>(() => GgufLoraAdapter.Read(dir["cv.gguf"], AdapterFixtures.Config()));
        Assert.Contains("control_vector", e.Message);
    }
}
