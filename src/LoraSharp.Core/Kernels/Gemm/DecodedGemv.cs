// Few-row products against a compressed frozen weight (decode and short prompts: Y[M, N] (+)= X[M, K]·Wᵀ with M
// at most MaxRows). The blocked GEMM would decode and transpose every panel for a handful of rows; here each
// thread decodes its rows of W once, a chunk at a time, and takes the chunk's dot product with every row of X,
// so the work is one pass over the stored bytes (4.5 bits a weight for Q4_0) instead of four bytes a weight.
// Rows of W are split statically over threads. Results differ from the blocked GEMM in the last bits (the dot
// products sum in vector lanes, not in one chain per column); they do not depend on the thread count.
// Not here: uncompressed weights (GemvDriver), the backward orientation (training has many rows).
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class DecodedGemv
{
    /// <summary>Most rows of X handled here; more go to the blocked GEMM.</summary>
    public const int MaxRows = 4;

    // Elements of a row decoded at once: 4 KiB of floats stay in L1 while every row of X reads them. A multiple of
    // every block size (32, 64, 256).
    private const int Chunk = 1024;

    [ThreadStatic] private static AlignedBuffer? t_chunk;

    /// <summary>True when <paramref name="p"/> is a forward product with few rows over a decodable source.</summary>
    public static bool Applies(in GemmProblem p, SimdLevel level, bool isDirect) =>
        p.Rows <= MaxRows && !isDirect && p.BLayout == BLayout.Frozen && !p.FrozenBackward && !p.ATransposed
        && p.Frozen!.HasRowAccess && level >= SimdLevel.V128;

    /// <summary>Runs <paramref name="p"/> on up to <paramref name="threads"/> threads.</summary>
    public static void Run(in GemmProblem p, int threads)
    {
        var work = new Work { P = p };
        Threads.Run(ref work, Math.Min(threads, p.Cols));
    }

    private struct Work : IParallelWork
    {
        public GemmProblem P;

        public void Execute(int part, int parts)
        {
            var (ns, ne) = Threads.Split(P.Cols, part, parts);
            if (ns >= ne) return;
            var src = P.Frozen!;
            int K = P.Depth, M = P.Rows, N = P.Cols;
            float* chunk = (t_chunk ??= new AlignedBuffer()).Ensure(Chunk);
            Span<double> sums = stackalloc double[MaxRows];
            for (int n = ns; n < ne; n++)
            {
                sums.Clear();
                for (int k0 = 0; k0 < K; k0 += Chunk)
                {
                    int count = Math.Min(Chunk, K - k0);
                    src.DequantizeRow(n, k0, count, chunk);
                    var w = new ReadOnlySpan<float>(chunk, count);
                    for (int m = 0; m < M; m++)
                        sums[m] += TensorPrimitives.Dot(w, new ReadOnlySpan<float>(P.A + (long)m * P.Lda + k0, count));
                }
                for (int m = 0; m < M; m++)
                {
                    float* c = P.C + (long)m * N + n;
                    *c = P.Accumulate ? *c + (float)sums[m] : (float)sums[m];
                }
            }
        }
    }
}
