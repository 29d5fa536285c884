// A frozen weight kept compressed (quantized blocks, f16, bf16) that the GEMM decodes panel by panel while it runs:
// the packing of the QLoRA forward and input gradient. Subclasses only decode a run of one row of W
// (DequantizeRow); the two panel orientations are built from such runs here (see PanelSource.cs):
//   forward  panel p = rows n = 32p..32p+31 of W over k in [r0, r0+kc): each row's run is decoded once into a
//            [16][kc] staging tile, 16 rows at a time, and transposed into the panel's [kc][32] layout in
//            registers (PanelTranspose.cs).
//   backward panels p0..p1 = columns k = 32p0..32p1 of W over n in [r0, r0+kc): each row n's run over those
//            columns (block aligned) is decoded once and cut into 32-float pieces, one per panel.
// Decoded values are exactly what Dequant.DequantizeRow gives, so a GEMM over a decoded source equals one over the
// same weight dequantized to f32 up front, up to where the reduction blocks fall.
// Not here: the storage formats (subclasses), the loops around packing (GemmDriver).
namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>A <see cref="PanelSource"/> that decodes rows of a compressed W [N, K] on demand.</summary>
internal abstract unsafe class DecodedPanelSource : PanelSource
{
    private const int NR = GemmKernels.NR;
    private const int Stage = PanelTranspose.Rows;   // rows decoded before one transposition pass

    [ThreadStatic] private static AlignedBuffer? t_rows;   // per thread: decoded runs

    protected DecodedPanelSource(int n, int k, int blockSize)
    {
        N = n;
        K = k;
        BlockSize = blockSize;
    }

    public override int N { get; }

    public override int K { get; }

    /// <summary>Elements per storage block along a row (1 for f16/bf16).</summary>
    public int BlockSize { get; }

    public override bool TryDirect(bool backward, out float* @base, out long panelStride)
    {
        @base = null;
        panelStride = 0;
        return false;
    }

    public override int ReductionAlign(bool backward) => backward ? 1 : BlockSize;

    public override void Row(int n, float* dst) => DequantizeRow(n, 0, K, dst);

    /// <summary>
    /// dst[0..count) = W[n, k0 .. k0 + count) as floats; k0 is a multiple of <see cref="BlockSize"/> and so is count
    /// unless k0 + count == K.
    /// </summary>
    public abstract void DequantizeRow(int n, int k0, int count, float* dst);

    /// <summary>
    /// y[n - n0] = W[n, :] · x for rows n in [n0, n1) (x: K floats), for few-row products (DecodedGemv). The default
    /// decodes each row in chunks and sums TensorPrimitives dot products in double.
    /// </summary>
    public virtual void DotRows(int n0, int n1, float* x, float* y)
    {
        const int Chunk = 1024;   // 4 KiB of decoded floats stay in L1; a multiple of every block size (32, 64, 256)
        float* chunk = stackalloc float[Chunk];
        for (int n = n0; n < n1; n++)
        {
            double sum = 0;
            for (int k0 = 0; k0 < K; k0 += Chunk)
            {
                int count = Math.Min(Chunk, K - k0);
                DequantizeRow(n, k0, count, chunk);
                sum += System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(chunk, count), new ReadOnlySpan<float>(x + k0, count));
            }
            y[n - n0] = (float)sum;
        }
    }

    /// <summary>True when <see cref="DotRowsQ8"/> has an integer product for this weight's storage type.</summary>
    public virtual bool SupportsQ8Dot => false;

    /// <summary>
    /// y[n - n0] = W[n, :] · x for rows n in [n0, n1) against an activation row quantized to Q8_0 (Q8Dot: integer
    /// block products, llama.cpp's decode arithmetic) at vector width <paramref name="level"/> (the caller's: the
    /// result does not depend on it); only where <see cref="SupportsQ8Dot"/>.
    /// </summary>
    public virtual void DotRowsQ8(int n0, int n1, in Q8Row x, float* y, SimdLevel level) =>
        throw new NotSupportedException("This weight has no integer product against Q8_0 activations.");

    // Estimated, not tuned: decoding plus transposing costs about a cycle an element forward (32 per reduction row
    // per panel); backward only decodes and copies (about half). Only the row/panel split decision reads it.
    public override int PackCost(bool backward) => backward ? 16 : 32;

    public override void Pack(bool backward, int panel0, int panels, int r0, int kc, float* dst)
    {
        if (backward) PackBackward(panel0, panels, r0, kc, dst);
        else PackForward(panel0, panels, r0, kc, dst);
    }

    private void PackForward(int panel0, int panels, int r0, int kc, float* dst)
    {
        float* rows = (t_rows ??= new AlignedBuffer()).Ensure((long)Stage * kc);
        var level = Simd.Level;
        for (int p = 0; p < panels; p++)
        {
            float* panel = dst + p * (long)kc * NR;
            int n0 = (panel0 + p) * NR;
            for (int s = 0; s < NR; s += Stage)
            {
                int live = Math.Clamp(N - (n0 + s), 0, Stage);
                for (int j = 0; j < live; j++) DequantizeRow(n0 + s + j, r0, kc, rows + (long)j * kc);
                if (live < Stage) new Span<float>(rows + (long)live * kc, (Stage - live) * kc).Clear();
                PanelTranspose.Transpose16(rows, kc, panel + s, level);
            }
        }
    }

    private void PackBackward(int panel0, int panels, int r0, int kc, float* dst)
    {
        int bs = BlockSize;
        int kStart = panel0 * NR / bs * bs;                                   // block-aligned start of the run
        int kEnd = Math.Min(K, ((panel0 + panels) * NR + bs - 1) / bs * bs);  // block-aligned end, clipped to K
        float* run = (t_rows ??= new AlignedBuffer()).Ensure(kEnd - kStart);
        for (int r = 0; r < kc; r++)
        {
            DequantizeRow(r0 + r, kStart, kEnd - kStart, run);
            for (int p = 0; p < panels; p++)
            {
                int k0 = (panel0 + p) * NR, live = Math.Clamp(K - k0, 0, NR);
                float* d = dst + p * (long)kc * NR + (long)r * NR;
                new ReadOnlySpan<float>(run + (k0 - kStart), live).CopyTo(new Span<float>(d, live));
                if (live < NR) new Span<float>(d + live, NR - live).Clear();
            }
        }
    }
}
