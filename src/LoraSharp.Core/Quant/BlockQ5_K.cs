// ggml Q5_K super-blocks (block_q5_K): 256 weights as { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }
// = 176 bytes. Like Q4_K with a fifth bit per weight: sub-block pair g takes bits 2g and 2g+1 of qh[l];
// w = (d * sc) * (nibble + 16 * bit) - (dmin * m). Dequantization only.
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Quant;

/// <summary>Q5_K row dequantization. A row of n elements (n % 256 == 0) is n/256 blocks of 176 bytes.</summary>
public static class BlockQ5_K
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 256;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 176;

    /// <summary>Scalar reference. blocks: n/256*176 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q5_K", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), min = QuantMath.Half(blk, 2);
            var scales = blk.Slice(4, 12);
            var qh = blk.Slice(16, 32);
            var ql = blk.Slice(48, 128);
            var y = dst.Slice(b * 256, 256);
            for (int g = 0; g < 4; g++)
            {
                BlockQ4_K.ScaleMin(2 * g, scales, out int sc1, out int m1);
                BlockQ4_K.ScaleMin(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                int u1 = 1 << (2 * g), u2 = 2 << (2 * g);
                for (int l = 0; l < 32; l++)
                {
                    y[64 * g + l] = d1 * ((ql[32 * g + l] & 0x0F) + ((qh[l] & u1) != 0 ? 16 : 0)) - mm1;
                    y[64 * g + 32 + l] = d2 * ((ql[32 * g + l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - mm2;
                }
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q5_K", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        Span<sbyte> q = stackalloc sbyte[64];
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), min = QuantMath.Half(blk, 2);
            var scales = blk.Slice(4, 12);
            var qh = blk.Slice(16, 32);
            var ql = blk.Slice(48, 128);
            var y = dst.Slice(b * 256, 256);
            for (int g = 0; g < 4; g++)
            {
                BlockQ4_K.ScaleMin(2 * g, scales, out int sc1, out int m1);
                BlockQ4_K.ScaleMin(2 * g + 1, scales, out int sc2, out int m2);
                int s1 = 2 * g, s2 = 2 * g + 1;
                if (level >= SimdLevel.V128)
                {
                    var mask = Vector128.Create((byte)0x0F);
                    var one = Vector128.Create((byte)1);
                    for (int h = 0; h < 32; h += 16)
                    {
                        var v = Vector128.Create(ql.Slice(32 * g + h, 16));
                        var hb = Vector128.Create(qh.Slice(h, 16));
                        ((v & mask) | (((hb >>> s1) & one) << 4)).AsSByte().CopyTo(q.Slice(h));
                        ((v >>> 4) | (((hb >>> s2) & one) << 4)).AsSByte().CopyTo(q.Slice(32 + h));
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l++)
                    {
                        q[l] = (sbyte)((ql[32 * g + l] & 0x0F) | ((qh[l] >> s1) & 1) << 4);
                        q[32 + l] = (sbyte)((ql[32 * g + l] >> 4) | ((qh[l] >> s2) & 1) << 4);
                    }
                }
                QuantMath.ScaleAdd(q.Slice(0, 32), d * sc1, -(min * m1), y.Slice(64 * g, 32), level);
                QuantMath.ScaleAdd(q.Slice(32, 32), d * sc2, -(min * m2), y.Slice(64 * g + 32, 32), level);
            }
        }
    }
}
