// The one settings model: every TrainingSettings property is in the schema once, every path (file, JSON body, code)
// applies the same checks and derived defaults, and docs/training.md's table is the schema's.
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.Core;
using LoraSharp.Training.Data;
using LoraSharp.Training.Settings;

namespace LoraSharp.Training.Tests.Settings;

public sealed class TrainingSettingsSchemaTests
{
    [Fact]
    public void EveryProperty_IsInTheSchemaExactlyOnce()
    {
        var names = TrainingSettingsSchema.Defaults().Select(kv => kv.Key).Order().ToArray();
        Assert.Equal(names, TrainingSettingsSchema.All.Select(s => s.Name).Order());
        var flags = TrainingSettingsSchema.All.SelectMany(s => s.CliAliases.Prepend(s.Cli)).ToArray();
        Assert.Equal(flags.Length, flags.Distinct().Count());
    }

    [Fact]
    public void ChoiceDefaults_AreAmongTheChoices()
    {
        var defaults = TrainingSettingsSchema.Defaults();
        foreach (var s in TrainingSettingsSchema.All.Where(s => s.Kind is SettingKind.Choice or SettingKind.List))
        {
            var value = defaults[s.Name];
            string[] items = value switch { null => [], JsonArray a => a.Select(x => x!.GetValue<string>()).ToArray(), _ => [value.GetValue<string>()] };
            Assert.All(items, v => Assert.Contains(v, s.Choices!));
        }
    }

    [Fact]
    public void Defaults_AreInsideTheirRanges()
    {
        var defaults = TrainingSettingsSchema.Defaults();
        foreach (var s in TrainingSettingsSchema.All.Where(s => s.Range != null && defaults[s.Name] != null))
            Assert.True(TrainingSettingsSchema.InRange(defaults[s.Name]!.GetValue<double>(), s.Range!), $"{s.Name} default outside {s.Range}");
        new TrainingSettings().Validate();
    }

    [Fact]
    public void EveryRange_RejectsTheValueJustOutside_OnEveryPath()
    {
        foreach (var s in TrainingSettingsSchema.All.Where(s => s.Range != null))
        {
            var parts = s.Range![1..^1].Split(',', StringSplitOptions.TrimEntries);
            double lo = double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
            double outside = s.Range[0] == '[' ? lo - 1 : lo;   // [a: a-1 is outside; (a: a itself is
            var json = new JsonObject { [s.Name] = s.Kind == SettingKind.Integer ? (JsonNode)(int)outside : outside };
            var settings = TrainingSettingsFile.Parse(json.ToJsonString(), "test");   // types are fine; the range is Validate's
            var e = Assert.Throws<UserErrorException>(settings.Validate);
            Assert.Contains(s.Name, e.Message);
        }
    }

