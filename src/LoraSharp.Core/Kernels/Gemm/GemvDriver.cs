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
        var work = new Work { P = p, Direct = direct, PanelStride = panelStride, Blocks = blocks, Wide = level >= SimdLevel.V512 };
        Threads.Run(ref work, threads);
    }

    private struct Work : IParallelWork
    {
        public GemmProblem P;
        public float* Direct;
        public long PanelStride;
        public int Blocks;
        public bool Wide;

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
                        for (int j = 0; j < nv; j++) c[j] = store ? tmp[j] : c[j] + tmp[j];
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
