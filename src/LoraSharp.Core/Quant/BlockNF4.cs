// NF4 (4-bit NormalFloat, QLoRA / bitsandbytes): 16 levels that are quantiles of N(0, 1) scaled to [-1, 1],
// with exactly one zero. A block of 64 weights is { f32 absmax; u8 qs[32]; } = 36 bytes (4.5 bits a weight);
// w = absmax * Levels[code]. Byte j holds element 2j in its HIGH nibble and element 2j + 1 in its low nibble,
// bitsandbytes' packing (kQuantizeBlockwise writes `(q0 << 4) | q1`).
// Quantization is bitsandbytes' dQuantizeNF4 decision tree: code = the level nearest to x * (1/absmax), a value
// exactly on a midpoint going to the lower level. Blocks never straddle rows here (bitsandbytes blocks the
// flattened tensor), so a row must be a whole number of blocks; for rows of 64k elements the two agree.
// Double quantization of the absmax values is Nf4DoubleQuant.cs. Not here: the matmul packing (Gemm/).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraSharp.Core.Quant;

/// <summary>NF4 row (de)quantization. A row of n elements (n % 64 == 0) is n/64 blocks of 36 bytes.</summary>
public static class BlockNF4
{
    /// <summary>Elements per block (bitsandbytes' default blocksize for 4-bit).</summary>
    public const int BlockSize = 64;

    /// <summary>Bytes per block: f32 absmax and 32 bytes of codes.</summary>
    public const int BlockBytes = 4 + 32;

    /// <summary>The 16 NF4 levels, as float32 (bitsandbytes' get_4bit_type("nf4"); the QLoRA paper, appendix E).</summary>
    public static ReadOnlySpan<float> Levels =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    // Decision thresholds of dQuantizeNF4: the midpoints between neighbouring levels, computed in double and
    // rounded to float as bitsandbytes' constants are (code c + 1 is chosen when x > s_midpoints[c]).
    private static readonly float[] s_midpoints = Enumerable.Range(0, 15)
        .Select(c => (float)(((double)Levels[c] + Levels[c + 1]) / 2)).ToArray();

    /// <summary>The NF4 code of a value already divided by its block's absmax (in [-1, 1]).</summary>
    public static int Code(float normalized)
    {
        var mid = s_midpoints;
        int c = 0;
        while (c < 15 && normalized > mid[c]) c++;
        return c;
    }

