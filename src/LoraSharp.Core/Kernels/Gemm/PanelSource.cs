// The seam between a frozen weight's storage and the GEMM driver. The driver never reads W itself: for each
// block of reduction rows it asks the source for 32-column micro-panels ([kc][32] floats, row stride 32), either
// as a pointer into storage already in that layout (TryDirect, the f32 case: zero copies) or by having the source
// write a run of panel tiles into scratch (Pack). Stored sources (quantized blocks, f16, bf16: QLoRA) implement Pack
// by dequantizing just those [kc x 32] tiles, so the whole matrix is never widened at once.
//
// Two orientations of W [N, K]:
//   forward   Y = X·Wᵀ : C columns are W's rows n, the reduction runs over k. Panel p holds n = 32p..32p+31;
//             element [k][j] = W[32p + j, k].
//   backward  dX = dY·W: C columns are W's columns k, the reduction runs over n. Panel p holds k = 32p..32p+31;
//             element [n][j] = W[n, 32p + j].
// Columns past the matrix edge read as zero.
namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>Where the GEMM driver gets packed micro-panels of a frozen weight W [N, K].</summary>
internal abstract unsafe class PanelSource
{
    /// <summary>Rows of W (out features).</summary>
    public abstract int N { get; }

    /// <summary>Columns of W (in features).</summary>
    public abstract int K { get; }

    /// <summary>
    /// True when every panel of the given orientation is stored in the driver's layout: panel p, reduction row r
    /// starts at <paramref name="base"/> + p * <paramref name="panelStride"/> + r * 32 and stays valid while the
    /// source lives. Sources that must convert (quantized) return false and implement <see cref="Pack"/>.
    /// </summary>
    public abstract bool TryDirect(bool backward, out float* @base, out long panelStride);

    /// <summary>
    /// Writes panels [panel0, panel0 + panels), reduction rows [r0, r0 + kc), each as [kc][32] floats, one after
    /// another from <paramref name="dst"/> (panel p at dst + (p - panel0) * kc * 32). r0 is a multiple of
    /// <see cref="ReductionAlign"/>, and so is kc unless r0 + kc reaches the end of the reduction.
    /// </summary>
    public abstract void Pack(bool backward, int panel0, int panels, int r0, int kc, float* dst);

    /// <summary>
    /// The reduction blocks of the orientation must start at multiples of this (a quantized row can only be
    /// decoded from a block boundary: forward reductions run along W's rows). 1 for f32.
    /// </summary>
    public virtual int ReductionAlign(bool backward) => 1;

    /// <summary>
    /// Cost of packing one panel, per reduction row, in the driver's cost units (cycles; a MR x 32 microkernel tile
    /// costs MR per reduction row). Used to choose between splitting C by rows and by panels.
    /// </summary>
    public virtual int PackCost(bool backward) => 8;

    /// <summary>dst[0..K) = W[n, :] (an embedding lookup from the weight a tied output projection holds).</summary>
    public abstract void Row(int n, float* dst);

    /// <summary>Bytes of memory this source holds.</summary>
    public abstract long Bytes { get; }
}
