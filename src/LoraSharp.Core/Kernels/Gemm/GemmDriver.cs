// The fp32 GEMM driver behind every MatMul layout: C[Rows, Cols] (+)= A[Rows, Depth] · B[Depth, Cols].
// Legend: Rows/Cols/Depth are C's rows, C's columns and the reduction; MR x NR is the microkernel tile (8 x 32 for
// Vector512, 6 x 32 for narrower vectors),
// KC the reduction block, MC the row block.
//
// Loop nest (Goto/BLIS style). One Threads.Run per call; C is split statically into row ranges or 32-column
// panel ranges (whichever costs less per thread), and each part runs:
//   for each chunk of up to NcPanels of the part's 32-column panels (one chunk when B is direct)
//   for each reduction block [r0, r0+kc)                     in order (the reduction never splits across threads)
//     B: frozen f32 weights' forward panels are read in place (a pointer, no copy); any other B (f32 backward
//        panels, compressed weights, activations) has the chunk's panels packed into per-thread scratch as [kc][32]
//     for each row block of MC rows: A row-major (X, dY) is read in place, MR rows at a time (packing it cost 30%
//              of the time when C is narrow); BackwardWeight's transposed A (dYᵀ) is packed into [kc][MR] panels
//       for each 32-column panel (its [kc][32] B micro-panel stays in L1/L2)
//         for each MR-row panel: microkernel on the MR x 32 tile (edges go through a tile buffer)
// Each reduction block is summed as up to 4 in-order fma chains (Chains). The first chain of the first block
// stores (unless accumulating), every later chain adds, so every element of C is
// C = (((0 or C) + chain0) + chain1) + ...: the same operations whatever the thread count, split or SIMD width,
// hence bit-identical results across them.
//
// A may be read row-major (A[i, r] = A[i*lda + r]) or transposed (A[i, r] = A[r*lda + i]; BackwardWeight's dYᵀ).
// B may be a frozen PanelSource, row-major (B[r, j] = B[r*ldb + j]) or transposed (B[r, j] = B[j*ldb + r]).
// Scratch is allocated once per thread at first use and grown, never freed; nothing allocates per call after that.
// Not here: shape checks and the public API (MatMul.cs), the microkernels (GemmKernels.cs).
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
    public bool Q8Activations;  // few-row products over Q4_0/Q8_0 may quantize A to Q8_0 (decode only; DecodedGemv)
    // A low-rank term added to C after the product: C += Z·Uᵀ with Z [Rows, LowRank] row-major and U [Cols, LowRank]
    // row-major (LoRA's s·z and B). LowRank 0: none.
    public float* LowRankZ, LowRankU;
    public int LowRank;
}

/// <summary>Blocking, packing and threading around the microkernels.</summary>
internal static unsafe class GemmDriver
{
    private const int NR = GemmKernels.NR;
    private const int MaxMR = GemmKernels.MaxMR;
    // Reduction block: up to 768 x 32 floats = 96 KiB B micro-panel (L2; L2 bandwidth is ample for 2 lines per
    // 8 cycles). Each block is one more pass over C, so a reduction of 576 (SmolLM-class hidden sizes) in one block
    // instead of two: 512 -> 768 measured +10% at (2048, 576, 49152) forward, +40% at (2048, 576, 1536), +5-12% at
    // K = 1536 and 2048 (A/B runs alternating on one machine; 640 and 1024 measured like 768). Earlier 256 -> 512 took
    // (2048, 576, 49152) from 66% to 75% of the 1-thread CPU-time peak.
    private const int KcMax = 768;
    // BackwardWeight packs its transposed A block (MC x KC) and reduces over tokens (2048 = 4 blocks of 512 or
    // 3 of 683): there 768 measured no better and sometimes 10% worse, so it keeps 512.
    private const int KcMaxPackedA = 512;
    // Rows per A block (a multiple of every MR): 192 x 768 floats = 576 KiB of A, kept in the 1 MiB L2 while each
    // B micro-panel is reused for 24-32 tiles.
    private const int Mc = 192;

    // Panels of a packed (not direct) B per chunk: 40 x 768 x 32 floats = 3.75 MiB at the largest kc, an L3-sized
    // block (32 MiB shared here) that every row block reuses. Packing a whole part's panels at once held up to
    // 175 MiB of scratch per thread for a 128K-vocabulary output over bf16 weights, streamed from memory per row block.
    private const int NcPanels = 40;

