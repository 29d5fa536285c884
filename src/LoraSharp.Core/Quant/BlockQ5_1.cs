// ggml Q5_1 blocks (block_q5_1): 32 weights as { f16 d; f16 m; u8 qh[4]; u8 qs[16]; } = 24 bytes;
// w = d * (nibble | fifth << 4) + m, the fifth bits in the little-endian u32 qh. Dequantization only.
using System.Buffers.Binary;

namespace LoraSharp.Core.Quant;

/// <summary>Q5_1 row dequantization. A row of n elements (n % 32 == 0) is n/32 blocks of 24 bytes.</summary>
public static class BlockQ5_1
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 24;

    /// <summary>Scalar reference. blocks: n/32*24 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q5_1", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), m = QuantMath.Half(blk, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk.Slice(4));
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4 & 0x10);
                int h1 = (int)((qh >> (j + 12)) & 0x10);
                dst[b * 32 + j] = ((blk[8 + j] & 0x0F) | h0) * d + m;
                dst[b * 32 + j + 16] = ((blk[8 + j] >> 4) | h1) * d + m;
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q5_1", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        Span<sbyte> q = stackalloc sbyte[32];
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), m = QuantMath.Half(blk, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk.Slice(4));
            for (int j = 0; j < 16; j++)
            {
                q[j] = (sbyte)((blk[8 + j] & 0x0F) | (int)((qh >> j) & 1) << 4);
                q[j + 16] = (sbyte)((blk[8 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4);
            }
            QuantMath.ScaleAdd(q, d, m, dst.Slice(b * 32, 32), level);
        }
    }
}
