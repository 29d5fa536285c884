// The fp32 GEMM driver behind every MatMul layout: C[Rows, Cols] (+)= A[Rows, Depth] · B[Depth, Cols].
// Legend: Rows/Cols/Depth are C's rows, C's columns and the reduction; MR x NR is the microkernel tile (6 x 32),
// KC the reduction block, MC the row block.
//
// Loop nest (Goto/BLIS style, with the roles of our operands):
//   for each reduction block [r0, r0+kc)                        caller thread, in order (K never splits across threads)
//     B block: frozen f32 weights are already in panel layout (pointer, no copy); any other B is packed into the
//              caller's scratch as 32-column panels [kc][32], panels split over the threads (Threads.Run #1)
//     compute (Threads.Run #2, a static split of C into row ranges or panel ranges, whichever balances better):
//       for each row block of MC rows: pack A rows into MR-row panels [kc][MR] (per-thread scratch, in L2)
//         for each 32-column panel (its [kc][32] B micro-panel stays in L1)
//           for each MR-row panel: microkernel on the MR x 32 tile (edges go through a tile buffer)
// The first reduction block stores (unless accumulating), later ones add, so every element of C is
// C = (((0 or C) + blk0) + blk1) + ... with each blk an in-order fma chain: the same operations whatever the
// thread count, split or SIMD width, hence bit-identical results across them.
//
// A may be read row-major (A[i, r] = A[i*lda + r]) or transposed (A[i, r] = A[r*lda + i]; BackwardWeight's dYᵀ).
// B may be a frozen PanelSource, row-major (B[r, j] = B[r*ldb + j]) or transposed (B[r, j] = B[j*ldb + r]).
// Scratch is allocated once per thread at first use and grown, never freed; nothing allocates per call after that.
// Not here: shape checks and the public API (MatMul.cs), the microkernels (GemmKernels.cs).
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>How B is stored.</summary>
internal enum BLayout
{
    /// <summary>A frozen weight's <see cref="PanelSource"/>.</summary>
    Frozen,
    /// <summary>B[r, j] = B[r * ldb + j].</summary>
    RowMajor,
    /// <summary>B[r, j] = B[j * ldb + r].</summary>
    Transposed,
}

/// <summary>One GEMM: operands, layouts and sizes.</summary>
internal unsafe struct GemmProblem
{
    public float* A;
    public int Lda;
    public bool ATransposed;
    public float* B;
    public int Ldb;
    public BLayout BLayout;
    public PanelSource? Frozen;
    public bool FrozenBackward;
    public float* C;            // row-major, row stride Cols
    public int Rows, Cols, Depth;
    public bool Accumulate;
}

/// <summary>Blocking, packing and threading around the microkernels.</summary>
internal static unsafe class GemmDriver
{
    private const int MR = GemmKernels.MR;
    private const int NR = GemmKernels.NR;
    // 256 x 32 floats = 32 KiB B micro-panel, which stays in the 48 KiB L1 of Zen 4/5 while MC/MR A panels stream by.
    private const int KcMax = 256;
    // 144 x 256 floats = 144 KiB A block: fits L2 next to the B block.
    private const int Mc = 24 * MR;

    [ThreadStatic] private static AlignedBuffer? t_panelsA;   // per thread: packed A block + one edge tile
    [ThreadStatic] private static AlignedBuffer? t_panelsB;   // per calling thread: packed B block (all panels)

