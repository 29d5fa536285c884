// The SGD elementwise update in float32 with torch.optim.SGD semantics. Per element:
//   d   = g + wd·p                                     (weight decay as L2, skipped when wd = 0)
//   buf = first step ? d : momentum·buf + (1−dampening)·d   (only when momentum ≠ 0)
//   d   = nesterov ? d + momentum·buf : buf                 (only when momentum ≠ 0)
//   p   = p − lr·d
// The vector paths use the same operations in the same order as the scalar twin, so all paths agree bit for bit.
// Not here: maximize, foreach/fused variants.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Optim;

/// <summary>SGD update kernels (vectorized and scalar reference).</summary>
public static class SgdKernel
{
    /// <summary>The per-step scalars of one SGD update, rounded to float.</summary>
    public readonly struct Coefficients
    {
        /// <summary>Learning rate.</summary>
        public float Lr { get; init; }
        /// <summary>L2 weight decay added to the gradient.</summary>
        public float WeightDecay { get; init; }
        /// <summary>Momentum factor (0: plain SGD, the momentum buffer is not touched).</summary>
        public float Momentum { get; init; }
        /// <summary>1 − dampening.</summary>
        public float OneMinusDampening { get; init; }
        /// <summary>Nesterov momentum.</summary>
        public bool Nesterov { get; init; }
        /// <summary>The momentum buffer is fresh: it is set to d instead of being decayed (torch's first step).</summary>
        public bool FirstStep { get; init; }

        /// <summary>The scalars for one step.</summary>
        public static Coefficients For(double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool firstStep) => new()
        {
            Lr = (float)lr,
            WeightDecay = (float)weightDecay,
            Momentum = (float)momentum,
            OneMinusDampening = (float)(1 - dampening),
            Nesterov = nesterov,
            FirstStep = firstStep,
        };
    }

    /// <summary>One SGD step on n elements, on the widest vector path <see cref="Simd.Level"/> allows.</summary>
    /// <param name="grad">[n] gradient (read only).</param>
    /// <param name="param">[n] values, updated in place.</param>
    /// <param name="momentumBuffer">[n] momentum buffer, updated in place; may be empty when momentum is 0.</param>
    /// <param name="c">The step's scalars.</param>
    public static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> momentumBuffer, in Coefficients c)
        => Update(grad, param, momentumBuffer, c, Simd.Level);

    /// <summary>The scalar twin of <see cref="Update(ReadOnlySpan{float}, Span{float}, Span{float}, in Coefficients)"/>.</summary>
    public static void UpdateReference(ReadOnlySpan<float> grad, Span<float> param, Span<float> momentumBuffer, in Coefficients c)
    {
        Check(grad, param, momentumBuffer, c);
        for (int i = 0; i < grad.Length; i++) Scalar(grad, param, momentumBuffer, c, i);
    }

    internal static void Update(ReadOnlySpan<float> grad, Span<float> param, Span<float> momentumBuffer, in Coefficients c, SimdLevel level)
    {
        Check(grad, param, momentumBuffer, c);
        int n = grad.Length, i = 0;
        ref float g = ref MemoryMarshal.GetReference(grad);
        ref float p = ref MemoryMarshal.GetReference(param);
        ref float b = ref MemoryMarshal.GetReference(momentumBuffer);
        bool wd = c.WeightDecay != 0, mom = c.Momentum != 0, first = c.FirstStep, nesterov = c.Nesterov;
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            var lr = Vector512.Create(c.Lr); var wdv = Vector512.Create(c.WeightDecay);
            var mu = Vector512.Create(c.Momentum); var omd = Vector512.Create(c.OneMinusDampening);
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var pi = Vector512.LoadUnsafe(ref p, (nuint)i);
                var d = Vector512.LoadUnsafe(ref g, (nuint)i);
                if (wd) d += wdv * pi;
                if (mom)
                {
                    var buf = first ? d : Vector512.LoadUnsafe(ref b, (nuint)i) * mu + omd * d;
                    buf.StoreUnsafe(ref b, (nuint)i);
                    d = nesterov ? d + mu * buf : buf;
                }
                (pi - lr * d).StoreUnsafe(ref p, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            var lr = Vector256.Create(c.Lr); var wdv = Vector256.Create(c.WeightDecay);
            var mu = Vector256.Create(c.Momentum); var omd = Vector256.Create(c.OneMinusDampening);
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var pi = Vector256.LoadUnsafe(ref p, (nuint)i);
                var d = Vector256.LoadUnsafe(ref g, (nuint)i);
                if (wd) d += wdv * pi;
                if (mom)
                {
                    var buf = first ? d : Vector256.LoadUnsafe(ref b, (nuint)i) * mu + omd * d;
                    buf.StoreUnsafe(ref b, (nuint)i);
                    d = nesterov ? d + mu * buf : buf;
                }
                (pi - lr * d).StoreUnsafe(ref p, (nuint)i);
            }
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            var lr = Vector128.Create(c.Lr); var wdv = Vector128.Create(c.WeightDecay);
            var mu = Vector128.Create(c.Momentum); var omd = Vector128.Create(c.OneMinusDampening);
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                var pi = Vector128.LoadUnsafe(ref p, (nuint)i);
                var d = Vector128.LoadUnsafe(ref g, (nuint)i);
                if (wd) d += wdv * pi;
                if (mom)
                {
                    var buf = first ? d : Vector128.LoadUnsafe(ref b, (nuint)i) * mu + omd * d;
                    buf.StoreUnsafe(ref b, (nuint)i);
                    d = nesterov ? d + mu * buf : buf;
                }
                (pi - lr * d).StoreUnsafe(ref p, (nuint)i);
            }
        }
        for (; i < n; i++) Scalar(grad, param, momentumBuffer, c, i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scalar(ReadOnlySpan<float> grad, Span<float> param, Span<float> momentumBuffer, in Coefficients c, int i)
    {
        float p = param[i], d = grad[i];
        if (c.WeightDecay != 0) d += c.WeightDecay * p;
        if (c.Momentum != 0)
        {
            float buf = c.FirstStep ? d : momentumBuffer[i] * c.Momentum + c.OneMinusDampening * d;
            momentumBuffer[i] = buf;
            d = c.Nesterov ? d + c.Momentum * buf : buf;
        }
        param[i] = p - c.Lr * d;
    }

    private static void Check(ReadOnlySpan<float> grad, Span<float> param, Span<float> momentumBuffer, in Coefficients c)
    {
        if (param.Length != grad.Length || (c.Momentum != 0 && momentumBuffer.Length != grad.Length))
            throw new ArgumentException(
                $"SGD update lengths differ: grad [{grad.Length}], param [{param.Length}], momentum_buffer [{momentumBuffer.Length}].");
    }
}
