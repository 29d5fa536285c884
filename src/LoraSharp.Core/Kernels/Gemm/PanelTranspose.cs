// The transposition inside decoded forward packing: 16 decoded rows of W (row j = 16 staged weight rows, kc floats
// each, stride kc) become 16 columns of a [kc][32] panel: panel[k * 32 + j] = rows[j * kc + k].
// Vector512: 16 x 16 tiles through registers (unpcklps/unpckhps, shufps, two rounds of shuff32x4: 64 shuffles for
// 256 floats, each output line of 16 floats one aligned store). Vector256: 8 x 8 tiles (unpck, shufps, vperm2f128).
// The scalar loop is the reference and handles the k tail.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class PanelTranspose
{
    /// <summary>Rows staged per call.</summary>
    public const int Rows = 16;

    private const int NR = GemmKernels.NR;

    /// <summary>panel[k * 32 + j] = rows[j * kc + k] for j &lt; 16, k &lt; kc, at the widest level allowed.</summary>
    public static void Transpose16(float* rows, int kc, float* panel, SimdLevel level)
    {
        int k = 0;
        if (level >= SimdLevel.V512 && Avx512F.IsSupported)
            for (; k + 16 <= kc; k += 16) Tile16(rows + k, kc, panel + (long)k * NR);
        else if (level >= SimdLevel.V256 && Avx.IsSupported)
            for (; k + 8 <= kc; k += 8)
            {
                Tile8(rows + k, kc, panel + (long)k * NR);
                Tile8(rows + 8L * kc + k, kc, panel + (long)k * NR + 8);
            }
        Scalar(rows, kc, panel, k);
    }

    /// <summary>Scalar reference, from column <paramref name="k0"/> on.</summary>
    public static void Scalar(float* rows, int kc, float* panel, int k0 = 0)
    {
        for (int k = k0; k < kc; k++)
        {
            float* d = panel + (long)k * NR;
            for (int j = 0; j < Rows; j++) d[j] = rows[(long)j * kc + k];
        }
    }

    // One 16 x 16 tile: row j at src + j * kc, output column c written to panel + c * 32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile16(float* src, int kc, float* panel)
    {
        // Interleave pairs of rows within 128-bit lanes, then pairs of pairs: group g's a_j holds, in lane L,
        // column 4L + j of rows 4g..4g+3.
        var (a0, a1, a2, a3) = Group16(src, kc);
        var (b0, b1, b2, b3) = Group16(src + 4L * kc, kc);
        var (c0, c1, c2, c3) = Group16(src + 8L * kc, kc);
        var (d0, d1, d2, d3) = Group16(src + 12L * kc, kc);
        Columns16(a0, b0, c0, d0, panel);
        Columns16(a1, b1, c1, d1, panel + NR);
        Columns16(a2, b2, c2, d2, panel + 2 * NR);
        Columns16(a3, b3, c3, d3, panel + 3 * NR);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) Group16(float* src, int kc)
    {
        var r0 = Vector512.Load(src);
        var r1 = Vector512.Load(src + kc);
        var r2 = Vector512.Load(src + 2L * kc);
        var r3 = Vector512.Load(src + 3L * kc);
        var t0 = Avx512F.UnpackLow(r0, r1);
        var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3);
        var t3 = Avx512F.UnpackHigh(r2, r3);
        return (Avx512F.Shuffle(t0, t2, 0x44), Avx512F.Shuffle(t0, t2, 0xEE), Avx512F.Shuffle(t1, t3, 0x44), Avx512F.Shuffle(t1, t3, 0xEE));
    }

    // Lane L of a, b, c, d (rows 0-3, 4-7, 8-11, 12-15 of column 4L + j) into output columns j, 4 + j, 8 + j, 12 + j
    // (dst already points at column j).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns16(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* dst)
    {
        var v0 = Avx512F.Shuffle4x128(a, b, 0x88);
        var v1 = Avx512F.Shuffle4x128(a, b, 0xDD);
        var w0 = Avx512F.Shuffle4x128(c, d, 0x88);
        var w1 = Avx512F.Shuffle4x128(c, d, 0xDD);
        Vector512.Store(Avx512F.Shuffle4x128(v0, w0, 0x88), dst);
        Vector512.Store(Avx512F.Shuffle4x128(v1, w1, 0x88), dst + 4 * NR);
        Vector512.Store(Avx512F.Shuffle4x128(v0, w0, 0xDD), dst + 8 * NR);
        Vector512.Store(Avx512F.Shuffle4x128(v1, w1, 0xDD), dst + 12 * NR);
    }

    // One 8 x 8 tile: row j at src + j * kc, output column c written to panel + c * 32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile8(float* src, int kc, float* panel)
    {
        var (a0, a1, a2, a3) = Group8(src, kc);
        var (b0, b1, b2, b3) = Group8(src + 4L * kc, kc);
        Columns8(a0, b0, panel);
        Columns8(a1, b1, panel + NR);
        Columns8(a2, b2, panel + 2 * NR);
        Columns8(a3, b3, panel + 3 * NR);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) Group8(float* src, int kc)
    {
        var r0 = Vector256.Load(src);
        var r1 = Vector256.Load(src + kc);
        var r2 = Vector256.Load(src + 2L * kc);
        var r3 = Vector256.Load(src + 3L * kc);
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        return (Avx.Shuffle(t0, t2, 0x44), Avx.Shuffle(t0, t2, 0xEE), Avx.Shuffle(t1, t3, 0x44), Avx.Shuffle(t1, t3, 0xEE));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns8(Vector256<float> a, Vector256<float> b, float* dst)
    {
        Vector256.Store(Avx.Permute2x128(a, b, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(a, b, 0x31), dst + 4 * NR);
    }
}