    // A forward B block larger than this (in floats: 8 MiB) cannot stay in L2 between row blocks, so each
    // micro-panel comes from L3 or memory again for every row block; see the prefetch in ComputeWork.
    private const long PrefetchBFloats = 2L << 20;

    // Each reduction block is summed as up to 4 fma chains of at least 16 terms, added onto C one after another.
    // fp32 rounding error grows with chain length: on stories260K (K = 64) 1 / 2 / 3 / 4 / 8 chains gave logits
    // 1.14e-5 / 9.5e-6 / 7.6e-6 / 6.7e-6 / 7.0e-6 max abs (2.6e-6 / 1.9e-6 / 1.7e-6 / 1.7e-6 / 1.5e-6 rms) from the
    // float64 reference. A chain boundary costs the microkernel one pass over its C tile in L1: measured on one
    // core 3.8% at kc = 64, 1.3% at 288 and 1.0% at 576 for 4 chains (8 chains: 14%, 3.6%, 1.5%).
    private const int MaxChains = 4, MinChainLength = 16;

    /// <summary>Fma chains per reduction block of <paramref name="kc"/> (each microkernel and GemvDriver split it alike).</summary>
    internal static int Chains(int kc) => Math.Clamp(kc / MinChainLength, 1, MaxChains);

    /// <summary>The most scratch one thread's part holds: packed A block, edge rows and tile, one chunk of packed B.</summary>
    internal const long ScratchFloatsPerThread = (long)Mc * KcMax + (long)MaxMR * KcMax + MaxMR * NR + (long)NcPanels * KcMax * NR;

    [ThreadStatic] private static AlignedBuffer? t_scratch;   // per thread: packed A block, one edge tile, packed B block

    /// <summary>Runs <paramref name="p"/> with vector width <paramref name="level"/> (V128 or wider).</summary>
    public static void Run(in GemmProblem p, SimdLevel level)
    {
        if (p.Rows == 0 || p.Cols == 0) return;
        if (p.Depth == 0)
        {
            if (!p.Accumulate) new Span<float>(p.C, checked(p.Rows * p.Cols)).Clear();
            if (p.LowRank > 0) Run(LowRankProblem(p), level);
            return;
        }
        int mr = GemmKernels.MR(level);
        int panels = (p.Cols + NR - 1) / NR;
        int tilesM = (p.Rows + mr - 1) / mr;
        // Tiny products stay on the caller. Cost counts arithmetic plus streaming B: at ~450 GFLOP/s against
        // ~60 GB/s a byte costs about 7 FLOPs, so a 1-row product over a big weight (decode) still uses every core.
        int threads = Threads.ForFlops(CostFlops(p));

        float* direct = null;
        long directStride = 0;
        bool isDirect = p.BLayout == BLayout.Frozen && p.Frozen!.TryDirect(p.FrozenBackward, out direct, out directStride);

        // Static split of C by rows or by 32-column panels, from a cost per thread in units of depth x cycles:
        // a tile ~ MR (2 FMAs per row per k at 2 FMAs/cycle), packing a B panel ~ 8, packing an A panel (only
        // BackwardWeight's transposed A) ~ 2. A row split makes every thread pack all B panels (when B is not
        // pre-packed); a column split makes every thread pack all of A. One Threads.Run per call: each part loops
        // over the reduction blocks itself, so no barrier is needed (a barrier per block cost milliseconds per
        // call on a loaded machine).
        int bPack = isDirect ? 0 : p.BLayout == BLayout.Frozen ? p.Frozen!.PackCost(p.FrozenBackward) : 8, aPack = p.ATransposed ? 2 : 0;
        int rowTiles = (tilesM + threads - 1) / threads;
        int colPanels = (panels + threads - 1) / threads;
        long byRows = (long)rowTiles * panels * mr + (long)panels * bPack + (long)rowTiles * aPack;
        long byCols = (long)colPanels * tilesM * mr + (long)colPanels * bPack + (long)tilesM * aPack;
        bool splitRows = byRows <= byCols;

        int align = p.BLayout == BLayout.Frozen ? p.Frozen!.ReductionAlign(p.FrozenBackward) : 1;
        int units = (p.Depth + align - 1) / align;
        int blocks = ReductionBlocks(p);
        bool fewRows = GemvDriver.Applies(p, level, isDirect) || DecodedGemv.Applies(p, level, isDirect);
        if (p.LowRank > 0 && (fewRows || p.ATransposed || p.LowRank > KcMax))
        {
            // Paths without the tile epilogue: the product, then the low-rank term as its own GEMM (the same sums).
            var main = p;
            main.LowRank = 0;
            Run(main, level);
            Run(LowRankProblem(p), level);
            return;
        }
        if (GemvDriver.Applies(p, level, isDirect))
        {
            GemvDriver.Run(p, direct, directStride, blocks, level, Math.Min(threads, panels));
            return;
        }
        if (DecodedGemv.Applies(p, level, isDirect))
        {
            DecodedGemv.Run(p, level, threads);
            return;
        }
        var work = new ComputeWork
        {
            P = p, Direct = direct, DirectStride = directStride, IsDirect = isDirect, Align = align, Units = units,
            Blocks = blocks, KcMax = (units + blocks - 1) / blocks * align, SplitRows = splitRows, Level = level, MR = mr,
        };
        if (p.LowRank > 0) PackLowRank(p, mr, ref work);
        Threads.Run(ref work, threads);
    }

