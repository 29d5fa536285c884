// The GEMM microkernels: one MR x 32 tile of C from an MR-row panel of packed A and a 32-column panel of packed B.
// Generated shape (MR = 6 rows unrolled by hand, so every accumulator is a local the JIT keeps in a register).
// Each kernel computes, for every element of the tile, acc = fma(a[k], b[k], acc) for k = 0..kc-1 in order,
// then C = acc (store) or C = C + acc (add). Every SIMD width does exactly these operations, so all widths give
// bit-identical results. Not here: blocking, packing, edges (see Gemm.cs); a scalar kernel (the scalar path is
// MatMul.Reference).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Kernels.Gemm;

internal static unsafe partial class GemmKernels
{
    /// <summary>Rows of the C tile (and of an A micro-panel).</summary>
    public const int MR = 6;

    /// <summary>Columns of the C tile (and of a B micro-panel).</summary>
    public const int NR = 32;


    /// <summary>
    /// C[MR, 32] (+)= A·B with a = packed A [kc][MR], b = packed B [kc][32] (row stride 32), c row stride ldc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel512(float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        float* ap = a, bp = b, cp = c;
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        for (int k = 0; k < kc; k++)
        {
            Vector512<float> b0 = Vector512.Load(bp), b1 = Vector512.Load(bp + 16);
            Vector512<float> a0 = Vector512.Create(ap[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(ap[1]);
            c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(ap[2]);
            c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(ap[3]);
            c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(ap[4]);
            c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(ap[5]);
            c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            ap += MR;
            bp += NR;
        }
        if (add)
        {
            Vector512.Store(Vector512.Load(cp + 0 * ldc) + c00, cp + 0 * ldc);
            Vector512.Store(Vector512.Load(cp + 0 * ldc + 16) + c01, cp + 0 * ldc + 16);
            Vector512.Store(Vector512.Load(cp + 1 * ldc) + c10, cp + 1 * ldc);
            Vector512.Store(Vector512.Load(cp + 1 * ldc + 16) + c11, cp + 1 * ldc + 16);
            Vector512.Store(Vector512.Load(cp + 2 * ldc) + c20, cp + 2 * ldc);
            Vector512.Store(Vector512.Load(cp + 2 * ldc + 16) + c21, cp + 2 * ldc + 16);
            Vector512.Store(Vector512.Load(cp + 3 * ldc) + c30, cp + 3 * ldc);
            Vector512.Store(Vector512.Load(cp + 3 * ldc + 16) + c31, cp + 3 * ldc + 16);
            Vector512.Store(Vector512.Load(cp + 4 * ldc) + c40, cp + 4 * ldc);
            Vector512.Store(Vector512.Load(cp + 4 * ldc + 16) + c41, cp + 4 * ldc + 16);
            Vector512.Store(Vector512.Load(cp + 5 * ldc) + c50, cp + 5 * ldc);
            Vector512.Store(Vector512.Load(cp + 5 * ldc + 16) + c51, cp + 5 * ldc + 16);
        }
        else
        {
            Vector512.Store(c00, cp + 0 * ldc);
            Vector512.Store(c01, cp + 0 * ldc + 16);
            Vector512.Store(c10, cp + 1 * ldc);
            Vector512.Store(c11, cp + 1 * ldc + 16);
            Vector512.Store(c20, cp + 2 * ldc);
            Vector512.Store(c21, cp + 2 * ldc + 16);
            Vector512.Store(c30, cp + 3 * ldc);
            Vector512.Store(c31, cp + 3 * ldc + 16);
            Vector512.Store(c40, cp + 4 * ldc);
            Vector512.Store(c41, cp + 4 * ldc + 16);
            Vector512.Store(c50, cp + 5 * ldc);
            Vector512.Store(c51, cp + 5 * ldc + 16);
        }
    }

    /// <summary>
    /// C[MR, 32] (+)= A·B with a = packed A [kc][MR], b = packed B [kc][32] (row stride 32), c row stride ldc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel256(float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        for (int h = 0; h < 2; h++)
        {
            float* ap = a, bp = b + h * 16, cp = c + h * 16;
            Vector256<float> c00 = default, c01 = default;
            Vector256<float> c10 = default, c11 = default;
            Vector256<float> c20 = default, c21 = default;
            Vector256<float> c30 = default, c31 = default;
            Vector256<float> c40 = default, c41 = default;
            Vector256<float> c50 = default, c51 = default;
            for (int k = 0; k < kc; k++)
            {
                Vector256<float> b0 = Vector256.Load(bp), b1 = Vector256.Load(bp + 8);
                Vector256<float> a0 = Vector256.Create(ap[0]);
                c00 = Vector256.FusedMultiplyAdd(a0, b0, c00);
                c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
                Vector256<float> a1 = Vector256.Create(ap[1]);
                c10 = Vector256.FusedMultiplyAdd(a1, b0, c10);
                c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
                Vector256<float> a2 = Vector256.Create(ap[2]);
                c20 = Vector256.FusedMultiplyAdd(a2, b0, c20);
                c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
                Vector256<float> a3 = Vector256.Create(ap[3]);
                c30 = Vector256.FusedMultiplyAdd(a3, b0, c30);
                c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
                Vector256<float> a4 = Vector256.Create(ap[4]);
                c40 = Vector256.FusedMultiplyAdd(a4, b0, c40);
                c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
                Vector256<float> a5 = Vector256.Create(ap[5]);
                c50 = Vector256.FusedMultiplyAdd(a5, b0, c50);
                c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
                ap += MR;
                bp += NR;
            }
            if (add)
            {
                Vector256.Store(Vector256.Load(cp + 0 * ldc) + c00, cp + 0 * ldc);
                Vector256.Store(Vector256.Load(cp + 0 * ldc + 8) + c01, cp + 0 * ldc + 8);
                Vector256.Store(Vector256.Load(cp + 1 * ldc) + c10, cp + 1 * ldc);
                Vector256.Store(Vector256.Load(cp + 1 * ldc + 8) + c11, cp + 1 * ldc + 8);
                Vector256.Store(Vector256.Load(cp + 2 * ldc) + c20, cp + 2 * ldc);
                Vector256.Store(Vector256.Load(cp + 2 * ldc + 8) + c21, cp + 2 * ldc + 8);
                Vector256.Store(Vector256.Load(cp + 3 * ldc) + c30, cp + 3 * ldc);
                Vector256.Store(Vector256.Load(cp + 3 * ldc + 8) + c31, cp + 3 * ldc + 8);
                Vector256.Store(Vector256.Load(cp + 4 * ldc) + c40, cp + 4 * ldc);
                Vector256.Store(Vector256.Load(cp + 4 * ldc + 8) + c41, cp + 4 * ldc + 8);
                Vector256.Store(Vector256.Load(cp + 5 * ldc) + c50, cp + 5 * ldc);
                Vector256.Store(Vector256.Load(cp + 5 * ldc + 8) + c51, cp + 5 * ldc + 8);
            }
            else
            {
                Vector256.Store(c00, cp + 0 * ldc);
                Vector256.Store(c01, cp + 0 * ldc + 8);
                Vector256.Store(c10, cp + 1 * ldc);
                Vector256.Store(c11, cp + 1 * ldc + 8);
                Vector256.Store(c20, cp + 2 * ldc);
                Vector256.Store(c21, cp + 2 * ldc + 8);
                Vector256.Store(c30, cp + 3 * ldc);
                Vector256.Store(c31, cp + 3 * ldc + 8);
                Vector256.Store(c40, cp + 4 * ldc);
                Vector256.Store(c41, cp + 4 * ldc + 8);
                Vector256.Store(c50, cp + 5 * ldc);
                Vector256.Store(c51, cp + 5 * ldc + 8);
            }
        }
    }