    /// <summary>
    /// Quantizes one row (src.Length % 64 == 0) into src.Length/64*36 bytes: absmax = max |x| per block,
    /// code = <see cref="Code"/>(x * (1 / absmax)); an all-zero block stores absmax 0 and code 7 (the zero level).
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> blocks)
    {
        int nb = QuantMath.CheckRow("NF4", BlockSize, BlockBytes, blocks.Length, src.Length);
        for (int b = 0; b < nb; b++)
        {
            var x = src.Slice(b * BlockSize, BlockSize);
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float absmax = 0;
            for (int j = 0; j < BlockSize; j++) absmax = MathF.Max(absmax, MathF.Abs(x[j]));
            float inv = absmax != 0 ? 1f / absmax : 0f;
            MemoryMarshal.Write(blk, absmax);
            for (int j = 0; j < 32; j++)
                blk[4 + j] = (byte)(Code(x[2 * j] * inv) << 4 | Code(x[2 * j + 1] * inv));
        }
    }

    /// <summary>Scalar reference: dst[64b + i] = absmax_b * Levels[code_i]. blocks: n/64*36 bytes; dst: n floats.</summary>
    public static void DequantizeRowScalar(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("NF4", BlockSize, BlockBytes, blocks.Length, dst.Length);
        var levels = Levels;
        for (int b = 0; b < nb; b++)
        {
            var blk = blocks.Slice(b * BlockBytes, BlockBytes);
            float absmax = MemoryMarshal.Read<float>(blk);
            for (int j = 0; j < 32; j++)
            {
                dst[b * 64 + 2 * j] = levels[blk[4 + j] >> 4] * absmax;
                dst[b * 64 + 2 * j + 1] = levels[blk[4 + j] & 0x0F] * absmax;
            }
        }
    }

    /// <summary>Vectorized twin of <see cref="DequantizeRowScalar"/> (bit-identical).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> blocks, Span<float> dst)
    {
        int nb = QuantMath.CheckRow("NF4", BlockSize, BlockBytes, blocks.Length, dst.Length);
        ref byte src = ref MemoryMarshal.GetReference(blocks);
        ref float y = ref MemoryMarshal.GetReference(dst);
        for (int b = 0; b < nb; b++)
        {
            ref byte blk = ref Unsafe.Add(ref src, b * BlockBytes);
            DecodeCodes(ref Unsafe.Add(ref blk, 4), Unsafe.ReadUnaligned<float>(ref blk), ref Unsafe.Add(ref y, b * BlockSize), Simd.Level);
        }
    }

    /// <summary>
    /// y[0..64) = absmax * Levels[code] for the 32 code bytes at <paramref name="codes"/> (high nibble first).
    /// The level lookup is a register permute: vpermps over the 16 levels (AVX-512), two 8-entry vpermps and a
    /// blend on bit 3 (AVX2); narrower levels use the scalar loop. Shared with the double-quantized weights.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void DecodeCodes(ref byte codes, float absmax, ref float y, SimdLevel level)
    {
        if (level >= SimdLevel.V512 && Avx512F.IsSupported)
        {
            var table = Vector512.Create(Levels);
            var scale = Vector512.Create(absmax);
            var bytes = Vector256.LoadUnsafe(ref codes);
            // Element order interleaves the nibbles: e[2j] = hi(b[j]), e[2j + 1] = lo(b[j]).
            var hi = bytes >>> 4;
            var lo = bytes & Vector256.Create((byte)0x0F);
            // Unpacks work within 128-bit lanes: the low unpack holds bytes 0-7 and 16-23, the high one 8-15 and 24-31.
            var unpackLo = Avx2.UnpackLow(hi, lo);
            var unpackHi = Avx2.UnpackHigh(hi, lo);
            Lookup512(unpackLo.GetLower(), table, scale, ref y, 0);
            Lookup512(unpackHi.GetLower(), table, scale, ref y, 16);
            Lookup512(unpackLo.GetUpper(), table, scale, ref y, 32);
            Lookup512(unpackHi.GetUpper(), table, scale, ref y, 48);
        }
        else if (level >= SimdLevel.V256 && Avx2.IsSupported)
        {
            var levels = Levels;
            var tLo = Vector256.Create(levels[..8]);
            var tHi = Vector256.Create(levels[8..]);
            var scale = Vector256.Create(absmax);
            for (int j = 0; j < 32; j += 4)
            {
                // 4 bytes -> 8 codes in element order.
                uint w = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref codes, j));
                var b = Vector128.CreateScalarUnsafe(w).AsByte();
                var pair = Sse2.UnpackLow(b >>> 4, b & Vector128.Create((byte)0x0F));
                var idx = Avx2.ConvertToVector256Int32(pair);
                var v = Avx.BlendVariable(Avx2.PermuteVar8x32(tLo, idx), Avx2.PermuteVar8x32(tHi, idx),
                    (idx << 28).AsSingle());   // bit 3 of the code moved to the sign bit selects the upper table
                (v * scale).StoreUnsafe(ref y, (nuint)(2 * j));
            }
        }
        else
        {
            var levels = Levels;
            for (int j = 0; j < 32; j++)
            {
                byte c = Unsafe.Add(ref codes, j);
                Unsafe.Add(ref y, 2 * j) = levels[c >> 4] * absmax;
                Unsafe.Add(ref y, 2 * j + 1) = levels[c & 0x0F] * absmax;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lookup512(Vector128<byte> codes16, Vector512<float> table, Vector512<float> scale, ref float y, int at)
    {
        var idx = Avx512F.ConvertToVector512Int32(codes16);
        (Avx512F.PermuteVar16x32(table, idx) * scale).StoreUnsafe(ref y, (nuint)at);
    }
}
