using LoraSharp.Core.Kernels;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Tests.Kernels;

public class ElementwiseTests
{
    [Fact]
    public void Exp_IsWithinFourUlp_AndVectorLanesEqualScalar()
    {
        for (float x = -87f; x < 88.5f; x += 0.01237f)
        {
            float s = Elementwise.Exp(x);
            double e = Math.Exp(x);
            Assert.True(Math.Abs(s - e) <= 4 * Math.Abs(MathF.BitIncrement((float)e) - (float)e), $"exp({x}) = {s}, expected {e}");
            Assert.Equal(s, Elementwise.Exp(Vector512.Create(x)).GetElement(3));
            Assert.Equal(s, Elementwise.Exp(Vector256.Create(x)).GetElement(5));
            Assert.Equal(s, Elementwise.Exp(Vector128.Create(x)).GetElement(1));
        }
    }

    [Fact]
    public void Exp_SpecialValues()
    {
        float[] xs = [float.NegativeInfinity, -1000f, -88f, 89f, 1000f, float.PositiveInfinity, float.NaN, 0f];
        foreach (float x in xs)
        {
            float s = Elementwise.Exp(x);
            float v = Elementwise.Exp(Vector256.Create(x)).GetElement(0);
            if (float.IsNaN(x)) { Assert.True(float.IsNaN(s) && float.IsNaN(v)); continue; }
            Assert.Equal(s, v);
            if (x < -87.4f) Assert.Equal(0f, s);
            if (x > 88.8f) Assert.Equal(float.PositiveInfinity, s);
        }
        Assert.Equal(1f, Elementwise.Exp(0f));
    }
}
