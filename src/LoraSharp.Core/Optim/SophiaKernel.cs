// The Sophia-G elementwise updates in float32 (Liu et al. 2023, "Sophia: A Scalable Stochastic Second-order
// Optimizer for Language Model Pre-training", Algorithm 3 with the authors' SophiaG code). Per element:
//   step:     p = p · (1 − lr·wd)
//             m = β1·m + (1−β1)·g
//             p = p − lr · clamp(m / max(γ·h, ε), −1, 1)      (= lr·sign(m)·min(|m| / max(γ·h, ε), 1))
//   hessian:  h = β2·h + ((1−β2)·B) · ĝ²                     (ĝ: gradient of the loss on sampled labels, B tokens)
// Clamping the ratio is exactly sign(m)·min(|m|/d, 1) for d > 0 (IEEE division is sign-symmetric); NaN propagates
// (Max/Min and MathF.Max/Min both return NaN for a NaN input). The vector paths use the same operations in the same
// order as the scalar twins, so all paths agree bit for bit.
// Not here: the Hessian estimator itself (Training samples the labels and runs the extra backward).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Optim;

/// <summary>Sophia-G update kernels (vectorized and scalar reference).</summary>
public static class SophiaKernel
{
    /// <summary>The per-step scalars of one Sophia step, rounded to float.</summary>
    public readonly struct Coefficients
    {
        /// <summary>1 − lr·wd.</summary>
        public float Decay { get; init; }
        /// <summary>Learning rate.</summary>
        public float Lr { get; init; }
        /// <summary>β1.</summary>
        public float Beta1 { get; init; }
        /// <summary>1 − β1.</summary>
        public float OneMinusBeta1 { get; init; }
        /// <summary>γ (the authors' rho): scale of the Hessian in the denominator.</summary>
        public float Gamma { get; init; }
        /// <summary>ε: the smallest denominator.</summary>
        public float Eps { get; init; }

        /// <summary>The scalars for one step, computed in double.</summary>
        public static Coefficients For(double lr, double beta1, double gamma, double eps, double weightDecay) => new()
        {
            Decay = (float)(1 - lr * weightDecay),
            Lr = (float)lr,
            Beta1 = (float)beta1,
            OneMinusBeta1 = (float)(1 - beta1),
            Gamma = (float)gamma,
            Eps = (float)eps,
        };
    }

    /// <summary>The scalars of one Hessian EMA update, rounded to float.</summary>
    public readonly struct HessianCoefficients
    {
        /// <summary>β2.</summary>
        public float Beta2 { get; init; }
        /// <summary>(1 − β2)·B, B the number of tokens the sampled loss averaged over.</summary>
        public float Scale { get; init; }

        /// <summary>The scalars, computed in double.</summary>
        public static HessianCoefficients For(double beta2, long batchTokens) => new()
        {
            Beta2 = (float)beta2,
            Scale = (float)((1 - beta2) * batchTokens),
        };
    }