    [Theory]
    [InlineData("{\"excess_length\": \"cut\"}", "excess_length: 'cut' is not one of drop, truncate")]
    [InlineData("{\"lora_rnak\": 8}", "did you mean 'lora_rank'")]
    [InlineData("{\"lora_rank\": 2.5}", "lora_rank: expected a whole number")]
    [InlineData("{\"lora_rank\": \"8\"}", "lora_rank: expected a whole number")]
    [InlineData("{\"packing\": 1}", "packing: expected true or false")]
    [InlineData("{\"optimizer\": \"adamw_8bit\"}", "optimizer: 'adamw_8bit' is not one of adamw, adam, sgd, adafactor, lion")]
    [InlineData("{\"lr_scheduler_type\": \"cosinus\"}", "lr_scheduler_type: 'cosinus' is not one of")]
    [InlineData("{\"target_modules\": \"q_proj\"}", "target_modules: expected a list of names")]
    [InlineData("{\"rank_pattern\": {\"q_proj\": \"four\"}}", "rank_pattern: expected an object of module: number")]
    [InlineData("[1, 2]", "expected an object of settings")]
    [InlineData("{\"batch_size\": 8, \"batch_size\": 16}", "a setting is given twice")]
    [InlineData("{\"learning_rate\": 1e400}", "learning_rate: expected a finite number")]   // found by the settings-yaml 1M run   // found by the settings-json fuzz target
    [InlineData("{\"micro_batch_size\": null}", "micro_batch_size: a value is required")]
    public void BadSettingsJson_IsAUserErrorNamingTheSetting(string json, string expected)
    {
        var e = Assert.Throws<UserErrorException>(() => TrainingSettingsFile.Parse(json, "params.json"));
        Assert.Contains("params.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void NonFiniteNumbers_SetInCode_AreAUserErrorNamingTheSetting()
    {
        var e = Assert.Throws<UserErrorException>(() => new TrainingSettings { LearningRate = double.PositiveInfinity }.Validate());
        Assert.Contains("learning_rate", e.Message);
        Assert.Throws<UserErrorException>(() => new TrainingSettings { LoraDropout = double.NaN }.Validate());
    }

    [Fact]
    public void OptimizerAliases_AreAccepted() =>
        Assert.Equal("adamw_torch", TrainingSettingsFile.Parse("{\"optimizer\": \"adamw_torch\"}", "t").Optimizer);

    [Fact]
    public void ExcessLength_IsAnEnum_WrittenInSnakeCase()
    {
        var s = TrainingSettingsFile.Parse("{\"excess_length\": \"truncate\"}", "t");
        Assert.Equal(ExcessLength.Truncate, s.ExcessLength);
        Assert.Contains("\"excess_length\": \"truncate\"", TrainingSettingsFile.ToJson(s));
    }

    [Fact]
    public void AlphaNotGiven_IsTwiceTheRank_OnEveryPath()
    {
        Assert.Equal(16, new TrainingSettings { LoraRank = 8 }.EffectiveLoraAlpha);
        Assert.Equal(16, new TrainingSettings { LoraRank = 8 }.ToLoraSettings().Alpha);
        Assert.Equal(16, new Models.Lora.LoraSettings { Rank = 8 }.Alpha);
        Assert.Equal(16, TrainingSettingsFile.Parse("{\"lora_rank\": 8}", "json").EffectiveLoraAlpha);
        string yaml = Path.Combine(Path.GetTempPath(), $"alpha-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(yaml, "lora_rank: 8\n");
        try { Assert.Equal(16, TrainingSettingsFile.Load(yaml).EffectiveLoraAlpha); }
        finally { File.Delete(yaml); }
        // an explicit alpha stays, and a later rank change on the command line does not touch it
        var explicitAlpha = TrainingSettingsFile.Parse("{\"lora_rank\": 8, \"lora_alpha\": 64}", "json");
        Assert.Equal(64, TrainingSettingsFile.Apply(explicitAlpha, new JsonObject { ["lora_rank"] = 4 }, "cli").EffectiveLoraAlpha);
        // the default file round-trips alpha as "not given", so --copy-from keeps the rule
        Assert.Equal(8, TrainingSettingsFile.Apply(TrainingSettingsFile.Parse(TrainingSettingsFile.ToJson(new TrainingSettings()), "copy"),
            new JsonObject { ["lora_rank"] = 4 }, "cli").EffectiveLoraAlpha);
        Assert.Equal(Models.Lora.LoraSettings.DefaultRank, new TrainingSettings().LoraRank);
        Assert.Equal(new Models.Lora.LoraSettings().Rank, new TrainingSettings().LoraRank);
    }

    [Fact]
    public void TargetModulesNotGiven_IsTheFamilysPeftDefault_OnEveryPath()
    {
        // not given: null on every path, resolved per model type (PEFT's table; phi3's fused qkv_proj)
        Assert.Null(new TrainingSettings().TargetModules);
        Assert.Null(TrainingSettingsFile.Parse("{\"lora_rank\": 8}", "json").TargetModules);
        string yaml = Path.Combine(Path.GetTempPath(), $"targets-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(yaml, "lora_rank: 8\n");
        try { Assert.Null(TrainingSettingsFile.Load(yaml).TargetModules); }
        finally { File.Delete(yaml); }
        var notGiven = new TrainingSettings();
        Assert.Equal(["q_proj", "v_proj"], notGiven.ToLoraSettings().TargetModules);
        Assert.Equal(["q_proj", "v_proj"], notGiven.ToLoraSettings("llama").TargetModules);
        Assert.Equal(["qkv_proj"], notGiven.ToLoraSettings("phi3").TargetModules);
        foreach (string family in Models.Loading.LlamaConfigReader.SupportedModelTypes)
            Assert.True(Models.LlamaConfig.PeftDefaultTargetModules.ContainsKey(family), family);
        // given (even PEFT's Llama default itself) stays as given, on phi3 too, where the model refuses it
        var given = TrainingSettingsFile.Parse("{\"target_modules\": [\"q_proj\", \"v_proj\"]}", "json");
        Assert.Equal(["q_proj", "v_proj"], given.ToLoraSettings("phi3").TargetModules);
        // training_parameters.json keeps "not given", so --copy-from resolves it again for the next model
        Assert.Null(TrainingSettingsFile.Apply(TrainingSettingsFile.Parse(TrainingSettingsFile.ToJson(new TrainingSettings()), "copy"),
            new JsonObject { ["lora_rank"] = 4 }, "cli").TargetModules);
        Assert.Equal(["all-linear"], TrainingSettingsFile.Apply(new TrainingSettings(),
            new JsonObject { ["target_modules"] = new JsonArray("all-linear") }, "cli").TargetModules!);
    }

    [Theory]
    [InlineData(null, 0.0, 1000, 100)]     // neither given: text-generation-webui's 100
    [InlineData(null, 0.1, 1000, 100)]     // the ratio alone is used
    [InlineData(null, 0.1, 55, 6)]         // ceil(0.1 x 55)
    [InlineData(20, 0.1, 1000, 20)]        // steps > 0 win, as in transformers
    [InlineData(0, 0.1, 1000, 100)]        // steps 0 fall back to the ratio, as in transformers
    [InlineData(0, 0.0, 1000, 0)]          // explicitly no warm-up
    public void Warmup_FollowsTransformers_WithTheWebuiDefault(int? steps, double ratio, int total, int expected) =>
        Assert.Equal(expected, new TrainingSettings { WarmupSteps = steps, WarmupRatio = ratio }.ResolveWarmupSteps(total));

    [Fact]
    public void SettingsDocs_TableIsTheSchemas()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "LoraSharp.slnx"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("repository root (LoraSharp.slnx) not found above the test folder");
        string path = Path.Combine(root, "docs", "training.md");
        string text = File.ReadAllText(path);
        const string Open = "<!-- settings-table: generated from TrainingSettingsSchema -->\n", Close = "<!-- /settings-table -->";
        int i = text.IndexOf(Open, StringComparison.Ordinal), j = text.IndexOf(Close, StringComparison.Ordinal);
        Assert.True(i >= 0 && j > i, $"{path} lacks the settings-table markers");
        string current = text[(i + Open.Length)..j], expected = TrainingSettingsSchema.MarkdownTable();
        if (current != expected && Environment.GetEnvironmentVariable("LORASHARP_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, text[..(i + Open.Length)] + expected + text[j..]);
            return;
        }
        Assert.True(current == expected, $"docs/training.md's settings table differs from TrainingSettingsSchema; regenerate it with " +
                                         "LORASHARP_UPDATE_DOCS=1 dotnet test tests/LoraSharp.Training.Tests --filter SettingsDocs");
    }
}
