// ggml Q5_0 blocks (block_q5_0): 32 weights as { f16 d; u8 qh[4]; u8 qs[16]; } = 22 bytes. qh is a little-endian
// u32 holding the fifth bit of every element (bit j for element j); w = d * ((nibble | fifth << 4) - 16).
// Dequantization only.
using System.Buffers.Binary;

namespace LoraSharp.Core.Quant;

/// <summary>Q5_0 row dequantization. A row of n elements (n % 32 == 0) is n/32 blocks of 22 bytes.</summary>
public static class BlockQ5_0
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 22;

    /// <summary>Scalar reference. blocks: n/32*22 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q5_0", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk.Slice(2));
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4 & 0x10);
                int h1 = (int)((qh >> (j + 12)) & 0x10);
                dst[b * 32 + j] = (((blk[6 + j] & 0x0F) | h0) - 16) * d;
                dst[b * 32 + j + 16] = (((blk[6 + j] >> 4) | h1) - 16) * d;
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q5_0", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        Span<sbyte> q = stackalloc sbyte[32];
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk.Slice(2));
            for (int j = 0; j < 16; j++)
            {
                q[j] = (sbyte)(((blk[6 + j] & 0x0F) | (int)((qh >> j) & 1) << 4) - 16);
                q[j + 16] = (sbyte)(((blk[6 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16);
            }
            QuantMath.Scale(q, d, dst.Slice(b * 32, 32), level);
        }
    }
}
