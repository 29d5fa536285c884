// The Lion elementwise update in float32 with lion-pytorch semantics (Chen et al. 2023, "Symbolic Discovery of
// Optimization Algorithms"). Per element:
//   p = p · (1 − lr·wd)
//   c = β1·m + (1−β1)·g
//   p = p − lr·sign(c)          (sign(0) = 0, sign(NaN) = NaN as torch.sign)
//   m = β2·m + (1−β2)·g
// The vector paths use the same operations in the same order as the scalar twin, so all paths agree bit for bit.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Optim;

/// <summary>Lion update kernels (vectorized and scalar reference).</summary>
public static class LionKernel
{
    /// <summary>The per-step scalars of one Lion update, rounded to float.</summary>
    public readonly struct Coefficients
    {
        /// <summary>1 − lr·wd.</summary>
        public float Decay { get; init; }
        /// <summary>Learning rate.</summary>
        public float Lr { get; init; }
        /// <summary>β1 (interpolation for the update direction).</summary>
        public float Beta1 { get; init; }
        /// <summary>1 − β1.</summary>
        public float OneMinusBeta1 { get; init; }
        /// <summary>β2 (decay of the momentum).</summary>
        public float Beta2 { get; init; }
        /// <summary>1 − β2.</summary>
        public float OneMinusBeta2 { get; init; }

        /// <summary>The scalars for one step, computed in double.</summary>
        public static Coefficients For(double lr, double beta1, double beta2, double weightDecay) => new()
        {
            Decay = (float)(1 - lr * weightDecay),
            Lr = (float)lr,
            Beta1 = (float)beta1,
            OneMinusBeta1 = (float)(1 - beta1),
            Beta2 = (float)beta2,
            OneMinusBeta2 = (float)(1 - beta2),
        };
    }

    /// <summary>One Lion step on n elements, on the widest vector path <see cref="Simd.Level"/> allows.</summary>
    /// <param name="grad">[n] gradient (read only).</param>
    /// <param name="param">[n] values, updated in place.</param>
    /// <param name="expAvg">[n] momentum m, updated in place.</param>
    /// <param name="c">The step's scalars.</param>
    public static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, in Coefficients c)
        => Update(grad, param, expAvg, c, Simd.Level);

    /// <summary>The scalar twin of <see cref="Update(ReadOnlySpan{float}, Span{float}, Span{float}, in Coefficients)"/>.</summary>
    public static void UpdateReference(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, in Coefficients c)
    {
        Check(grad, param, expAvg);
        for (int i = 0; i < grad.Length; i++) Scalar(grad, param, expAvg, c, i);
    }

    internal static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, in Coefficients c, SimdLevel level)
    {
        Check(grad, param, expAvg);
        int n = grad.Length, i = 0;
        ref float g = ref MemoryMarshal.GetReference(grad);
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float m = ref MemoryMarshal.GetReference(expAvg);
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var decay = Vector512.Create(c.Decay); var lr = Vector512.Create(c.Lr);
            var b1 = Vector512.Create(c.Beta1); var omb1 = Vector512.Create(c.OneMinusBeta1);
            var b2 = Vector512.Create(c.Beta2); var omb2 = Vector512.Create(c.OneMinusBeta2);
            var one = Vector512.Create(1f); var minusOne = Vector512.Create(-1f);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var gi = Vector512.LoadUnsafe(ref g, (nuint)i);
                var mi = Vector512.LoadUnsafe(ref m, (nuint)i);
                var pi = Vector512.LoadUnsafe(ref p, (nuint)i) * decay;
                var ci = mi * b1 + omb1 * gi;
                var sign = (Vector512.GreaterThan(ci, Vector512<float>.Zero) & one) | (Vector512.LessThan(ci, Vector512<float>.Zero) & minusOne);
                sign = Vector512.ConditionalSelect(Vector512.Equals(ci, ci), sign, ci);
                (pi - lr * sign).StoreUnsafe(ref p, (nuint)i);
                (mi * b2 + omb2 * gi).StoreUnsafe(ref m, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var decay = Vector256.Create(c.Decay); var lr = Vector256.Create(c.Lr);
            var b1 = Vector256.Create(c.Beta1); var omb1 = Vector256.Create(c.OneMinusBeta1);
            var b2 = Vector256.Create(c.Beta2); var omb2 = Vector256.Create(c.OneMinusBeta2);
            var one = Vector256.Create(1f); var minusOne = Vector256.Create(-1f);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gi = Vector256.LoadUnsafe(ref g, (nuint)i);
                var mi = Vector256.LoadUnsafe(ref m, (nuint)i);
                var pi = Vector256.LoadUnsafe(ref p, (nuint)i) * decay;
                var ci = mi * b1 + omb1 * gi;
                var sign = (Vector256.GreaterThan(ci, Vector256<float>.Zero) & one) | (Vector256.LessThan(ci, Vector256<float>.Zero) & minusOne);
                sign = Vector256.ConditionalSelect(Vector256.Equals(ci, ci), sign, ci);
                (pi - lr * sign).StoreUnsafe(ref p, (nuint)i);
                (mi * b2 + omb2 * gi).StoreUnsafe(ref m, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var decay = Vector128.Create(c.Decay); var lr = Vector128.Create(c.Lr);
            var b1 = Vector128.Create(c.Beta1); var omb1 = Vector128.Create(c.OneMinusBeta1);
            var b2 = Vector128.Create(c.Beta2); var omb2 = Vector128.Create(c.OneMinusBeta2);
            var one = Vector128.Create(1f); var minusOne = Vector128.Create(-1f);
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                var gi = Vector128.LoadUnsafe(ref g, (nuint)i);
                var mi = Vector128.LoadUnsafe(ref m, (nuint)i);
                var pi = Vector128.LoadUnsafe(ref p, (nuint)i) * decay;
                var ci = mi * b1 + omb1 * gi;
                var sign = (Vector128.GreaterThan(ci, Vector128<float>.Zero) & one) | (Vector128.LessThan(ci, Vector128<float>.Zero) & minusOne);
                sign = Vector128.ConditionalSelect(Vector128.Equals(ci, ci), sign, ci);
                (pi - lr * sign).StoreUnsafe(ref p, (nuint)i);
                (mi * b2 + omb2 * gi).StoreUnsafe(ref m, (nuint)i);
            }
        }
        for (; i < n; i++) Scalar(grad, param, expAvg, c, i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scalar(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg, in Coefficients c, int i)
    {
        float g = grad[i], m = expAvg[i];
        float p = param[i] * c.Decay;
        float ci = m * c.Beta1 + c.OneMinusBeta1 * g;
        float sign = ci > 0 ? 1f : ci < 0 ? -1f : float.IsNaN(ci) ? ci : 0f;
        param[i] = p - c.Lr * sign;
        expAvg[i] = m * c.Beta2 + c.OneMinusBeta2 * g;
    }

    private static void Check(ReadOnlySpan<float> grad, Span<float> param, Span<float> expAvg)
    {
        if (param.Length != grad.Length || expAvg.Length != grad.Length)
            throw new ArgumentException($"Lion update lengths differ: grad [{grad.Length}], param [{param.Length}], exp_avg [{expAvg.Length}].");
    }
}
