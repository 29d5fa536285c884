// Fused dot products of one stored weight row with an f32 vector, decoding in registers (decode-time products,
// DecodedGemv): w · x = Σ_blocks d_b · Σ_i q_i x_i for ggml blocks, Σ_blocks absmax_b · Σ_i level(q_i) x_i for NF4,
// and bf16 widened by a shift. Nothing is written to memory, so a decode step streams the stored bytes once
// (0.56 bytes a weight for Q4_0) instead of decoding rows to a buffer and reading them back.
// Vector512 only (the per-block work fits one 512-bit register pair); other levels and types return false and the
// caller decodes rows and uses TensorPrimitives.Dot. The sums group differently from decode-then-dot, so results
// agree with it to rounding (about 1e-7 relative), not bit for bit.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class DecodedDot
{
    /// <summary>True when <see cref="Dot"/> has a fused kernel for <paramref name="type"/> at <paramref name="level"/>.</summary>
    public static bool Supports(DType type, SimdLevel level) =>
        level >= SimdLevel.V512 && Avx512F.IsSupported && type is DType.BF16 or DType.Q8_0 or DType.Q4_0 or DType.NF4;

    /// <summary>
    /// The x a row dot product of <paramref name="type"/> reads: bf16 wants x with each 32-element block split into
    /// its 16 even then 16 odd elements (a 32-bit lane of bf16 pairs then widens with one shift or one mask);
    /// other types read x as it is. <paramref name="staged"/> has room for K floats; returns what to pass to Dot.
    /// </summary>
    public static float* Stage(DType type, float* x, int K, float* staged)
    {
        if (type != DType.BF16) return x;
        int k = 0;
        for (; k + 32 <= K; k += 32)
            for (int i = 0; i < 16; i++)
            {
                staged[k + i] = x[k + 2 * i];
                staged[k + 16 + i] = x[k + 2 * i + 1];
            }
        for (; k < K; k++) staged[k] = x[k];
        return staged;
    }

    /// <summary>Σ_k W[k]·x[k] for one row of <paramref name="K"/> elements stored as <paramref name="type"/> at <paramref name="row"/>;
    /// <paramref name="x"/> as <see cref="Stage"/> returned it.</summary>
    public static float Dot(DType type, byte* row, float* x, int K) => type switch
    {
        DType.BF16 => DotBf16((ushort*)row, x, K),
        DType.Q8_0 => DotQ8_0(row, x, K / BlockQ8_0.BlockSize),
        DType.Q4_0 => DotQ4_0(row, x, K / BlockQ4_0.BlockSize),
        DType.NF4 => DotNf4(row, x, K / BlockNF4.BlockSize),
        _ => throw new NotSupportedException($"No fused dot product for {type}."),
    };

    // x staged as even/odd halves per 32 elements: lane i of a 32-bit load holds elements 2i (low half) and 2i + 1
    // (high half), so `<< 16` and `& 0xFFFF0000` give both as floats without a widening shuffle (which cost ~2x).
    // Two cache lines per iteration into four accumulators: a one-row product over a 128 MiB bf16 weight streamed
    // 12.6 -> 14.4 GB/s on 2 threads (6.3 -> 7.4 on one) against one line and two accumulators; four lines gained nothing more.
    private static float DotBf16(ushort* w, float* x, int K)
    {
        var a0 = Vector512<float>.Zero;
        var a1 = Vector512<float>.Zero;
        var a2 = Vector512<float>.Zero;
        var a3 = Vector512<float>.Zero;
        var high = Vector512.Create(0xFFFF0000u);
        int k = 0;
        for (; k + 64 <= K; k += 64)
        {
            var p0 = Vector512.Load((uint*)(w + k));
            var p1 = Vector512.Load((uint*)(w + k + 32));
            a0 = Vector512.FusedMultiplyAdd((p0 << 16).AsSingle(), Vector512.Load(x + k), a0);
            a1 = Vector512.FusedMultiplyAdd((p0 & high).AsSingle(), Vector512.Load(x + k + 16), a1);
            a2 = Vector512.FusedMultiplyAdd((p1 << 16).AsSingle(), Vector512.Load(x + k + 32), a2);
            a3 = Vector512.FusedMultiplyAdd((p1 & high).AsSingle(), Vector512.Load(x + k + 48), a3);
        }
        for (; k + 32 <= K; k += 32)
        {
            var pairs = Vector512.Load((uint*)(w + k));
            a0 = Vector512.FusedMultiplyAdd((pairs << 16).AsSingle(), Vector512.Load(x + k), a0);
            a1 = Vector512.FusedMultiplyAdd((pairs & high).AsSingle(), Vector512.Load(x + k + 16), a1);
        }
        float s = Vector512.Sum((a0 + a1) + (a2 + a3));
        for (; k < K; k++) s += BitConverter.Int32BitsToSingle(w[k] << 16) * x[k];
        return s;
    }

    private static float DotQ8_0(byte* w, float* x, int blocks)
    {
        var acc = Vector512<float>.Zero;
        for (int b = 0; b < blocks; b++, w += BlockQ8_0.BlockBytes, x += 32)
        {
            var d = Vector512.Create(QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(w)));
            var q0 = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)w + 2)));
            var q1 = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)w + 18)));
            var t = Vector512.FusedMultiplyAdd(q1, Vector512.Load(x + 16), q0 * Vector512.Load(x));
            acc = Vector512.FusedMultiplyAdd(d, t, acc);
        }
        return Vector512.Sum(acc);
    }

    private static float DotQ4_0(byte* w, float* x, int blocks)
    {
        var acc = Vector512<float>.Zero;
        var mask = Vector128.Create((byte)0x0F);
        var eight = Vector512.Create(8f);
        for (int b = 0; b < blocks; b++, w += BlockQ4_0.BlockBytes, x += 32)
        {
            var d = Vector512.Create(QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(w)));
            var bytes = Vector128.Load(w + 2);
            // Element j < 16 is the low nibble of byte j, element j + 16 its high nibble.
            var q0 = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(bytes & mask)) - eight;
            var q1 = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(bytes >>> 4)) - eight;
            var t = Vector512.FusedMultiplyAdd(q1, Vector512.Load(x + 16), q0 * Vector512.Load(x));
            acc = Vector512.FusedMultiplyAdd(d, t, acc);
        }
        return Vector512.Sum(acc);
    }

    private static float DotNf4(byte* w, float* x, int blocks)
    {
        var acc = Vector512<float>.Zero;
        var table = Vector512.Create(BlockNF4.Levels);
        var mask = Vector256.Create((byte)0x0F);
        for (int b = 0; b < blocks; b++, w += BlockNF4.BlockBytes, x += 64)
        {
            var absmax = Vector512.Create(Unsafe.ReadUnaligned<float>(w));
            var bytes = Vector256.Load(w + 4);
            // Element 2j is the high nibble of byte j, 2j + 1 the low one; the unpacks interleave within 128-bit lanes.
            var lo = Avx2.UnpackLow(bytes >>> 4, bytes & mask);
            var hi = Avx2.UnpackHigh(bytes >>> 4, bytes & mask);
            var t = Level(lo.GetLower(), table) * Vector512.Load(x);
            t = Vector512.FusedMultiplyAdd(Level(hi.GetLower(), table), Vector512.Load(x + 16), t);
            t = Vector512.FusedMultiplyAdd(Level(lo.GetUpper(), table), Vector512.Load(x + 32), t);
            t = Vector512.FusedMultiplyAdd(Level(hi.GetUpper(), table), Vector512.Load(x + 48), t);
            acc = Vector512.FusedMultiplyAdd(absmax, t, acc);
        }
        return Vector512.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Level(Vector128<byte> codes, Vector512<float> table)
        => Avx512F.PermuteVar16x32(table, Avx512F.ConvertToVector512Int32(codes));
}