    /// <summary>Runs <paramref name="p"/> with vector width <paramref name="level"/> (V128 or wider).</summary>
    public static void Run(in GemmProblem p, SimdLevel level)
    {
        if (p.Rows == 0 || p.Cols == 0) return;
        if (p.Depth == 0)
        {
            if (!p.Accumulate) new Span<float>(p.C, checked(p.Rows * p.Cols)).Clear();
            return;
        }
        int panels = (p.Cols + NR - 1) / NR;
        int tilesM = (p.Rows + MR - 1) / MR;
        int threads = Threads.Count;
        // Per-thread tile count of each split; rows win ties because they duplicate no packing.
        long byRows = (long)((tilesM + threads - 1) / threads) * panels;
        long byCols = (long)((panels + threads - 1) / threads) * tilesM;
        bool splitRows = byRows <= byCols;

        int blocks = (p.Depth + KcMax - 1) / KcMax;
        int kcMax = (p.Depth + blocks - 1) / blocks;

        float* direct = null;
        long directStride = 0;
        bool isDirect = p.BLayout == BLayout.Frozen && p.Frozen!.TryDirect(p.FrozenBackward, out direct, out directStride);
        float* scratchB = isDirect ? null : (t_panelsB ??= new AlignedBuffer()).Ensure((long)panels * kcMax * NR);

        for (int blk = 0; blk < blocks; blk++)
        {
            var (r0, r1) = Threads.Split(p.Depth, blk, blocks);
            int kc = r1 - r0;
            float* bBase;
            long panelStride;
            if (isDirect)
            {
                bBase = direct + (long)r0 * NR;
                panelStride = directStride;
            }
            else
            {
                var pack = new PackBWork { P = p, R0 = r0, Kc = kc, Dst = scratchB, Panels = panels };
                Threads.Run(ref pack, Math.Min(threads, panels));
                bBase = scratchB;
                panelStride = (long)kc * NR;
            }
            var work = new ComputeWork
            {
                P = p, BBase = bBase, PanelStride = panelStride, R0 = r0, Kc = kc, KcMax = kcMax,
                Store = blk == 0 && !p.Accumulate, SplitRows = splitRows, Level = level,
            };
            Threads.Run(ref work, threads);
        }
    }

    /// <summary>Scalar path, same operations as MatMul.Reference (double accumulation, in reduction order).</summary>
    public static void RunScalar(in GemmProblem p)
    {
        if (p.Rows == 0 || p.Cols == 0) return;
        int panels = (p.Cols + NR - 1) / NR;
        float* panel = (t_panelsB ??= new AlignedBuffer()).Ensure((long)Math.Max(p.Depth, 1) * NR);
        for (int jp = 0; jp < panels; jp++)
        {
            PackB(p, jp, 0, p.Depth, panel);
            int j0 = jp * NR, nv = Math.Min(NR, p.Cols - j0);
            for (int i = 0; i < p.Rows; i++)
                for (int j = 0; j < nv; j++)
                {
                    float* c = p.C + (long)i * p.Cols + j0 + j;
                    double s = p.Accumulate ? *c : 0;
                    for (int r = 0; r < p.Depth; r++)
                    {
                        float a = p.ATransposed ? p.A[(long)r * p.Lda + i] : p.A[(long)i * p.Lda + r];
                        s += (double)a * panel[(long)r * NR + j];
                    }
                    *c = (float)s;
                }
        }
    }

    private struct PackBWork : IParallelWork
    {
        public GemmProblem P;
        public int R0, Kc, Panels;
        public float* Dst;

        public void Execute(int part, int parts)
        {
            var (ps, pe) = Threads.Split(Panels, part, parts);
            for (int jp = ps; jp < pe; jp++) PackB(P, jp, R0, Kc, Dst + (long)jp * Kc * NR);
        }
    }

    private struct ComputeWork : IParallelWork
    {
        public GemmProblem P;
        public float* BBase;
        public long PanelStride;
        public int R0, Kc, KcMax;
        public bool Store, SplitRows;
        public SimdLevel Level;

