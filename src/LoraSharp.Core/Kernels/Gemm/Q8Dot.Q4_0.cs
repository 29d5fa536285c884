// Q4_0 weight rows against Q8_0 activations (Q8Row): the scalar twin, the one-row kernel (Vector256, two blocks a
// register) and the grouped kernel (Vector512 + VBMI, four blocks a register, 1, 2 or 4 rows a pass).
//
// The result is defined exactly, so every path gives the same bits:
//   s_b    = f16→f32(dW_b) · dX_b                                               (one float multiply)
//   p_b,j  = Σ (code_b,i − 8) · q_b,i  over i in {4j..4j+3} ∪ {16+4j..16+4j+3},  j = 0..3   (exact integers)
//   acc_{b mod 4}[j] = fma((float)p_b,j, s_b, acc_{b mod 4}[j])                  blocks in order
//   t_j = (acc_0[j] + acc_2[j]) + (acc_1[j] + acc_3[j]);  result = (t_0 + t_2) + (t_1 + t_3)
// Element i < 16 of a block is the low nibble of its code byte i, element 16 + i the high nibble of the same byte,
// so lane j gathers the two nibbles of code bytes 4j..4j+3. The kernels unpack a block's 16 bytes into a register of
// low nibbles and one of high nibbles (against X's halves, laid out for them by Q8Row.G), multiply-add each with X's
// bytes into 16-bit pairs (vpmaddubsw: |pair| ≤ 2·15·127), add the two (≤ 7620, no overflow), and one vpmaddwd makes
// the four 32-bit lanes. Adding the halves in 16 bits before widening halves the widening, correction, conversion
// and float multiply-add work against a definition with eight lanes a block (the grouped kernel went from about 18
// to 15 vector operations a row and four blocks). The codes are unsigned 0..15; the kernels subtract the
// correction c_b,j = 8·Σq over the same elements (Q8Row) instead of centring them.
// Not here: which rows take which kernel (StoredPanelSource.DotRowsQ8), Q8_0 (Q8Dot.cs).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraSharp.Core.Quant;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe partial class Q8Dot
{
    /// <summary>Scalar twin of the Q4_0 kernels: the definition above, lane by lane.</summary>
    private static float DotQ4_0Scalar(byte* row, in Q8Row x, int blocks)
    {
        float* acc = stackalloc float[16];   // acc_c[j] at acc[4c + j], c = b mod 4
        new Span<float>(acc, 16).Clear();
        for (int b = 0; b < blocks; b++)
        {
            byte* w = row + (long)b * Q4Bytes;
            float s = QuantMath.HalfBitsToFloat(Unsafe.ReadUnaligned<ushort>(w)) * x.D[b];   // = Half[...] * D[b]
            sbyte* q = x.Q + b * Q8Row.Block;
            float* a = acc + 4 * (b & 3);
            for (int j = 0; j < 4; j++)
            {
                int p = 0;
                for (int i = 4 * j; i < 4 * j + 4; i++)
                    p += ((w[2 + i] & 0x0F) - 8) * q[i] + ((w[2 + i] >> 4) - 8) * q[16 + i];
                a[j] = MathF.FusedMultiplyAdd(p, s, a[j]);
            }
        }
        float t0 = (acc[0] + acc[8]) + (acc[4] + acc[12]), t1 = (acc[1] + acc[9]) + (acc[5] + acc[13]);
        float t2 = (acc[2] + acc[10]) + (acc[6] + acc[14]), t3 = (acc[3] + acc[11]) + (acc[7] + acc[15]);
        return (t0 + t2) + (t1 + t3);
    }

    // The reduction of the header from acc_0..acc_3.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ReduceQ4_0(Vector128<float> a0, Vector128<float> a1, Vector128<float> a2, Vector128<float> a3)
    {
        var t = (a0 + a2) + (a1 + a3);
        return (t.ToScalar() + t.GetElement(2)) + (t.GetElement(1) + t.GetElement(3));
    }

    // p_b,0..3 of one block whose 16 code bytes are at w + 2.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> LanesQ4_0(byte* w, in Q8Row x, int b)
    {
        var bytes = Vector128.Load(w + 2);
        var mask = Vector128.Create((byte)0x0F);
        var lo = bytes & mask;
        var hi = Sse2.ShiftRightLogical(bytes.AsUInt16(), 4).AsByte() & mask;
        sbyte* xq = x.Lo(b);
        var pairs = Ssse3.MultiplyAddAdjacent(lo, Vector128.Load(xq)) + Ssse3.MultiplyAddAdjacent(hi, Vector128.Load(xq + 64));
        return Sse2.MultiplyAddAdjacent(pairs, Vector128.Create((short)1)) - Vector128.Load(x.Q4Offset(b));
    }

    // The code bytes of the block pair at w: block b's 16 in the low half, b + 1's in the high half.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> CodesPair(byte* w) => Vector256.Create(Vector128.Load(w + 2), Vector128.Load(w + 2 + Q4Bytes));

    // 16-bit sums of code pairs against X: the low nibbles times X's low halves plus the high nibbles times its high halves.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> NibblePairs(Vector256<byte> codes, Vector256<sbyte> xlo, Vector256<sbyte> xhi)
    {
        var mask = Vector256.Create((byte)0x0F);
        return Avx2.MultiplyAddAdjacent(codes & mask, xlo) + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(codes.AsUInt16(), 4).AsByte() & mask, xhi);
    }

    // p of the block pair b, b + 1 (b even, so both sit in one group of X's layout): lanes 0..3 block b, 4..7 block b + 1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PairQ4_0(byte* w, in Q8Row x, int b)
    {
        sbyte* xq = x.Lo(b);
        var pairs = NibblePairs(CodesPair(w), Vector256.Load(xq), Vector256.Load(xq + 64));
        return Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)) - Vector256.Load(x.Q4Offset(b));
    }

    // PairQ4_0 for rows u and v, X's codes and corrections loaded once.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int> U, Vector256<int> V) Pair2Q4_0(byte* u, byte* v, in Q8Row x, int b)
    {
        var one = Vector256.Create((short)1);
        sbyte* xq = x.Lo(b);
        var xlo = Vector256.Load(xq);
        var xhi = Vector256.Load(xq + 64);
        var off = Vector256.Load(x.Q4Offset(b));
        return (Avx2.MultiplyAddAdjacent(NibblePairs(CodesPair(u), xlo, xhi), one) - off,
                Avx2.MultiplyAddAdjacent(NibblePairs(CodesPair(v), xlo, xhi), one) - off);
    }

    // DotQ4_0V256 for rows u = w and v = w + stride at once (AVX2 machines; AVX-512 without VBMI): the same order, X
    // loaded once for both rows.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Dot2Q4_0V256(byte* w, long stride, in Q8Row x, int blocks, float* y)
    {
        Vector256<float> uA = default, uB = default, vA = default, vB = default;
        byte* u = w, v = w + stride;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, u += 4 * Q4Bytes, v += 4 * Q4Bytes)
        {
            var (pu, pv) = Pair2Q4_0(u, v, x, b);
            uA = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(pu), ScalePairQ4_0(u, d, b), uA);
            vA = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(pv), ScalePairQ4_0(v, d, b), vA);
            (pu, pv) = Pair2Q4_0(u + 2 * Q4Bytes, v + 2 * Q4Bytes, x, b + 2);
            uB = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(pu), ScalePairQ4_0(u + 2 * Q4Bytes, d, b + 2), uB);
            vB = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(pv), ScalePairQ4_0(v + 2 * Q4Bytes, d, b + 2), vB);
        }
        y[0] = TailQ4_0(u, x, b, blocks, uA, uB);
        y[1] = TailQ4_0(v, x, b, blocks, vA, vB);
    }

    // [s_b x 4, s_b+1 x 4] for the block pair at w.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ScalePairQ4_0(byte* w, float* d, int b) =>
        Vector256.Create(Vector128.Create(Half[*(ushort*)w] * d[b]), Vector128.Create(Half[*(ushort*)(w + Q4Bytes)] * d[b + 1]));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fma(Vector128<int> p, float s, Vector128<float> acc) =>
        Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(p), Vector128.Create(s), acc);

    // One row, four blocks an iteration as two pairs: accA = [acc_0 | acc_1], accB = [acc_2 | acc_3] (two fma chains).
    // Not inlined: one specialised loop per type (see DotQ8_0V256).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float DotQ4_0V256(byte* w, in Q8Row x, int blocks)
    {
        var accA = Vector256<float>.Zero;
        var accB = Vector256<float>.Zero;
        float* d = x.D;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * Q4Bytes)
        {
            accA = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(PairQ4_0(w, x, b)), ScalePairQ4_0(w, d, b), accA);
            accB = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(PairQ4_0(w + 2 * Q4Bytes, x, b + 2)), ScalePairQ4_0(w + 2 * Q4Bytes, d, b + 2), accB);
        }
        return TailQ4_0(w, x, b, blocks, accA, accB);
    }

    // The last 0-3 blocks from block b (b = 0 mod 4) of a row at w into accA = [acc_0 | acc_1], accB = [acc_2 | acc_3]
    // (two as a pair, a last single one into acc_0 or acc_2), then the reduction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float TailQ4_0(byte* w, in Q8Row x, int b, int blocks, Vector256<float> accA, Vector256<float> accB)
    {
        float* d = x.D;
        if (b + 2 <= blocks)
        {
            accA = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(PairQ4_0(w, x, b)), ScalePairQ4_0(w, d, b), accA);
            b += 2;
            w += 2 * Q4Bytes;
        }
        var a0 = accA.GetLower();
        var a2 = accB.GetLower();
        if (b < blocks)   // one block left: its index is 0 mod 4 when blocks - b was 1, 2 mod 4 when it was 3
        {
            if ((b & 3) == 0) a0 = Fma(LanesQ4_0(w, x, b), Scale(w, d, b), a0);
            else a2 = Fma(LanesQ4_0(w, x, b), Scale(w, d, b), a2);
        }
        return ReduceQ4_0(a0, accA.GetUpper(), a2, accB.GetUpper());
    }

    // ---- Grouped: several rows a pass, four blocks a register ----
    //
    // A row's four blocks 4g..4g+3 are 72 bytes; a 64-byte load, an 8-byte load (at 64) and one vpermt2b put their
    // 64 code bytes side by side, so one and gives the low nibbles of all four blocks in one register and one
    // vgf2p8affineqb (a shift and an and without GFNI) the high nibbles in another. After the two multiply-adds,
    // their sum and the widening, lane 4i + j is p_{4g+i, j}: one accumulator per row whose lane 4i + j is acc_i[j] of
    // the header, so every lane receives the same fma sequence as in the one-row kernel (same bits). X's group
    // (Q8Row.G) is loaded once for all the rows of a pass.
    // Scales without the table: the f16 bits h placed in the high half of a 32-bit lane, shifted right
    // arithmetically by 3 and and-ed with 0x8FFFE000, are the f32 whose value is f16(h)·2^-112 (exact, subnormal
    // halves included, as long as the exponent is not 31); one multiply by d_x·2^112 gives s = f16(h)·d_x rounded
    // once, the table's product bit for bit. One row: a vpshufb places its four scales; four rows: two vpermt2w and
    // a blend convert all 16 in one register, one vpermps per row spreads them. Infinite/NaN f16 scales (exponent
    // 31) are excluded by the caller (ScalesFinite), an overflowing d_x·2^112 by Q8Row.Grouped.
    // The last 1-3 blocks go through the one-row kernel's tail, or as a whole group where the caller allows the
    // over-read (GroupReadBytes).

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
    /// <paramref name="overread"/>: the caller guarantees <see cref="GroupReadBytes"/>(blocks) readable bytes from the
    /// start of each row, so a last partial group is read as a whole one (see <see cref="GroupReadBytes"/>).
    /// </summary>
    public static void DotRowsQ4_0G512(byte* w, long stride, int rows, in Q8Row x, int blocks, float* y, bool overread)
    {
        int groups = overread ? (blocks + 3) >> 2 : blocks >> 2;
        if (rows == 4) RowsQ4_0G512x4(w, stride, x, blocks, groups, y);
        else if (rows == 2) RowsQ4_0G512x2(w, stride, x, blocks, groups, y);
        else y[0] = RowsQ4_0G512x1(w, x, blocks, groups);
    }

    /// <summary>
    /// Bytes the grouped kernel reads of a row of <paramref name="blocks"/> blocks when its last 1-3 blocks are read as a
    /// whole group (72 bytes a group, so up to 54 bytes past the row's end). The bytes past the end, whatever they
    /// are (the next row's), meet X's padding (Q8Row: zero codes, corrections and d·2^112 for missing blocks): their
    /// products are 0, their scales 0 (the f16 trick yields a finite value from any bits), and the fma adds +0 or -0
    /// to accumulators that are never -0 (they start at +0, and a sum is -0 only when both terms are), so every lane
    /// keeps its bits. This replaces a per-row tail of 1-3 blocks (2 of the 18 blocks of a 576-wide row, where the
    /// tail code had cost 40% as much as the 16 blocks before it).
    /// </summary>
    public static long GroupReadBytes(int blocks) => (long)((blocks + 3) >> 2) * (4 * Q4Bytes);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float RowsQ4_0G512x1(byte* w, in Q8Row x, int blocks, int groups)
    {
        float y;
        RowsQ4_0G512(1, w, 0, x, blocks, groups, &y);
        return y;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RowsQ4_0G512x2(byte* w, long stride, in Q8Row x, int blocks, int groups, float* y) => RowsQ4_0G512(2, w, stride, x, blocks, groups, y);

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

    // One row's group at w (72 bytes, the first 64 in a) into acc, with its scales s.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> GroupQ4_0(Vector512<byte> a, byte* w, Vector512<byte> codeIndex,
        Vector512<sbyte> xlo, Vector512<sbyte> xhi, Vector512<int> off, Vector512<float> s, Vector512<float> acc)
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
        var pairs = Avx512BW.MultiplyAddAdjacent(lo, xlo) + Avx512BW.MultiplyAddAdjacent(hi, xhi);
        var p = Avx512BW.MultiplyAddAdjacent(pairs, Vector512.Create((short)1)) - off;
        return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p), s, acc);
    }

    // f16 bits in the high 16 of each lane (anything in the low 16) times d·2^112: f16(h)·d rounded once (see above).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalfTimes(Vector512<int> h, Vector512<float> dScaled) =>
        (Avx512F.ShiftRightArithmetic(h, 3) & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle() * dScaled;

    // One row's scales for its group in a: lane 4i + j = s of block i.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ScalesQ4_0(Vector512<byte> a, Vector512<byte> scaleIndex, Vector512<float> dx) =>
        HalfTimes(Avx512BW.Shuffle(a, scaleIndex).AsInt32(), dx);

    // A row's accumulator (lane 4i + j = acc_i[j], stored at acc) as [acc_0 | acc_1], [acc_2 | acc_3], then the tail
    // from block b and the reduction. Not inlined, and the accumulators handed over in memory: inlined (four times
    // in the four-row kernel), the tails' registers made the JIT spill the accumulators inside the group loop, a
    // store and a reload on every fma chain each iteration (13% slower).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float FinishQ4_0G512(byte* w, in Q8Row x, int b, int blocks, float* acc) =>
        TailQ4_0(w, x, b, blocks, Vector256.Load(acc), Vector256.Load(acc + 8));

    // y of a row whose accumulator (stored at acc) has every block: the reduction only.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ReduceQ4_0(float* acc) =>
        ReduceQ4_0(Vector128.Load(acc), Vector128.Load(acc + 4), Vector128.Load(acc + 8), Vector128.Load(acc + 12));

    // y of the row whose accumulator is at acc, its code rows at w: the reduction, after the tail when groups did not
    // cover every block.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float EndRowQ4_0G512(byte* w, in Q8Row x, int groups, int blocks, float* acc) =>
        4 * groups >= blocks ? ReduceQ4_0(acc) : FinishQ4_0G512(w + (long)(4 * groups) * Q4Bytes, x, 4 * groups, blocks, acc);

    // R (1 or 2, a constant after inlining) rows w + r·stride into y[0..R).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowsQ4_0G512(int R, byte* w, long stride, in Q8Row x, int blocks, int groups, float* y)
    {
        var codeIndex = CodeIndex;
        var scaleIndex = ScaleIndex;
        Vector512<float> acc0 = default, acc1 = default;
        byte* gx = x.Group(0);
        byte* w0 = w, w1 = w + stride;
        for (int g = 0; g < groups; g++, gx += Q8Row.GroupBytes)
        {
            var xlo = Vector512.Load((sbyte*)gx);
            var xhi = Vector512.Load((sbyte*)gx + 64);
            var off = Vector512.Load((int*)(gx + 128));
            var dx = Vector512.Load((float*)(gx + 192));
            long at = (long)g * (4 * Q4Bytes);
            var a0 = Vector512.Load(w0 + at);
            acc0 = GroupQ4_0(a0, w0 + at, codeIndex, xlo, xhi, off, ScalesQ4_0(a0, scaleIndex, dx), acc0);
            if (R > 1)
            {
                var a1 = Vector512.Load(w1 + at);
                acc1 = GroupQ4_0(a1, w1 + at, codeIndex, xlo, xhi, off, ScalesQ4_0(a1, scaleIndex, dx), acc1);
            }
        }
        float* acc = stackalloc float[32];
        acc0.Store(acc);
        if (R > 1) acc1.Store(acc + 16);
        y[0] = EndRowQ4_0G512(w0, x, groups, blocks, acc);
        if (R > 1) y[1] = EndRowQ4_0G512(w1, x, groups, blocks, acc + 16);
    }

    // Four rows w + r·stride into y[0..4). Its own body (the shared generic one grew past what the JIT inlines).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RowsQ4_0G512x4(byte* w, long stride, in Q8Row x, int blocks, int groups, float* y)
    {
        var codeIndex = CodeIndex;
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* gx = x.Group(0);
        byte* w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride;
        for (int g = 0; g < groups; g++, gx += Q8Row.GroupBytes)
        {
            var xlo = Vector512.Load((sbyte*)gx);
            var xhi = Vector512.Load((sbyte*)gx + 64);
            var off = Vector512.Load((int*)(gx + 128));
            var dx = Vector512.Load((float*)(gx + 192));
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
            acc0 = GroupQ4_0(a0, w0 + at, codeIndex, xlo, xhi, off,
                Avx512F.PermuteVar16x32(all, Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)), acc0);
            acc1 = GroupQ4_0(a1, w1 + at, codeIndex, xlo, xhi, off,
                Avx512F.PermuteVar16x32(all, Vector512.Create(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)), acc1);
            acc2 = GroupQ4_0(a2, w2 + at, codeIndex, xlo, xhi, off,
                Avx512F.PermuteVar16x32(all, Vector512.Create(8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11)), acc2);
            acc3 = GroupQ4_0(a3, w3 + at, codeIndex, xlo, xhi, off,
                Avx512F.PermuteVar16x32(all, Vector512.Create(12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15)), acc3);
        }
        float* acc = stackalloc float[64];
        acc0.Store(acc);
        acc1.Store(acc + 16);
        acc2.Store(acc + 32);
        acc3.Store(acc + 48);
        y[0] = EndRowQ4_0G512(w0, x, groups, blocks, acc);
        y[1] = EndRowQ4_0G512(w1, x, groups, blocks, acc + 16);
        y[2] = EndRowQ4_0G512(w2, x, groups, blocks, acc + 32);
        y[3] = EndRowQ4_0G512(w3, x, groups, blocks, acc + 48);
    }
}
