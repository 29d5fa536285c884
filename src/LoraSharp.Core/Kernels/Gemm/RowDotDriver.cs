// Few-row products against a small unpacked row-major weight: Y[M, N] (+)= X[M, K]·Wᵀ with M <= MaxRows, which is
// LoRA's A and B during decoding. One dot product of each row of X with each row of W, on the calling thread. The
// blocked GEMM would pack Wᵀ into zero-padded 32-column panels on every call (for A [8, K]: 4x its size) and wake a
// worker for microseconds of work, twice per adapted projection per token.
// Results differ from the blocked GEMM in the last bits (the sums run in vector lanes, not one chain per column).
// Not here: frozen weights (GemvDriver, DecodedGemv), many rows (GemmDriver).
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe class RowDotDriver
{
    /// <summary>Most rows of X handled here.</summary>
    public const int MaxRows = 4;

    /// <summary>Largest W (in floats, 1 MiB) read on one thread: a 7B model's LoRA B [11008, 8] is 88k.</summary>
    public const long MaxWeights = 1 << 18;

    /// <summary>True when the product goes here rather than to the blocked GEMM.</summary>
    public static bool Applies(int M, int K, int N, SimdLevel level) =>
        M <= MaxRows && level >= SimdLevel.V256 && (long)N * K <= MaxWeights;

    /// <summary>Y[m, n] (+)= Σ_k X[m, k]·W[n, k].</summary>
    public static void Forward(float* x, float* w, float* y, int M, int K, int N, bool accumulate, SimdLevel level)
    {
        for (int m = 0; m < M; m++)
        {
            float* xm = x + (long)m * K, ym = y + (long)m * N;
            for (int n = 0; n < N; n++)
            {
                float s = Dot(xm, w + (long)n * K, K, level);
                ym[n] = accumulate ? ym[n] + s : s;
            }
        }
    }

    private static float Dot(float* a, float* b, int K, SimdLevel level)
    {
        int k = 0;
        float s = 0;
        if (level >= SimdLevel.V512 && K >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; k + 16 <= K; k += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + k), Vector512.Load(b + k), acc);
            s = Vector512.Sum(acc);
        }
        if (k + 8 <= K)
        {
            var acc = Vector256<float>.Zero;
            for (; k + 8 <= K; k += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + k), Vector256.Load(b + k), acc);
            s += Vector256.Sum(acc);
        }
        for (; k < K; k++) s = MathF.FusedMultiplyAdd(a[k], b[k], s);
        return s;
    }
}
