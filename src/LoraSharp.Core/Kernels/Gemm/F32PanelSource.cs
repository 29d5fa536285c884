// Frozen f32 weights, pre-arranged once in the GEMM's forward panel layout (see PanelSource.cs for the two
// orientations). Memory: W with N rounded up to a multiple of 32, about 1x the f32 weight, in inference and training
// alike: there is no second copy for the backward.
// The backward orientation (panel p = columns k = 32p..32p+31 over rows n) is packed per reduction block from the
// forward panels, where each (forward panel, backward panel) pair is one contiguous 32 x 32 block: two in-register
// 16-row transposes (PanelTranspose) per block. Keeping backward panels resident instead cost 1x the weight again
// (1.3 GiB of a 360M model's 4.5 GiB peak) to save a pack that reads each weight once per reduction block, about
// 1/(2·M) of the product's FLOPs in memory traffic (see docs/kernels.md, "one copy of the frozen weights").
// Not here: the driver, quantized formats.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>A frozen f32 weight W [N, K] held once, as forward panels; backward panels are packed per block from them.</summary>
internal sealed unsafe class F32PanelSource : PanelSource
{
    private const int NR = GemmKernels.NR;

    private readonly int _n, _k;
    private readonly AlignedBuffer _forward;           // (ceil(N/32), K, 32)

    public override int N => _n;
    public override int K => _k;

    private F32PanelSource(int n, int k)
    {
        _n = n;
        _k = k;
        long floats = Panels(n) * (long)k * NR;
        if (floats + (2L << 20) / sizeof(float) > Array.MaxLength)
            throw new ArgumentException($"Packed weight [{n}, {k}] needs {floats} floats, more than one .NET array can hold ({Array.MaxLength}); split the tensor.");
        _forward = AlignedBuffer.ZerosOnHugePages(floats);
    }

    /// <summary>Packs an f32 W [N, K] row-major.</summary>
    public static F32PanelSource FromF32(ReadOnlySpan<float> w, int n, int k)
    {
        var s = new F32PanelSource(n, k);
        for (int row = 0; row < n; row++) s.ScatterRow(row, w.Slice(row * k, k));
        return s;
    }

    /// <summary>Packs a bf16 W [N, K] row-major (bit patterns), widening one row at a time.</summary>
    public static F32PanelSource FromBf16(ReadOnlySpan<ushort> w, int n, int k)
    {
        var s = new F32PanelSource(n, k);
        var row = new float[k];
        for (int r = 0; r < n; r++)
        {
            Bf16.ToFloat(w.Slice(r * k, k), row);
            s.ScatterRow(r, row);
        }
        return s;
    }

    /// <summary>W[n, k] (for tests and the scalar path).</summary>
    public float At(int n, int k) => _forward.Pointer[(long)(n / NR) * _k * NR + (long)k * NR + n % NR];

    public override bool TryDirect(bool backward, out float* @base, out long panelStride)
    {
        @base = backward ? null : _forward.Pointer;
        panelStride = backward ? 0 : (long)_k * NR;
        return !backward;
    }

    // A 32 x 32 block transposes in about 2 cycles per 16 floats, against 8 for a decoded (bf16, quant) row.
    public override int PackCost(bool backward) => 4;

    public override void Pack(bool backward, int panel0, int panels, int r0, int kc, float* dst)
    {
        if (backward)
        {
            PackBackward(panel0, panels, r0, kc, dst, Simd.Level);
            return;
        }
        long bytes = (long)kc * NR * sizeof(float);
        for (int p = 0; p < panels; p++)
            Buffer.MemoryCopy(_forward.Pointer + (panel0 + p) * (long)_k * NR + (long)r0 * NR, dst + p * (long)kc * NR, bytes, bytes);
    }

    /// <summary>
    /// Backward panels [panel0, panel0 + panels) over reduction rows n in [r0, r0 + kc): dst[p][n - r0][j] =
    /// W[n, 32(panel0 + p) + j], zero past K. Rows n of one forward panel q (n = 32q..32q+31) and columns of backward
    /// panel p form the contiguous block forward[q][32p..32p+31][0..31], transposed here; a block cut by r0 or
    /// r0 + kc, or by the edge of K, goes element by element (<paramref name="level"/> Scalar: every block does).
    /// </summary>
    internal void PackBackward(int panel0, int panels, int r0, int kc, float* dst, SimdLevel level)
    {
        float* fwd = _forward.Pointer;
        int r1 = r0 + kc;
        for (int p = 0; p < panels; p++)
        {
            int k0 = (panel0 + p) * NR, kLive = Math.Clamp(_k - k0, 0, NR);
            float* panel = dst + (long)p * kc * NR;
            for (int q = r0 / NR; q * NR < r1; q++)
            {
                int n0 = Math.Max(q * NR, r0), n1 = Math.Min(q * NR + NR, r1);
                float* block = fwd + (long)q * _k * NR + (long)k0 * NR;   // block[j * 32 + (n - 32q)] = W[n, k0 + j]
                float* d = panel + (long)(n0 - r0) * NR;
                if (kLive == NR && n1 - n0 == NR && level != SimdLevel.Scalar)
                {
                    // Transpose16: d[i * 32 + j] = block[j * 32 + i] for 16 columns j at a time.
                    PanelTranspose.Transpose16(block, NR, d, level);
                    PanelTranspose.Transpose16(block + 16 * NR, NR, d + 16, level);
                    continue;
                }
                for (int n = n0; n < n1; n++, d += NR)
                {
                    float* s = block + (n - q * NR);
                    for (int j = 0; j < kLive; j++) d[j] = s[j * NR];
                    for (int j = kLive; j < NR; j++) d[j] = 0;
                }
            }
        }
    }

    // Row n is lane n % 32 of forward panel n / 32, one float every 32: a gather (a few microseconds per token).
    public override void Row(int n, float* dst)
    {
        float* src = _forward.Pointer + (long)(n / NR) * _k * NR + n % NR;
        for (int k = 0; k < _k; k++) dst[k] = src[(long)k * NR];
    }

    public override long Bytes => _forward.Capacity * sizeof(float);

    /// <summary>W[n, :] += delta (row n is lane n % 32 of forward panel n / 32).</summary>
    public void AddToRow(int n, ReadOnlySpan<float> delta)
    {
        float* p = _forward.Pointer + (long)(n / NR) * _k * NR + n % NR;
        for (int k = 0; k < delta.Length; k++) p[(long)k * NR] += delta[k];
    }

    private void ScatterRow(int n, ReadOnlySpan<float> row)
    {
        float* p = _forward.Pointer + (long)(n / NR) * _k * NR + n % NR;
        for (int k = 0; k < row.Length; k++) p[(long)k * NR] = row[k];
    }

    private static long Panels(int cols) => (cols + NR - 1) / NR;
}
