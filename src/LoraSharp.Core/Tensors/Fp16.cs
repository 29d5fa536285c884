// IEEE half <-> float32 conversion. The BCL's Half casts round to nearest even; TensorPrimitives vectorizes them.
// This file exists so callers have one place for f16 with the same shape as Bf16 (scalar twin + fast path).
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace LoraSharp.Core.Tensors;

/// <summary>Vectorized float16 conversions with scalar reference twins. Values are raw f16 bit patterns.</summary>
public static class Fp16
{
    /// <summary>One float to f16 bits, round-to-nearest-even.</summary>
    public static ushort FromFloat(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>f16 bits to float (exact).</summary>
    public static float ToFloat(ushort h) => (float)BitConverter.UInt16BitsToHalf(h);

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
