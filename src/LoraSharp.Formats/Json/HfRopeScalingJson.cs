// config.json "rope_scaling" as written: {"rope_type" (or legacy "type"): "linear" | "dynamic" | "llama3" | ...,
// "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}.
namespace LoraSharp.Formats.Json;

/// <summary>The raw rope_scaling object of a Hugging Face config.json.</summary>
public sealed record HfRopeScalingJson(string RopeType, double? Factor, double? LowFreqFactor, double? HighFreqFactor, int? OriginalMaxPositionEmbeddings);
