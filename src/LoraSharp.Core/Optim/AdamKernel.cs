// The Adam / AdamW elementwise update in float32, as torch.optim.Adam(W) (single-tensor CPU path, torch 1.13
// order of operations: exp_avg.mul_(β1).add_(g, 1-β1), exp_avg_sq.mul_(β2).addcmul_(g, g, 1-β2),
// denom = sqrt(exp_avg_sq)/sqrt(bc2) + eps, p.addcdiv_(exp_avg, denom, -step_size)). Per element, step t:
//   g   = grad + l2·p                      (Adam's L2 weight decay; l2 = 0 for AdamW)
//   p   = p · decay                        (AdamW's decoupled decay: decay = 1 − lr·wd; 1 for Adam)
//   m   = β1·m + (1−β1)·g
//   v   = β2·v + ((1−β2)·g)·g
//   p   = p − (stepSize·m) / (sqrt(v)/sqrt(1−β2ᵗ) + eps),   stepSize = lr/(1−β1ᵗ)
// The step scalars are computed once per step in double and rounded to float, as torch does. The vector paths
// use the same operations in the same order as the scalar twin (no FMA), so all paths agree bit for bit.
// Not here: amsgrad, maximize, capturable/fused variants.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Optim;

/// <summary>Adam / AdamW update kernels (vectorized and scalar reference).</summary>
public static class AdamKernel
{
    /// <summary>The per-step scalars of one Adam(W) update, rounded to float.</summary>
    public readonly struct Coefficients
    {
        /// <summary>Multiplier applied to p before the update (1 − lr·wd for AdamW, 1 for Adam).</summary>
        public float Decay { get; init; }
        /// <summary>L2 coefficient added to the gradient (wd for Adam, 0 for AdamW).</summary>
        public float L2 { get; init; }
        /// <summary>β1.</summary>
        public float Beta1 { get; init; }
        /// <summary>1 − β1.</summary>
        public float OneMinusBeta1 { get; init; }
        /// <summary>β2.</summary>
        public float Beta2 { get; init; }
        /// <summary>1 − β2.</summary>
        public float OneMinusBeta2 { get; init; }
        /// <summary>lr / (1 − β1ᵗ).</summary>
        public float StepSize { get; init; }
        /// <summary>sqrt(1 − β2ᵗ).</summary>
        public float BiasCorrection2Sqrt { get; init; }
        /// <summary>eps.</summary>
        public float Eps { get; init; }

        /// <summary>The scalars for step <paramref name="step"/> (1-based), computed in double as torch does.</summary>
        public static Coefficients For(double lr, double beta1, double beta2, double eps, double decoupledWeightDecay, double l2WeightDecay, int step)
        {
            double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
            return new Coefficients
            {
                Decay = (float)(1 - lr * decoupledWeightDecay),
                L2 = (float)l2WeightDecay,
                Beta1 = (float)beta1,
                OneMinusBeta1 = (float)(1 - beta1),
                Beta2 = (float)beta2,
                OneMinusBeta2 = (float)(1 - beta2),
                StepSize = (float)(lr / bc1),
                BiasCorrection2Sqrt = (float)Math.Sqrt(bc2),
                Eps = (float)eps,
            };
        }
    }

