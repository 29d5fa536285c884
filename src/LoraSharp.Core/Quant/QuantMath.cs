// Shared inner loops of the block dequantizers: widen signed 8-bit codes to float and apply y = d*q (+ m).
// The vector paths do the same IEEE operations in the same order as the scalar twins (convert, multiply, then add;
// never a fused multiply-add), so every dequantizer's fast path is bit-identical to its scalar reference.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Quant;

/// <summary>Vector helpers for dequantization: y[i] = d * q[i] or y[i] = d * q[i] + m, for n a multiple of 16.</summary>
internal static class QuantMath
{
    /// <summary>y[0..n) = d * (float)q[0..n). n must be a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ReadOnlySpan<sbyte> q, float d, Span<float> y, SimdLevel level)
    {
        int n = q.Length;
        ref sbyte qs = ref MemoryMarshal.GetReference(q);
        ref float ys = ref MemoryMarshal.GetReference(y);
        if (level >= SimdLevel.V512)
        {
            var vd = Vector512.Create(d);
            for (int i = 0; i < n; i += 16)
                (Vector512.ConvertToSingle(Widen512(ref qs, i)) * vd).StoreUnsafe(ref ys, (nuint)i);
        }
        else if (level >= SimdLevel.V256)
        {
            var vd = Vector256.Create(d);
            for (int i = 0; i < n; i += 8)
                (Vector256.ConvertToSingle(Widen256(ref qs, i)) * vd).StoreUnsafe(ref ys, (nuint)i);
        }
        else if (level >= SimdLevel.V128)
        {
            var vd = Vector128.Create(d);
            for (int i = 0; i < n; i += 4)
                (Vector128.ConvertToSingle(Widen128(ref qs, i)) * vd).StoreUnsafe(ref ys, (nuint)i);
        }
        else
        {
            for (int i = 0; i < n; i++) y[i] = q[i] * d;
        }
    }

    /// <summary>y[0..n) = d * (float)q[0..n) + m. n must be a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaleAdd(ReadOnlySpan<sbyte> q, float d, float m, Span<float> y, SimdLevel level)
    {
        int n = q.Length;
        ref sbyte qs = ref MemoryMarshal.GetReference(q);
        ref float ys = ref MemoryMarshal.GetReference(y);
        if (level >= SimdLevel.V512)
        {
            var vd = Vector512.Create(d);
            var vm = Vector512.Create(m);
            for (int i = 0; i < n; i += 16)
                (Vector512.ConvertToSingle(Widen512(ref qs, i)) * vd + vm).StoreUnsafe(ref ys, (nuint)i);
        }
        else if (level >= SimdLevel.V256)
        {
            var vd = Vector256.Create(d);
            var vm = Vector256.Create(m);
            for (int i = 0; i < n; i += 8)
                (Vector256.ConvertToSingle(Widen256(ref qs, i)) * vd + vm).StoreUnsafe(ref ys, (nuint)i);
        }
        else if (level >= SimdLevel.V128)
        {
            var vd = Vector128.Create(d);
            var vm = Vector128.Create(m);
            for (int i = 0; i < n; i += 4)
                (Vector128.ConvertToSingle(Widen128(ref qs, i)) * vd + vm).StoreUnsafe(ref ys, (nuint)i);
        }
        else
        {
            for (int i = 0; i < n; i++) y[i] = q[i] * d + m;
        }
    }

    /// <summary>y[0..16) = d * (float)q[0..16) for 16 codes already in a register (level >= V128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale16(Vector128<sbyte> q, float d, ref float y, SimdLevel level)
    {
        if (level >= SimdLevel.V512)
        {
            var i32 = Vector512.WidenLower(Vector256.WidenLower(q.ToVector256Unsafe()).ToVector512Unsafe());
            (Vector512.ConvertToSingle(i32) * Vector512.Create(d)).StoreUnsafe(ref y);
        }
        else if (level >= SimdLevel.V256)
        {
            var vd = Vector256.Create(d);
            var lo = Vector256.WidenLower(Vector128.WidenLower(q).ToVector256Unsafe());
            var hi = Vector256.WidenLower(Vector128.WidenUpper(q).ToVector256Unsafe());
            (Vector256.ConvertToSingle(lo) * vd).StoreUnsafe(ref y);
            (Vector256.ConvertToSingle(hi) * vd).StoreUnsafe(ref y, 8);
        }
        else
        {
            var vd = Vector128.Create(d);
            var (s0, s1) = Vector128.Widen(q);
            var (a, b) = Vector128.Widen(s0);
            var (c, e) = Vector128.Widen(s1);
            (Vector128.ConvertToSingle(a) * vd).StoreUnsafe(ref y);
            (Vector128.ConvertToSingle(b) * vd).StoreUnsafe(ref y, 4);
            (Vector128.ConvertToSingle(c) * vd).StoreUnsafe(ref y, 8);
            (Vector128.ConvertToSingle(e) * vd).StoreUnsafe(ref y, 12);
        }
    }

    // 16 sbytes at q+i -> 16 ints.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Widen512(ref sbyte q, int i)
    {
        var b = Vector128.LoadUnsafe(ref q, (nuint)i);
        var s = Vector256.WidenLower(b.ToVector256Unsafe());
        return Vector512.WidenLower(s.ToVector512Unsafe());
    }

    // 8 sbytes at q+i -> 8 ints.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Widen256(ref sbyte q, int i)
    {
        var b = Vector64.LoadUnsafe(ref q, (nuint)i).ToVector128Unsafe();
        var s = Vector128.WidenLower(b);
        return Vector256.WidenLower(s.ToVector256Unsafe());
    }

    // 4 sbytes at q+i -> 4 ints.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Widen128(ref sbyte q, int i)
    {
        var b = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<int>(ref Unsafe.As<sbyte, byte>(ref Unsafe.Add(ref q, i)))).AsSByte();
        var s = Vector128.WidenLower(b);
        return Vector128.WidenLower(s);
    }

    /// <summary>Half-precision bits at <paramref name="offset"/> of <paramref name="b"/>, as float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ReadOnlySpan<byte> b, int offset) => HalfBitsToFloat((ushort)(b[offset] | b[offset + 1] << 8));

    /// <summary>The float of f16 bits <paramref name="h"/> (Fp16.ToFloatFast: exact, a few integer operations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfBitsToFloat(ushort h) => LoraSharp.Core.Tensors.Fp16.ToFloatFast(h);

    /// <summary>Checks that <paramref name="src"/> holds exactly the blocks for <paramref name="dst"/>.Length elements.</summary>
    public static int CheckRow(string type, int blockSize, int blockBytes, int srcLength, int dstLength)
    {
        if (dstLength % blockSize != 0)
            throw new ArgumentException($"{type}: a row of {dstLength} elements is not a whole number of blocks of {blockSize}.");
        int blocks = dstLength / blockSize;
        if ((long)blocks * blockBytes != srcLength)
            throw new ArgumentException($"{type}: {dstLength} elements need {(long)blocks * blockBytes} bytes of blocks, got {srcLength}.");
        return blocks;
    }
}