    // C += Z·Uᵀ as a GEMM of its own (depth LowRank), as MatMul.Forward(Z, U, C, accumulate: true) runs it.
    internal static GemmProblem LowRankProblem(in GemmProblem p) => new()
    {
        A = p.LowRankZ, Lda = p.LowRank, B = p.LowRankU, Ldb = p.LowRank, BLayout = BLayout.Transposed,
        C = p.C, Rows = p.Rows, Cols = p.Cols, Depth = p.LowRank, Accumulate = true,
    };

    [ThreadStatic] private static AlignedBuffer? t_lowRank;   // the caller's packed U panels and Z's edge rows

    // Packs U as [panels][LowRank][32] (the last panel zero-padded, as PackB) and Z's rows past the last full MR-row
    // panel, zero-padded to MR rows: every part reads them, so the caller packs them once.
    private static void PackLowRank(in GemmProblem p, int mr, ref ComputeWork work)
    {
        int R = p.LowRank, panels = (p.Cols + NR - 1) / NR, edge = p.Rows % mr;
        float* buf = (t_lowRank ??= new AlignedBuffer()).Ensure((long)panels * R * NR + (long)MaxMR * R);
        var u = LowRankProblem(p);
        for (int jp = 0; jp < panels; jp++) PackB(u, jp, 0, R, buf + (long)jp * R * NR);
        float* edgeZ = buf + (long)panels * R * NR;
        new Span<float>(edgeZ, mr * R).Clear();
        if (edge > 0)
            new ReadOnlySpan<float>(p.LowRankZ + (long)(p.Rows - edge) * R, edge * R).CopyTo(new Span<float>(edgeZ, edge * R));
        work.LowRankPanels = buf;
        work.LowRankEdge = edgeZ;
    }

    /// <summary>
    /// Runs the first <paramref name="count"/> of <paramref name="p0"/>..<paramref name="p2"/> (products with the same
    /// input) in one parallel region when every one is a few-row product over a compressed weight (DecodedGemv);
    /// false, with nothing done, otherwise. Results equal running them one by one.
    /// </summary>
    public static bool TryRunShared(in GemmProblem p0, in GemmProblem p1, in GemmProblem p2, int count, SimdLevel level)
    {
        long flops = CostFlops(p0) + CostFlops(p1) + (count > 2 ? CostFlops(p2) : 0);
        if (Shareable(p0, level) && Shareable(p1, level) && (count <= 2 || Shareable(p2, level)))
        {
            DecodedGemv.RunShared(p0, p1, p2, count, level, Threads.ForFlops(flops));
            return true;
        }
        // One-row products over f32 forward panels (decode of an f32 model): GemvDriver's parts of each in one region.
        if (!GemvShareable(p0, level, out var w0) || !GemvShareable(p1, level, out var w1)) return false;
        GemvDriver.Work w2 = default;
        if (count > 2 && !GemvShareable(p2, level, out w2)) return false;
        GemvDriver.RunShared(w0, w1, w2, count, Threads.ForFlops(flops));
        return true;
    }

    private static bool GemvShareable(in GemmProblem p, SimdLevel level, out GemvDriver.Work work)
    {
        work = default;
        if (p.Rows == 0 || p.Cols == 0 || p.Depth == 0 || p.BLayout != BLayout.Frozen) return false;
        if (!p.Frozen!.TryDirect(p.FrozenBackward, out float* direct, out long stride) || !GemvDriver.Applies(p, level, isDirect: true)) return false;
        work = GemvDriver.Prepare(p, direct, stride, ReductionBlocks(p), level);
        return true;
    }

