// ggml Q6_K super-blocks (block_q6_K): 256 weights as { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; } = 210 bytes.
// Each half of 128 weights uses 64 bytes of ql (low 4 bits), 32 of qh (2 high bits each) and 8 scales;
// w = (d * scale[16-element sub-block]) * (q6 - 32). Dequantization only.
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Quant;

/// <summary>Q6_K row dequantization. A row of n elements (n % 256 == 0) is n/256 blocks of 210 bytes.</summary>
public static class BlockQ6_K
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 256;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 210;

    /// <summary>Scalar reference. blocks: n/256*210 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q6_K", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 208);
            for (int half = 0; half < 2; half++)
            {
                var ql = blk.Slice(64 * half, 64);
                var qh = blk.Slice(128 + 32 * half, 32);
                var sc = blk.Slice(192 + 8 * half, 8);
                var y = dst.Slice(b * 256 + 128 * half, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
                    int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
                    int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                    int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                    y[l] = d * (sbyte)sc[s] * q1;
                    y[l + 32] = d * (sbyte)sc[s + 2] * q2;
                    y[l + 64] = d * (sbyte)sc[s + 4] * q3;
                    y[l + 96] = d * (sbyte)sc[s + 6] * q4;
                }
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q6_K", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        Span<sbyte> q = stackalloc sbyte[128];
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 208);
            for (int half = 0; half < 2; half++)
            {
                var ql = blk.Slice(64 * half, 64);
                var qh = blk.Slice(128 + 32 * half, 32);
                var sc = blk.Slice(192 + 8 * half, 8);
                var y = dst.Slice(b * 256 + 128 * half, 128);
                if (level >= SimdLevel.V128)
                {
                    var mask = Vector128.Create((byte)0x0F);
                    var three = Vector128.Create((byte)3);
                    var bias = Vector128.Create((byte)32);
                    for (int h = 0; h < 32; h += 16)
                    {
                        var a = Vector128.Create(ql.Slice(h, 16));
                        var b2 = Vector128.Create(ql.Slice(32 + h, 16));
                        var hb = Vector128.Create(qh.Slice(h, 16));
                        (((a & mask) | ((hb & three) << 4)) - bias).AsSByte().CopyTo(q.Slice(h));
                        (((b2 & mask) | (((hb >>> 2) & three) << 4)) - bias).AsSByte().CopyTo(q.Slice(32 + h));
                        (((a >>> 4) | (((hb >>> 4) & three) << 4)) - bias).AsSByte().CopyTo(q.Slice(64 + h));
                        (((b2 >>> 4) | ((hb >>> 6) << 4)) - bias).AsSByte().CopyTo(q.Slice(96 + h));
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l++)
                    {
                        q[l] = (sbyte)(((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32);
                        q[l + 32] = (sbyte)(((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32);
                        q[l + 64] = (sbyte)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                        q[l + 96] = (sbyte)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
                    }
                }
                // Sub-block k of 16 weights (k = 0..7) uses scale sc[k]: l/16 + 2*quarter.
                for (int k = 0; k < 8; k++)
                    QuantMath.Scale(q.Slice(16 * k, 16), d * (sbyte)sc[k], y.Slice(16 * k, 16), level);
            }
        }
    }
}
