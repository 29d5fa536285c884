// gemma2's GGUF metadata: LoraSharp's writer and reader agree on the soft-caps, the window and the values llama.cpp
// hard-codes (alternating layers, the attention scale, 27B's), absent cap keys mean llama.cpp's defaults (50 / 30),
// and a config llama.cpp would run differently is refused for GGUF output with the reason.
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Loading;

public class Gemma2GgufConfigTests
{
    private static LlamaConfig Reference() => LlamaConfigReader.FromHfFile(FamilyFixtures.File("gemma2", "config.json"));

    private static LlamaConfig ThroughGguf(IEnumerable<KeyValuePair<string, GgufValue>> metadata)
    {
        string dir = Directory.CreateTempSubdirectory("lorasharp-gemma2-gguf-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.gguf");
            GgufWriter.Write(path, metadata, []);
            using var g = GgufFile.Open(path);
            return LlamaConfigReader.FromGguf(g);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void WriteThenRead_KeepsCapsWindowLayersAndScale()
    {
        var c = Reference();
        var meta = LlamaConfigWriter.ToGguf(c, "t", 0);
        Assert.Equal("gemma2", meta.Single(m => m.Key == "general.architecture").Value.AsString());
        Assert.Equal(2.0, meta.Single(m => m.Key == "gemma2.attn_logit_softcapping").Value.AsDouble());
        Assert.Equal(6.0, meta.Single(m => m.Key == "gemma2.final_logit_softcapping").Value.AsDouble());
        var r = ThroughGguf(meta);
        Assert.Equal("gemma2", r.ModelType);
        Assert.Equal(c.AttnLogitSoftcapping, r.AttnLogitSoftcapping);
        Assert.Equal(c.FinalLogitSoftcapping, r.FinalLogitSoftcapping);
        Assert.Equal(c.SlidingWindow, r.SlidingWindow);
        Assert.Equal(c.SlidingLayers, r.SlidingLayers);
        Assert.Equal(c.AttentionScale, r.AttentionScale);
        Assert.Equal(c.HiddenAct, r.HiddenAct);
        Assert.Null(r.RopeLocalTheta);
        Assert.True(r.GemmaNorms && r.SandwichNorms && !r.QkNorm);
    }

    [Fact]
    public void AbsentCapKeys_MeanLlamaCppDefaults_And27BScale()
    {
        var c = Reference() with { NumHiddenLayers = 46, SlidingLayers = LlamaConfigReader.Gemma2LlamaCppSlidingLayers(46), QueryPreAttnScalar = 48 / 4 };
        var meta = LlamaConfigWriter.ToGguf(c, "t", 0).Where(m => !m.Key.EndsWith("softcapping", StringComparison.Ordinal));
        var r = ThroughGguf(meta);
        Assert.Equal(50.0, r.AttnLogitSoftcapping);
        Assert.Equal(30.0, r.FinalLogitSoftcapping);
        Assert.Equal(12.0, r.QueryPreAttnScalar);   // 46 layers: hidden / heads, as llama.cpp's 27B
    }

    [Fact]
    public void ConfigLlamaCppWouldRunDifferently_IsRefusedForGgufOutput()
    {
        var c = Reference();
        foreach (var (bad, reason) in new (LlamaConfig, string)[]
        {
            (c with { AttnLogitSoftcapping = null }, "attn_logit_softcapping"),
            (c with { FinalLogitSoftcapping = null }, "final_logit_softcapping"),
            (c with { QueryPreAttnScalar = 256 }, "query_pre_attn_scalar"),
            (c with { SlidingLayers = [false, true, false, true] }, "layer_types"),
        })
        {
            var e = Assert.Throws<Core.UserErrorException>(() => LlamaConfigWriter.ToGguf(bad, "t", 0));
            Assert.Contains(reason, e.Message);
            Assert.Contains("Hugging Face folder", e.Message);
        }
    }

    [Fact]
    public void SoftCapKeyOfAnotherArchitecture_IsRefused()
    {
        var meta = LlamaConfigWriter.ToGguf(LlamaConfigReader.FromHfFile(FamilyFixtures.File("qwen3", "config.json")), "t", 0);
        meta.Add(new("qwen3.final_logit_softcapping", GgufValue.From(30f)));
        var e = Assert.Throws<Formats.ModelFormatException>(() => ThroughGguf(meta));
        Assert.Contains("final_logit_softcapping", e.Message);
    }
}
