// Truncated singular value decomposition D ≈ U·diag(S)·Vᵀ of a dense f32 matrix D [M, N] (row-major), by the
// randomized range finder of Halko, Martinsson & Tropp (2011, algorithm 4.4 with power iterations):
//   Y = (D·Dᵀ)^q · D·Ω  (Ω Gaussian [N, L], re-orthonormalised after every product), Q = orth(Y) [M, L],
//   Bs = Qᵀ·D [L, N], Bs·Bsᵀ = W·diag(S²)·Wᵀ (cyclic Jacobi, double), U = Q·W, Vᵀ = diag(1/S)·Wᵀ·Bs.
// With L ≥ min(M, N) the range is the whole column space and the result is exact up to rounding: small matrices
// take that path. The two big products run on the f32 GEMM (MatMul); everything of size L×L or M×L is double.
// Measured: 4096 x 11008, rank 64 (L = 80, 2 power iterations): 4.0 s on the shared 2-core build machine (docs/adapters.md).
// Not here: a full SVD of large matrices (only the leading `rank` triplets are computed).
using LoraSharp.Core.Kernels;

namespace LoraSharp.Training.Adapters;

/// <summary>The leading singular triplets of a matrix.</summary>
/// <param name="U">Left singular vectors, [M, R] row-major.</param>
/// <param name="S">Singular values, descending, [R].</param>
/// <param name="Vt">Right singular vectors as rows, [R, N].</param>
/// <param name="TotalEnergy">‖D‖²_F = Σ of all squared singular values (exact, not just the computed ones).</param>
public sealed record SvdResult(double[] U, double[] S, double[] Vt, double TotalEnergy)
{
    /// <summary>Number of triplets R.</summary>
    public int Rank => S.Length;

    /// <summary>Share of ‖D‖²_F kept by the first <paramref name="rank"/> triplets (1 when D is zero).</summary>
    public double EnergyKept(int rank)
    {
        if (TotalEnergy <= 0) return 1.0;
        double kept = 0;
        for (int i = 0; i < Math.Min(rank, S.Length); i++) kept += S[i] * S[i];
        return Math.Min(1.0, kept / TotalEnergy);
    }
}

/// <summary>Randomized truncated SVD (exact for small matrices).</summary>
public static class TruncatedSvd
{
    /// <summary>Extra sketch columns beyond the requested rank.</summary>
    public const int Oversampling = 16;

    /// <summary>Power iterations (each costs two passes over D); 2 makes the leading triplets accurate to ~1e-6 for LoRA deltas.</summary>
    public const int PowerIterations = 2;

    /// <summary>
    /// The leading <paramref name="rank"/> singular triplets of <paramref name="d"/> [M, N] (row-major f32).
    /// Throws ArgumentException when rank is not in 1..min(M, N).
    /// </summary>
    public static SvdResult Compute(ReadOnlySpan<float> d, int M, int N, int rank, int seed = 0)
        => Compute(d, M, N, rank, seed, PowerIterations, Oversampling);