    /// <summary>
    /// One Adam(W) step on n elements, on the widest vector path <see cref="Simd.Level"/> allows.
    /// </summary>
    /// <param name="grad">[n] gradient (read only).</param>
    /// <param name="param">[n] values, updated in place.</param>
    /// <param name="expAvg">[n] first moment m, updated in place.</param>
    /// <param name="expAvgSq">[n] second moment v, updated in place.</param>
    /// <param name="c">The step's scalars.</param>
    public static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, Span<float> expAvgSq, in Coefficients c)
        => Update(grad, param, expAvg, expAvgSq, c, Simd.Level);

    /// <summary>The scalar twin of <see cref="Update(ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, in Coefficients)"/>.</summary>
    public static void UpdateReference(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, Span<float> expAvgSq, in Coefficients c)
    {
        Check(grad, param, expAvg, expAvgSq);
        for (int i = 0; i < grad.Length; i++) Scalar(grad, param, expAvg, expAvgSq, c, i);
    }

    internal static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, Span<float> expAvgSq, in Coefficients c, SimdLevel level)
    {
        Check(grad, param, expAvg, expAvgSq);
        int n = grad.Length, i = 0;
        ref float g = ref MemoryMarshal.GetReference(grad);
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float m = ref MemoryMarshal.GetReference(expAvg);
        ref float v = ref MemoryMarshal.GetReference(expAvgSq);
        bool l2 = c.L2 != 0;
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var decay = Vector512.Create(c.Decay); var wd = Vector512.Create(c.L2);
            var b1 = Vector512.Create(c.Beta1); var omb1 = Vector512.Create(c.OneMinusBeta1);
            var b2 = Vector512.Create(c.Beta2); var omb2 = Vector512.Create(c.OneMinusBeta2);
            var step = Vector512.Create(c.StepSize); var bc2 = Vector512.Create(c.BiasCorrection2Sqrt); var eps = Vector512.Create(c.Eps);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var pi = Vector512.LoadUnsafe(ref p, (nuint)i);
                var gi = Vector512.LoadUnsafe(ref g, (nuint)i);
                if (l2) gi += wd * pi;
                pi *= decay;
                var mi = Vector512.LoadUnsafe(ref m, (nuint)i) * b1 + omb1 * gi;
                var vi = Vector512.LoadUnsafe(ref v, (nuint)i) * b2 + omb2 * gi * gi;
                var denom = Vector512.Sqrt(vi) / bc2 + eps;
                pi -= step * mi / denom;
                pi.StoreUnsafe(ref p, (nuint)i); mi.StoreUnsafe(ref m, (nuint)i); vi.StoreUnsafe(ref v, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var decay = Vector256.Create(c.Decay); var wd = Vector256.Create(c.L2);
            var b1 = Vector256.Create(c.Beta1); var omb1 = Vector256.Create(c.OneMinusBeta1);
            var b2 = Vector256.Create(c.Beta2); var omb2 = Vector256.Create(c.OneMinusBeta2);
            var step = Vector256.Create(c.StepSize); var bc2 = Vector256.Create(c.BiasCorrection2Sqrt); var eps = Vector256.Create(c.Eps);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var pi = Vector256.LoadUnsafe(ref p, (nuint)i);
                var gi = Vector256.LoadUnsafe(ref g, (nuint)i);
                if (l2) gi += wd * pi;
                pi *= decay;
                var mi = Vector256.LoadUnsafe(ref m, (nuint)i) * b1 + omb1 * gi;
                var vi = Vector256.LoadUnsafe(ref v, (nuint)i) * b2 + omb2 * gi * gi;
                var denom = Vector256.Sqrt(vi) / bc2 + eps;
                pi -= step * mi / denom;
                pi.StoreUnsafe(ref p, (nuint)i); mi.StoreUnsafe(ref m, (nuint)i); vi.StoreUnsafe(ref v, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var decay = Vector128.Create(c.Decay); var wd = Vector128.Create(c.L2);
            var b1 = Vector128.Create(c.Beta1); var omb1 = Vector128.Create(c.OneMinusBeta1);
            var b2 = Vector128.Create(c.Beta2); var omb2 = Vector128.Create(c.OneMinusBeta2);
            var step = Vector128.Create(c.StepSize); var bc2 = Vector128.Create(c.BiasCorrection2Sqrt); var eps = Vector128.Create(c.Eps);
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                var pi = Vector128.LoadUnsafe(ref p, (nuint)i);
                var gi = Vector128.LoadUnsafe(ref g, (nuint)i);
                if (l2) gi += wd * pi;
                pi *= decay;
                var mi = Vector128.LoadUnsafe(ref m, (nuint)i) * b1 + omb1 * gi;
                var vi = Vector128.LoadUnsafe(ref v, (nuint)i) * b2 + omb2 * gi * gi;
                var denom = Vector128.Sqrt(vi) / bc2 + eps;
                pi -= step * mi / denom;
                pi.StoreUnsafe(ref p, (nuint)i); mi.StoreUnsafe(ref m, (nuint)i); vi.StoreUnsafe(ref v, (nuint)i);
            }
        }
        for (; i < n; i++) Scalar(grad, param, expAvg, expAvgSq, c, i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scalar(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, Span<float> expAvgSq, in Coefficients c, int i)
    {
        float p = param[i], g = grad[i];
        if (c.L2 != 0) g += c.L2 * p;
        p *= c.Decay;
        float m = expAvg[i] * c.Beta1 + c.OneMinusBeta1 * g;
        float v = expAvgSq[i] * c.Beta2 + c.OneMinusBeta2 * g * g;
        float denom = MathF.Sqrt(v) / c.BiasCorrection2Sqrt + c.Eps;
        param[i] = p - c.StepSize * m / denom;
        expAvg[i] = m;
        expAvgSq[i] = v;
    }

    private static void Check(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, Span<float> expAvgSq)
    {
        if (param.Length != grad.Length || expAvg.Length != grad.Length || expAvgSq.Length != grad.Length)
            throw new ArgumentException(
                $"Adam update lengths differ: grad [{grad.Length}], param [{param.Length}], exp_avg [{expAvg.Length}], exp_avg_sq [{expAvgSq.Length}].");
    }
}
