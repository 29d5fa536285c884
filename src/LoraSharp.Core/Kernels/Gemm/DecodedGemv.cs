// Few-row products against a compressed frozen weight (decode and short prompts: Y[M, N] (+)= X[M, K]·Wᵀ with M
// at most MaxRows). The blocked GEMM would decode and transpose every panel for a handful of rows; here each
// thread takes dot products of its rows of W with each row of X (DecodedPanelSource.DotRows: fused decode-and-multiply in
// registers for the common types, DecodedDot.cs), so the work is one pass over the stored bytes per row of X.
// Rows of W are split statically over threads. Results differ from the blocked GEMM in the last bits (the dot
// products sum in vector lanes, not in one chain per column); they do not depend on the thread count.
// Not here: uncompressed weights (GemvDriver), the backward orientation (training has many rows).
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class DecodedGemv
{
    /// <summary>Most rows of X handled here; more go to the blocked GEMM.</summary>
    public const int MaxRows = 4;

    [ThreadStatic] private static AlignedBuffer? t_dots;   // per thread: the dot products of its rows of W

    /// <summary>True when <paramref name="p"/> is a forward product with few rows over a decodable source.</summary>
    public static bool Applies(in GemmProblem p, SimdLevel level, bool isDirect) =>
        p.Rows <= MaxRows && !isDirect && p.BLayout == BLayout.Frozen && !p.FrozenBackward && !p.ATransposed
        && p.Frozen is DecodedPanelSource && level >= SimdLevel.V128;

    /// <summary>Runs <paramref name="p"/> on up to <paramref name="threads"/> threads.</summary>
    public static void Run(in GemmProblem p, int threads)
    {
        var work = new Work { P = p };
        Threads.Run(ref work, Math.Min(threads, p.Cols));
    }

    /// <summary>
    /// Runs the first <paramref name="count"/> (2 or 3) of <paramref name="p0"/>..<paramref name="p2"/>, products that
    /// read the same input (decode's q/k/v, gate/up), in one parallel region: each thread takes its share of every
    /// weight in turn, so the products pay one hand-off and one join instead of one each, with the same results.
    /// </summary>
    public static void RunShared(in GemmProblem p0, in GemmProblem p1, in GemmProblem p2, int count, int threads)
    {
        var work = new SharedWork { P0 = p0, P1 = p1, P2 = p2, Count = count };
        int cols = Math.Min(p0.Cols, count > 2 ? Math.Min(p1.Cols, p2.Cols) : p1.Cols);
        Threads.Run(ref work, Math.Min(threads, cols));
    }

    private struct Work : IParallelWork
    {
        public GemmProblem P;

        public void Execute(int part, int parts) => Slice(P, part, parts);
    }

    private struct SharedWork : IParallelWork
    {
        public GemmProblem P0, P1, P2;
        public int Count;

        public void Execute(int part, int parts)
        {
            Slice(P0, part, parts);
            Slice(P1, part, parts);
            if (Count > 2) Slice(P2, part, parts);
        }
    }

    // Part `part` of `parts` of one product: its rows of W against every row of X.
    private static void Slice(in GemmProblem p, int part, int parts)
    {
        var (ns, ne) = Threads.Split(p.Cols, part, parts);
        if (ns >= ne) return;
        var src = (DecodedPanelSource)p.Frozen!;
        int N = p.Cols;
        // One DotRows call per row of X over all this part's rows of W, so per-call work (bf16 stages x once)
        // is paid once, not per block of rows.
        float* dots = p.Accumulate ? (t_dots ??= new AlignedBuffer()).Ensure(ne - ns) : null;
        for (int m = 0; m < p.Rows; m++)
        {
            float* x = p.A + (long)m * p.Lda, c = p.C + (long)m * N + ns;
            if (!p.Accumulate)
            {
                src.DotRows(ns, ne, x, c);
                continue;
            }
            src.DotRows(ns, ne, x, dots);
            for (int i = 0; i < ne - ns; i++) c[i] += dots[i];
        }
    }
}
