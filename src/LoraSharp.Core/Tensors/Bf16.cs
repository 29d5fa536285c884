// bfloat16 <-> float32 conversion. bf16 is the upper 16 bits of an IEEE float32; narrowing rounds to nearest,
// ties to even: (u + 0x7FFF + ((u >> 16) & 1)) >> 16, which is bit-identical to torch's .to(torch.bfloat16).
// NaN stays NaN (quiet bit forced, so rounding cannot carry a NaN into infinity).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Tensors;

/// <summary>Vectorized bfloat16 conversions with scalar reference twins.</summary>
public static class Bf16
{
    /// <summary>One float to bf16 bits, round-to-nearest-even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFF_FFFF) > 0x7F80_0000) return (ushort)((u >> 16) | 0x40);
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    /// <summary>bf16 bits to float (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>Scalar reference: dst[i] = bf16(src[i]).</summary>
    public static void FromFloatScalar(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        CheckLengths(src.Length, dst.Length);
        for (int i = 0; i < src.Length; i++) dst[i] = FromFloat(src[i]);
    }

    /// <summary>Scalar reference: dst[i] = float(src[i]).</summary>
    public static void ToFloatScalar(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        CheckLengths(src.Length, dst.Length);
        for (int i = 0; i < src.Length; i++) dst[i] = ToFloat(src[i]);
    }

    /// <summary>dst[i] = bf16(src[i]), round-to-nearest-even, vectorized at the active <see cref="Simd.Level"/>.</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        CheckLengths(src.Length, dst.Length);
        int i = 0;
        var level = Simd.Level;
        ref uint s = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(src));
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        if (level >= SimdLevel.V512)
        {
            for (; i + 32 <= src.Length; i += 32)
            {
                var lo = Round(Vector512.LoadUnsafe(ref s, (nuint)i));
                var hi = Round(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        if (level >= SimdLevel.V256)
        {
            for (; i + 16 <= src.Length; i += 16)
            {
                var lo = Round(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = Round(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        if (level >= SimdLevel.V128)
        {
            for (; i + 8 <= src.Length; i += 8)
            {
                var lo = Round(Vector128.LoadUnsafe(ref s, (nuint)i));
                var hi = Round(Vector128.LoadUnsafe(ref s, (nuint)(i + 4)));
                Vector128.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < src.Length; i++) dst[i] = FromFloat(src[i]);
    }

    /// <summary>dst[i] = float(src[i]), vectorized.</summary>
    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        CheckLengths(src.Length, dst.Length);
        int i = 0;
        var level = Simd.Level;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        if (level >= SimdLevel.V512)
        {
            for (; i + 32 <= src.Length; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        if (level >= SimdLevel.V256)
        {
            for (; i + 16 <= src.Length; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        if (level >= SimdLevel.V128)
        {
            for (; i + 8 <= src.Length; i += 8)
            {
                var (lo, hi) = Vector128.Widen(Vector128.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 4));
            }
        }
        for (; i < src.Length; i++) dst[i] = ToFloat(src[i]);
    }

    // Round-to-nearest-even of the upper half, NaN kept quiet; result still in 32-bit lanes, value in the low 16 bits.
    private static Vector512<uint> Round(Vector512<uint> u)
    {
        var rounded = (u + Vector512.Create(0x7FFFu) + ((u >> 16) & Vector512<uint>.One)) >> 16;
        var nan = Vector512.GreaterThan(u & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        return Vector512.ConditionalSelect(nan, (u >> 16) | Vector512.Create(0x40u), rounded);
    }

    private static Vector256<uint> Round(Vector256<uint> u)
    {
        var rounded = (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
        var nan = Vector256.GreaterThan(u & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
        return Vector256.ConditionalSelect(nan, (u >> 16) | Vector256.Create(0x40u), rounded);
    }

    private static Vector128<uint> Round(Vector128<uint> u)
    {
        var rounded = (u + Vector128.Create(0x7FFFu) + ((u >> 16) & Vector128<uint>.One)) >> 16;
        var nan = Vector128.GreaterThan(u & Vector128.Create(0x7FFF_FFFFu), Vector128.Create(0x7F80_0000u));
        return Vector128.ConditionalSelect(nan, (u >> 16) | Vector128.Create(0x40u), rounded);
    }

    private static void CheckLengths(int src, int dst)
    {
        if (src != dst) throw new ArgumentException($"Source has {src} elements but destination has {dst}.");
    }
}