    // Reduction blocks of p: they start at multiples of the source's alignment (a quantized row decodes from a block
    // boundary); with alignment 1 this is an even split of Depth into ceil(Depth / KcMax) blocks.
    private static int ReductionBlocks(in GemmProblem p)
    {
        int align = p.BLayout == BLayout.Frozen ? p.Frozen!.ReductionAlign(p.FrozenBackward) : 1;
        int kcMax = p.ATransposed ? KcMaxPackedA : KcMax;
        int units = (p.Depth + align - 1) / align;
        return (units + kcMax / align - 1) / Math.Max(1, kcMax / align);
    }

    // A compressed (DecodedPanelSource) weight is never directly addressable, so Applies' isDirect is false.
    private static bool Shareable(in GemmProblem p, SimdLevel level) =>
        p.Rows > 0 && p.Cols > 0 && p.Depth > 0 && DecodedGemv.Applies(p, level, isDirect: false);

    // Work of one product for the thread count: its arithmetic plus streaming B (see Run).
    private static long CostFlops(in GemmProblem p) => 2L * p.Rows * p.Cols * p.Depth + 7L * 4 * p.Cols * p.Depth;

    /// <summary>Scalar path, same operations as MatMul.Reference (double accumulation, in reduction order).</summary>
    public static void RunScalar(in GemmProblem p)
    {
        if (p.Rows == 0 || p.Cols == 0) return;
        int panels = (p.Cols + NR - 1) / NR;
        float* panel = (t_scratch ??= new AlignedBuffer()).Ensure((long)Math.Max(p.Depth, 1) * NR);
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
        if (p.LowRank > 0) RunScalar(LowRankProblem(p));
    }

    private struct ComputeWork : IParallelWork
    {
        public GemmProblem P;
        public float* Direct;
        public long DirectStride;
        public bool IsDirect, SplitRows;
        public int Blocks, KcMax, MR, Align, Units;
        public SimdLevel Level;
        public float* LowRankPanels, LowRankEdge;   // PackLowRank's U panels and Z edge rows (P.LowRank > 0)

