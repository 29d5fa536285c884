// Integer dot products of one stored Q4_0 or Q8_0 weight row with an activation row quantized to Q8_0 (Q8Row):
// llama.cpp's decode arithmetic (ggml_vec_dot_q4_0_q8_0 / _q8_0_q8_0). Decoding Q4_0 to floats and multiplying
// in float is compute-bound (about 15 vector operations a block); here a block of 32 products is one
// multiply-add of bytes into 16-bit pairs (vpmaddubsw) and one into 32-bit lanes (vpmaddwd), then one float
// multiply-add by the block's two scales. This file: the dispatch, Q8_0's kernels and both scalar twins; Q4_0's
// kernels are in Q8Dot.Q4_0.cs, with their own definition.
//
// Q8_0's result is defined exactly, so every path (Vector512, Vector256, scalar twin) gives the same bits:
//   s_b    = f16→f32(dW_b) · dX_b                                  (one float multiply)
//   p_b,j  = Σ_{i=4j..4j+3} w_b,i · q_b,i   for lanes j = 0..7      (exact integers)
//   acc_{b mod 4}[j] = fma((float)p_b,j, s_b, acc_{b mod 4}[j])     blocks in order, four accumulators of 8 lanes
//   t_j = (acc_0[j] + acc_2[j]) + (acc_1[j] + acc_3[j]);  u_j = t_j + t_{j+4};  result = (u_0 + u_2) + (u_1 + u_3)
// Vector256 holds acc_0..acc_3 in four registers (four blocks an iteration); Vector512 holds them as the halves of
// two registers, [acc_0 | acc_1] and [acc_2 | acc_3] (block pairs side by side): two independent fma chains, since
// one chain bound the loop by the fma latency. The block scales come from a table (HalfTable). Q8_0 multiplies |w|
// by q with w's sign (|w| ≤ 128, |q| ≤ 127: a pair sum stays within int16, so vpmaddubsw never saturates).
// .NET 10 has no 512-bit VNNI (vpdpbusd) intrinsic and AvxVnni is VEX-only (absent on Zen 4), so both widths use
// vpmaddubsw + vpmaddwd.
// Against float decode the error is the activation's quantization (|Δx| ≤ d/2 per element, d = max|x|/127 per
// block); docs/kernels.md gives the measured logits difference.
// Dot2: two rows a pass in the one-row layout (V512/V256), each row's result the same bits as Dot's.
// Not here: quantizing X (Q8Row), threading and prefetch (StoredPanelSource, DecodedGemv).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe partial class Q8Dot
{
    private const int Q4Bytes = 18, Q8Bytes = 34;   // ggml block_q4_0 / block_q8_0: f16 d, then 16 / 32 code bytes

    // f16 → f32 of every bit pattern (256 KiB, as ggml's table): one load instead of the dozen scalar operations and
    // register moves of Fp16.ToFloatFast per block, which were most of the instructions of a block pair's loop.
    // Pinned, so the kernels read it through a pointer.
    private static readonly float[] HalfTable = BuildHalfTable();
    private static readonly float* Half = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(HalfTable));

    private static float[] BuildHalfTable()
    {
        var t = GC.AllocateUninitializedArray<float>(65536, pinned: true);
        for (int h = 0; h < 65536; h++) t[h] = QuantMath.HalfBitsToFloat((ushort)h);
        return t;
    }

    /// <summary>True for the weight types with an integer product against Q8_0 activations.</summary>
    public static bool Supports(DType type) => type is DType.Q4_0 or DType.Q8_0;

    /// <summary>The dot product of a stored row of <paramref name="blocks"/> blocks with <paramref name="x"/> at the widest path <paramref name="level"/> allows.</summary>
    public static float Dot(DType type, byte* row, in Q8Row x, int blocks, SimdLevel level)
    {
        if (type == DType.Q4_0)
            return level >= SimdLevel.V256 && Avx2.IsSupported ? DotQ4_0V256(row, x, blocks) : DotQ4_0Scalar(row, x, blocks);
        if (level >= SimdLevel.V512 && Avx512BW.IsSupported) return DotQ8_0V512(row, x, blocks);
        if (level >= SimdLevel.V256 && Avx2.IsSupported) return DotQ8_0V256(row, x, blocks);
        return DotScalar(type, row, x, blocks);
    }

    /// <summary>Scalar twin: the same operations lane by lane (see the headers).</summary>
    public static float DotScalar(DType type, byte* row, in Q8Row x, int blocks)
    {
        if (type == DType.Q4_0) return DotQ4_0Scalar(row, x, blocks);
        float* acc = stackalloc float[32];   // acc_c[j] at acc[8c + j], c = b mod 4
        new Span<float>(acc, 32).Clear();
        for (int b = 0; b < blocks; b++)
        {
            byte* w = row + (long)b * Q8Bytes;
            float s = QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(w)) * x.D[b];   // = Half[...] * D[b]
            sbyte* q = x.Q + b * Q8Row.Block;
            float* a = acc + 8 * (b & 3);
            for (int j = 0; j < 8; j++)
            {
                int p = 0;
                for (int i = 4 * j; i < 4 * j + 4; i++) p += (sbyte)w[2 + i] * q[i];
                a[j] = MathF.FusedMultiplyAdd(p, s, a[j]);
            }
        }
        Span<float> t = stackalloc float[8];
        for (int j = 0; j < 8; j++) t[j] = (acc[j] + acc[16 + j]) + (acc[8 + j] + acc[24 + j]);
        for (int j = 0; j < 4; j++) t[j] += t[j + 4];
        return (t[0] + t[2]) + (t[1] + t[3]);
    }

    // t_j = (acc_0 + acc_2) + (acc_1 + acc_3), reduced as the header says.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> acc0, Vector256<float> acc1, Vector256<float> acc2, Vector256<float> acc3)
    {
        var t = (acc0 + acc2) + (acc1 + acc3);
        var u = t.GetLower() + t.GetUpper();
        return (u.GetElement(0) + u.GetElement(2)) + (u.GetElement(1) + u.GetElement(3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* w, float* d, int b) => Half[*(ushort*)w] * d[b];

    // [s_b x 8, s_b+1 x 8] for the block pair at w (block bytes apart).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ScalePair(byte* w, int bytes, float* d, int b)
    {
        var dw = Vector128.CreateScalarUnsafe(Half[*(ushort*)w]).WithElement(1, Half[*(ushort*)(w + bytes)]);
        var pair = dw * Vector128.CreateScalarUnsafe(*(double*)(d + b)).AsSingle();   // lanes 0, 1: s_b, s_b+1
        return Avx512F.PermuteVar16x32(pair.ToVector256Unsafe().ToVector512Unsafe(), Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    }

    // 8 lanes of p for one Q8_0 block: |w| times q with w's sign.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> LanesQ8_0(byte* w, sbyte* q)
    {
        var ws = Vector256.Load((sbyte*)w + 2);
        var pairs = Avx2.MultiplyAddAdjacent(Avx2.Abs(ws), Avx2.Sign(Vector256.Load(q), ws));
        return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Lanes(byte* w, in Q8Row x, int b) => LanesQ8_0(w, x.Q + b * 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma(Vector256<int> p, float s, Vector256<float> acc) =>
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(s), acc);

    // Not inlined: one specialised loop per type and width (inlined together, profile-guided layout treated the
    // type that ran second as cold: Q8_0 1.3x slower after Q4_0 in one process).
    // Four blocks an iteration into acc_0..acc_3; the last 1-3 blocks into acc_0, acc_1, acc_2.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ8_0V256(byte* w, in Q8Row x, int blocks)
    {
        const int bytes = Q8Bytes;
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        var acc3 = Vector256<float>.Zero;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * bytes)
        {
            acc0 = Fma(Lanes(w, x, b), Scale(w, d, b), acc0);
            acc1 = Fma(Lanes(w + bytes, x, b + 1), Scale(w + bytes, d, b + 1), acc1);
            acc2 = Fma(Lanes(w + 2 * bytes, x, b + 2), Scale(w + 2 * bytes, d, b + 2), acc2);
            acc3 = Fma(Lanes(w + 3 * bytes, x, b + 3), Scale(w + 3 * bytes, d, b + 3), acc3);
        }
        if (b < blocks) acc0 = Fma(Lanes(w, x, b), Scale(w, d, b), acc0);
        if (b + 1 < blocks) acc1 = Fma(Lanes(w + bytes, x, b + 1), Scale(w + bytes, d, b + 1), acc1);
        if (b + 2 < blocks) acc2 = Fma(Lanes(w + 2 * bytes, x, b + 2), Scale(w + 2 * bytes, d, b + 2), acc2);
        return Reduce(acc0, acc1, acc2, acc3);
    }

    // The products of the block pair at w (blocks b, b + 1): lanes 0..7 block b, 8..15 block b + 1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> PairQ8_0(byte* w, in Q8Row x, int b)
    {
        var ws = Vector512.Create(Vector256.Load((sbyte*)w + 2), Vector256.Load((sbyte*)w + 2 + Q8Bytes));
        var qs = Vector512.Load(x.Q + b * 32);
        var signed = Vector512.ConditionalSelect(Vector512.LessThan(ws, Vector512<sbyte>.Zero), -qs, qs);
        var pairs = Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(ws), signed);
        return Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1));
    }

    // Four blocks an iteration: accA = [acc_0 | acc_1], accB = [acc_2 | acc_3] (two independent fma chains).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ8_0V512(byte* w, in Q8Row x, int blocks)
    {
        const int bytes = Q8Bytes;
        var accA = Vector512<float>.Zero;
        var accB = Vector512<float>.Zero;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * bytes)
        {
            accA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(w, x, b)), ScalePair(w, bytes, d, b), accA);
            accB = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(w + 2 * bytes, x, b + 2)), ScalePair(w + 2 * bytes, bytes, d, b + 2), accB);
        }
        return TailV512(w, x, b, blocks, accA, accB);
    }

    // The last 0-3 blocks from block b (b = 0 mod 4) of a row at w into accA = [acc_0 | acc_1], accB = [acc_2 | acc_3],
    // then the reduction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float TailV512(byte* w, in Q8Row x, int b, int blocks, Vector512<float> accA, Vector512<float> accB)
    {
        const int bytes = Q8Bytes;
        float* d = x.D;
        if (b + 2 <= blocks)
        {
            accA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(w, x, b)), ScalePair(w, bytes, d, b), accA);
            b += 2;
            w += 2 * bytes;
        }
        var acc2 = accB.GetLower();
        if (b < blocks)   // one block left: its index is 0 mod 4 when blocks - b was 1, 2 mod 4 when it was 3
        {
            if ((b & 3) == 0) accA = accA.WithLower(Fma(Lanes(w, x, b), Scale(w, d, b), accA.GetLower()));
            else acc2 = Fma(Lanes(w, x, b), Scale(w, d, b), acc2);
        }
        return Reduce(accA.GetLower(), accA.GetUpper(), acc2, accB.GetUpper());
    }

    // ---- Two rows a pass in the one-row layout ----

    /// <summary>
    /// y[0] and y[1]: the products of rows w and w + stride with x, each bit for bit <see cref="Dot"/> at
    /// <paramref name="level"/>; one loop for both rows (shared activation loads, loop and call overhead). Q4_0 takes it
    /// where the grouped kernel does not run (AVX2 machines, AVX-512 without VBMI, rows the grouped kernel refuses).
    /// </summary>
    public static void Dot2(DType type, byte* w, long stride, in Q8Row x, int blocks, float* y, SimdLevel level)
    {
        if (type == DType.Q4_0 && level >= SimdLevel.V256 && Avx2.IsSupported) Dot2Q4_0V256(w, stride, x, blocks, y);
        else if (level >= SimdLevel.V512 && Avx512BW.IsSupported) Dot2Q8_0V512(w, stride, x, blocks, y);
        else if (level >= SimdLevel.V256 && Avx2.IsSupported) Dot2Q8_0V256(w, stride, x, blocks, y);
        else
        {
            y[0] = Dot(type, w, x, blocks, level);
            y[1] = Dot(type, w + stride, x, blocks, level);
        }
    }

    // Block b of rows u and v into accU and accV: DotQ8_0V256's step for two rows, d_b read once.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> U, Vector256<float> V) Block2V256(byte* u, byte* v, in Q8Row x, int b, Vector256<float> accU, Vector256<float> accV)
    {
        float d = x.D[b];
        return (Fma(Lanes(u, x, b), Half[*(ushort*)u] * d, accU), Fma(Lanes(v, x, b), Half[*(ushort*)v] * d, accV));
    }

    // DotQ8_0V256 for rows u = w and v = w + stride at once: acc_0..acc_3 of each, the same order.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q8_0V256(byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        const int bytes = Q8Bytes;
        byte* u = w, v = w + stride;
        Vector256<float> u0 = default, u1 = default, u2 = default, u3 = default, v0 = default, v1 = default, v2 = default, v3 = default;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, u += 4 * bytes, v += 4 * bytes)
        {
            (u0, v0) = Block2V256(u, v, x, b, u0, v0);
            (u1, v1) = Block2V256(u + bytes, v + bytes, x, b + 1, u1, v1);
            (u2, v2) = Block2V256(u + 2 * bytes, v + 2 * bytes, x, b + 2, u2, v2);
            (u3, v3) = Block2V256(u + 3 * bytes, v + 3 * bytes, x, b + 3, u3, v3);
        }
        if (b < blocks) (u0, v0) = Block2V256(u, v, x, b, u0, v0);
        if (b + 1 < blocks) (u1, v1) = Block2V256(u + bytes, v + bytes, x, b + 1, u1, v1);
        if (b + 2 < blocks) (u2, v2) = Block2V256(u + 2 * bytes, v + 2 * bytes, x, b + 2, u2, v2);
        y[0] = Reduce(u0, u1, u2, u3);
        y[1] = Reduce(v0, v1, v2, v3);
    }

    // DotQ8_0V512 for rows u = w and v = w + stride at once: [acc_0 | acc_1], [acc_2 | acc_3] of each, the same order.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q8_0V512(byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        const int bytes = Q8Bytes;
        Vector512<float> uA = default, uB = default, vA = default, vB = default;
        byte* u = w, v = w + stride;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, u += 4 * bytes, v += 4 * bytes)
        {
            uA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(u, x, b)), ScalePair(u, bytes, d, b), uA);
            uB = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(u + 2 * bytes, x, b + 2)), ScalePair(u + 2 * bytes, bytes, d, b + 2), uB);
            vA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(v, x, b)), ScalePair(v, bytes, d, b), vA);
            vB = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(PairQ8_0(v + 2 * bytes, x, b + 2)), ScalePair(v + 2 * bytes, bytes, d, b + 2), vB);
        }
        y[0] = TailV512(u, x, b, blocks, uA, uB);
        y[1] = TailV512(v, x, b, blocks, vA, vB);
    }
}
