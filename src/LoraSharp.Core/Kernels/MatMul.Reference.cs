// Scalar twins of the MatMul layouts: plain loops accumulating in double. Tests compare the fast kernels to
// these; they are the definition of the math, not a fallback (the scalar dispatch level does the same operations
// on packed weights in Gemm/GemmDriver.RunScalar). Not here: anything fast.
namespace LoraSharp.Core.Kernels;

public static partial class MatMul
{
    /// <summary>Plain scalar twins of every layout, accumulating in double. Tests compare the fast kernels to these.</summary>
    public static class Reference
    {
        /// <summary>Y[M,N] (+)= X[M,K]·W[N,K]ᵀ.</summary>
        public static void Forward(ReadOnlySpan<float> X, ReadOnlySpan<float> W, Span<float> Y, int M, int K, int N, bool accumulate = false)
        {
            Check(X.Length, (long)M * K, "X", $"[{M}, {K}]");
            Check(W.Length, (long)N * K, "W", $"[{N}, {K}]");
            Check(Y.Length, (long)M * N, "Y", $"[{M}, {N}]");
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++)
                {
                    double s = accumulate ? Y[m * N + n] : 0;
                    for (int k = 0; k < K; k++) s += (double)X[m * K + k] * W[n * K + k];
                    Y[m * N + n] = (float)s;
                }
        }

        /// <summary>dX[M,K] += dY[M,N]·W[N,K].</summary>
        public static void BackwardInput(ReadOnlySpan<float> dY, ReadOnlySpan<float> W, Span<float> dX, int M, int N, int K, bool accumulate = true)
        {
            Check(dY.Length, (long)M * N, "dY", $"[{M}, {N}]");
            Check(W.Length, (long)N * K, "W", $"[{N}, {K}]");
            Check(dX.Length, (long)M * K, "dX", $"[{M}, {K}]");
            for (int m = 0; m < M; m++)
                for (int k = 0; k < K; k++)
                {
                    double s = accumulate ? dX[m * K + k] : 0;
                    for (int n = 0; n < N; n++) s += (double)dY[m * N + n] * W[n * K + k];
                    dX[m * K + k] = (float)s;
                }
        }

        /// <summary>dW[N,K] += dY[M,N]ᵀ·X[M,K].</summary>
        public static void BackwardWeight(ReadOnlySpan<float> dY, ReadOnlySpan<float> X, Span<float> dW, int M, int N, int K)
        {
            Check(dY.Length, (long)M * N, "dY", $"[{M}, {N}]");
            Check(X.Length, (long)M * K, "X", $"[{M}, {K}]");
            Check(dW.Length, (long)N * K, "dW", $"[{N}, {K}]");
            for (int n = 0; n < N; n++)
                for (int k = 0; k < K; k++)
                {
                    double s = dW[n * K + k];
                    for (int m = 0; m < M; m++) s += (double)dY[m * N + n] * X[m * K + k];
                    dW[n * K + k] = (float)s;
                }
        }

        private static void Check(long actual, long expected, string name, string shape)
        {
            if (actual != expected)
                throw new ArgumentException($"{name} has {actual} elements but shape {shape} needs {expected}.");
        }
    }
}