        public void Execute(int part, int parts)
        {
            int mr = MR, rows = P.Rows, cols = P.Cols, panels = (cols + NR - 1) / NR;
            var (rs, re) = SplitRows ? Threads.SplitAligned(rows, mr, part, parts) : (0, rows);
            var (ps, pe) = SplitRows ? (0, panels) : Threads.Split(panels, part, parts);
            if (rs >= re || ps >= pe) return;

            // Scratch: packed A block (transposed A only) | edge rows of A | edge tile of C | this part's B panels.
            // Every piece is a multiple of 16 floats, so each stays 64-byte aligned.
            long aFloats = P.ATransposed ? (long)Mc * KcMax : 0;
            long edgeFloats = (long)MaxMR * KcMax + MaxMR * NR;
            // B that must be packed goes NcPanels panels at a time (the BLIS jc loop), so the packed block stays in
            // L3 while every row block reuses it, and scratch stays bounded whatever the width of C.
            int chunkPanels = IsDirect ? pe - ps : Math.Min(pe - ps, NcPanels);
            long bFloats = IsDirect ? 0 : (long)chunkPanels * KcMax * NR;
            float* packedA = (t_scratch ??= new AlignedBuffer()).Ensure(aFloats + edgeFloats + bFloats);
            float* edgeA = packedA + aFloats;
            float* tile = edgeA + (long)MaxMR * KcMax;
            float* packedB = tile + MaxMR * NR;
            bool transposedA = P.ATransposed;
            delegate*<float*, nint, float*, int, int, float*, nint, bool, void> kernel = (Level, transposedA) switch
            {
                (SimdLevel.V512, false) => &GemmKernels.Kernel512R,
                (SimdLevel.V256, false) => &GemmKernels.Kernel256R,
                (_, false) => &GemmKernels.Kernel128R,
                (SimdLevel.V512, true) => &GemmKernels.Kernel512P,
                (SimdLevel.V256, true) => &GemmKernels.Kernel256P,
                _ => &GemmKernels.Kernel128P,
            };
            float* c0 = P.C;
            float* a0 = P.A;
            nint lda = P.Lda;

            for (int cs = ps; cs < pe; cs += chunkPanels)
            for (int blk = 0; blk < Blocks; blk++)
            {
                int ce = Math.Min(pe, cs + chunkPanels);
                var (u0, u1) = Threads.Split(Units, blk, Blocks);
                int r0 = u0 * Align, kc = Math.Min(P.Depth, u1 * Align) - r0;
                bool store = blk == 0 && !P.Accumulate;
                int chains = Chains(kc);
                // The low-rank term goes onto each tile after its last reduction block, while the tile is in L1:
                // the same kernel call, chains and order as the separate GEMM C += Z·Uᵀ, so the same bits, without
                // its pass over C (LoRA's y += (s·z)·Bᵀ: 2.1 ms a layer at shape b).
                int lowRank = blk == Blocks - 1 ? P.LowRank : 0;
                int lowChains = Chains(lowRank);
                float* bBase;
                long panelStride;
                if (IsDirect)
                {
                    bBase = Direct + (long)r0 * NR;
                    panelStride = DirectStride;
                }
                else
                {
                    if (P.BLayout == BLayout.Frozen) P.Frozen!.Pack(P.FrozenBackward, cs, ce - cs, r0, kc, packedB);
                    else if (P.BLayout == BLayout.RowMajor) PackRowMajorPanels(P, cs, ce, r0, kc, packedB);
                    else for (int jp = cs; jp < ce; jp++) PackB(P, jp, r0, kc, packedB + (long)(jp - cs) * kc * NR);
                    bBase = packedB - (long)cs * kc * NR;   // so that panel jp is at bBase + jp * panelStride
                    panelStride = (long)kc * NR;
                }
                // A row-major with a last panel of fewer than MR rows: copy those rows, zero-padded, so the
                // kernel never reads past A (their extra output rows are dropped at the edge merge).
                int edgeRow = re - (re - rs) % mr;
                if (!transposedA && edgeRow < re)
                {
                    new Span<float>(edgeA, mr * kc).Clear();
                    for (int i = edgeRow; i < re; i++)
                        new ReadOnlySpan<float>(a0 + i * lda + r0, kc).CopyTo(new Span<float>(edgeA + (long)(i - edgeRow) * kc, kc));
                }

                for (int ic = rs; ic < re; ic += Mc)
                {
                    int mc = Math.Min(Mc, re - ic);
                    if (transposedA) PackTransposedA(P, ic, mc, r0, kc, mr, packedA);
                    // Streamed B (a big frozen weight, forward): while the tiles of this row block run on panel jp,
                    // touch panel jp+1 a slice per tile, so it arrives before its first tile needs it (hardware
                    // prefetch only starts after the first misses of each panel). Measured +4-6% at
                    // (2048, 2048, 5632) and (2048, 576, 49152); nothing to gain when B stays in L2, so only there.
                    bool prefetchB = IsDirect && !P.FrozenBackward && Sse.IsSupported && (long)(ce - cs) * panelStride > PrefetchBFloats;
                    int lines = kc * NR / 16, tilesInBlock = (mc + mr - 1) / mr, linesPerTile = (lines + tilesInBlock - 1) / tilesInBlock;
                    for (int jp = cs; jp < ce; jp++)
                    {
                        float* bp = bBase + jp * panelStride;
                        int j0 = jp * NR, nv = Math.Min(NR, cols - j0);
                        for (int ir = 0, tileIndex = 0; ir < mc; ir += mr, tileIndex++)
                        {
                            if (prefetchB && jp + 1 < ce)
                            {
                                float* next = bp + panelStride;
                                for (int l = tileIndex * linesPerTile, end = Math.Min(lines, l + linesPerTile); l < end; l++)
                                    Sse.Prefetch0(next + l * 16);
                            }
                            int mv = Math.Min(mr, mc - ir);
                            float* a, c = c0 + (long)(ic + ir) * cols + j0;
                            nint ld;
                            if (transposedA) { a = packedA + (long)ir * kc; ld = 0; }
                            else if (mv == mr) { a = a0 + (ic + ir) * lda + r0; ld = lda; }
                            else { a = edgeA; ld = kc; }
                            if (mv == mr && nv == NR)
                            {
                                kernel(a, ld, bp, kc, chains, c, cols, !store);
                                if (lowRank > 0)
                                    kernel(P.LowRankZ + (long)(ic + ir) * lowRank, lowRank, LowRankPanels + (long)jp * lowRank * NR,
                                        lowRank, lowChains, c, cols, true);
                            }
                            else
                            {
                                // Through the tile buffer with the same operations as a full tile: C's values are
                                // copied in first when accumulating, so every chain adds onto them in the same order.
                                if (!store)
                                    for (int i = 0; i < mv; i++)
                                        for (int j = 0; j < nv; j++) tile[i * NR + j] = c[(long)i * cols + j];
                                kernel(a, ld, bp, kc, chains, tile, NR, !store);
                                if (lowRank > 0)
                                {
                                    float* z = mv == mr ? P.LowRankZ + (long)(ic + ir) * lowRank : LowRankEdge;
                                    kernel(z, lowRank, LowRankPanels + (long)jp * lowRank * NR, lowRank, lowChains, tile, NR, true);
                                }
                                for (int i = 0; i < mv; i++)
                                    for (int j = 0; j < nv; j++) c[(long)i * cols + j] = tile[i * NR + j];
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs rows [i0, i0+mc) of a transposed A (A[i, r] = A[r*lda + i]), reduction [r0, r0+kc), as MR-row panels
    /// [kc][MR], zero-padding the last panel. Each (panel, r) is MR consecutive floats of one source row: one copy.
    /// </summary>
    private static void PackTransposedA(in GemmProblem p, int i0, int mc, int r0, int kc, int mr, float* dst)
    {
        for (int ip = 0; ip < mc; ip += mr)
        {
            int mv = Math.Min(mr, mc - ip);
            float* d = dst + (long)ip * kc;
            float* s = p.A + (long)r0 * p.Lda + i0 + ip;
            nint lda = p.Lda;
            if (mv == 8 && mr == 8)
            {
                for (int k = 0; k < kc; k++, s += lda) Vector256.Store(Vector256.Load(s), d + k * 8);
            }
            else if (mv == 6 && mr == 6)
            {
                for (int k = 0; k < kc; k++, s += lda)
                {
                    Vector128.Store(Vector128.Load(s), d + k * 6);
                    d[k * 6 + 4] = s[4];
                    d[k * 6 + 5] = s[5];
                }
            }
            else
            {
                for (int k = 0; k < kc; k++, s += lda)
                    for (int i = 0; i < mr; i++) d[k * mr + i] = i < mv ? s[i] : 0;
            }
        }
    }

    /// <summary>
    /// Packs panels [ps, pe) of a row-major B, reduction rows [r0, r0+kc), each as [kc][32] at its place in
    /// <paramref name="dst"/>. Row by row: each source row is read once, contiguously, and scattered to the panels.
    /// Panel by panel (32 floats from each of kc rows, a stride of a whole row apart) measured 3-8% slower at
    /// BackwardWeight (2048, 1536, 576), where X is this B.
    /// </summary>
    private static void PackRowMajorPanels(in GemmProblem p, int ps, int pe, int r0, int kc, float* dst)
    {
        int full = Math.Min(pe, p.Cols / NR);   // panels with all 32 columns; a partial last one is zero-padded by PackB
        long panelFloats = (long)kc * NR;
        bool wide = Vector512.IsHardwareAccelerated;
        for (int k = 0; k < kc; k++)
        {
            float* s = p.B + (long)(r0 + k) * p.Ldb + ps * NR;
            float* d = dst + (long)k * NR;
            for (int jp = ps; jp < full; jp++, s += NR, d += panelFloats)
            {
                if (wide)
                {
                    Vector512.Store(Vector512.Load(s), d);
                    Vector512.Store(Vector512.Load(s + 16), d + 16);
                }
                else
                {
                    for (int j = 0; j < NR; j += 4) Vector128.Store(Vector128.Load(s + j), d + j);
                }
            }
        }
        for (int jp = Math.Max(ps, full); jp < pe; jp++) PackB(p, jp, r0, kc, dst + (long)(jp - ps) * panelFloats);
    }

    /// <summary>Writes B panel <paramref name="panel"/>, reduction rows [r0, r0+kc), as [kc][32] to <paramref name="dst"/>.</summary>
    private static void PackB(in GemmProblem p, int panel, int r0, int kc, float* dst)
    {
        int j0 = panel * NR, nv = Math.Min(NR, p.Cols - j0);
        switch (p.BLayout)
        {
            case BLayout.Frozen:
                p.Frozen!.Pack(p.FrozenBackward, panel, 1, r0, kc, dst);
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