        public void Execute(int part, int parts)
        {
            int rows = P.Rows, cols = P.Cols, panels = (cols + NR - 1) / NR;
            var (rs, re) = SplitRows ? Threads.SplitAligned(rows, MR, part, parts) : (0, rows);
            var (ps, pe) = SplitRows ? (0, panels) : Threads.Split(panels, part, parts);
            if (rs >= re || ps >= pe) return;

            float* ap = (t_panelsA ??= new AlignedBuffer()).Ensure((long)Mc * KcMax + MR * NR);
            float* tile = ap + (long)Mc * KcMax;   // Mc * KcMax is a multiple of 16: the tile stays 64-byte aligned
            delegate*<float*, float*, int, float*, int, bool, void> kernel = Level switch
            {
                SimdLevel.V512 => &GemmKernels.Kernel512,
                SimdLevel.V256 => &GemmKernels.Kernel256,
                _ => &GemmKernels.Kernel128,
            };
            int kc = Kc;
            bool store = Store;
            float* c0 = P.C;
            float* bBase = BBase;
            long panelStride = PanelStride;

            for (int ic = rs; ic < re; ic += Mc)
            {
                int mc = Math.Min(Mc, re - ic);
                PackA(P, ic, mc, R0, kc, ap);
                for (int jp = ps; jp < pe; jp++)
                {
                    float* bp = bBase + jp * panelStride;
                    int j0 = jp * NR, nv = Math.Min(NR, cols - j0);
                    for (int ir = 0; ir < mc; ir += MR)
                    {
                        int mv = Math.Min(MR, mc - ir);
                        float* c = c0 + (long)(ic + ir) * cols + j0;
                        if (mv == MR && nv == NR)
                        {
                            kernel(ap + (long)ir * kc, bp, kc, c, cols, !store);
                        }
                        else
                        {
                            kernel(ap + (long)ir * kc, bp, kc, tile, NR, false);
                            for (int i = 0; i < mv; i++)
                                for (int j = 0; j < nv; j++)
                                    c[(long)i * cols + j] = store ? tile[i * NR + j] : c[(long)i * cols + j] + tile[i * NR + j];
                        }
                    }
                }
            }
        }
    }

    /// <summary>Packs A rows [i0, i0+mc), reduction [r0, r0+kc) as MR-row panels [kc][MR], zero-padding the last.</summary>
    private static void PackA(in GemmProblem p, int i0, int mc, int r0, int kc, float* dst)
    {
        for (int ip = 0; ip < mc; ip += MR)
        {
            int mv = Math.Min(MR, mc - ip);
            float* d = dst + (long)ip * kc;
            if (!p.ATransposed)
            {
                for (int i = 0; i < mv; i++)
                {
                    float* s = p.A + (long)(i0 + ip + i) * p.Lda + r0;
                    for (int k = 0; k < kc; k++) d[k * MR + i] = s[k];
                }
            }
            else
            {
                for (int k = 0; k < kc; k++)
                {
                    float* s = p.A + (long)(r0 + k) * p.Lda + i0 + ip;
                    for (int i = 0; i < mv; i++) d[k * MR + i] = s[i];
                }
            }
            for (int i = mv; i < MR; i++)
                for (int k = 0; k < kc; k++) d[k * MR + i] = 0;
        }
    }

    /// <summary>Writes B panel <paramref name="panel"/>, reduction rows [r0, r0+kc), as [kc][32] to <paramref name="dst"/>.</summary>
    private static void PackB(in GemmProblem p, int panel, int r0, int kc, float* dst)
    {
        int j0 = panel * NR, nv = Math.Min(NR, p.Cols - j0);
        switch (p.BLayout)
        {
            case BLayout.Frozen:
                p.Frozen!.Pack(p.FrozenBackward, panel, r0, kc, dst);
                break;
            case BLayout.RowMajor:
                for (int k = 0; k < kc; k++)
                {
                    float* s = p.B + (long)(r0 + k) * p.Ldb + j0;
                    float* d = dst + (long)k * NR;
                    new ReadOnlySpan<float>(s, nv).CopyTo(new Span<float>(d, nv));
                    if (nv < NR) new Span<float>(d + nv, NR - nv).Clear();
                }
                break;
            default:
                if (nv < NR) new Span<float>(dst, kc * NR).Clear();
                for (int j = 0; j < nv; j++)
                {
                    float* s = p.B + (long)(j0 + j) * p.Ldb + r0;
                    for (int k = 0; k < kc; k++) dst[(long)k * NR + j] = s[k];
                }
                break;
        }
    }
}
