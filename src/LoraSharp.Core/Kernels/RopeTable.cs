// Precomputed rotary-embedding tables: inverse frequencies and cos/sin for every position, computed the way
// Hugging Face transformers does (modeling_rope_utils: _compute_default/_linear/_llama3_rope_parameters, then
// LlamaRotaryEmbedding.forward), in float32 step by step so logits match PyTorch goldens:
//   inv_freq[i] = 1 / theta^(float(2i)/HS)                     i in [0, HS/2)
//   linear:     inv_freq /= factor
//   llama3:     wavelen = 2pi/inv_freq; wavelen > orig/low_freq_factor -> inv_freq/factor;
//               orig/high_freq_factor <= wavelen <= orig/low_freq_factor -> smooth blend
//               s = (orig/wavelen - low)/(high - low); (1-s)*inv_freq/factor + s*inv_freq
//   longrope:   inv_freq[i] = 1 / (ext[i] * theta^(float(2i)/rd)), ext = short_factor or long_factor (Phi-3)
//   cos[p, i] = cos(float(p * inv_freq[i])), sin likewise      [maxPositions, rd/2]
//   longrope:   cos, sin *= float(attention_factor)              (transformers: emb.cos() * attention_scaling)
// Partial rotary (phi3's partial_rotary_factor): only the first rd = RotaryDim dims of each head of HS rotate; the
// frequencies use rd as their dimension. Not here: dynamic NTK, YaRN (rejected with a clear error).
using System.Numerics;

namespace LoraSharp.Core.Kernels;

/// <summary>cos/sin tables for <see cref="Rope"/>, built once per model.</summary>
public sealed class RopeTable
{
    private readonly float[] _invFreq;   // (rd/2)
    private readonly float[] _cos;       // (maxPositions, rd/2)
    private readonly float[] _sin;       // (maxPositions, rd/2)

    /// <summary>Head size the table was built for.</summary>
    public int HS { get; }

    /// <summary>Rotated dimensions per head, rd (HS unless the rotary embedding is partial).</summary>
    public int RotaryDim { get; }

    /// <summary>Positions 0..MaxPositions-1 are covered.</summary>
    public int MaxPositions { get; }

    /// <summary>Inverse frequencies after scaling [HS/2].</summary>
    public ReadOnlySpan<float> InvFreq => _invFreq;

    /// <summary>cos(pos * inv_freq) [MaxPositions, HS/2].</summary>
    public ReadOnlySpan<float> Cos => _cos;

    /// <summary>sin(pos * inv_freq) [MaxPositions, HS/2].</summary>
    public ReadOnlySpan<float> Sin => _sin;

    private RopeTable(int hs, int rotaryDim, int maxPositions, float[] invFreq, float[] cos, float[] sin)
    {
        HS = hs;
        RotaryDim = rotaryDim;
        MaxPositions = maxPositions;
        _invFreq = invFreq;
        _cos = cos;
        _sin = sin;
    }

    /// <summary>Builds the tables.</summary>
    /// <param name="HS">Head size (even).</param>
    /// <param name="maxPositions">Number of positions to tabulate (e.g. the training sequence length or max_position_embeddings).</param>
    /// <param name="theta">config rope_theta (10000 for Llama 2, 500000 for Llama 3).</param>
    /// <param name="scaling">config rope_scaling; null or "default" for none, "linear", "llama3".</param>
    public static RopeTable Create(int HS, int maxPositions, double theta, RopeScaling? scaling)
        => Create(HS, maxPositions, theta, scaling, HS, longFactors: false);

