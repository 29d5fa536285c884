// adapter_config.json: the golden PEFT file reads to the expected values, writes back byte for byte, round-trips
// through a file, keeps unknown keys, and bad files give errors naming the key and the file.
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.Formats.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Formats.Tests.Peft;

public sealed class PeftAdapterConfigTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-peft-" + Guid.NewGuid().ToString("N"));

    public PeftAdapterConfigTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string GoldenPath => SharedFixtures.Path("golden", "stories260K", "lora", "adapter_config.json");

    private static PeftAdapterConfig Expected => new()
    {
        PeftType = "LORA",
        R = 4,
        LoraAlpha = 8,
        LoraDropout = 0.0,
        TargetModules = new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" },
        Bias = "none",
        TaskType = "CAUSAL_LM",
        BaseModelNameOrPath = "stories260K",
        UseRslora = false,
        UseDora = false,
        FanInFanOut = false,
        InferenceMode = true,
        InitLoraWeights = false,
    };

    [Fact]
    public void Read_Golden_GivesPeftValues()
    {
        var c = PeftAdapterConfig.Read(GoldenPath);
        Assert.Equal(Expected, c);
        Assert.Empty(c.ExtraFields);   // only default-valued bookkeeping keys beyond the modelled ones
        Assert.Equal(false, c.InitLoraWeights.Flag);
        Assert.True(c.TargetModules!.IsList);
    }

    [Fact]
    public void Read_FolderPath_ReadsAdapterConfigInside()
        => Assert.Equal(Expected, PeftAdapterConfig.Read(Path.GetDirectoryName(GoldenPath)!));

    [Fact]
    public void ToJson_GoldenValues_IsByteIdenticalToGolden()
    {
        Assert.Equal(File.ReadAllText(GoldenPath), PeftAdapterConfig.Read(GoldenPath).ToJson());
        Assert.Equal(File.ReadAllText(GoldenPath), Expected.ToJson());
    }

    [Fact]
    public void Golden_ReadWriteRead_IsEqual()
    {
        var first = PeftAdapterConfig.Read(GoldenPath);
        first.Write(_dir);
        var second = PeftAdapterConfig.Read(Path.Combine(_dir, "adapter_config.json"));
        Assert.Equal(first, second);
        Assert.Single(Directory.GetFiles(_dir));   // no temporary file left behind
    }

    [Fact]
    public void Written_HasEveryGoldenKeyWithTheSameJsonType()
    {
        var golden = JsonNode.Parse(File.ReadAllText(GoldenPath))!.AsObject();
        var ours = JsonNode.Parse(new PeftAdapterConfig { R = 16, LoraAlpha = 32, LoraDropout = 0.05, TargetModules = "all-linear" }.ToJson())!.AsObject();
        foreach (var (key, value) in golden)
        {
            Assert.True(ours.ContainsKey(key), $"written config lacks '{key}'");
            if (key is "target_modules" or "inference_mode" or "init_lora_weights" or "base_model_name_or_path" or "task_type") continue;   // values differ by design
            Assert.Equal(value?.GetValueKind(), ours[key]?.GetValueKind());
        }
        // Python ints stay ints, floats stay floats.
        string text = new PeftAdapterConfig { R = 16, LoraAlpha = 32, LoraDropout = 0.05 }.ToJson();
        Assert.Contains("\"r\": 16,", text);
        Assert.Contains("\"lora_alpha\": 32,", text);
        Assert.Contains("\"lora_dropout\": 0.05,", text);
        Assert.Contains("\"lora_dropout\": 0.0,", new PeftAdapterConfig().ToJson());
    }

    [Fact]
    public void UnknownKeys_AreKeptAndWrittenBackSorted()
    {
        string json = File.ReadAllText(GoldenPath).Replace("\"alpha_pattern\": {},",
            "\"alpha_pattern\": {},\n  \"zz_future\": {\"b\": 1, \"a\": [true, null]},\n  \"exclude_modules\": null,")
            .Replace("\"megatron.core\"", "\"custom.core\"");
        var c = PeftAdapterConfig.Parse(json, "x.json");
        Assert.Equal(3, c.ExtraFields.Count);
        Assert.Equal("custom.core", c.ExtraFields["megatron_core"]!.GetValue<string>());
        string written = c.ToJson();
        Assert.Equal(c, PeftAdapterConfig.Parse(written));
        var keys = JsonNode.Parse(written)!.AsObject().Select(kv => kv.Key).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        Assert.Contains("zz_future", keys);
        Assert.Contains("\"megatron_core\": \"custom.core\"", written);
    }

    [Fact]
    public void UnionFields_RoundTrip()
    {
        var c = Expected with
        {
            TargetModules = @".*\.(q|v)_proj",
            InitLoraWeights = "gaussian",
            LayersToTransform = [0, 2],
            LayersPattern = "layers",
            RankPattern = new Dictionary<string, int> { ["q_proj"] = 8, ["down_proj"] = 2 },
            AlphaPattern = new Dictionary<string, double> { ["q_proj"] = 16, ["v_proj"] = 2.5 },
            ModulesToSave = ["lm_head"],
            Revision = "main",
            UseRslora = true,
            LoraAlpha = 12.5,
        };
        string json = c.ToJson();
        Assert.Equal(c, PeftAdapterConfig.Parse(json));
        Assert.Contains(@"""target_modules"": "".*\\.(q|v)_proj""", json);
        Assert.Contains("\"init_lora_weights\": \"gaussian\"", json);
        Assert.Contains("\"lora_alpha\": 12.5", json);
        Assert.Contains("\"v_proj\": 2.5", json);
        Assert.NotEqual(c, c with { LayersToTransform = [0, 3] });
        Assert.NotEqual(c, c with { TargetModules = new[] { "q_proj" } });
    }

    [Fact]
    public void LayersToTransform_SingleInt_ReadsAsOneElementList()
    {
        var c = PeftAdapterConfig.Parse("{\"layers_to_transform\": 3, \"r\": 2}");
        Assert.Equal([3], c.LayersToTransform!);
        Assert.Equal(2, c.R);
    }

    [Fact]
    public void MissingKeys_TakePeftDefaults()
    {
        var c = PeftAdapterConfig.Parse("{}");
        Assert.Equal(new PeftAdapterConfig(), c);
        Assert.Equal((8, 8.0, "none", true), (c.R, c.LoraAlpha, c.Bias, c.InitLoraWeights.Flag!.Value));
    }

    [Theory]
    [InlineData("\"r\": \"four\"", "'r'", "an integer")]
    [InlineData("\"r\": 4.5", "'r'", "an integer")]
    [InlineData("\"use_dora\": \"yes\"", "'use_dora'", "true or false")]
    [InlineData("\"target_modules\": 5", "'target_modules'", "a string")]
    [InlineData("\"target_modules\": [\"q_proj\", 1]", "'target_modules'", "a string")]
    [InlineData("\"lora_dropout\": null", "'lora_dropout'", "a number")]
    [InlineData("\"rank_pattern\": []", "'rank_pattern'", "an object")]
    [InlineData("\"init_lora_weights\": 1", "'init_lora_weights'", "method name")]
    [InlineData("\"modules_to_save\": \"lm_head\"", "'modules_to_save'", "list of strings")]
    public void WrongType_ThrowsNamingKeyAndFile(string field, string key, string expected)
    {
        string path = Path.Combine(_dir, "adapter_config.json");
        File.WriteAllText(path, "{\"peft_type\": \"LORA\", " + field + "}");
        var e = Assert.Throws<ModelFormatException>(() => PeftAdapterConfig.Read(path));
        Assert.Contains(key, e.Message);
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void InvalidJson_ThrowsNamingFileAndLine()
    {
        string path = Path.Combine(_dir, "adapter_config.json");
        File.WriteAllText(path, "{\n  \"r\": 4,\n  \"lora_alpha\": ,\n}");
        var e = Assert.Throws<ModelFormatException>(() => PeftAdapterConfig.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
        File.WriteAllText(path, "[1, 2]");
        Assert.Contains("JSON object", Assert.Throws<ModelFormatException>(() => PeftAdapterConfig.Read(path)).Message);
    }

    [Fact]
    public void Write_ReplacesExistingFileAtomically()
    {
        string path = Path.Combine(_dir, "adapter_config.json");
        File.WriteAllText(path, "old");
        Expected.Write(path);
        Assert.Equal(Expected.ToJson(), File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Write_MissingFolder_ThrowsAndLeavesNothing()
    {
        string path = Path.Combine(_dir, "missing", "adapter_config.json");
        Assert.Throws<DirectoryNotFoundException>(() => Expected.Write(path));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Write_InvalidValues_Throws()
    {
        Assert.Throws<InvalidOperationException>(() => (Expected with { R = 0 }).ToJson());
        Assert.Throws<InvalidOperationException>(() => (Expected with { LoraDropout = 1.5 }).ToJson());
    }

    [Theory]
    [InlineData(0.0, "0.0")]
    [InlineData(0.05, "0.05")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e-5, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(2.0, "2.0")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(-0.5, "-0.5")]
    [InlineData(12.5, "12.5")]
    [InlineData(1.5e-7, "1.5e-07")]
    [InlineData(123456.789, "123456.789")]
    [InlineData(1e100, "1e+100")]
    public void PythonFloat_MatchesPythonRepr(double value, string expected)
    {
        var method = typeof(PeftAdapterConfig).GetMethod("PythonFloat", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        Assert.Equal(expected, (string)method.Invoke(null, [value])!);
    }

    [Fact]
    public void DuplicateKey_ThrowsNamingKeyAndFile()
    {
        var e = Assert.Throws<ModelFormatException>(() => PeftAdapterConfig.Parse("{\"r\": 4, \"r\": 8}", "dup.json"));
        Assert.Contains("'r'", e.Message);
        Assert.Contains("dup.json", e.Message);
    }
}
