// Few-row products against a compressed frozen weight (decode and short prompts: Y[M, N] (+)= X[M, K]·Wᵀ with M
// at most MaxRows). The blocked GEMM would decode and transpose every panel for a handful of rows; here each
// thread takes dot products of its rows of W with each row of X (DecodedPanelSource.DotRows: fused decode-and-multiply in
// registers for the common types, DecodedDot.cs), so the work is one pass over the stored bytes per row of X.
// With GemmProblem.Q8Activations (generation's decode only, never training) the rows of X are quantized to Q8_0 once
// on the calling thread and weights stored as Q4_0 or Q8_0 take integer block products (Q8Dot.cs, llama.cpp's
// arithmetic: faster, not exact against the dequantized weights); other types, and an X holding a NaN or an
// infinity, take the float products.
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
    [ThreadStatic] private static AlignedBuffer? t_q8;     // per calling thread: X quantized to Q8_0, read by the workers

    /// <summary>True when <paramref name="p"/> is a forward product with few rows over a decodable source.</summary>
    public static bool Applies(in GemmProblem p, SimdLevel level, bool isDirect) =>
        p.Rows <= MaxRows && !isDirect && p.BLayout == BLayout.Frozen && !p.FrozenBackward && !p.ATransposed
        && p.Frozen is DecodedPanelSource && level >= SimdLevel.V128;

    /// <summary>Runs <paramref name="p"/> on up to <paramref name="threads"/> threads.</summary>
    public static void Run(in GemmProblem p, SimdLevel level, int threads)
    {
        var work = new Work { P = p, Level = level, X8 = QuantizeX(p, p.Frozen) };
        Threads.Run(ref work, Math.Min(threads, p.Cols));
    }

    /// <summary>
    /// Runs the first <paramref name="count"/> (2 or 3) of <paramref name="p0"/>..<paramref name="p2"/>, products that
    /// read the same input (decode's q/k/v, gate/up), in one parallel region: each thread takes its share of every
    /// weight in turn, so the products pay one hand-off and one join instead of one each, with the same results.
    /// </summary>
    public static void RunShared(in GemmProblem p0, in GemmProblem p1, in GemmProblem p2, int count, SimdLevel level, int threads)
    {
        // One quantized X for all: the products read the same rows of X (same A, K and M).
        var x8 = QuantizeX(p0, p0.Frozen, p1.Frozen, count > 2 ? p2.Frozen : null);
        var work = new SharedWork { P0 = p0, P1 = p1, P2 = p2, Count = count, Level = level, X8 = x8 };
        int cols = Math.Min(p0.Cols, count > 2 ? Math.Min(p1.Cols, p2.Cols) : p1.Cols);
        Threads.Run(ref work, Math.Min(threads, cols));
    }

    // The rows of p's X quantized to Q8_0 (rows of Q8Row.Floats(K) floats), when p asks for it and one of the
    // weights takes integer products; null otherwise (also when X holds a NaN or an infinity).
    private static float* QuantizeX(in GemmProblem p, PanelSource? w0, PanelSource? w1 = null, PanelSource? w2 = null)
    {
        static bool Takes(PanelSource? w) => w is DecodedPanelSource { SupportsQ8Dot: true };
        if (!p.Q8Activations || p.Depth % Q8Row.Block != 0 || !(Takes(w0) || Takes(w1) || Takes(w2))) return null;
        long rowFloats = Q8Row.Floats(p.Depth);
        float* buf = (t_q8 ??= new AlignedBuffer()).Ensure(rowFloats * p.Rows);
        for (int m = 0; m < p.Rows; m++)
            if (!Q8Row.Quantize(p.A + (long)m * p.Lda, p.Depth, Q8Row.At(buf + m * rowFloats, p.Depth))) return null;
        return buf;
    }

    private struct Work : IParallelWork
    {
        public GemmProblem P;
        public SimdLevel Level;
        public float* X8;

        public void Execute(int part, int parts) => Slice(P, X8, Level, part, parts);
    }

    private struct SharedWork : IParallelWork
    {
        public GemmProblem P0, P1, P2;
        public int Count;
        public SimdLevel Level;
        public float* X8;

        public void Execute(int part, int parts)
        {
            Slice(P0, X8, Level, part, parts);
            Slice(P1, X8, Level, part, parts);
            if (Count > 2) Slice(P2, X8, Level, part, parts);
        }
    }

    // Part `part` of `parts` of one product: its rows of W against every row of X.
    // x8: the rows of X quantized (QuantizeX) or null.
    private static void Slice(in GemmProblem p, float* x8, SimdLevel level, int part, int parts)
    {
        var (ns, ne) = Threads.Split(p.Cols, part, parts);
        if (ns >= ne) return;
        var src = (DecodedPanelSource)p.Frozen!;
        int N = p.Cols;
        // One DotRows call per row of X over all this part's rows of W, so per-call work (bf16 stages x once)
        // is paid once, not per block of rows.
        float* dots = p.Accumulate ? (t_dots ??= new AlignedBuffer()).Ensure(ne - ns) : null;
        bool integer = x8 != null && src.SupportsQ8Dot;
        long rowFloats = integer ? Q8Row.Floats(p.Depth) : 0;
        for (int m = 0; m < p.Rows; m++)
        {
            float* x = p.A + (long)m * p.Lda, c = p.C + (long)m * N + ns;
            float* y = p.Accumulate ? dots : c;
            if (integer) src.DotRowsQ8(ns, ne, Q8Row.At(x8 + m * rowFloats, p.Depth), y, level);
            else src.DotRows(ns, ne, x, y);
            if (p.Accumulate)
                for (int i = 0; i < ne - ns; i++) c[i] += dots[i];
        }
    }
}
