// Rotary-embedding frequency scaling, as Hugging Face config.json "rope_scaling" describes it.
// Plain data: the rotary kernel (Rope.cs) turns it into inverse frequencies.
namespace LoraSharp.Core.Kernels;

/// <summary>
/// RoPE scaling. <see cref="RopeType"/> "linear" divides positions by <see cref="Factor"/>; "llama3" rescales
/// low frequencies as Llama 3.1 does (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings);
/// "longrope" (Phi-3's LongRoPE, old name "su") divides each frequency by <see cref="ShortFactor"/> or
/// <see cref="LongFactor"/> and multiplies cos/sin by <see cref="LongRopeAttentionFactor"/>; "default" or null means none.
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

    /// <summary>LongRoPE short_factor [rotary_dim/2]: per-frequency divisors within original_max_position_embeddings.</summary>
    public IReadOnlyList<float>? ShortFactor { get; init; }

    /// <summary>LongRoPE long_factor [rotary_dim/2]: per-frequency divisors beyond original_max_position_embeddings.</summary>
    public IReadOnlyList<float>? LongFactor { get; init; }

    /// <summary>LongRoPE attention_factor as given (null: derived, see <see cref="LongRopeAttentionFactor"/>).</summary>
    public double? AttentionFactor { get; init; }

    /// <summary>True for LongRoPE ("longrope", or its old name "su").</summary>
    public bool IsLongRope => RopeType.Trim().ToLowerInvariant() is "longrope" or "su";

    /// <summary>
    /// The cos/sin multiplier of LongRoPE (transformers' _compute_longrope_parameters): attention_factor when given, else
    /// sqrt(1 + ln(s) / ln(original_max_position_embeddings)) with s = <see cref="Factor"/> (max / original context), 1 when s &lt;= 1.
    /// </summary>
    public double LongRopeAttentionFactor => AttentionFactor
        ?? (Factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(Factor) / Math.Log(OriginalMaxPositionEmbeddings)));
}
