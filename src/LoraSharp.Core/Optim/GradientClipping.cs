// Clipping of gradients by their global L2 norm with torch.nn.utils.clip_grad_norm_ semantics (norm_type 2):
// total = sqrt(Σ over all parameters Σ g²) (accumulated in double here, float32 in torch); coef = maxNorm/(total + 1e-6);
// when coef < 1 every gradient is multiplied by coef. A non-finite total leaves the gradients untouched and is
// returned for the caller to stop on (torch would multiply by NaN). Not here: other norm types, per-parameter clipping.
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Optim;

/// <summary>Global-norm gradient clipping.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales all gradients so their global L2 norm is at most <paramref name="maxNorm"/> (torch clip_grad_norm_).
    /// Returns the norm before clipping (what Hugging Face Trainer logs as grad_norm).
    /// </summary>
    public static double ClipByGlobalNorm(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm > 0) || !double.IsFinite(maxNorm))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "max_grad_norm must be a finite number > 0 (use no clipping instead of 0).");
        double total = GlobalNorm(parameters);
        if (!double.IsFinite(total)) return total;
        double coef = maxNorm / (total + 1e-6);
        if (coef < 1)
        {
            float c = (float)coef;
            foreach (var p in parameters)
            {
                var g = p.Grad.Floats;
                TensorPrimitives.Multiply(g, c, g);
            }
        }
        return total;
    }

    /// <summary>The global L2 norm of all gradients, accumulated in double, parameters summed in list order.</summary>
    public static double GlobalNorm(IReadOnlyList<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var level = Simd.Level;
        double sum = 0;
        foreach (var p in parameters) sum += SumOfSquares(p.Grad.Floats, level);
        return Math.Sqrt(sum);
    }

    /// <summary>Σ x² in double on the widest vector path <see cref="Simd.Level"/> allows.</summary>
    /// <param name="x">[n] values.</param>
    public static double SumOfSquares(ReadOnlySpan<float> x) => SumOfSquares(x, Simd.Level);

    /// <summary>The scalar twin of <see cref="SumOfSquares(ReadOnlySpan{float})"/>.</summary>
    public static double SumOfSquaresReference(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float f in x) s += (double)f * f;
        return s;
    }

    internal static double SumOfSquares(ReadOnlySpan<float> x, SimdLevel level)
    {
        int n = x.Length, i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        double s = 0;
        if (level >= SimdLevel.V512 && Vector512.IsHardwareAccelerated)
        {
            Vector512<double> a0 = default, a1 = default;
            for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref r, (nuint)i));
                a0 += lo * lo; a1 += hi * hi;
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V256 && Vector256.IsHardwareAccelerated)
        {
            Vector256<double> a0 = default, a1 = default;
            for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i));
                a0 += lo * lo; a1 += hi * hi;
            }
            s = Vector256.Sum(a0 + a1);
        }
        else if (level >= SimdLevel.V128 && Vector128.IsHardwareAccelerated)
        {
            Vector128<double> a0 = default, a1 = default;
            for (; i <= n - Vector128<float>.Count; i += Vector128<float>.Count)
            {
                var (lo, hi) = Vector128.Widen(Vector128.LoadUnsafe(ref r, (nuint)i));
                a0 += lo * lo; a1 += hi * hi;
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; i < n; i++) s += (double)x[i] * x[i];
        return s;
    }
}
