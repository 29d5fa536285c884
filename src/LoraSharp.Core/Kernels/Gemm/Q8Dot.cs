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
// Several rows a pass (below the one-row kernels): the grouped Q4_0 kernel (AVX-512 VBMI; four blocks a register,
// X pre-arranged by Q8Row, 1/2/4 rows sharing X's loads) and Dot2 (two rows in the one-row layout, V512/V256); each
// row's result is the same bits as Dot's.
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
        return TailV512(q4, w, x, b, blocks, accA, accB, shifts);
    }

    // The last 0-3 blocks from block b (b = 0 mod 4) of a row at w into accA = [acc_0 | acc_1], accB = [acc_2 | acc_3],
    // then the reduction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float TailV512(bool q4, byte* w, in Q8Row x, int b, int blocks, Vector512<float> accA, Vector512<float> accB, Vector512<ushort> shifts)
    {
        int bytes = q4 ? Q4Bytes : Q8Bytes;
        float* d = x.D;
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

    // ---- Grouped Q4_0 products: several rows a pass, four blocks a register ----
    //
    // A row's four blocks 4g..4g+3 are 72 bytes; a 64-byte load, an 8-byte load (at 64) and one vpermt2b put their
    // 64 code bytes side by side, so one and gives the low nibbles (elements 0..15) of all four blocks in one register
    // and one vgf2p8affineqb (a shift and an and without GFNI) the high nibbles (16..31) in another. Lane 4i + j of
    // their products is p_{4g+i, j} and p_{4g+i, j+4}: two accumulators per row, accL and accH, whose lane 4i + j is
    // acc_i[j] and acc_i[j+4] of the header's definition, so every lane receives the same fma sequence as in the
    // one-row kernels (same bits). The activations come pre-arranged in that order (Q8Row.G), loaded once per group
    // for all the rows of a pass.
    // Scales without the table: the f16 bits h placed in the high half of a 32-bit lane, shifted right
    // arithmetically by 3 and and-ed with 0x8FFFE000, are the f32 whose value is f16(h)·2^-112 (exact, subnormal
    // halves included, as long as the exponent is not 31); one multiply by d_x·2^112 gives s = f16(h)·d_x rounded
    // once, the table's product bit for bit. One row: a vpshufb places its four scales; four rows: two vpermt2w and
    // a blend convert all 16 in one register, one vpermps per row spreads them (10 vector ops for 16 scales, where
    // the one-row loop spent two table loads, an insert, a multiply and a permute per block pair). Infinite/NaN f16
    // scales (exponent 31) are excluded by the caller (ScalesFinite), an overflowing d_x·2^112 by Q8Row.Grouped.
    // The last 1-3 blocks go through the one-row V512 tail after the accumulators are put back in its order.

    /// <summary>True when <see cref="DotRowsQ4_0G512"/> may run at <paramref name="level"/> for <paramref name="x"/>.</summary>
    public static bool GroupedApplies(SimdLevel level, in Q8Row x) =>
        level >= SimdLevel.V512 && Avx512BW.IsSupported && Avx512Vbmi.IsSupported && x.Grouped;

    /// <summary>True when none of the <paramref name="count"/> Q4_0 blocks from <paramref name="blocks"/> has an f16 scale with exponent 31 (infinite or NaN).</summary>
    public static bool ScalesFinite(byte* blocks, long count)
    {
        for (long b = 0; b < count; b++)
            if ((*(ushort*)(blocks + b * Q4Bytes) & 0x7C00) == 0x7C00) return false;
        return true;
    }

    /// <summary>
    /// y[r] = Dot(Q4_0, w + r·stride, x, blocks) for r &lt; rows (1, 2 or 4), bit for bit, rows sharing each group's
    /// activation loads. Requires <see cref="GroupedApplies"/> and finite scales (<see cref="ScalesFinite"/>).
    /// </summary>
    public static void DotRowsQ4_0G512(byte* w, long stride, int rows, in Q8Row x, int blocks, float* y)
    {
        if (rows == 4) RowsQ4_0G512x4(w, stride, x, blocks, y);
        else if (rows == 2) RowsQ4_0G512x2(w, stride, x, blocks, y);
        else y[0] = RowsQ4_0G512x1(w, x, blocks);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float RowsQ4_0G512x1(byte* w, in Q8Row x, int blocks)
    {
        float y;
        RowsQ4_0G512(1, w, 0, x, blocks, &y);
        return y;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RowsQ4_0G512x2(byte* w, long stride, in Q8Row x, int blocks, float* y) => RowsQ4_0G512(2, w, stride, x, blocks, y);

    // Code bytes of four blocks from the 64 bytes at +0 (indices 0..63) and the 8 at +64 (64..71): block i's 16 at 16i.
    // (Inlined properties: a constant in the loop; not inlined, the 64-argument Create was a call per row pass.)
    private static Vector512<byte> CodeIndex
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(
            (byte)2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
            38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71);
    }

    // vpshufb control: in 128-bit lane i, block i's scale bytes (lane-relative 2i, 2i+1) to bytes 2, 3 of each dword, zeros below.
    private static Vector512<byte> ScaleIndex
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(
            (byte)128, 128, 0, 1, 128, 128, 0, 1, 128, 128, 0, 1, 128, 128, 0, 1, 128, 128, 2, 3, 128, 128, 2, 3, 128, 128, 2, 3, 128, 128, 2, 3,
            128, 128, 4, 5, 128, 128, 4, 5, 128, 128, 4, 5, 128, 128, 4, 5, 128, 128, 6, 7, 128, 128, 6, 7, 128, 128, 6, 7, 128, 128, 6, 7);
    }

    // Words of two rows' first 64 bytes (first row 0..31, second 32..63) to dword lanes 4r + i (r = 0, 1 for
    // ScaleWords01, 2, 3 for ScaleWords23; block i's f16 scale, word 9i, twice); the other lanes take word 0.
    private static Vector512<ushort> ScaleWords01
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create((ushort)0, 0, 9, 9, 18, 18, 27, 27, 32, 32, 41, 41, 50, 50, 59, 59, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    private static Vector512<ushort> ScaleWords23
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 18, 18, 27, 27, 32, 32, 41, 41, 50, 50, 59, 59);
    }

    // One row's group at w (72 bytes, the first 64 in a) into (accL, accH), with its scales s.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> L, Vector512<float> H) GroupQ4_0(Vector512<byte> a, byte* w, Vector512<byte> codeIndex,
        Vector512<sbyte> xlo, Vector512<sbyte> xhi, Vector512<int> offLo, Vector512<int> offHi, Vector512<float> s,
        Vector512<float> accL, Vector512<float> accH)
    {
        // The last 8 bytes by a 64-bit load (never split over two cache lines; a second 64-byte load at +8 always was).
        var last = Vector128.CreateScalarUnsafe(*(ulong*)(w + 64)).AsByte().ToVector256Unsafe().ToVector512Unsafe();
        var codes = Avx512Vbmi.PermuteVar64x8x2(a, codeIndex, last);
        var mask = Vector512.Create((byte)0x0F);
        var lo = codes & mask;
        // The high nibbles: one vgf2p8affineqb (a per-byte shift right by 4 as a bit matrix) instead of a shift and an and.
        var hi = Gfni.V512.IsSupported
            ? Gfni.V512.GaloisFieldAffineTransform(codes, Vector512.Create(0x10_20_40_80_00_00_00_00UL).AsByte(), 0)
            : Avx512BW.ShiftRightLogical(codes.AsUInt16(), 4).AsByte() & mask;
        var one = Vector512.Create((short)1);
        var pL = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo, xlo), one) - offLo;
        var pH = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi, xhi), one) - offHi;
        return (Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pL), s, accL),
                Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pH), s, accH));
    }

    // f16 bits in the high 16 of each lane (anything in the low 16) times d·2^112: f16(h)·d rounded once (see above).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalfTimes(Vector512<int> h, Vector512<float> dScaled) =>
        (Avx512F.ShiftRightArithmetic(h, 3) & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle() * dScaled;

    // One row's scales for its group in a: lane 4i + j = s of block i.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ScalesQ4_0(Vector512<byte> a, Vector512<byte> scaleIndex, Vector512<float> dx) =>
        HalfTimes(Avx512BW.Shuffle(a, scaleIndex).AsInt32(), dx);

    // (accL, accH) back to the one-row layout [acc_0 | acc_1], [acc_2 | acc_3], then the tail from block b and the reduction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float FinishQ4_0G512(byte* w, in Q8Row x, int b, int blocks, Vector512<float> accL, Vector512<float> accH, Vector512<ushort> shifts)
    {
        var accA = Avx512F.PermuteVar16x32x2(accL, Vector512.Create(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23), accH);
        var accB = Avx512F.PermuteVar16x32x2(accL, Vector512.Create(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31), accH);
        return TailV512(true, w, x, b, blocks, accA, accB, shifts);
    }

    // R (1 or 2, a constant after inlining) rows w + r·stride into y[0..R).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowsQ4_0G512(int R, byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        var codeIndex = CodeIndex;
        var scaleIndex = ScaleIndex;
        Vector512<float> l0 = default, h0 = default, l1 = default, h1 = default;
        int groups = blocks >> 2;
        byte* gx = x.Group(0);
        byte* w0 = w, w1 = w + stride;
        for (int g = 0; g < groups; g++, gx += Q8Row.GroupBytes)
        {
            var xlo = Vector512.Load((sbyte*)gx);
            var xhi = Vector512.Load((sbyte*)gx + 64);
            var offLo = Vector512.Load((int*)(gx + 128));
            var offHi = Vector512.Load((int*)(gx + 192));
            var dx = Vector512.Load((float*)(gx + 256));
            long at = (long)g * (4 * Q4Bytes);
            var a0 = Vector512.Load(w0 + at);
            (l0, h0) = GroupQ4_0(a0, w0 + at, codeIndex, xlo, xhi, offLo, offHi, ScalesQ4_0(a0, scaleIndex, dx), l0, h0);
            if (R > 1)
            {
                var a1 = Vector512.Load(w1 + at);
                (l1, h1) = GroupQ4_0(a1, w1 + at, codeIndex, xlo, xhi, offLo, offHi, ScalesQ4_0(a1, scaleIndex, dx), l1, h1);
            }
        }
        var shifts = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
        int b = 4 * groups;
        long tail = (long)b * Q4Bytes;
        y[0] = FinishQ4_0G512(w0 + tail, x, b, blocks, l0, h0, shifts);
        if (R > 1) y[1] = FinishQ4_0G512(w1 + tail, x, b, blocks, l1, h1, shifts);
    }

    // Four rows w + r·stride into y[0..4). Its own body (the shared generic one grew past what the JIT inlines).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RowsQ4_0G512x4(byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        var codeIndex = CodeIndex;
        Vector512<float> l0 = default, h0 = default, l1 = default, h1 = default, l2 = default, h2 = default, l3 = default, h3 = default;
        int groups = blocks >> 2;
        byte* gx = x.Group(0);
        byte* w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        for (int g = 0; g < groups; g++, gx += Q8Row.GroupBytes)
        {
            var xlo = Vector512.Load((sbyte*)gx);
            var xhi = Vector512.Load((sbyte*)gx + 64);
            var offLo = Vector512.Load((int*)(gx + 128));
            var offHi = Vector512.Load((int*)(gx + 192));
            var dx = Vector512.Load((float*)(gx + 256));
            long at = (long)g * (4 * Q4Bytes);
            var a0 = Vector512.Load(w0 + at);
            var a1 = Vector512.Load(w1 + at);
            var a2 = Vector512.Load(w2 + at);
            var a3 = Vector512.Load(w3 + at);
            // The 16 scales of the four rows converted in one register (lane 4r + i: row r, block i), then one
            // permute per row: 10 vector ops for four rows instead of 16.
            var h01 = Avx512BW.PermuteVar32x16x2(a0.AsUInt16(), ScaleWords01, a1.AsUInt16());
            var h23 = Avx512BW.PermuteVar32x16x2(a2.AsUInt16(), ScaleWords23, a3.AsUInt16());
            var h = Vector512.ConditionalSelect(Vector512.Create(-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0), h01.AsInt32(), h23.AsInt32());
            var all = HalfTimes(h, Avx512F.PermuteVar16x32(dx, Vector512.Create(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12)));
            (l0, h0) = GroupQ4_0(a0, w0 + at, codeIndex, xlo, xhi, offLo, offHi,
                Avx512F.PermuteVar16x32(all, Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)), l0, h0);
            (l1, h1) = GroupQ4_0(a1, w1 + at, codeIndex, xlo, xhi, offLo, offHi,
                Avx512F.PermuteVar16x32(all, Vector512.Create(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)), l1, h1);
            (l2, h2) = GroupQ4_0(a2, w2 + at, codeIndex, xlo, xhi, offLo, offHi,
                Avx512F.PermuteVar16x32(all, Vector512.Create(8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11)), l2, h2);
            (l3, h3) = GroupQ4_0(a3, w3 + at, codeIndex, xlo, xhi, offLo, offHi,
                Avx512F.PermuteVar16x32(all, Vector512.Create(12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15)), l3, h3);
        }
        var shifts = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
        int b = 4 * groups;
        long tail = (long)b * Q4Bytes;
        y[0] = FinishQ4_0G512(w0 + tail, x, b, blocks, l0, h0, shifts);
        y[1] = FinishQ4_0G512(w1 + tail, x, b, blocks, l1, h1, shifts);
        y[2] = FinishQ4_0G512(w2 + tail, x, b, blocks, l2, h2, shifts);
        y[3] = FinishQ4_0G512(w3 + tail, x, b, blocks, l3, h3, shifts);
    }

    // ---- Two rows a pass in the one-row layout (Q8_0, and Q4_0 where the grouped kernel does not run) ----

    /// <summary>
    /// y[0] and y[1]: the products of rows w and w + stride with x, each bit for bit <see cref="Dot"/> at
    /// <paramref name="level"/>; one loop for both rows (shared activation loads, loop and call overhead).
    /// </summary>
    public static void Dot2(DType type, byte* w, long stride, in Q8Row x, int blocks, float* y, SimdLevel level)
    {
        if (level >= SimdLevel.V512 && Avx512BW.IsSupported)
        {
            if (type == DType.Q4_0) Dot2Q4_0V512(w, stride, x, blocks, y);
            else Dot2Q8_0V512(w, stride, x, blocks, y);
        }
        else if (level >= SimdLevel.V256 && Avx2.IsSupported)
        {
            if (type == DType.Q4_0) Dot2Q4_0V256(w, stride, x, blocks, y);
            else Dot2Q8_0V256(w, stride, x, blocks, y);
        }
        else
        {
            y[0] = DotScalar(type, w, x, blocks);
            y[1] = DotScalar(type, w + stride, x, blocks);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q4_0V256(byte* w, long stride, in Q8Row x, int blocks, float* y) => Dot2V256(true, w, stride, x, blocks, y);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q8_0V256(byte* w, long stride, in Q8Row x, int blocks, float* y) => Dot2V256(false, w, stride, x, blocks, y);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q4_0V512(byte* w, long stride, in Q8Row x, int blocks, float* y) => Dot2V512(true, w, stride, x, blocks, y);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q8_0V512(byte* w, long stride, in Q8Row x, int blocks, float* y) => Dot2V512(false, w, stride, x, blocks, y);

    // Block b of rows u and v into accU and accV: DotV256's step for two rows, d_b read once.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> U, Vector256<float> V) Block2V256(bool q4, byte* u, byte* v, in Q8Row x, int b, Vector256<float> accU, Vector256<float> accV)
    {
        float d = x.D[b];
        return (Fma(Lanes(q4, u, x, b), Half[*(ushort*)u] * d, accU), Fma(Lanes(q4, v, x, b), Half[*(ushort*)v] * d, accV));
    }

    // DotV256 for rows u = w and v = w + stride at once: acc_0..acc_3 of each, the same order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot2V256(bool q4, byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        int bytes = q4 ? Q4Bytes : Q8Bytes;
        byte* u = w, v = w + stride;
        Vector256<float> u0 = default, u1 = default, u2 = default, u3 = default, v0 = default, v1 = default, v2 = default, v3 = default;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, u += 4 * bytes, v += 4 * bytes)
        {
            (u0, v0) = Block2V256(q4, u, v, x, b, u0, v0);
            (u1, v1) = Block2V256(q4, u + bytes, v + bytes, x, b + 1, u1, v1);
            (u2, v2) = Block2V256(q4, u + 2 * bytes, v + 2 * bytes, x, b + 2, u2, v2);
            (u3, v3) = Block2V256(q4, u + 3 * bytes, v + 3 * bytes, x, b + 3, u3, v3);
        }
        if (b < blocks) (u0, v0) = Block2V256(q4, u, v, x, b, u0, v0);
        if (b + 1 < blocks) (u1, v1) = Block2V256(q4, u + bytes, v + bytes, x, b + 1, u1, v1);
        if (b + 2 < blocks) (u2, v2) = Block2V256(q4, u + 2 * bytes, v + 2 * bytes, x, b + 2, u2, v2);
        y[0] = Reduce(u0, u1, u2, u3);
        y[1] = Reduce(v0, v1, v2, v3);
    }

    // DotV512 for rows u = w and v = w + stride at once: [acc_0 | acc_1], [acc_2 | acc_3] of each, the same order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot2V512(bool q4, byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        int bytes = q4 ? Q4Bytes : Q8Bytes;
        var shifts = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
        Vector512<float> uA = default, uB = default, vA = default, vB = default;
        byte* u = w, v = w + stride;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, u += 4 * bytes, v += 4 * bytes)
        {
            var pA = q4 ? PairQ4_0(u, x, b, shifts) : PairQ8_0(u, x, b);
            var pB = q4 ? PairQ4_0(u + 2 * bytes, x, b + 2, shifts) : PairQ8_0(u + 2 * bytes, x, b + 2);
            uA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pA), ScalePair(u, bytes, d, b), uA);
            uB = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(pB), ScalePair(u + 2 * bytes, bytes, d, b + 2), uB);
            var qA = q4 ? PairQ4_0(v, x, b, shifts) : PairQ8_0(v, x, b);
            var qB = q4 ? PairQ4_0(v + 2 * bytes, x, b + 2, shifts) : PairQ8_0(v + 2 * bytes, x, b + 2);
            vA = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(qA), ScalePair(v, bytes, d, b), vA);
            vB = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(qB), ScalePair(v + 2 * bytes, bytes, d, b + 2), vB);
        }
        y[0] = TailV512(q4, u, x, b, blocks, uA, uB, shifts);
        y[1] = TailV512(q4, v, x, b, blocks, vA, vB, shifts);
    }
}