    /// <summary>Builds the tables for a (possibly partial) rotary embedding.</summary>
    /// <param name="HS">Head size (the stride between heads).</param>
    /// <param name="maxPositions">Number of positions to tabulate.</param>
    /// <param name="theta">config rope_theta.</param>
    /// <param name="scaling">config rope_scaling (null for none).</param>
    /// <param name="rotaryDim">Rotated dimensions rd per head (even, at most HS): int(head_dim * partial_rotary_factor).</param>
    /// <param name="longFactors">LongRoPE: use long_factor (sequences beyond original_max_position_embeddings) instead of short_factor.</param>
    public static RopeTable Create(int HS, int maxPositions, double theta, RopeScaling? scaling, int rotaryDim, bool longFactors)
    {
        if (HS <= 0 || HS % 2 != 0)
            throw new ArgumentException($"Rotary head size HS = {HS} must be a positive even number (head_dim in config.json).", nameof(HS));
        if (rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim > HS)
            throw new UserErrorException($"The rotary dimension {rotaryDim} (head_dim x partial_rotary_factor) must be a positive even number no larger than head_dim {HS}.");
        if (maxPositions <= 0)
            throw new ArgumentException($"maxPositions = {maxPositions} must be positive.", nameof(maxPositions));
        if (!(theta > 0) || double.IsInfinity(theta))
            throw new ArgumentException($"rope_theta = {theta} must be a positive finite number.", nameof(theta));
        long size = (long)maxPositions * (rotaryDim / 2);
        if (size > Array.MaxLength)
            throw new UserErrorException($"RoPE table [{maxPositions}, {rotaryDim / 2}] is too large; build it for the sequence length you train at.");

        var invFreq = InverseFrequencies(rotaryDim, theta, scaling, longFactors);
        int half = rotaryDim / 2;
        bool longRope = scaling is { IsLongRope: true } && scaling.FrequencyFactors == null;
        float mscale = longRope ? (float)scaling!.LongRopeAttentionFactor : 1f;
        var cos = new float[size];
        var sin = new float[size];
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < half; i++)
            {
                float f = (float)p * invFreq[i];   // transformers: inv_freq @ position_ids in float32
                cos[(long)p * half + i] = (float)Math.Cos(f);
                sin[(long)p * half + i] = (float)Math.Sin(f);
                if (longRope)
                {
                    cos[(long)p * half + i] *= mscale;   // float32 product, as transformers' emb.cos() * attention_scaling
                    sin[(long)p * half + i] *= mscale;
                }
            }
        return new RopeTable(HS, rotaryDim, maxPositions, invFreq, cos, sin);
    }

    /// <summary>The scaled inverse frequencies [HS/2], float32 as transformers computes them.</summary>
    public static float[] InverseFrequencies(int HS, double theta, RopeScaling? scaling) => InverseFrequencies(HS, theta, scaling, false);

    /// <summary>The scaled inverse frequencies [HS/2] (HS = the rotary dimension); LongRoPE picks short or long factors.</summary>
    public static float[] InverseFrequencies(int HS, double theta, RopeScaling? scaling, bool longFactors)
    {
        if (HS <= 0 || HS % 2 != 0)
            throw new ArgumentException($"Rotary head size HS = {HS} must be a positive even number.", nameof(HS));
        int half = HS / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            float e = (float)(2 * i) / HS;                 // arange(0, dim, 2).float() / dim
            inv[i] = 1f / (float)Math.Pow(theta, e);       // 1.0 / base ** e, float32
        }
        if (scaling?.FrequencyFactors is { } factors)
        {
            if (factors.Count != half)
                throw new ArgumentException($"rope frequency factors have {factors.Count} entries but the head size {HS} needs {half}.", nameof(scaling));
            for (int i = 0; i < half; i++)
            {
                if (!(factors[i] > 0) || float.IsInfinity(factors[i]))
                    throw new UserErrorException($"rope frequency factor {i} is {factors[i]}; it must be a positive finite number.");
                inv[i] /= factors[i];
            }
            return inv;
        }
        string type = scaling?.RopeType?.Trim().ToLowerInvariant() ?? "default";
        switch (type)
        {
            case "default" or "":
                break;
            case "linear":
                CheckFactor(scaling!);
                for (int i = 0; i < half; i++) inv[i] /= (float)scaling!.Factor;
                break;
            case "llama3":
                ApplyLlama3(inv, scaling!);
                break;
            case "longrope" or "su":
            {
                var ext = (longFactors ? scaling!.LongFactor : scaling!.ShortFactor)
                    ?? throw new UserErrorException($"rope_scaling ({scaling.RopeType}) needs {(longFactors ? "long_factor" : "short_factor")}.");
                if (ext.Count != half)
                    throw new UserErrorException($"rope_scaling.{(longFactors ? "long_factor" : "short_factor")} has {ext.Count} entries but the rotary dimension {HS} needs {half}.");
                if (scaling.OriginalMaxPositionEmbeddings <= 0)
                    throw new UserErrorException($"original_max_position_embeddings = {scaling.OriginalMaxPositionEmbeddings} must be positive for LongRoPE.");
                for (int i = 0; i < half; i++)
                {
                    if (!(ext[i] > 0) || float.IsInfinity(ext[i]))
                        throw new UserErrorException($"rope_scaling.{(longFactors ? "long_factor" : "short_factor")}[{i}] is {ext[i]}; it must be a positive finite number.");
                    float e = (float)(2 * i) / HS;
                    inv[i] = 1f / (ext[i] * (float)Math.Pow(theta, e));   // 1.0 / (ext_factors * base ** e), float32
                }
                break;
            }
            default:
                throw new ArgumentException(
                    $"rope_scaling.rope_type '{scaling!.RopeType}' is not supported; use \"default\", \"linear\", \"llama3\" or \"longrope\".", nameof(scaling));
        }
        return inv;
    }

    private static void CheckFactor(RopeScaling s)
    {
        if (!(s.Factor > 0) || double.IsInfinity(s.Factor))
            throw new UserErrorException($"rope_scaling.factor = {s.Factor} must be a positive finite number.");
    }

    private static void ApplyLlama3(float[] inv, RopeScaling s)
    {
        CheckFactor(s);
        if (!(s.HighFreqFactor > s.LowFreqFactor) || !(s.LowFreqFactor > 0))
            throw new UserErrorException(
                $"rope_scaling needs 0 < low_freq_factor < high_freq_factor (got {s.LowFreqFactor}, {s.HighFreqFactor}).");
        if (s.OriginalMaxPositionEmbeddings <= 0)
            throw new UserErrorException(
                $"rope_scaling.original_max_position_embeddings = {s.OriginalMaxPositionEmbeddings} must be positive.");
        double old = s.OriginalMaxPositionEmbeddings;
        double lowWavelen = old / s.LowFreqFactor;
        double highWavelen = old / s.HighFreqFactor;
        float factor = (float)s.Factor;
        float twoPi = (float)(2 * Math.PI);
        for (int i = 0; i < inv.Length; i++)
        {
            float f = inv[i];
            float wavelen = twoPi / f;
            float scaled = wavelen > lowWavelen ? f / factor : f;
            bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            if (medium)
            {
                float smooth = ((float)old / wavelen - (float)s.LowFreqFactor) / (float)(s.HighFreqFactor - s.LowFreqFactor);
                scaled = (1f - smooth) * scaled / factor + smooth * scaled;
            }
            inv[i] = scaled;
        }
    }
}
