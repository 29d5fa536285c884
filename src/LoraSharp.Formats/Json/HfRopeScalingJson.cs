// config.json "rope_scaling" as written: {"rope_type" (or legacy "type"): "linear" | "dynamic" | "llama3" | "longrope" |
// "su" | ..., "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings", and for LongRoPE (Phi-3)
// "short_factor" / "long_factor" (one per rotary frequency) and "attention_factor"}.
namespace LoraSharp.Formats.Json;

/// <summary>The raw rope_scaling object of a Hugging Face config.json.</summary>
public sealed record HfRopeScalingJson(string RopeType, double? Factor, double? LowFreqFactor, double? HighFreqFactor, int? OriginalMaxPositionEmbeddings)
{
    /// <summary>short_factor (LongRoPE): per-frequency divisors used within original_max_position_embeddings.</summary>
    public double[]? ShortFactor { get; init; }

    /// <summary>long_factor (LongRoPE): per-frequency divisors used beyond original_max_position_embeddings.</summary>
    public double[]? LongFactor { get; init; }

    /// <summary>attention_factor (LongRoPE / YaRN): the cos/sin multiplier; null = derived from the context ratio.</summary>
    public double? AttentionFactor { get; init; }
}
