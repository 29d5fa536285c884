// IEEE half <-> float32 conversion. The BCL's Half casts round to nearest even; TensorPrimitives vectorizes them.
// This file exists so callers have one place for f16 with the same shape as Bf16 (scalar twin + fast path).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LoraSharp.Core.Tensors;

/// <summary>Vectorized float16 conversions with scalar reference twins. Values are raw f16 bit patterns.</summary>
public static class Fp16
{
    /// <summary>One float to f16 bits, round-to-nearest-even.</summary>
    public static ushort FromFloat(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>f16 bits to float (exact).</summary>
    public static float ToFloat(ushort h) => (float)BitConverter.UInt16BitsToHalf(h);

    /// <summary>
    /// The float of f16 bits <paramref name="h"/>, exactly (equal to ToFloat for every value; NaN stays NaN).
    /// Shifting the exponent and mantissa into a float's places and multiplying by 2^112 (the difference of the two
    /// exponent biases) is exact for normal and subnormal halves alike; only Inf/NaN take the branch. Block scales are
    /// read once per 32 weights, and the general conversion cost ~6 cycles, a fifth of a fused Q4_0 dot product.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloatFast(ushort h)
    {
        uint magnitude = h & 0x7FFFu, sign = (uint)(h & 0x8000) << 16;
        if (magnitude >= 0x7C00u) return BitConverter.UInt32BitsToSingle(sign | 0x7F800000u | (magnitude & 0x3FFu) << 13);
        float value = BitConverter.UInt32BitsToSingle(magnitude << 13) * 5.192296858534828e33f;   // 2^112
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(value) | sign);
    }

    /// <summary>Scalar reference: dst[i] = f16(src[i]).</summary>
    public static void FromFloatScalar(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"Source has {src.Length} elements but destination has {dst.Length}.");
        for (int i = 0; i < src.Length; i++) dst[i] = FromFloat(src[i]);
    }

    /// <summary>Scalar reference: dst[i] = float(src[i]).</summary>
    public static void ToFloatScalar(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"Source has {src.Length} elements but destination has {dst.Length}.");
        for (int i = 0; i < src.Length; i++) dst[i] = ToFloat(src[i]);
    }

    /// <summary>dst[i] = f16(src[i]), vectorized (TensorPrimitives picks the widest hardware path).</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (Simd.Level == SimdLevel.Scalar) { FromFloatScalar(src, dst); return; }
        if (src.Length != dst.Length) throw new ArgumentException($"Source has {src.Length} elements but destination has {dst.Length}.");
        TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<ushort, Half>(dst));
    }

    /// <summary>dst[i] = float(src[i]), vectorized.</summary>
    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (Simd.Level == SimdLevel.Scalar) { ToFloatScalar(src, dst); return; }
        if (src.Length != dst.Length) throw new ArgumentException($"Source has {src.Length} elements but destination has {dst.Length}.");
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(src), dst);
    }
}
