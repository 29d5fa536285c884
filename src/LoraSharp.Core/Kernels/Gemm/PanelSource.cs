// The seam between a frozen weight's storage and the GEMM driver. The driver never reads W itself: for each
// block of reduction rows it asks the source for 32-column micro-panels ([kc][32] floats, row stride 32), either
// as a pointer into storage already in that layout (TryDirect, the f32 case: zero copies) or by having the source
// write one panel tile into scratch (Pack). A quantized source (QLoRA, later) implements Pack by dequantizing just
// that [kc x 32] tile, so the whole matrix is never widened at once.
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

    /// <summary>Writes panel <paramref name="panel"/>, reduction rows [r0, r0 + kc), as [kc][32] floats to <paramref name="dst"/>.</summary>
    public abstract void Pack(bool backward, int panel, int r0, int kc, float* dst);
}
