// PEFT's LoraConfig as stored in adapter_config.json, with PascalCase names mirroring PEFT's snake_case keys and
// PEFT's defaults. Keys this record does not model are kept in ExtraFields and written back unchanged. It does
// not interpret anything (which modules match, what rsLoRA scaling means): Training does.
using System.Text.Json.Nodes;

namespace LoraSharp.Formats.Peft;

/// <summary>The contents of a PEFT <c>adapter_config.json</c> for LoRA.</summary>
public sealed partial record PeftAdapterConfig
{
    /// <summary>peft_type (default "LORA").</summary>
    public string PeftType { get; init; } = "LORA";

    /// <summary>r: the LoRA rank (default 8).</summary>
    public int R { get; init; } = 8;

    /// <summary>lora_alpha (default 8); scaling is alpha / r (alpha / sqrt(r) with rsLoRA). Written as an integer when whole.</summary>
    public double LoraAlpha { get; init; } = 8;

    /// <summary>lora_dropout (default 0.0).</summary>
    public double LoraDropout { get; init; }

    /// <summary>target_modules: module-name suffixes, or one string (a regex, or "all-linear"); null if not set.</summary>
    public PeftStringOrList? TargetModules { get; init; }

    /// <summary>bias: "none" (default), "all" or "lora_only".</summary>
    public string Bias { get; init; } = "none";

    /// <summary>task_type, e.g. "CAUSAL_LM" (default null).</summary>
    public string? TaskType { get; init; }

    /// <summary>base_model_name_or_path (default null).</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>use_rslora: scaling alpha / sqrt(r) (default false).</summary>
    public bool UseRslora { get; init; }

    /// <summary>use_dora (default false).</summary>
    public bool UseDora { get; init; }

    /// <summary>fan_in_fan_out: the base layer stores weights as (in, out), e.g. GPT-2 Conv1D (default false).</summary>
    public bool FanInFanOut { get; init; }

    /// <summary>inference_mode (PEFT writes true when saving; default false).</summary>
    public bool InferenceMode { get; init; }

    /// <summary>init_lora_weights: true (default), false, or a method name such as "gaussian".</summary>
    public PeftInitLoraWeights InitLoraWeights { get; init; } = true;

    /// <summary>rank_pattern: module-name regex → rank overriding <see cref="R"/> (default empty).</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>alpha_pattern: module-name regex → alpha overriding <see cref="LoraAlpha"/> (default empty).</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>layers_to_transform: layer indices to adapt (null: all). A single int in the file reads as a one-element list.</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>layers_pattern: the name of the layers container (e.g. "layers"), a string or list; null if not set.</summary>
    public PeftStringOrList? LayersPattern { get; init; }

    /// <summary>modules_to_save: modules trained fully and saved beside the adapter (default null).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary>revision of the base model (default null).</summary>
    public string? Revision { get; init; }

    /// <summary>
    /// Keys of the file that this record does not model (e.g. loftq_config, megatron_config, fields of newer PEFT
    /// versions), kept as JSON and written back. PEFT's defaults of auto_mapping, layer_replication, loftq_config,
    /// megatron_config and megatron_core are written when absent here.
    /// </summary>
    public IReadOnlyDictionary<string, JsonNode?> ExtraFields { get; init; } = new Dictionary<string, JsonNode?>();

    /// <inheritdoc />
    public bool Equals(PeftAdapterConfig? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        return PeftType == other.PeftType && R == other.R && LoraAlpha.Equals(other.LoraAlpha) && LoraDropout.Equals(other.LoraDropout)
            && Equals(TargetModules, other.TargetModules) && Bias == other.Bias && TaskType == other.TaskType
            && BaseModelNameOrPath == other.BaseModelNameOrPath && UseRslora == other.UseRslora && UseDora == other.UseDora
            && FanInFanOut == other.FanInFanOut && InferenceMode == other.InferenceMode && InitLoraWeights == other.InitLoraWeights
            && SameMap(RankPattern, other.RankPattern, (a, b) => a == b)
            && SameMap(AlphaPattern, other.AlphaPattern, (a, b) => a.Equals(b))
            && SameList(LayersToTransform, other.LayersToTransform) && Equals(LayersPattern, other.LayersPattern)
            && SameList(ModulesToSave, other.ModulesToSave) && Revision == other.Revision
            && SameMap(ExtraFields, other.ExtraFields, JsonNode.DeepEquals);
    }

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(PeftType, R, LoraAlpha, TargetModules, TaskType, BaseModelNameOrPath, RankPattern.Count, ExtraFields.Count);

    private static bool SameList<T>(IReadOnlyList<T>? a, IReadOnlyList<T>? b)
        => a is null ? b is null : b is not null && a.SequenceEqual(b);

    private static bool SameMap<T>(IReadOnlyDictionary<string, T> a, IReadOnlyDictionary<string, T> b, Func<T, T, bool> same)
    {
        if (a.Count != b.Count) return false;
        foreach (var (k, v) in a)
            if (!b.TryGetValue(k, out var w) || !same(v, w)) return false;
        return true;
    }
}
