// One-row products against a frozen, directly addressable weight (decode: y[N] (+)= x[K]·Wᵀ). The blocked GEMM
// would compute a full MR-row tile for the single row; here each thread streams its 32-column panels once, which
// is what a memory-bound decode step needs. Results are bit-identical to GemmDriver: the same reduction blocks,
// the same fma chains per column in reduction order, the first chain stored and later chains added.
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class GemvDriver
{
    private const int NR = GemmKernels.NR;

    /// <summary>True when <paramref name="p"/> is a one-row product this driver handles.</summary>
    public static bool Applies(in GemmProblem p, SimdLevel level, bool isDirect) =>
        p.Rows == 1 && isDirect && !p.ATransposed && level >= SimdLevel.V256;

    /// <summary>Runs the product with <paramref name="blocks"/> reduction blocks (as GemmDriver splits them).</summary>
    public static void Run(in GemmProblem p, float* direct, long panelStride, int blocks, SimdLevel level, int threads)
    {
        var work = Prepare(p, direct, panelStride, blocks, level);
        Threads.Run(ref work, threads);
    }

    /// <summary>The work of one product, for <see cref="Run"/> or <see cref="RunShared"/>.</summary>
    public static Work Prepare(in GemmProblem p, float* direct, long panelStride, int blocks, SimdLevel level) =>
        new() { P = p, Direct = direct, PanelStride = panelStride, Blocks = blocks, Wide = level >= SimdLevel.V512 };

    /// <summary>
    /// Runs the first <paramref name="count"/> (2 or 3) products, which read the same input row (decode's q/k/v,
    /// gate/up), in one parallel region: each thread takes its panels of every weight in turn, so they pay one
    /// hand-off and one join instead of one each. Each product's results are those of <see cref="Run"/>.
    /// </summary>
    public static void RunShared(in Work w0, in Work w1, in Work w2, int count, int threads)
    {
        var work = new SharedWork { W0 = w0, W1 = w1, W2 = w2, Count = count };
        Threads.Run(ref work, threads);
    }

    private struct SharedWork : IParallelWork
    {
        public Work W0, W1, W2;
        public int Count;

        public void Execute(int part, int parts)
        {
            W0.Execute(part, parts);
            W1.Execute(part, parts);
            if (Count > 2) W2.Execute(part, parts);
        }
    }

    /// <summary>One product's panels, split over parts.</summary>
    public struct Work : IParallelWork
    {
        internal GemmProblem P;
        internal float* Direct;
        internal long PanelStride;
        internal int Blocks;
        internal bool Wide;

        public void Execute(int part, int parts)
        {
            int panels = (P.Cols + NR - 1) / NR;
            var (ps, pe) = Threads.Split(panels, part, parts);
            float* tmp = stackalloc float[NR];
            for (int jp = ps; jp < pe; jp++)
            {
                float* panel = Direct + jp * PanelStride;
                int j0 = jp * NR, nv = Math.Min(NR, P.Cols - j0);
                float* c = P.C + j0;
                for (int blk = 0; blk < Blocks; blk++)
                {
                    var (b0, b1) = Threads.Split(P.Depth, blk, Blocks);
                    int chains = GemmDriver.Chains(b1 - b0);
                    for (int ch = 0; ch < chains; ch++)
                    {
                        var (s0, s1) = Threads.Split(b1 - b0, ch, chains);
                        int r0 = b0 + s0, r1 = b0 + s1;
                        if (Wide) Panel512(P.A, panel, r0, r1, tmp);
                        else Panel256(P.A, panel, r0, r1, tmp);
                        bool store = blk == 0 && ch == 0 && !P.Accumulate;
                        if (nv == NR)   // a whole panel: the chain's 32 sums in vectors (a scalar loop here cost a third of the panel's time)
                        {
                            if (store) { Vector256.Load(tmp).Store(c); Vector256.Load(tmp + 8).Store(c + 8); Vector256.Load(tmp + 16).Store(c + 16); Vector256.Load(tmp + 24).Store(c + 24); }
                            else
                            {
                                (Vector256.Load(c) + Vector256.Load(tmp)).Store(c);
                                (Vector256.Load(c + 8) + Vector256.Load(tmp + 8)).Store(c + 8);
                                (Vector256.Load(c + 16) + Vector256.Load(tmp + 16)).Store(c + 16);
                                (Vector256.Load(c + 24) + Vector256.Load(tmp + 24)).Store(c + 24);
                            }
                        }
                        else for (int j = 0; j < nv; j++) c[j] = store ? tmp[j] : c[j] + tmp[j];
                    }
                }
            }
        }

        private static void Panel512(float* a, float* panel, int r0, int r1, float* dst)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (int r = r0; r < r1; r++)
            {
                var x = Vector512.Create(a[r]);
                float* row = panel + (long)r * NR;
                acc0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(row), acc0);
                acc1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(row + 16), acc1);
            }
            acc0.Store(dst);
            acc1.Store(dst + 16);
        }

        private static void Panel256(float* a, float* panel, int r0, int r1, float* dst)
        {
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            var acc2 = Vector256<float>.Zero;
            var acc3 = Vector256<float>.Zero;
            for (int r = r0; r < r1; r++)
            {
                var x = Vector256.Create(a[r]);
                float* row = panel + (long)r * NR;
                acc0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(row), acc0);
                acc1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(row + 8), acc1);
                acc2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(row + 16), acc2);
                acc3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(row + 24), acc3);
            }
            acc0.Store(dst);
            acc1.Store(dst + 8);
            acc2.Store(dst + 16);
            acc3.Store(dst + 24);
        }
    }
}
