// Rotary-embedding frequency scaling, as Hugging Face config.json "rope_scaling" describes it.
// Plain data: the rotary kernel (Rope.cs) turns it into inverse frequencies.
namespace LoraSharp.Core.Kernels;

/// <summary>
/// RoPE scaling. <see cref="RopeType"/> "linear" divides positions by <see cref="Factor"/>; "llama3" rescales
/// low frequencies as Llama 3.1 does (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings);
/// "default" or null means none.
/// </summary>
public sealed record RopeScaling(
    string RopeType,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>
    /// Per-frequency divisors [HS/2] as GGUF files store them (tensor rope_freqs.weight, llama.cpp's freq_factors, used by
    /// Llama 3.1 conversions). When set, inv_freq[i] /= FrequencyFactors[i] replaces the rope_type computation.
    /// </summary>
    public IReadOnlyList<float>? FrequencyFactors { get; init; }
}
