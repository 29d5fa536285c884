// One row of activations quantized to Q8_0 blocks for the integer decode products (Q8Dot.cs), as ggml's
// quantize_row_q8_0 does it: per 32-element block d = max|x| / 127, q = round(x / d) (to nearest, ties to even;
// q in [-127, 127], never -128, so |q| fits a signed byte for maddubs), d kept as a float (ggml rounds it to
// f16; keeping it is free here and one rounding less). Also each 4-element group's Σq times 8: the correction
// that lets the Q4_0 kernel multiply the unsigned codes 0..15 and subtract 8·Σq instead of centring the codes.
// Quantizing costs K scalar operations per row, against N·K in the products that read it (N ≥ 64 rows of W).
// Not here: the products (Q8Dot), which rows take this path (DecodedGemv).
namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>A quantized activation row: K signed bytes, K/32 scales, K/4 Q4_0 corrections.</summary>
internal readonly unsafe struct Q8Row
{
    /// <summary>Elements per block (ggml's QK8_0).</summary>
    public const int Block = 32;

    /// <summary>Codes q[K], natural order.</summary>
    public readonly sbyte* Q;

    /// <summary>Scales d[K / 32]: x ≈ d·q.</summary>
    public readonly float* D;

    /// <summary>Q4Offset[K / 4]: 8·(q[4j] + q[4j+1] + q[4j+2] + q[4j+3]).</summary>
    public readonly int* Q4Offset;

    public Q8Row(sbyte* q, float* d, int* q4Offset)
    {
        Q = q;
        D = d;
        Q4Offset = q4Offset;
    }

    /// <summary>Floats of scratch one row of <paramref name="K"/> elements needs (K a multiple of 32).</summary>
    public static long Floats(int K) => K / 4 + K / Block + K / 4;

    /// <summary>Lays a row of <paramref name="K"/> elements out in <paramref name="scratch"/> (<see cref="Floats"/> floats, 16-byte aligned).</summary>
    public static Q8Row At(float* scratch, int K) =>
        new((sbyte*)scratch, scratch + K / 4, (int*)(scratch + K / 4 + K / Block));

    /// <summary>
    /// Quantizes x[0..K) (K a multiple of 32) into <paramref name="row"/>; false, with the row unusable, when x holds
    /// a NaN or an infinity (the caller then takes the float products, which propagate it).
    /// </summary>
    public static bool Quantize(float* x, int K, Q8Row row)
    {
        for (int b = 0; b < K / Block; b++)
        {
            float* xb = x + b * Block;
            float amax = 0;
            for (int i = 0; i < Block; i++) amax = MathF.Max(amax, MathF.Abs(xb[i]));
            if (!float.IsFinite(amax)) return false;   // MathF.Max propagates NaN
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            row.D[b] = d;
            sbyte* q = row.Q + b * Block;
            for (int i = 0; i < Block; i++)
                q[i] = (sbyte)Math.Clamp((int)MathF.Round(xb[i] * id, MidpointRounding.ToEven), -127, 127);
            for (int j = 0; j < Block / 4; j++)
                row.Q4Offset[b * (Block / 4) + j] = 8 * (q[4 * j] + q[4 * j + 1] + q[4 * j + 2] + q[4 * j + 3]);
        }
        return true;
    }
}