    /// <summary>
    /// As <see cref="Compute(ReadOnlySpan{float}, int, int, int, int)"/> with the sketch chosen by the caller:
    /// <paramref name="powerIterations"/> subspace iterations and <paramref name="oversampling"/> extra columns.
    /// An oversampling that reaches min(M, N) (e.g. int.MaxValue) takes the exact path: the whole range, no randomness.
    /// </summary>
    public static SvdResult Compute(ReadOnlySpan<float> d, int M, int N, int rank, int seed, int powerIterations, int oversampling)
    {
        if (powerIterations < 0) throw new ArgumentException($"powerIterations must be >= 0 (is {powerIterations}).");
        if (oversampling < 0) throw new ArgumentException($"oversampling must be >= 0 (is {oversampling}).");
        if (d.Length != (long)M * N) throw new ArgumentException($"The matrix has {d.Length} elements but its shape is [{M}, {N}].");
        int minDim = Math.Min(M, N);
        if (rank < 1 || rank > minDim)
            throw new ArgumentException($"Rank {rank} is not possible for a [{M}, {N}] matrix: it must be between 1 and {minDim}.");
        double total = 0;
        foreach (float v in d) total += (double)v * v;

        if (M > N)
        {
            // Work on Dᵀ so that the sketch side is the short one, then swap U and V.
            var t = new float[d.Length];
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) t[n * M + m] = d[m * N + n];
            var r = ComputeWide(t, N, M, rank, seed, total, powerIterations, oversampling);
            return new SvdResult(Transpose(r.Vt, rank, M), r.S, Transpose(r.U, N, rank), total);
        }
        return ComputeWide(d, M, N, rank, seed, total, powerIterations, oversampling);
    }

    // M ≤ N here.
    private static SvdResult ComputeWide(ReadOnlySpan<float> d, int M, int N, int rank, int seed, double total, int powerIterations, int oversampling)
    {
        int L = (int)Math.Min(M, (long)rank + oversampling);
        float[] qt;                  // Qᵀ [L, M], orthonormal rows
        if (L >= M)
        {
            L = M;
            qt = new float[M * M];
            for (int i = 0; i < M; i++) qt[i * M + i] = 1f;
        }
        else
        {
            var rng = new Random(seed);
            var omegaT = new float[L * N];                              // Ωᵀ [L, N]
            for (int i = 0; i < omegaT.Length; i++) omegaT[i] = (float)Gaussian(rng);
            var yt = new float[L * M];                                  // Yᵀ = Ωᵀ·Dᵀ [L, M]
            var zt = new float[L * N];                                  // Zᵀ = Qᵀ·D [L, N]
            MatMul.Forward(omegaT, d, yt, L, N, M);
            var qd = Orthonormalize(yt, L, M, rng);
            for (int it = 0; it < powerIterations; it++)
            {
                ToFloat(qd, yt);
                Array.Clear(zt);
                MatMul.BackwardInput(yt, d, zt, L, M, N);               // Zᵀ = Qᵀ·D
                var zq = Orthonormalize(zt, L, N, rng);
                ToFloat(zq, zt);
                MatMul.Forward(zt, d, yt, L, N, M);                     // Yᵀ = Zᵀ·Dᵀ
                qd = Orthonormalize(yt, L, M, rng);
            }
            qt = new float[L * M];
            ToFloat(qd, qt);
        }

        var bs = new float[L * N];                                      // Bs = Qᵀ·D [L, N]
        MatMul.BackwardInput(qt, d, bs, L, M, N);

        // G = Bs·Bsᵀ [L, L] in double.
        var g = new double[L * L];
        for (int i = 0; i < L; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                var bi = bs.AsSpan(i * N, N);
                var bj = bs.AsSpan(j * N, N);
                for (int n = 0; n < N; n++) s += (double)bi[n] * bj[n];
                g[i * L + j] = g[j * L + i] = s;
            }
        var (eig, w) = JacobiEigen(g, L);                               // w [L, L] columns = eigenvectors, eig descending

        var S = new double[rank];
        var U = new double[M * rank];
        var Vt = new double[rank * N];
        for (int k = 0; k < rank; k++)
        {
            double sigma = Math.Sqrt(Math.Max(0, eig[k]));
            S[k] = sigma;
            // U[:, k] = Q·w[:, k]
            for (int l = 0; l < L; l++)
            {
                double c = w[l * L + k];
                if (c == 0) continue;
                var ql = qt.AsSpan(l * M, M);
                for (int m = 0; m < M; m++) U[m * rank + k] += c * ql[m];
            }
            // Vᵀ[k, :] = w[:, k]ᵀ·Bs / σ
            var vk = Vt.AsSpan(k * N, N);
            for (int l = 0; l < L; l++)
            {
                double c = w[l * L + k];
                var bl = bs.AsSpan(l * N, N);
                for (int n = 0; n < N; n++) vk[n] += c * bl[n];
            }
            double norm = 0;
            foreach (double v in vk) norm += v * v;
            norm = Math.Sqrt(norm);
            if (norm > 0) for (int n = 0; n < N; n++) vk[n] /= norm;
            S[k] = norm > 0 ? norm : sigma;                              // ‖wᵀBs‖ = σ, computed more accurately than √eig
        }
        // The order is the Jacobi eigenvalue order; the recomputed σ agree with √eig up to rounding.
        return new SvdResult(U, S, Vt, total);
    }

    private static double[] Transpose(double[] x, int rows, int cols)
    {
        var t = new double[x.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
        return t;
    }

    private static void ToFloat(double[] src, float[] dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = (float)src[i];
    }

    // Orthonormalises the L rows of x [L, len] by modified Gram-Schmidt, twice (enough for orthogonality to
    // rounding). A row that vanishes (D has rank < L) is replaced by a fresh random direction.
    private static double[] Orthonormalize(float[] x, int L, int len, Random rng)
    {
        var q = new double[L * len];
        for (int i = 0; i < q.Length; i++) q[i] = x[i];
        for (int i = 0; i < L; i++)
        {
            var qi = q.AsSpan(i * len, len);
            double before = Norm(qi);
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < i; j++)
                {
                    var qj = q.AsSpan(j * len, len);
                    double dot = 0;
                    for (int n = 0; n < len; n++) dot += qi[n] * qj[n];
                    for (int n = 0; n < len; n++) qi[n] -= dot * qj[n];
                }
            double after = Norm(qi);
            if (after <= 1e-10 * Math.Max(before, 1e-300) || after == 0)
            {
                for (int n = 0; n < len; n++) qi[n] = Gaussian(rng);
                for (int pass = 0; pass < 2; pass++)
                    for (int j = 0; j < i; j++)
                    {
                        var qj = q.AsSpan(j * len, len);
                        double dot = 0;
                        for (int n = 0; n < len; n++) dot += qi[n] * qj[n];
                        for (int n = 0; n < len; n++) qi[n] -= dot * qj[n];
                    }
                after = Norm(qi);
            }
            for (int n = 0; n < len; n++) qi[n] /= after;
        }
        return q;
    }

    private static double Norm(ReadOnlySpan<double> x)
    {
        double s = 0;
        foreach (double v in x) s += v * v;
        return Math.Sqrt(s);
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>
    /// Eigen-decomposition of the symmetric matrix <paramref name="a"/> [n, n] by cyclic Jacobi rotations (double).
    /// Returns eigenvalues descending and the eigenvectors as the columns of a row-major [n, n] matrix.
    /// </summary>
    internal static (double[] Values, double[] Vectors) JacobiEigen(double[] a, int n)
    {
        a = (double[])a.Clone();
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++)
            {
                diag += a[i * n + i] * a[i * n + i];
                for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
            }
            if (off <= 1e-30 * Math.Max(diag, 1e-300)) break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p * n + q];
                    if (apq == 0) continue;
                    double app = a[p * n + p], aqq = a[q * n + q];
                    double theta = (aqq - app) / (2 * apq);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k * n + p], akq = a[k * n + q];
                        a[k * n + p] = c * akp - s * akq;
                        a[k * n + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p * n + k], aqk = a[q * n + k];
                        a[p * n + k] = c * apk - s * aqk;
                        a[q * n + k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k * n + p], vkq = v[k * n + q];
                        v[k * n + p] = c * vkp - s * vkq;
                        v[k * n + q] = s * vkp + c * vkq;
                    }
                }
        }
        var order = Enumerable.Range(0, n).OrderByDescending(i => a[i * n + i]).ToArray();
        var values = new double[n];
        var vectors = new double[n * n];
        for (int k = 0; k < n; k++)
        {
            values[k] = a[order[k] * n + order[k]];
            for (int i = 0; i < n; i++) vectors[i * n + k] = v[i * n + order[k]];
        }
        return (values, vectors);
    }
}
