// ggml Q4_0 blocks (block_q4_0): 32 weights as { f16 d; u8 qs[16]; } = 18 bytes. Element j (j < 16) is the low
// nibble of qs[j], element j + 16 the high nibble; w = d * (nibble - 8).
// Quantization matches gguf-py's numpy reference (which in turn reproduces ggml's FMA-compiled C): take the element
// with the largest magnitude, keeping its sign, as max; d = max / -8; id = 1/d (0 when d == 0);
// q = min(15, trunc(float32(double(x) * double(id) + 8.5))); d stored as f16 (RNE).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Quant;

/// <summary>Q4_0 row (de)quantization. A row of n elements (n % 32 == 0) is n/32 blocks of 18 bytes.</summary>
public static class BlockQ4_0
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 18;

    /// <summary>Scalar reference: dst = d * (nibble - 8). blocks: n/32*18 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q4_0", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = ((blk[2 + j] & 0x0F) - 8) * d;
                dst[b * 32 + j + 16] = ((blk[2 + j] >> 4) - 8) * d;
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical): nibbles are unpacked in registers.</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q4_0", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        if (level == SimdLevel.Scalar)
        {
            DequantizeRowScalar(blocks, dst);
            return;
        }
        ref byte src = ref MemoryMarshal.GetReference(blocks);
        ref float y = ref MemoryMarshal.GetReference(dst);
        var mask = Vector128.Create((byte)0x0F);
        var eight = Vector128.Create((byte)8);
        for (int b = 0; b < nb; b++)
        {
            ref byte blk = ref Unsafe.Add(ref src, b * BlockBytes);
            float d = QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(ref blk));
            var v = Vector128.LoadUnsafe(ref Unsafe.Add(ref blk, 2));
            QuantMath.Scale16(((v & mask) - eight).AsSByte(), d, ref Unsafe.Add(ref y, b * 32), level);
            QuantMath.Scale16(((v >>> 4) - eight).AsSByte(), d, ref Unsafe.Add(ref y, b * 32 + 16), level);
        }
    }

    /// <summary>Quantizes one row (src.Length % 32 == 0) into src.Length/32*18 bytes, bit-identical to gguf-py's reference.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> blocks)
    {
        int nb = QuantMath.CheckRow("Q4_0", BlockSize, BlockBytes, blocks.Length, src.Length);
        for (int b = 0; b < nb; b++)
        {
            var x = src.Slice(b * 32, 32);
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++)
            {
                // First element of largest magnitude wins (numpy argmax; ggml's strict '<').
                if (MathF.Abs(x[j]) > amax) { amax = MathF.Abs(x[j]); max = x[j]; }
            }
            float d = max / -8f;
            float id = d != 0 ? 1f / d : 0f;
            ushort dh = BitConverter.HalfToUInt16Bits((Half)d);
            blk[0] = (byte)dh;
            blk[1] = (byte)(dh >> 8);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Code(x[j], id), q1 = Code(x[j + 16], id);
                blk[2 + j] = (byte)(q0 | q1 << 4);
            }
        }
    }

    private static int Code(float x, float id)
    {
        float v = (float)((double)x * id + 8.5);
        return Math.Clamp((int)MathF.Truncate(v), 0, 15);
    }
}