    /// <summary>
    /// C[MR, 32] (+)= A·B with a = packed A [kc][MR], b = packed B [kc][32] (row stride 32), c row stride ldc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel128(float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        for (int h = 0; h < 4; h++)
        {
            float* ap = a, bp = b + h * 8, cp = c + h * 8;
            Vector128<float> c00 = default, c01 = default;
            Vector128<float> c10 = default, c11 = default;
            Vector128<float> c20 = default, c21 = default;
            Vector128<float> c30 = default, c31 = default;
            Vector128<float> c40 = default, c41 = default;
            Vector128<float> c50 = default, c51 = default;
            for (int k = 0; k < kc; k++)
            {
                Vector128<float> b0 = Vector128.Load(bp), b1 = Vector128.Load(bp + 4);
                Vector128<float> a0 = Vector128.Create(ap[0]);
                c00 = Vector128.FusedMultiplyAdd(a0, b0, c00);
                c01 = Vector128.FusedMultiplyAdd(a0, b1, c01);
                Vector128<float> a1 = Vector128.Create(ap[1]);
                c10 = Vector128.FusedMultiplyAdd(a1, b0, c10);
                c11 = Vector128.FusedMultiplyAdd(a1, b1, c11);
                Vector128<float> a2 = Vector128.Create(ap[2]);
                c20 = Vector128.FusedMultiplyAdd(a2, b0, c20);
                c21 = Vector128.FusedMultiplyAdd(a2, b1, c21);
                Vector128<float> a3 = Vector128.Create(ap[3]);
                c30 = Vector128.FusedMultiplyAdd(a3, b0, c30);
                c31 = Vector128.FusedMultiplyAdd(a3, b1, c31);
                Vector128<float> a4 = Vector128.Create(ap[4]);
                c40 = Vector128.FusedMultiplyAdd(a4, b0, c40);
                c41 = Vector128.FusedMultiplyAdd(a4, b1, c41);
                Vector128<float> a5 = Vector128.Create(ap[5]);
                c50 = Vector128.FusedMultiplyAdd(a5, b0, c50);
                c51 = Vector128.FusedMultiplyAdd(a5, b1, c51);
                ap += MR;
                bp += NR;
            }
            if (add)
            {
                Vector128.Store(Vector128.Load(cp + 0 * ldc) + c00, cp + 0 * ldc);
                Vector128.Store(Vector128.Load(cp + 0 * ldc + 4) + c01, cp + 0 * ldc + 4);
                Vector128.Store(Vector128.Load(cp + 1 * ldc) + c10, cp + 1 * ldc);
                Vector128.Store(Vector128.Load(cp + 1 * ldc + 4) + c11, cp + 1 * ldc + 4);
                Vector128.Store(Vector128.Load(cp + 2 * ldc) + c20, cp + 2 * ldc);
                Vector128.Store(Vector128.Load(cp + 2 * ldc + 4) + c21, cp + 2 * ldc + 4);
                Vector128.Store(Vector128.Load(cp + 3 * ldc) + c30, cp + 3 * ldc);
                Vector128.Store(Vector128.Load(cp + 3 * ldc + 4) + c31, cp + 3 * ldc + 4);
                Vector128.Store(Vector128.Load(cp + 4 * ldc) + c40, cp + 4 * ldc);
                Vector128.Store(Vector128.Load(cp + 4 * ldc + 4) + c41, cp + 4 * ldc + 4);
                Vector128.Store(Vector128.Load(cp + 5 * ldc) + c50, cp + 5 * ldc);
                Vector128.Store(Vector128.Load(cp + 5 * ldc + 4) + c51, cp + 5 * ldc + 4);
            }
            else
            {
                Vector128.Store(c00, cp + 0 * ldc);
                Vector128.Store(c01, cp + 0 * ldc + 4);
                Vector128.Store(c10, cp + 1 * ldc);
                Vector128.Store(c11, cp + 1 * ldc + 4);
                Vector128.Store(c20, cp + 2 * ldc);
                Vector128.Store(c21, cp + 2 * ldc + 4);
                Vector128.Store(c30, cp + 3 * ldc);
                Vector128.Store(c31, cp + 3 * ldc + 4);
                Vector128.Store(c40, cp + 4 * ldc);
                Vector128.Store(c41, cp + 4 * ldc + 4);
                Vector128.Store(c50, cp + 5 * ldc);
                Vector128.Store(c51, cp + 5 * ldc + 4);
            }
        }
    }
}
