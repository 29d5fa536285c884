// ggml Q4_K super-blocks (block_q4_K): 256 weights as { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; } = 144 bytes.
// Eight sub-blocks of 32 with 6-bit scale sc and 6-bit min m packed in scales[] (get_scale_min_k4);
// w = (d * sc) * q - (dmin * m). Each 32 bytes of qs hold two sub-blocks: low nibbles, then high nibbles.
// Dequantization only.
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Quant;

/// <summary>Q4_K row dequantization. A row of n elements (n % 256 == 0) is n/256 blocks of 144 bytes.</summary>
public static class BlockQ4_K
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 256;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 144;

    /// <summary>Scalar reference. blocks: n/256*144 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q4_K", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), min = QuantMath.Half(blk, 2);
            var scales = blk.Slice(4, 12);
            var qs = blk.Slice(16, 128);
            var y = dst.Slice(b * 256, 256);
            for (int g = 0; g < 4; g++)
            {
                ScaleMin(2 * g, scales, out int sc1, out int m1);
                ScaleMin(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                for (int l = 0; l < 32; l++)
                {
                    y[64 * g + l] = d1 * (qs[32 * g + l] & 0x0F) - mm1;
                    y[64 * g + 32 + l] = d2 * (qs[32 * g + l] >> 4) - mm2;
                }
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q4_K", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        Span<sbyte> q = stackalloc sbyte[64];
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), min = QuantMath.Half(blk, 2);
            var scales = blk.Slice(4, 12);
            var qs = blk.Slice(16, 128);
            var y = dst.Slice(b * 256, 256);
            for (int g = 0; g < 4; g++)
            {
                ScaleMin(2 * g, scales, out int sc1, out int m1);
                ScaleMin(2 * g + 1, scales, out int sc2, out int m2);
                if (level >= SimdLevel.V128)
                {
                    var mask = Vector128.Create((byte)0x0F);
                    for (int h = 0; h < 32; h += 16)
                    {
                        var v = Vector128.Create(qs.Slice(32 * g + h, 16));
                        (v & mask).AsSByte().CopyTo(q.Slice(h));
                        (v >>> 4).AsSByte().CopyTo(q.Slice(32 + h));
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l++)
                    {
                        q[l] = (sbyte)(qs[32 * g + l] & 0x0F);
                        q[32 + l] = (sbyte)(qs[32 * g + l] >> 4);
                    }
                }
                // a - b == a + (-b) exactly in IEEE arithmetic, so ScaleAdd with the negated min is bit-identical.
                QuantMath.ScaleAdd(q.Slice(0, 32), d * sc1, -(min * m1), y.Slice(64 * g, 32), level);
                QuantMath.ScaleAdd(q.Slice(32, 32), d * sc2, -(min * m2), y.Slice(64 * g + 32, 32), level);
            }
        }
    }

    /// <summary>ggml get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.</summary>
    internal static void ScaleMin(int j, ReadOnlySpan<byte> q, out int sc, out int m)
    {
        if (j < 4)
        {
            sc = q[j] & 63;
            m = q[j + 4] & 63;
        }
        else
        {
            sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}
