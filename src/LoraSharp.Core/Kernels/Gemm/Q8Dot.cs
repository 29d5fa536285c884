// Integer dot products of one stored Q4_0 or Q8_0 weight row with an activation row quantized to Q8_0 (Q8Row):
// llama.cpp's decode arithmetic (ggml_vec_dot_q4_0_q8_0 / _q8_0_q8_0). Decoding Q4_0 to floats and multiplying
// in float is compute-bound (about 15 vector operations a block); here a block of 32 products is one
// multiply-add of bytes into 16-bit pairs (vpmaddubsw) and one into 32-bit lanes (vpmaddwd), then one float
// multiply-add by the block's two scales.
//
// The result is defined exactly, so every path (Vector512, Vector256, scalar twin) gives the same bits:
//   s_b    = f16→f32(dW_b) · dX_b                                  (one float multiply)
//   p_b,j  = Σ_{i=4j..4j+3} w_b,i · q_b,i   for lanes j = 0..7      (exact integers; w = code - 8 for Q4_0)
//   acc_{b mod 4}[j] = fma((float)p_b,j, s_b, acc_{b mod 4}[j])     blocks in order, four accumulators of 8 lanes
//   t_j = (acc_0[j] + acc_2[j]) + (acc_1[j] + acc_3[j]);  u_j = t_j + t_{j+4};  result = (u_0 + u_2) + (u_1 + u_3)
// Vector256 holds acc_0..acc_3 in four registers (four blocks an iteration); Vector512 holds them as the halves of
// two registers, [acc_0 | acc_1] and [acc_2 | acc_3] (block pairs side by side): two independent fma chains, since
// one chain bound the loop by the fma latency. The block scales come from a table (HalfTable). Q4_0 multiplies the unsigned codes 0..15 and subtracts
// 8·Σq per lane (Q8Row.Q4Offset); Q8_0 multiplies |w| by q with w's sign (|w| ≤ 128, |q| ≤ 127: a pair sum stays
// within int16, so vpmaddubsw never saturates). .NET 10 has no 512-bit VNNI (vpdpbusd) intrinsic and AvxVnni is
// VEX-only (absent on Zen 4), so both widths use vpmaddubsw + vpmaddwd.
// Against float decode the error is the activation's quantization (|Δx| ≤ d/2 per element, d = max|x|/127 per
// block); docs/kernels.md gives the measured logits difference.
// Not here: quantizing X (Q8Row), threading and prefetch (StoredPanelSource, DecodedGemv).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class Q8Dot
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
        if (level >= SimdLevel.V512 && Avx512BW.IsSupported)
            return type == DType.Q4_0 ? DotQ4_0V512(row, x, blocks) : DotQ8_0V512(row, x, blocks);
        if (level >= SimdLevel.V256 && Avx2.IsSupported)
            return type == DType.Q4_0 ? DotQ4_0V256(row, x, blocks) : DotQ8_0V256(row, x, blocks);
        return DotScalar(type, row, x, blocks);
    }

    /// <summary>Scalar twin: the same operations lane by lane (see the header).</summary>
    public static float DotScalar(DType type, byte* row, in Q8Row x, int blocks)
    {
        float* acc = stackalloc float[32];   // acc_c[j] at acc[8c + j], c = b mod 4
        new Span<float>(acc, 32).Clear();
        int bytes = type == DType.Q4_0 ? Q4Bytes : Q8Bytes;
        for (int b = 0; b < blocks; b++)
        {
            byte* w = row + (long)b * bytes;
            float s = QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(w)) * x.D[b];   // = Half[...] * D[b]
            sbyte* q = x.Q + b * Q8Row.Block;
            float* a = acc + 8 * (b & 3);
            for (int j = 0; j < 8; j++)
            {
                int p = 0;
                for (int i = 4 * j; i < 4 * j + 4; i++)
                {
                    int wi = type == DType.Q4_0
                        ? (i < 16 ? w[2 + i] & 0x0F : w[2 + i - 16] >> 4) - 8
                        : (sbyte)w[2 + i];
                    p += wi * q[i];
                }
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

    // 8 lanes of p for one Q4_0 block at w (codes) against q: Σ code·q - 8·Σq per 4 elements.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> LanesQ4_0(byte* w, sbyte* q, int* offset)
    {
        var b = Vector128.Load(w + 2);
        var codes = Vector256.Create(b, Sse2.ShiftRightLogical(b.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
        var pairs = Avx2.MultiplyAddAdjacent(codes, Vector256.Load(q));
        return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)) - Vector256.Load(offset);
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
    private static Vector256<int> Lanes(bool q4, byte* w, in Q8Row x, int b) =>
        q4 ? LanesQ4_0(w, x.Q + b * 32, x.Q4Offset + b * 8) : LanesQ8_0(w, x.Q + b * 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma(Vector256<int> p, float s, Vector256<float> acc) =>
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(s), acc);

    // Not inlined: one specialised loop per type and width (inlined together, profile-guided layout treated the
    // type that ran second as cold: Q8_0 1.3x slower after Q4_0 in one process).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ4_0V256(byte* w, in Q8Row x, int blocks) => DotV256(true, w, x, blocks);

    // Not inlined: one specialised loop per type and width (inlined together, profile-guided layout treated the
    // type that ran second as cold: Q8_0 1.3x slower after Q4_0 in one process).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ8_0V256(byte* w, in Q8Row x, int blocks) => DotV256(false, w, x, blocks);

    // Four blocks an iteration into acc_0..acc_3; the last 1-3 blocks into acc_0, acc_1, acc_2.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float DotV256(bool q4, byte* w, in Q8Row x, int blocks)
    {
        int bytes = q4 ? Q4Bytes : Q8Bytes;
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        var acc3 = Vector256<float>.Zero;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * bytes)
        {
            acc0 = Fma(Lanes(q4, w, x, b), Scale(w, d, b), acc0);
            acc1 = Fma(Lanes(q4, w + bytes, x, b + 1), Scale(w + bytes, d, b + 1), acc1);
            acc2 = Fma(Lanes(q4, w + 2 * bytes, x, b + 2), Scale(w + 2 * bytes, d, b + 2), acc2);
            acc3 = Fma(Lanes(q4, w + 3 * bytes, x, b + 3), Scale(w + 3 * bytes, d, b + 3), acc3);
        }
        if (b < blocks) acc0 = Fma(Lanes(q4, w, x, b), Scale(w, d, b), acc0);
        if (b + 1 < blocks) acc1 = Fma(Lanes(q4, w + bytes, x, b + 1), Scale(w + bytes, d, b + 1), acc1);
        if (b + 2 < blocks) acc2 = Fma(Lanes(q4, w + 2 * bytes, x, b + 2), Scale(w + 2 * bytes, d, b + 2), acc2);
        return Reduce(acc0, acc1, acc2, acc3);
    }

    // The products of the block pair at w (blocks b, b + 1): lanes 0..7 block b, 8..15 block b + 1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> PairQ4_0(byte* w, in Q8Row x, int b, Vector512<ushort> shifts)
    {
        // 128-bit lanes [b0, b0, b1, b1], the 2nd and 4th shifted by 4: [lo0, hi0, lo1, hi1], X's natural order.
        var b0 = Vector128.Load((int*)(w + 2)).ToVector256Unsafe().ToVector512Unsafe();
        var b1 = Vector128.Load((int*)(w + 2 + Q4Bytes)).ToVector256Unsafe().ToVector512Unsafe();
        var both = Avx512F.Shuffle4x128(b0, b1, 0b_00_00_00_00).AsUInt16();
        var codes = Avx512BW.ShiftRightLogicalVariable(both, shifts).AsByte() & Vector512.Create((byte)0x0F);
        var pairs = Avx512BW.MultiplyAddAdjacent(codes, Vector512.Load(x.Q + b * 32));
        return Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)) - Vector512.Load(x.Q4Offset + b * 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> PairQ8_0(byte* w, in Q8Row x, int b)
    {
        var ws = Vector512.Create(Vector256.Load((sbyte*)w + 2), Vector256.Load((sbyte*)w + 2 + Q8Bytes));
        var qs = Vector512.Load(x.Q + b * 32);
        var signed = Vector512.ConditionalSelect(Vector512.LessThan(ws, Vector512<sbyte>.Zero), -qs, qs);
        var pairs = Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(ws), signed);
        return Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1));
    }

    // Not inlined: one specialised loop per type and width (inlined together, profile-guided layout treated the
    // type that ran second as cold: Q8_0 1.3x slower after Q4_0 in one process).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ4_0V512(byte* w, in Q8Row x, int blocks) => DotV512(true, w, x, blocks);

    // Not inlined: one specialised loop per type and width (inlined together, profile-guided layout treated the
    // type that ran second as cold: Q8_0 1.3x slower after Q4_0 in one process).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ8_0V512(byte* w, in Q8Row x, int blocks) => DotV512(false, w, x, blocks);

    // Four blocks an iteration: accA = [acc_0 | acc_1], accB = [acc_2 | acc_3] (two independent fma chains).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float DotV512(bool q4, byte* w, in Q8Row x, int blocks)
    {
        int bytes = q4 ? Q4Bytes : Q8Bytes;
        var shifts = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
        var accA = Vector512<float>.Zero;
        var accB = Vector512<float>.Zero;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * bytes)
        {
            var pA = q4 ? PairQ4_0(w, x, b, shifts) : PairQ8_0(w, x, b);
            var pB = q4 ? PairQ4_0(w + 2 * bytes, x, b + 2, shifts) : PairQ8_0(w + 2 * bytes, x, b + 2);
            accA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pA), ScalePair(w, bytes, d, b), accA);
            accB = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pB), ScalePair(w + 2 * bytes, bytes, d, b + 2), accB);
        }
        if (b + 2 <= blocks)
        {
            var pA = q4 ? PairQ4_0(w, x, b, shifts) : PairQ8_0(w, x, b);
            accA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pA), ScalePair(w, bytes, d, b), accA);
            b += 2;
            w += 2 * bytes;
        }
        var acc2 = accB.GetLower();
        if (b < blocks)   // one block left: its index is 0 mod 4 when blocks - b was 1, 2 mod 4 when it was 3
        {
            if ((b & 3) == 0) accA = accA.WithLower(Fma(Lanes(q4, w, x, b), Scale(w, d, b), accA.GetLower()));
            else acc2 = Fma(Lanes(q4, w, x, b), Scale(w, d, b), acc2);
        }
        return Reduce(accA.GetLower(), accA.GetUpper(), acc2, accB.GetUpper());
    }

    /// <summary>Most blocks a row may have for <see cref="Dot4Q4_0V512"/> (its scale table lives on the stack): K ≤ 32768.</summary>
    public const int Dot4MaxBlocks = 1024;

    /// <summary>True when <see cref="Dot4Q4_0V512"/> runs at <paramref name="level"/> for rows of <paramref name="blocks"/> blocks.</summary>
    public static bool Dot4Applies(SimdLevel level, int blocks) =>
        level >= SimdLevel.V512 && Avx512BW.IsSupported && blocks <= Dot4MaxBlocks;

    /// <summary>
    /// Four Q4_0 rows at once (w, w + stride, w + 2·stride, w + 3·stride) into y[0..4): each result bit for bit the
    /// single-row <see cref="Dot"/> at V512 (the same lanes, the same four accumulators per row, filled in the same
    /// block order, reduced the same way). Four rows share each block's activation loads (codes broadcast to both
    /// halves, the 8·Σq correction) and the scales are computed once per block and row in a scalar pass, where the
    /// single-row loop built each block pair's scale vector from two table loads, an insert and a permute: about a
    /// third fewer vector instructions per weight.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Dot4Q4_0V512(byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        // s[4b + r] = f16→f32(dW_r,b) · dX_b: the same float multiply as Scale / ScalePair.
        float* s = stackalloc float[4 * blocks + 4];
        float* d = x.D;
        for (int r = 0; r < 4; r++)
        {
            byte* wr = w + r * stride;
            for (int b = 0; b < blocks; b++) s[4 * b + r] = Half[*(ushort*)(wr + (long)b * Q4Bytes)] * d[b];
        }
        var shifts = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
        var lo = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);   // [s_r0 x 8 | s_r1 x 8]
        var hi = Vector512.Create(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);   // [s_r2 x 8 | s_r3 x 8]
        // P_c = [acc_c(r0) | acc_c(r1)], Q_c = [acc_c(r2) | acc_c(r3)]: eight independent fma chains.
        Vector512<float> p0 = default, p1 = default, p2 = default, p3 = default;
        Vector512<float> q0 = default, q1 = default, q2 = default, q3 = default;
        byte* w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        int bb = 0;
        for (; bb + 4 <= blocks; bb += 4)
        {
            Block4(w0, w1, w2, w3, x, s, bb, shifts, lo, hi, ref p0, ref q0);
            Block4(w0, w1, w2, w3, x, s, bb + 1, shifts, lo, hi, ref p1, ref q1);
            Block4(w0, w1, w2, w3, x, s, bb + 2, shifts, lo, hi, ref p2, ref q2);
            Block4(w0, w1, w2, w3, x, s, bb + 3, shifts, lo, hi, ref p3, ref q3);
        }
        // The last 1-3 blocks: block bb + i into acc_i (bb is 0 mod 4), as the single-row paths.
        if (bb < blocks) Block4(w0, w1, w2, w3, x, s, bb, shifts, lo, hi, ref p0, ref q0);
        if (bb + 1 < blocks) Block4(w0, w1, w2, w3, x, s, bb + 1, shifts, lo, hi, ref p1, ref q1);
        if (bb + 2 < blocks) Block4(w0, w1, w2, w3, x, s, bb + 2, shifts, lo, hi, ref p2, ref q2);
        var tp = (p0 + p2) + (p1 + p3);   // [t(r0) | t(r1)]
        var tq = (q0 + q2) + (q1 + q3);
        y[0] = Finish(tp.GetLower());
        y[1] = Finish(tp.GetUpper());
        y[2] = Finish(tq.GetLower());
        y[3] = Finish(tq.GetUpper());
    }

    // u_j = t_j + t_{j+4}; result = (u_0 + u_2) + (u_1 + u_3): the second half of Reduce.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(Vector256<float> t)
    {
        var u = t.GetLower() + t.GetUpper();
        return (u.GetElement(0) + u.GetElement(2)) + (u.GetElement(1) + u.GetElement(3));
    }

    // Block b of the four rows into P (rows 0, 1) and Q (rows 2, 3).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block4(byte* w0, byte* w1, byte* w2, byte* w3, in Q8Row x, float* s, int b,
                               Vector512<ushort> shifts, Vector512<int> lo, Vector512<int> hi,
                               ref Vector512<float> P, ref Vector512<float> Q)
    {
        long at = (long)b * Q4Bytes + 2;
        var qs = Vector512.Create(Vector256.Load(x.Q + b * 32));           // block b's 32 codes in both halves
        var off = Vector512.Create(Vector256.Load(x.Q4Offset + b * 8));   // its 8 corrections in both halves
        var scales = Vector128.Load(s + 4 * b).ToVector256Unsafe().ToVector512Unsafe();
        P = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Pair4(w0 + at, w1 + at, qs, off, shifts)),
                                       Avx512F.PermuteVar16x32(scales, lo), P);
        Q = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Pair4(w2 + at, w3 + at, qs, off, shifts)),
                                       Avx512F.PermuteVar16x32(scales, hi), Q);
    }

    // The 8 lanes of p for one block of row a (lanes 0..7) and of row c (8..15): PairQ4_0 with rows for blocks.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Pair4(byte* a, byte* c, Vector512<sbyte> qs, Vector512<int> off, Vector512<ushort> shifts)
    {
        var ra = Vector128.Load((int*)a).ToVector256Unsafe().ToVector512Unsafe();
        var rc = Vector128.Load((int*)c).ToVector256Unsafe().ToVector512Unsafe();
        var both = Avx512F.Shuffle4x128(ra, rc, 0b_00_00_00_00).AsUInt16();   // [a, a, c, c]
        var codes = Avx512BW.ShiftRightLogicalVariable(both, shifts).AsByte() & Vector512.Create((byte)0x0F);
        var pairs = Avx512BW.MultiplyAddAdjacent(codes, qs);
        return Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)) - off;
    }
}
