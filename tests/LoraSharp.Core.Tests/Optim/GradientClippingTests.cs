// Global-norm clipping with torch clip_grad_norm_ semantics.
using LoraSharp.Core.Optim;

namespace LoraSharp.Core.Tests.Optim;

public class GradientClippingTests
{
    private static double DoubleNorm(ParamSet set) => Math.Sqrt(set.Params.Sum(p => p.Grad.Floats.ToArray().Sum(g => (double)g * g)));

    [Fact]
    public void Clip_AboveMax_ScalesToMaxNormAndReturnsTotal()
    {
        using var set = ParamSet.Random(4, [33, 7], [257]);
        double before = DoubleNorm(set);
        var original = set.Params.Select(p => p.Grad.Floats.ToArray()).ToArray();
        double total = GradientClipping.ClipByGlobalNorm(set.Params, 0.5);
        Assert.Equal(before, total, 12);
        Assert.True(before > 0.5);
        double coef = 0.5 / (before + 1e-6);
        Assert.Equal(0.5 * before / (before + 1e-6), DoubleNorm(set), 6);
        for (int i = 0; i < original.Length; i++)
            for (int j = 0; j < original[i].Length; j++)
                Assert.Equal(original[i][j] * (float)coef, set.Params[i].Grad.Floats[j]);
    }

    [Fact]
    public void Clip_BelowMax_LeavesGradientsUnchanged()
    {
        using var set = ParamSet.Random(4, [10], [3, 3]);
        var original = set.Params.Select(p => p.Grad.Floats.ToArray()).ToArray();
        double total = GradientClipping.ClipByGlobalNorm(set.Params, 1000);
        Assert.Equal(DoubleNorm(set), total, 12);
        for (int i = 0; i < original.Length; i++) Assert.Equal(original[i], set.Params[i].Grad.Floats.ToArray());
    }

    [Fact]
    public void Clip_NonFiniteGradient_ReturnsNaNAndLeavesGradients()
    {
        using var set = ParamSet.Random(4, [10]);
        set.Params[0].Grad.Floats[3] = float.NaN;
        var original = set.Params[0].Grad.Floats.ToArray();
        Assert.True(double.IsNaN(GradientClipping.ClipByGlobalNorm(set.Params, 1.0)));
        Assert.Equal(original, set.Params[0].Grad.Floats.ToArray());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    public void Clip_InvalidMaxNorm_Throws(double maxNorm)
    {
        using var set = ParamSet.Random(4, [10]);
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm(set.Params, maxNorm));
    }
}
