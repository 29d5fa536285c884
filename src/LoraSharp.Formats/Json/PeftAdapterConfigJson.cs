// PEFT adapter_config.json (LoraConfig) parsed into raw values. target_modules may be a list of module names or a
// single regex string; both are kept as written. No defaults beyond PEFT's documented ones for absent fields.
namespace LoraSharp.Formats.Json;

/// <summary>Fields of a PEFT LoRA adapter_config.json.</summary>
public sealed record PeftAdapterConfigJson
{
    /// <summary>Where it was read from.</summary>
    public required string SourcePath { get; init; }
    /// <summary>peft_type ("LORA").</summary>
    public string? PeftType { get; init; }
    /// <summary>r (PEFT default 8).</summary>
    public int R { get; init; } = 8;
    /// <summary>lora_alpha (PEFT default 8).</summary>
    public double LoraAlpha { get; init; } = 8;
    /// <summary>lora_dropout.</summary>
    public double LoraDropout { get; init; }
    /// <summary>target_modules as a list (null when absent).</summary>
    public string[]? TargetModules { get; init; }
    /// <summary>True when target_modules was a single regex string rather than a list.</summary>
    public bool TargetModulesIsRegex { get; init; }
    /// <summary>bias ("none", "all", "lora_only").</summary>
    public string Bias { get; init; } = "none";
    /// <summary>task_type.</summary>
    public string? TaskType { get; init; }
    /// <summary>base_model_name_or_path.</summary>
    public string? BaseModelNameOrPath { get; init; }
    /// <summary>use_rslora.</summary>
    public bool UseRslora { get; init; }
    /// <summary>use_dora.</summary>
    public bool UseDora { get; init; }
    /// <summary>fan_in_fan_out.</summary>
    public bool FanInFanOut { get; init; }
    /// <summary>modules_to_save.</summary>
    public string[]? ModulesToSave { get; init; }
    /// <summary>rank_pattern (module pattern -> r).</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();
    /// <summary>alpha_pattern (module pattern -> alpha).</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>Reads <paramref name="path"/>; wrong field types throw <see cref="ModelFormatException"/> naming the field.</summary>
    public static PeftAdapterConfigJson Read(string path)
    {
        using var doc = JsonFields.ParseFile(path);
        var f = new JsonFields(doc.RootElement, path);
        bool regex = f.TryGet("target_modules", out var tm) && tm.ValueKind == System.Text.Json.JsonValueKind.String;
        var ranks = new Dictionary<string, int>();
        if (f.Child("rank_pattern") is { } rp)
            foreach (var p in rp.Object.EnumerateObject()) ranks[p.Name] = rp.Int(p.Name)!.Value;
        var alphas = new Dictionary<string, double>();
        if (f.Child("alpha_pattern") is { } ap)
            foreach (var p in ap.Object.EnumerateObject()) alphas[p.Name] = ap.Double(p.Name)!.Value;
        var cfg = new PeftAdapterConfigJson
        {
            SourcePath = path,
            PeftType = f.String("peft_type"),
            R = f.Int("r") ?? 8,
            LoraAlpha = f.Double("lora_alpha") ?? 8,
            LoraDropout = f.Double("lora_dropout") ?? 0,
            TargetModules = f.StringOrStrings("target_modules"),
            TargetModulesIsRegex = regex,
            Bias = f.String("bias") ?? "none",
            TaskType = f.String("task_type"),
            BaseModelNameOrPath = f.String("base_model_name_or_path"),
            UseRslora = f.Bool("use_rslora") ?? false,
            UseDora = f.Bool("use_dora") ?? false,
            FanInFanOut = f.Bool("fan_in_fan_out") ?? false,
            ModulesToSave = f.StringOrStrings("modules_to_save"),
            RankPattern = ranks,
            AlphaPattern = alphas,
        };
        if (cfg.R <= 0) throw new ModelFormatException(path, "r", $"must be positive (is {cfg.R}).");
        return cfg;
    }
}
