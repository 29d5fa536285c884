// The vector micro-kernels of Attention, written once as generic methods over a vector-ops struct
// (V512, V256, V128, and Scalar whose "vector" is one float); the JIT specialises each instantiation, so the
// static interface calls inline into plain vector instructions. Two shapes of small GEMM cover all five products:
//   Abt      C[m, n]  = Σ_d A[m, d] Bt[d, n]                 vectorised over n (queries of a tile)
//   AccRows  C[m, :] = α_m C[m, :] + Σ_j A[m, j] X[j, :]     vectorised over HS; A read as broadcast scalars
//                                                            with arbitrary strides, so P and Pᵀ need no transpose.
// Not here: masking, tiling and the softmax bookkeeping (Attention.Forward.cs / Attention.Backward.cs).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraSharp.Core.Kernels;

public static partial class Attention
{
    /// <summary>Operations on one vector of floats; implemented by V512, V256, V128 and Scalar.</summary>
    private unsafe interface IVec<TV> where TV : unmanaged
    {
        static abstract int Count { get; }
        static abstract TV Zero { get; }
        static abstract TV NegInf { get; }
        static abstract TV Load(float* p);
        static abstract void Store(float* p, TV x);
        static abstract TV Splat(float x);
        /// <summary>a·b + c.</summary>
        static abstract TV Fma(TV a, TV b, TV c);
        static abstract TV Add(TV a, TV b);
        static abstract TV Sub(TV a, TV b);
        static abstract TV Mul(TV a, TV b);
        static abstract TV Max(TV a, TV b);
        static abstract TV Exp(TV x);
        /// <summary>x with -∞ lanes replaced by 0 (a safe max to subtract before exp).</summary>
        static abstract TV NegInfToZero(TV x);
        static abstract float Sum(TV x);
        /// <summary>dst[0..3] = the lane sums of a, b, c and d (one transpose-and-add tree for the four).</summary>
        static abstract void Sum4(TV a, TV b, TV c, TV d, float* dst);
    }

