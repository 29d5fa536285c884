// Double quantization of NF4 block scales (QLoRA's bnb_4bit_use_double_quant, bitsandbytes' compress_statistics):
// the f32 absmax of every 64-weight block becomes an 8-bit code, costing 8/64 instead of 32/64 bits a weight.
//   offset    = mean of all absmax values of the tensor
//   absmax2_g = max |absmax_i - offset| over group g of 256 consecutive blocks (the last group may be shorter)
//   code_i    = index of the DynamicMap value nearest to (absmax_i - offset) / absmax2_g
//   absmax_i ~= DynamicMap[code_i] * absmax2_g + offset
// DynamicMap is bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponents
// e = 0..6, the 2^e midpoints of linspace(0.1, 1, 2^e + 1) scaled by 10^(e-6), both signs, plus 0 and 1, sorted.
// Not here: the 4-bit codes themselves (BlockNF4.cs) or their packing for the matmul (Gemm/Nf4DoubleQuantSource.cs).
namespace LoraSharp.Core.Quant;

/// <summary>8-bit blockwise quantization of NF4 absmax values, as bitsandbytes does it.</summary>
public static class Nf4DoubleQuant
{
    /// <summary>Blocks whose absmax values share one second-level scale (bitsandbytes' blocksize 256).</summary>
    public const int GroupSize = 256;

    /// <summary>The 256 sorted values of bitsandbytes' signed dynamic map, in [-1, 1].</summary>
    public static IReadOnlyList<float> DynamicMap { get; } = BuildDynamicMap();

    private static float[] BuildDynamicMap()
    {
        var data = new List<float>(256);
        for (int e = 0; e < 7; e++)
        {
            int items = (1 << e) + 1;
            // torch.linspace in float32, then means of neighbours, scaled by 10^(e-6) in float32.
            var bounds = new float[items];
            float step = (1f - 0.1f) / (items - 1);
            for (int i = 0; i < items; i++) bounds[i] = i < items / 2 ? 0.1f + step * i : 1f - step * (items - 1 - i);
            float scale = (float)Math.Pow(10, e - 6);
            for (int i = 0; i + 1 < items; i++)
            {
                float mean = (bounds[i] + bounds[i + 1]) / 2f;
                data.Add(scale * mean);
                data.Add(-scale * mean);
            }
        }
        data.Add(0f);
        data.Add(1f);
        data.Sort();
        return [.. data];
    }

    /// <summary>
    /// Quantizes <paramref name="absmax"/> (one value per NF4 block, in tensor order) into
    /// <paramref name="codes"/> (same length) and <paramref name="absmax2"/> (ceil(length / 256) values).
    /// </summary>
    /// <returns>The offset (mean of <paramref name="absmax"/>) to add back when dequantizing.</returns>
    public static float Quantize(ReadOnlySpan<float> absmax, Span<byte> codes, Span<float> absmax2)
    {
        int n = absmax.Length, groups = (n + GroupSize - 1) / GroupSize;
        if (codes.Length != n || absmax2.Length != groups)
            throw new ArgumentException($"Double quantization of {n} scales needs {n} codes and {groups} group scales, got {codes.Length} and {absmax2.Length}.");
        double sum = 0;
        foreach (float a in absmax) sum += a;
        float offset = n == 0 ? 0f : (float)(sum / n);
        var map = (float[])DynamicMap;
        for (int g = 0; g < groups; g++)
        {
            int start = g * GroupSize, end = Math.Min(n, start + GroupSize);
            float amax = 0;
            for (int i = start; i < end; i++) amax = MathF.Max(amax, MathF.Abs(absmax[i] - offset));
            absmax2[g] = amax;
            float inv = amax != 0 ? 1f / amax : 0f;
            for (int i = start; i < end; i++) codes[i] = Nearest(map, (absmax[i] - offset) * inv);
        }
        return offset;
    }

    /// <summary>The absmax of block <paramref name="index"/>: DynamicMap[code] * absmax2[index / 256] + offset.</summary>
    public static float Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax2, float offset, long index)
        => ((float[])DynamicMap)[codes[(int)index]] * absmax2[(int)(index / GroupSize)] + offset;

    // Index of the map value nearest to x (the lower one on a tie), by binary search over the sorted map.
    private static byte Nearest(float[] map, float x)
    {
        int lo = 0, hi = map.Length - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) >> 1;
            if (map[mid] <= x) lo = mid; else hi = mid;
        }
        return (byte)(x - map[lo] <= map[hi] - x ? lo : hi);
    }
}