    /// <summary>One Sophia step on n elements, on the widest vector path <see cref="Simd.Level"/> allows.</summary>
    /// <param name="grad">[n] gradient (read only).</param>
    /// <param name="param">[n] values, updated in place.</param>
    /// <param name="expAvg">[n] momentum m, updated in place.</param>
    /// <param name="hessian">[n] Hessian estimate h (read only here).</param>
    /// <param name="c">The step's scalars.</param>
    public static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, ReadOnlySpan<float> hessian, in Coefficients c)
        => Update(grad, param, expAvg, hessian, c, Simd.Level);

    /// <summary>The scalar twin of <see cref="Update(ReadOnlySpan{float}, Span{float}, Span{float}, ReadOnlySpan{float}, in Coefficients)"/>.</summary>
    public static void UpdateReference(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, ReadOnlySpan<float> hessian, in Coefficients c)
    {
        Check(grad, param, expAvg, hessian);
        for (int i = 0; i < grad.Length; i++) Scalar(grad, param, expAvg, hessian, c, i);
    }

    /// <summary>h = β2·h + (1−β2)·B·ĝ² on n elements, on the widest vector path <see cref="Simd.Level"/> allows.</summary>
    /// <param name="sampledGrad">[n] ĝ, the gradient of the mean loss on sampled labels (read only).</param>
    /// <param name="hessian">[n] h, updated in place.</param>
    /// <param name="c">β2 and (1−β2)·B.</param>
    public static void UpdateHessian(ReadOnlySpan<float> sampledGrad, Span<float> hessian, in HessianCoefficients c)
        => UpdateHessian(sampledGrad, hessian, c, Simd.Level);

    /// <summary>The scalar twin of <see cref="UpdateHessian(ReadOnlySpan{float}, Span{float}, in HessianCoefficients)"/>.</summary>
    public static void UpdateHessianReference(ReadOnlySpan<float> sampledGrad, Span<float> hessian, in HessianCoefficients c)
    {
        CheckHessian(sampledGrad, hessian);
        for (int i = 0; i < sampledGrad.Length; i++) hessian[i] = hessian[i] * c.Beta2 + c.Scale * (sampledGrad[i] * sampledGrad[i]);
    }

    internal static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, ReadOnlySpan<float> hessian, in Coefficients c, SimdLevel level)
    {
        Check(grad, param, expAvg, hessian);
        int n = grad.Length, i = 0;
        ref float g = ref MemoryMarshal.GetReference(grad);
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float m = ref MemoryMarshal.GetReference(expAvg);
        ref float h = ref MemoryMarshal.GetReference(hessian);
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var decay = Vector512.Create(c.Decay); var lr = Vector512.Create(c.Lr);
            var b1 = Vector512.Create(c.Beta1); var omb1 = Vector512.Create(c.OneMinusBeta1);
            var gamma = Vector512.Create(c.Gamma); var eps = Vector512.Create(c.Eps);
            var one = Vector512.Create(1f); var minusOne = Vector512.Create(-1f);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var gi = Vector512.LoadUnsafe(ref g, (nuint)i);
                var pi = Vector512.LoadUnsafe(ref p, (nuint)i) * decay;
                var mi = Vector512.LoadUnsafe(ref m, (nuint)i) * b1 + omb1 * gi;
                var den = Vector512.Max(gamma * Vector512.LoadUnsafe(ref h, (nuint)i), eps);
                var r = Vector512.Min(Vector512.Max(mi / den, minusOne), one);
                (pi - lr * r).StoreUnsafe(ref p, (nuint)i);
                mi.StoreUnsafe(ref m, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var decay = Vector256.Create(c.Decay); var lr = Vector256.Create(c.Lr);
            var b1 = Vector256.Create(c.Beta1); var omb1 = Vector256.Create(c.OneMinusBeta1);
            var gamma = Vector256.Create(c.Gamma); var eps = Vector256.Create(c.Eps);
            var one = Vector256.Create(1f); var minusOne = Vector256.Create(-1f);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gi = Vector256.LoadUnsafe(ref g, (nuint)i);
                var pi = Vector256.LoadUnsafe(ref p, (nuint)i) * decay;
                var mi = Vector256.LoadUnsafe(ref m, (nuint)i) * b1 + omb1 * gi;
                var den = Vector256.Max(gamma * Vector256.LoadUnsafe(ref h, (nuint)i), eps);
                var r = Vector256.Min(Vector256.Max(mi / den, minusOne), one);
                (pi - lr * r).StoreUnsafe(ref p, (nuint)i);
                mi.StoreUnsafe(ref m, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var decay = Vector128.Create(c.Decay); var lr = Vector128.Create(c.Lr);
            var b1 = Vector128.Create(c.Beta1); var omb1 = Vector128.Create(c.OneMinusBeta1);
            var gamma = Vector128.Create(c.Gamma); var eps = Vector128.Create(c.Eps);
            var one = Vector128.Create(1f); var minusOne = Vector128.Create(-1f);
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                var gi = Vector128.LoadUnsafe(ref g, (nuint)i);
                var pi = Vector128.LoadUnsafe(ref p, (nuint)i) * decay;
                var mi = Vector128.LoadUnsafe(ref m, (nuint)i) * b1 + omb1 * gi;
                var den = Vector128.Max(gamma * Vector128.LoadUnsafe(ref h, (nuint)i), eps);
                var r = Vector128.Min(Vector128.Max(mi / den, minusOne), one);
                (pi - lr * r).StoreUnsafe(ref p, (nuint)i);
                mi.StoreUnsafe(ref m, (nuint)i);
            }
        }
        for (; i < n; i++) Scalar(grad, param, expAvg, hessian, c, i);
    }

    internal static void UpdateHessian(ReadOnlySpan<float> sampledGrad, Span<float> hessian, in HessianCoefficients c, SimdLevel level)
    {
        CheckHessian(sampledGrad, hessian);
        int n = sampledGrad.Length, i = 0;
        ref float g = ref MemoryMarshal.GetReference(sampledGrad);
        ref float h = ref MemoryMarshal.GetReference(hessian);
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var b2 = Vector512.Create(c.Beta2); var s = Vector512.Create(c.Scale);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var gi = Vector512.LoadUnsafe(ref g, (nuint)i);
                (Vector512.LoadUnsafe(ref h, (nuint)i) * b2 + s * (gi * gi)).StoreUnsafe(ref h, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var b2 = Vector256.Create(c.Beta2); var s = Vector256.Create(c.Scale);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gi = Vector256.LoadUnsafe(ref g, (nuint)i);
                (Vector256.LoadUnsafe(ref h, (nuint)i) * b2 + s * (gi * gi)).StoreUnsafe(ref h, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var b2 = Vector128.Create(c.Beta2); var s = Vector128.Create(c.Scale);
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                var gi = Vector128.LoadUnsafe(ref g, (nuint)i);
                (Vector128.LoadUnsafe(ref h, (nuint)i) * b2 + s * (gi * gi)).StoreUnsafe(ref h, (nuint)i);
            }
        }
        for (; i < n; i++) hessian[i] = hessian[i] * c.Beta2 + c.Scale * (sampledGrad[i] * sampledGrad[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scalar(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, ReadOnlySpan<float> hessian, in Coefficients c, int i)
    {
        float p = param[i] * c.Decay;
        float m = expAvg[i] * c.Beta1 + c.OneMinusBeta1 * grad[i];
        float den = MathF.Max(c.Gamma * hessian[i], c.Eps);
        float r = MathF.Min(MathF.Max(m / den, -1f), 1f);
        param[i] = p - c.Lr * r;
        expAvg[i] = m;
    }

    private static void Check(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, ReadOnlySpan<float> hessian)
    {
        if (param.Length != grad.Length || expAvg.Length != grad.Length || hessian.Length != grad.Length)
            throw new ArgumentException($"Sophia update lengths differ: grad [{grad.Length}], param [{param.Length}], exp_avg [{expAvg.Length}], hessian [{hessian.Length}].");
    }

    private static void CheckHessian(ReadOnlySpan<float> sampledGrad, Span<float> hessian)
    {
        if (hessian.Length != sampledGrad.Length)
            throw new ArgumentException($"Sophia Hessian update lengths differ: sampled grad [{sampledGrad.Length}], hessian [{hessian.Length}].");
    }
}
