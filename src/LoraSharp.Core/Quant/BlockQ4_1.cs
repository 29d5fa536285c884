// ggml Q4_1 blocks (block_q4_1): 32 weights as { f16 d; f16 m; u8 qs[16]; } = 20 bytes; w = d * nibble + m,
// low nibbles are elements 0..15, high nibbles 16..31. Dequantization only.
namespace LoraSharp.Core.Quant;

/// <summary>Q4_1 row dequantization. A row of n elements (n % 32 == 0) is n/32 blocks of 20 bytes.</summary>
public static class BlockQ4_1
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 20;

    /// <summary>Scalar reference: dst = d * nibble + m. blocks: n/32*20 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q4_1", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), m = QuantMath.Half(blk, 2);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = (blk[4 + j] & 0x0F) * d + m;
                dst[b * 32 + j + 16] = (blk[4 + j] >> 4) * d + m;
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q4_1", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        Span<sbyte> q = stackalloc sbyte[32];
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0), m = QuantMath.Half(blk, 2);
            for (int j = 0; j < 16; j++)
            {
                q[j] = (sbyte)(blk[4 + j] & 0x0F);
                q[j + 16] = (sbyte)(blk[4 + j] >> 4);
            }
            QuantMath.ScaleAdd(q, d, m, dst.Slice(b * 32, 32), level);
        }
    }
}
