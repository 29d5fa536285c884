// config.json / adapter_config.json / tokenizer.json readers: values as written, and clear errors for wrong types.
using LoraSharp.Formats.Json;
using LoraSharp.TestSupport;

namespace LoraSharp.Formats.Tests.Json;

public class ConfigJsonTests
{
    [Fact]
    public void Stories260KConfig_ReadsEveryField()
    {
        var c = HfModelConfigJson.Read(Path.Combine(SharedFixtures.Stories260KHf, "config.json"));
        Assert.Equal("llama", c.ModelType);
        Assert.Equal(["LlamaForCausalLM"], c.Architectures!);
        Assert.Equal(64, c.HiddenSize);
        Assert.Equal(8, c.HeadDim);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Null(c.RopeScaling);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal([2], c.EosTokenIds!);
        Assert.Equal("float32", c.TorchDtype);
    }

    [Fact]
    public void Config_EosListAndLlama3RopeScaling_AreRead()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), """
            {"model_type":"llama","eos_token_id":[128001,128008,128009],
             "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}
            """);
        var c = HfModelConfigJson.Read(dir.File("config.json"));
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds!);
        Assert.Equal(new HfRopeScalingJson("llama3", 8, 1, 4, 8192), c.RopeScaling);
    }

    [Fact]
    public void Config_WrongFieldType_NamesFieldAndFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{\"model_type\":\"llama\",\"hidden_size\":\"big\"}");
        var e = Assert.Throws<ModelFormatException>(() => HfModelConfigJson.Read(dir.File("config.json")));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("hidden_size", e.Message);
        File.WriteAllText(dir.File("config.json"), "{\"model_type\":");
        Assert.Throws<ModelFormatException>(() => HfModelConfigJson.Read(dir.File("config.json")));
    }

    [Fact]
    public void GoldenAdapterConfig_ReadsRankAlphaTargets()
    {
        var a = LoraSharp.Formats.Peft.PeftAdapterConfig.Read(SharedFixtures.Path("golden", "stories260K", "lora", "adapter_config.json"));
        Assert.Equal("LORA", a.PeftType);
        Assert.Equal(4, a.R);
        Assert.Equal(8, a.LoraAlpha);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], a.TargetModules!.Items!);
        Assert.True(a.TargetModules.IsList);
        Assert.False(a.UseRslora);
        Assert.Equal("stories260K", a.BaseModelNameOrPath);
    }

    [Fact]
    public void AdapterConfig_RegexTargetsAndRankPattern_AreKept()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("adapter_config.json"), "{\"r\":16,\"lora_alpha\":32,\"target_modules\":\".*proj\",\"rank_pattern\":{\"q_proj\":4}}");
        var a = LoraSharp.Formats.Peft.PeftAdapterConfig.Read(dir.File("adapter_config.json"));
        Assert.False(a.TargetModules!.IsList);
        Assert.Equal(".*proj", a.TargetModules.Text);
        Assert.Equal(4, a.RankPattern["q_proj"]);
    }

    [Fact]
    public void Stories260KTokenizerJson_IsBpeWith512Tokens()
    {
        var t = TokenizerJsonInfo.Read(Path.Combine(SharedFixtures.Stories260KHf, "tokenizer.json"));
        Assert.Equal("BPE", t.ModelType);
        Assert.Equal(512, t.VocabSize);
        Assert.True(t.ByteFallback);
    }
}