    private readonly unsafe struct V512 : IVec<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;
        public static Vector512<float> Zero => Vector512<float>.Zero;
        public static Vector512<float> NegInf => Vector512.Create(float.NegativeInfinity);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> x) => x.Store(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float x) => Vector512.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp(Vector512<float> x) => ExpApprox(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> NegInfToZero(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.Equals(x, NegInf), Zero, x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> x) => Vector512.Sum(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* dst) =>
            V256.Sum4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(), c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper(), dst);
    }

    private readonly unsafe struct V256 : IVec<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;
        public static Vector256<float> Zero => Vector256<float>.Zero;
        public static Vector256<float> NegInf => Vector256.Create(float.NegativeInfinity);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> x) => x.Store(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float x) => Vector256.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => ExpApprox(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> NegInfToZero(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.Equals(x, NegInf), Zero, x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> x) => Vector256.Sum(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sum4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d, float* dst)
        {
            if (!Avx.IsSupported) { V128.Sum4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(), c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper(), dst); return; }
            // Per 128-bit half: [a01 a23 b01 b23], [c01 c23 d01 d23], then [a b c d]; the two halves added.
            var abcd = Avx.HorizontalAdd(Avx.HorizontalAdd(a, b), Avx.HorizontalAdd(c, d));
            (abcd.GetLower() + abcd.GetUpper()).Store(dst);
        }
    }

    private readonly unsafe struct V128 : IVec<Vector128<float>>
    {
        public static int Count => Vector128<float>.Count;
        public static Vector128<float> Zero => Vector128<float>.Zero;
        public static Vector128<float> NegInf => Vector128.Create(float.NegativeInfinity);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> x) => x.Store(p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Splat(float x) => Vector128.Create(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Exp(Vector128<float> x) => ExpApprox(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<float> NegInfToZero(Vector128<float> x) => Vector128.ConditionalSelect(Vector128.Equals(x, NegInf), Zero, x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> x) => Vector128.Sum(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sum4(Vector128<float> a, Vector128<float> b, Vector128<float> c, Vector128<float> d, float* dst)
        {
            if (Sse3.IsSupported) { Sse3.HorizontalAdd(Sse3.HorizontalAdd(a, b), Sse3.HorizontalAdd(c, d)).Store(dst); return; }
            dst[0] = Vector128.Sum(a); dst[1] = Vector128.Sum(b); dst[2] = Vector128.Sum(c); dst[3] = Vector128.Sum(d);
        }
    }

    /// <summary>The scalar path: a "vector" of one float, plain multiply and add (no FMA, which may be emulated).</summary>
    private readonly unsafe struct Scalar : IVec<float>
    {
        public static int Count => 1;
        public static float Zero => 0f;
        public static float NegInf => float.NegativeInfinity;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p) => *p;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, float x) => *p = x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Splat(float x) => x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fma(float a, float b, float c) => a * b + c;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sub(float a, float b) => a - b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Mul(float a, float b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Max(float a, float b) => a > b ? a : b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Exp(float x) => MathF.Exp(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float NegInfToZero(float x) => float.IsNegativeInfinity(x) ? 0f : x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(float x) => x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sum4(float a, float b, float c, float d, float* dst) { dst[0] = a; dst[1] = b; dst[2] = c; dst[3] = d; }
    }

    /// <summary>
    /// C[m, n] = Σ_{d&lt;K} A[m·lda + d] · Bt[d·ldb + n] for m &lt; M, n &lt; N (N a multiple of 4 vectors).
    /// 4 rows x 4 vectors of accumulators: per d, 4 loads + 4 broadcasts feed 16 FMAs.
    /// </summary>
    private static unsafe void Abt<TO, TV>(float* A, int lda, int M, float* Bt, int ldb, int N, int K, float* C, int ldc)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count, W4 = 4 * W;
        int m = 0;
        for (; m + 4 <= M; m += 4)
        {
            float* a0 = A + (long)m * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            for (int n = 0; n < N; n += W4)
            {
                TV c00 = TO.Zero, c01 = TO.Zero, c02 = TO.Zero, c03 = TO.Zero;
                TV c10 = TO.Zero, c11 = TO.Zero, c12 = TO.Zero, c13 = TO.Zero;
                TV c20 = TO.Zero, c21 = TO.Zero, c22 = TO.Zero, c23 = TO.Zero;
                TV c30 = TO.Zero, c31 = TO.Zero, c32 = TO.Zero, c33 = TO.Zero;
                float* b = Bt + n;
                for (int d = 0; d < K; d++, b += ldb)
                {
                    TV b0 = TO.Load(b), b1 = TO.Load(b + W), b2 = TO.Load(b + 2 * W), b3 = TO.Load(b + 3 * W);
                    TV x = TO.Splat(a0[d]);
                    c00 = TO.Fma(x, b0, c00); c01 = TO.Fma(x, b1, c01); c02 = TO.Fma(x, b2, c02); c03 = TO.Fma(x, b3, c03);
                    x = TO.Splat(a1[d]);
                    c10 = TO.Fma(x, b0, c10); c11 = TO.Fma(x, b1, c11); c12 = TO.Fma(x, b2, c12); c13 = TO.Fma(x, b3, c13);
                    x = TO.Splat(a2[d]);
                    c20 = TO.Fma(x, b0, c20); c21 = TO.Fma(x, b1, c21); c22 = TO.Fma(x, b2, c22); c23 = TO.Fma(x, b3, c23);
                    x = TO.Splat(a3[d]);
                    c30 = TO.Fma(x, b0, c30); c31 = TO.Fma(x, b1, c31); c32 = TO.Fma(x, b2, c32); c33 = TO.Fma(x, b3, c33);
                }
                float* c = C + (long)m * ldc + n;
                TO.Store(c, c00); TO.Store(c + W, c01); TO.Store(c + 2 * W, c02); TO.Store(c + 3 * W, c03);
                c += ldc;
                TO.Store(c, c10); TO.Store(c + W, c11); TO.Store(c + 2 * W, c12); TO.Store(c + 3 * W, c13);
                c += ldc;
                TO.Store(c, c20); TO.Store(c + W, c21); TO.Store(c + 2 * W, c22); TO.Store(c + 3 * W, c23);
                c += ldc;
                TO.Store(c, c30); TO.Store(c + W, c31); TO.Store(c + 2 * W, c32); TO.Store(c + 3 * W, c33);
            }
        }
        for (; m < M; m++)
        {
            float* a0 = A + (long)m * lda;
            for (int n = 0; n < N; n += W4)
            {
                TV c00 = TO.Zero, c01 = TO.Zero, c02 = TO.Zero, c03 = TO.Zero;
                float* b = Bt + n;
                for (int d = 0; d < K; d++, b += ldb)
                {
                    TV x = TO.Splat(a0[d]);
                    c00 = TO.Fma(x, TO.Load(b), c00); c01 = TO.Fma(x, TO.Load(b + W), c01);
                    c02 = TO.Fma(x, TO.Load(b + 2 * W), c02); c03 = TO.Fma(x, TO.Load(b + 3 * W), c03);
                }
                float* c = C + (long)m * ldc + n;
                TO.Store(c, c00); TO.Store(c + W, c01); TO.Store(c + 2 * W, c02); TO.Store(c + 3 * W, c03);
            }
        }
    }

    /// <summary>Abt at the given level.</summary>
    private static unsafe void Abt(SimdLevel level, float* A, int lda, int M, float* Bt, int ldb, int N, int K, float* C, int ldc)
    {
        switch (level)
        {
            case SimdLevel.V512: Abt<V512, Vector512<float>>(A, lda, M, Bt, ldb, N, K, C, ldc); break;
            case SimdLevel.V256: Abt<V256, Vector256<float>>(A, lda, M, Bt, ldb, N, K, C, ldc); break;
            case SimdLevel.V128: Abt<V128, Vector128<float>>(A, lda, M, Bt, ldb, N, K, C, ldc); break;
            default: Abt<Scalar, float>(A, lda, M, Bt, ldb, N, K, C, ldc); break;
        }
    }

    /// <summary>No band: every j of every row is summed.</summary>
    private const int NoBand = 1 << 24;

    /// <summary>
    /// C[m·ldc + :HS] = α_m · C[m·ldc + :HS] + Σ_{j&lt;J} A[m·sm + j·sj] · X[j·ldx + :HS] for m &lt; M
    /// (α_m = 1 when <paramref name="alpha"/> is null; HS a multiple of the vector width).
    /// On a diagonal tile A is zero outside a causal band, and those terms are skipped: row m only sums
    /// j &lt; m + 1 + <paramref name="endShift"/> (rows are queries, j keys) and j &gt;= m − <paramref name="startShift"/>
    /// (rows are keys, j queries), widened to whole 4-row blocks. Skipping exact zeros changes no value; it halves
    /// the p·V-type work on diagonal tiles.
    /// </summary>
    private static unsafe void AccRows<TO, TV>(float* A, int sm, int sj, int M, int J, float* X, int ldx, float* C, int ldc, float* alpha, int HS,
        int endShift, int startShift)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count, nv = HS / W;
        int m = 0;
        for (; m + 4 <= M; m += 4)
        {
            int js = Math.Max(0, m - startShift), je = Math.Min(J, m + 4 + endShift);
            int nj = Math.Max(0, je - js);
            float* a = A + (long)m * sm + (long)js * sj;
            float* c = C + (long)m * ldc;
            float* al = alpha == null ? null : alpha + m;
            float* X0 = X + (long)js * ldx;
            int vi = 0;
            for (; vi + 4 <= nv; vi += 4) Acc4x4<TO, TV>(a, sm, sj, nj, X0 + vi * W, ldx, c + vi * W, ldc, al);
            // HS = 48 on Vector512: one 4x3 pass instead of 4x2 + 4x1 (the 4x1 pass is broadcast-bound).
            if (nv - vi == 3) { Acc4x3<TO, TV>(a, sm, sj, nj, X0 + vi * W, ldx, c + vi * W, ldc, al); vi += 3; }
            for (; vi + 2 <= nv; vi += 2) Acc4x2<TO, TV>(a, sm, sj, nj, X0 + vi * W, ldx, c + vi * W, ldc, al);
            for (; vi < nv; vi++) Acc4x1<TO, TV>(a, sm, sj, nj, X0 + vi * W, ldx, c + vi * W, ldc, al);
        }
        for (; m < M; m++)
        {
            int js = Math.Max(0, m - startShift), je = Math.Min(J, m + 1 + endShift);
            int nj = Math.Max(0, je - js);
            float* a = A + (long)m * sm + (long)js * sj;
            float* c = C + (long)m * ldc;
            TV s = alpha == null ? TO.Splat(1f) : TO.Splat(alpha[m]);
            for (int vi = 0; vi < nv; vi++)
            {
                float* x = X + (long)js * ldx + vi * W;
                TV r0 = TO.Mul(TO.Load(c + vi * W), s), r1 = TO.Zero;
                int j = 0;
                for (; j + 2 <= nj; j += 2, x += 2 * ldx)
                {
                    r0 = TO.Fma(TO.Splat(a[(long)j * sj]), TO.Load(x), r0);
                    r1 = TO.Fma(TO.Splat(a[(long)(j + 1) * sj]), TO.Load(x + ldx), r1);
                }
                if (j < nj) r0 = TO.Fma(TO.Splat(a[(long)j * sj]), TO.Load(x), r0);
                TO.Store(c + vi * W, TO.Add(r0, r1));
            }
        }
    }

    private static unsafe void Acc4x4<TO, TV>(float* a, int sm, int sj, int J, float* x, int ldx, float* c, int ldc, float* alpha)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        TV r00 = TO.Load(c0), r01 = TO.Load(c0 + W), r02 = TO.Load(c0 + 2 * W), r03 = TO.Load(c0 + 3 * W);
        TV r10 = TO.Load(c1), r11 = TO.Load(c1 + W), r12 = TO.Load(c1 + 2 * W), r13 = TO.Load(c1 + 3 * W);
        TV r20 = TO.Load(c2), r21 = TO.Load(c2 + W), r22 = TO.Load(c2 + 2 * W), r23 = TO.Load(c2 + 3 * W);
        TV r30 = TO.Load(c3), r31 = TO.Load(c3 + W), r32 = TO.Load(c3 + 2 * W), r33 = TO.Load(c3 + 3 * W);
        if (alpha != null)
        {
            TV s = TO.Splat(alpha[0]);
            r00 = TO.Mul(r00, s); r01 = TO.Mul(r01, s); r02 = TO.Mul(r02, s); r03 = TO.Mul(r03, s);
            s = TO.Splat(alpha[1]);
            r10 = TO.Mul(r10, s); r11 = TO.Mul(r11, s); r12 = TO.Mul(r12, s); r13 = TO.Mul(r13, s);
            s = TO.Splat(alpha[2]);
            r20 = TO.Mul(r20, s); r21 = TO.Mul(r21, s); r22 = TO.Mul(r22, s); r23 = TO.Mul(r23, s);
            s = TO.Splat(alpha[3]);
            r30 = TO.Mul(r30, s); r31 = TO.Mul(r31, s); r32 = TO.Mul(r32, s); r33 = TO.Mul(r33, s);
        }
        float* a0 = a, a1 = a + sm, a2 = a1 + sm, a3 = a2 + sm;
        for (int j = 0; j < J; j++, x += ldx)
        {
            long o = (long)j * sj;
            TV x0 = TO.Load(x), x1 = TO.Load(x + W), x2 = TO.Load(x + 2 * W), x3 = TO.Load(x + 3 * W);
            TV s = TO.Splat(a0[o]);
            r00 = TO.Fma(s, x0, r00); r01 = TO.Fma(s, x1, r01); r02 = TO.Fma(s, x2, r02); r03 = TO.Fma(s, x3, r03);
            s = TO.Splat(a1[o]);
            r10 = TO.Fma(s, x0, r10); r11 = TO.Fma(s, x1, r11); r12 = TO.Fma(s, x2, r12); r13 = TO.Fma(s, x3, r13);
            s = TO.Splat(a2[o]);
            r20 = TO.Fma(s, x0, r20); r21 = TO.Fma(s, x1, r21); r22 = TO.Fma(s, x2, r22); r23 = TO.Fma(s, x3, r23);
            s = TO.Splat(a3[o]);
            r30 = TO.Fma(s, x0, r30); r31 = TO.Fma(s, x1, r31); r32 = TO.Fma(s, x2, r32); r33 = TO.Fma(s, x3, r33);
        }
        TO.Store(c0, r00); TO.Store(c0 + W, r01); TO.Store(c0 + 2 * W, r02); TO.Store(c0 + 3 * W, r03);
        TO.Store(c1, r10); TO.Store(c1 + W, r11); TO.Store(c1 + 2 * W, r12); TO.Store(c1 + 3 * W, r13);
        TO.Store(c2, r20); TO.Store(c2 + W, r21); TO.Store(c2 + 2 * W, r22); TO.Store(c2 + 3 * W, r23);
        TO.Store(c3, r30); TO.Store(c3 + W, r31); TO.Store(c3 + 2 * W, r32); TO.Store(c3 + 3 * W, r33);
    }

    private static unsafe void Acc4x3<TO, TV>(float* a, int sm, int sj, int J, float* x, int ldx, float* c, int ldc, float* alpha)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        TV r00 = TO.Load(c0), r01 = TO.Load(c0 + W), r02 = TO.Load(c0 + 2 * W);
        TV r10 = TO.Load(c1), r11 = TO.Load(c1 + W), r12 = TO.Load(c1 + 2 * W);
        TV r20 = TO.Load(c2), r21 = TO.Load(c2 + W), r22 = TO.Load(c2 + 2 * W);
        TV r30 = TO.Load(c3), r31 = TO.Load(c3 + W), r32 = TO.Load(c3 + 2 * W);
        if (alpha != null)
        {
            TV s = TO.Splat(alpha[0]); r00 = TO.Mul(r00, s); r01 = TO.Mul(r01, s); r02 = TO.Mul(r02, s);
            s = TO.Splat(alpha[1]); r10 = TO.Mul(r10, s); r11 = TO.Mul(r11, s); r12 = TO.Mul(r12, s);
            s = TO.Splat(alpha[2]); r20 = TO.Mul(r20, s); r21 = TO.Mul(r21, s); r22 = TO.Mul(r22, s);
            s = TO.Splat(alpha[3]); r30 = TO.Mul(r30, s); r31 = TO.Mul(r31, s); r32 = TO.Mul(r32, s);
        }
        float* a0 = a, a1 = a + sm, a2 = a1 + sm, a3 = a2 + sm;
        for (int j = 0; j < J; j++, x += ldx)
        {
            long o = (long)j * sj;
            TV x0 = TO.Load(x), x1 = TO.Load(x + W), x2 = TO.Load(x + 2 * W);
            TV s = TO.Splat(a0[o]); r00 = TO.Fma(s, x0, r00); r01 = TO.Fma(s, x1, r01); r02 = TO.Fma(s, x2, r02);
            s = TO.Splat(a1[o]); r10 = TO.Fma(s, x0, r10); r11 = TO.Fma(s, x1, r11); r12 = TO.Fma(s, x2, r12);
            s = TO.Splat(a2[o]); r20 = TO.Fma(s, x0, r20); r21 = TO.Fma(s, x1, r21); r22 = TO.Fma(s, x2, r22);
            s = TO.Splat(a3[o]); r30 = TO.Fma(s, x0, r30); r31 = TO.Fma(s, x1, r31); r32 = TO.Fma(s, x2, r32);
        }
        TO.Store(c0, r00); TO.Store(c0 + W, r01); TO.Store(c0 + 2 * W, r02);
        TO.Store(c1, r10); TO.Store(c1 + W, r11); TO.Store(c1 + 2 * W, r12);
        TO.Store(c2, r20); TO.Store(c2 + W, r21); TO.Store(c2 + 2 * W, r22);
        TO.Store(c3, r30); TO.Store(c3 + W, r31); TO.Store(c3 + 2 * W, r32);
    }

    private static unsafe void Acc4x2<TO, TV>(float* a, int sm, int sj, int J, float* x, int ldx, float* c, int ldc, float* alpha)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        TV r00 = TO.Load(c0), r01 = TO.Load(c0 + W), r10 = TO.Load(c1), r11 = TO.Load(c1 + W);
        TV r20 = TO.Load(c2), r21 = TO.Load(c2 + W), r30 = TO.Load(c3), r31 = TO.Load(c3 + W);
        if (alpha != null)
        {
            TV s = TO.Splat(alpha[0]); r00 = TO.Mul(r00, s); r01 = TO.Mul(r01, s);
            s = TO.Splat(alpha[1]); r10 = TO.Mul(r10, s); r11 = TO.Mul(r11, s);
            s = TO.Splat(alpha[2]); r20 = TO.Mul(r20, s); r21 = TO.Mul(r21, s);
            s = TO.Splat(alpha[3]); r30 = TO.Mul(r30, s); r31 = TO.Mul(r31, s);
        }
        float* a0 = a, a1 = a + sm, a2 = a1 + sm, a3 = a2 + sm;
        for (int j = 0; j < J; j++, x += ldx)
        {
            long o = (long)j * sj;
            TV x0 = TO.Load(x), x1 = TO.Load(x + W);
            TV s = TO.Splat(a0[o]); r00 = TO.Fma(s, x0, r00); r01 = TO.Fma(s, x1, r01);
            s = TO.Splat(a1[o]); r10 = TO.Fma(s, x0, r10); r11 = TO.Fma(s, x1, r11);
            s = TO.Splat(a2[o]); r20 = TO.Fma(s, x0, r20); r21 = TO.Fma(s, x1, r21);
            s = TO.Splat(a3[o]); r30 = TO.Fma(s, x0, r30); r31 = TO.Fma(s, x1, r31);
        }
        TO.Store(c0, r00); TO.Store(c0 + W, r01); TO.Store(c1, r10); TO.Store(c1 + W, r11);
        TO.Store(c2, r20); TO.Store(c2 + W, r21); TO.Store(c3, r30); TO.Store(c3 + W, r31);
    }

    private static unsafe void Acc4x1<TO, TV>(float* a, int sm, int sj, int J, float* x, int ldx, float* c, int ldc, float* alpha)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        float* c0 = c, c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        TV r0 = TO.Load(c0), r1 = TO.Load(c1), r2 = TO.Load(c2), r3 = TO.Load(c3);
        if (alpha != null)
        {
            r0 = TO.Mul(r0, TO.Splat(alpha[0])); r1 = TO.Mul(r1, TO.Splat(alpha[1]));
            r2 = TO.Mul(r2, TO.Splat(alpha[2])); r3 = TO.Mul(r3, TO.Splat(alpha[3]));
        }
        float* a0 = a, a1 = a + sm, a2 = a1 + sm, a3 = a2 + sm;
        for (int j = 0; j < J; j++, x += ldx)
        {
            long o = (long)j * sj;
            TV x0 = TO.Load(x);
            r0 = TO.Fma(TO.Splat(a0[o]), x0, r0); r1 = TO.Fma(TO.Splat(a1[o]), x0, r1);
            r2 = TO.Fma(TO.Splat(a2[o]), x0, r2); r3 = TO.Fma(TO.Splat(a3[o]), x0, r3);
        }
        TO.Store(c0, r0); TO.Store(c1, r1); TO.Store(c2, r2); TO.Store(c3, r3);
    }

    /// <summary>AccRows at the given level (which must divide HS).</summary>
    private static unsafe void AccRows(SimdLevel level, float* A, int sm, int sj, int M, int J, float* X, int ldx, float* C, int ldc, float* alpha, int HS,
        int endShift = NoBand, int startShift = NoBand)
    {
        switch (level)
        {
            case SimdLevel.V512: AccRows<V512, Vector512<float>>(A, sm, sj, M, J, X, ldx, C, ldc, alpha, HS, endShift, startShift); break;
            case SimdLevel.V256: AccRows<V256, Vector256<float>>(A, sm, sj, M, J, X, ldx, C, ldc, alpha, HS, endShift, startShift); break;
            case SimdLevel.V128: AccRows<V128, Vector128<float>>(A, sm, sj, M, J, X, ldx, C, ldc, alpha, HS, endShift, startShift); break;
            default: AccRows<Scalar, float>(A, sm, sj, M, J, X, ldx, C, ldc, alpha, HS, endShift, startShift); break;
        }
    }

    /// <summary>The lanes of a·b before the final sum (two chains added), for <see cref="IVec{TV}.Sum4"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe TV DotLanes<TO, TV>(float* a, float* b, int HS) where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        TV s0 = TO.Zero, s1 = TO.Zero;
        int d = 0;
        for (; d + 2 * W <= HS; d += 2 * W)
        {
            s0 = TO.Fma(TO.Load(a + d), TO.Load(b + d), s0);
            s1 = TO.Fma(TO.Load(a + d + W), TO.Load(b + d + W), s1);
        }
        if (d < HS) s0 = TO.Fma(TO.Load(a + d), TO.Load(b + d), s0);
        return TO.Add(s0, s1);
    }

    /// <summary>Σ_d a[d]·b[d] over HS (a multiple of the vector width), two accumulator chains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Dot<TO, TV>(float* a, float* b, int HS) where TO : struct, IVec<TV> where TV : unmanaged
        => TO.Sum(DotLanes<TO, TV>(a, b, HS));

    /// <summary>
    /// Applies the visibility rules to a score tile St[r·Tile + c] (key j0 + r, query i0 + c; rows &lt; nk, columns &lt; N)
    /// by writing -∞: whole rows for padding keys, a prefix of columns for causality, a suffix for the sliding window
    /// and a suffix for the queries of later segments (segment ids are non-decreasing, so the queries that share key
    /// j's segment end where the segment ends).
    /// </summary>
    private static unsafe void MaskTile(float* St, int nk, int N, int j0, int i0, int off, int window, byte* maskRow, int* segRow, int Tk)
    {
        // segEnd: first position after key j's segment, capped at the tile's last query position + 1 (or Tk);
        // walked from the last key down so each tile scans its keys once.
        int cap = Math.Min(Tk, off + i0 + N), segEnd = cap;
        if (segRow != null)
        {
            int jl = j0 + nk - 1;
            segEnd = jl + 1;
            while (segEnd < cap && segRow[segEnd] == segRow[jl]) segEnd++;
        }
        for (int r = nk - 1; r >= 0; r--)
        {
            int j = j0 + r;
            if (segRow != null && r < nk - 1 && segRow[j] != segRow[j + 1]) segEnd = j + 1;
            float* row = St + r * Tile;
            if (maskRow != null && maskRow[j] == 0)
            {
                new Span<float>(row, N).Fill(float.NegativeInfinity);
                continue;
            }
            int cLo = j - off - i0;                 // visible iff j <= off + i0 + c
            if (cLo > 0) new Span<float>(row, Math.Min(cLo, N)).Fill(float.NegativeInfinity);
            int cHi = N;
            if (window > 0) cHi = Math.Max(cLo + window, 0);   // visible iff off + i0 + c - j < window
            if (segRow != null) cHi = Math.Min(cHi, Math.Max(segEnd - off - i0, 0));   // visible iff off + i0 + c < segEnd
            if (cHi < N) new Span<float>(row + cHi, N - cHi).Fill(float.NegativeInfinity);
        }
    }

    /// <summary>True when every key in [j0, j0 + nk) is padding.</summary>
    private static unsafe bool AllMasked(byte* maskRow, int j0, int nk)
    {
        if (maskRow == null) return false;
        return new ReadOnlySpan<byte>(maskRow + j0, nk).IndexOfAnyExcept((byte)0) < 0;
    }

    // exp for the softmax, inlined (Vector512.Exp is an out-of-line call that goes through double and made the
    // exp step cost about as much as both tile GEMMs at HS = 64). Cephes expf: x = n·ln2 + r, |r| <= ln2/2,
    // exp(r) = 1 + (r + r²·P5(r)), 2^n built in the exponent bits via the 1.5·2^23 rounding trick. Adding the 1
    // last matters: (1 + r) + r²·P5 rounded twice near 1 and was biased, +0.18 ulp on average (max 1.2 ulp, over
    // [-20, 0]); this order measures mean 0.27 ulp, max 1.0, bias -0.01 (MathF.Exp: mean 0.25, max 0.5). Inputs below -87 (including -∞) give exactly 0 so masked keys contribute nothing; NaN stays NaN.
    private const float ExpLo = -87f, ExpHi = 88f, Log2E = 1.44269504088896341f, RoundMagic = 12582912f;
    private const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpApprox(Vector512<float> x)
    {
        var xc = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(ExpLo)), Vector512.Create(ExpHi));
        var t = Vector512.MultiplyAddEstimate(xc, Vector512.Create(Log2E), Vector512.Create(RoundMagic));
        var n = t - Vector512.Create(RoundMagic);
        var r = Vector512.MultiplyAddEstimate(n, Vector512.Create(-Ln2Hi), xc);
        r = Vector512.MultiplyAddEstimate(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.MultiplyAddEstimate(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(P2));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(P3));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(P4));
        p = Vector512.MultiplyAddEstimate(p, r, Vector512.Create(P5));
        p = Vector512.MultiplyAddEstimate(p, r * r, r) + Vector512<float>.One;
        var scale = (Vector512.ShiftLeft(t.AsInt32(), 23) + Vector512.Create(0x3F800000)).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpLo)), Vector512<float>.Zero, p * scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> ExpApprox(Vector256<float> x)
    {
        var xc = Vector256.MinNative(Vector256.MaxNative(x, Vector256.Create(ExpLo)), Vector256.Create(ExpHi));
        var t = Vector256.MultiplyAddEstimate(xc, Vector256.Create(Log2E), Vector256.Create(RoundMagic));
        var n = t - Vector256.Create(RoundMagic);
        var r = Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2Hi), xc);
        r = Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.MultiplyAddEstimate(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P2));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P3));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P4));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P5));
        p = Vector256.MultiplyAddEstimate(p, r * r, r) + Vector256<float>.One;
        var scale = (Vector256.ShiftLeft(t.AsInt32(), 23) + Vector256.Create(0x3F800000)).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpLo)), Vector256<float>.Zero, p * scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> ExpApprox(Vector128<float> x)
    {
        var xc = Vector128.MinNative(Vector128.MaxNative(x, Vector128.Create(ExpLo)), Vector128.Create(ExpHi));
        var t = Vector128.MultiplyAddEstimate(xc, Vector128.Create(Log2E), Vector128.Create(RoundMagic));
        var n = t - Vector128.Create(RoundMagic);
        var r = Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2Hi), xc);
        r = Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2Lo), r);
        var p = Vector128.MultiplyAddEstimate(Vector128.Create(P0), r, Vector128.Create(P1));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P2));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P3));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P4));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P5));
        p = Vector128.MultiplyAddEstimate(p, r * r, r) + Vector128<float>.One;
        var scale = (Vector128.ShiftLeft(t.AsInt32(), 23) + Vector128.Create(0x3F800000)).AsSingle();
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(ExpLo)), Vector128<float>.Zero, p * scale);
    }

    private static int RoundUp(int n, int m) => (n + m - 1) / m * m;

    private static int Width(SimdLevel level) => level switch
    {
        SimdLevel.V512 => 16,
        SimdLevel.V256 => 8,
        SimdLevel.V128 => 4,
        _ => 1,
    };
}
