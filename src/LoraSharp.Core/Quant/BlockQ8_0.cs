// ggml Q8_0 blocks (ggml-common.h block_q8_0): 32 weights as { f16 d; int8 qs[32]; } = 34 bytes, w = d * q.
// Quantization follows ggml's quantize_row_q8_0_ref (and gguf-py's numpy port) bit for bit:
// d = max|x| / 127, id = d != 0 ? 1/d : 0, q = round-half-away-from-zero(x * id), d stored as f16 (RNE).
// Rows only: callers hand one row (a whole number of blocks) at a time.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Quant;

/// <summary>Q8_0 row (de)quantization. A row of n elements (n % 32 == 0) is n/32 blocks of 34 bytes.</summary>
public static class BlockQ8_0
{
    /// <summary>Elements per block.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes per block.</summary>
    public const int BlockBytes = 34;

    /// <summary>Scalar reference: dst[32b + j] = f16(d_b) * qs_b[j]. blocks: n/32*34 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q8_0", BlockSize, BlockBytes, blocks.Length, dst.Length);
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.Half(blk, 0);
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = (sbyte)blk[2 + j] * d;
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("Q8_0", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var level = Simd.Level;
        if (level == SimdLevel.Scalar)
        {
            DequantizeRowScalar(blocks, dst);
            return;
        }
        ref byte src = ref MemoryMarshal.GetReference(blocks);
        ref float y = ref MemoryMarshal.GetReference(dst);
        for (int b = 0; b < nb; b++)
        {
            ref byte blk = ref Unsafe.Add(ref src, b * BlockBytes);
            float d = QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(ref blk));
            QuantMath.Scale16(Vector128.LoadUnsafe(ref Unsafe.Add(ref blk, 2)).AsSByte(), d, ref Unsafe.Add(ref y, b * 32), level);
            QuantMath.Scale16(Vector128.LoadUnsafe(ref Unsafe.Add(ref blk, 18)).AsSByte(), d, ref Unsafe.Add(ref y, b * 32 + 16), level);
        }
    }

    /// <summary>Quantizes one row (src.Length % 32 == 0) into src.Length/32*34 bytes, bit-identical to ggml's reference.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> blocks)
    {
        int nb = QuantMath.CheckRow("Q8_0", BlockSize, BlockBytes, blocks.Length, src.Length);
        for (int b = 0; b < nb; b++)
        {
            var x = src.Slice(b * 32, 32);
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            ushort dh = BitConverter.HalfToUInt16Bits((Half)d);
            blk[0] = (byte)dh;
            blk[1] = (byte)(dh >> 8);
            for (int j = 0; j < 32; j++)
                blk[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }
}
