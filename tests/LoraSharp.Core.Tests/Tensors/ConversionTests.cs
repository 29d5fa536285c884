using LoraSharp.Core.Tensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Tensors;

public class ConversionTests
{
    public static TheoryData<SimdLevel> Levels => [SimdLevel.Scalar, SimdLevel.V128, SimdLevel.V256, SimdLevel.V512];

    private static float[] Interesting(int n, int seed)
    {
        var a = TestData.Uniform(n, seed, 1000f);
        float[] specials = [0f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon,
            1e-40f, 65504f, 65520f, 1.00390625f /* bf16 tie, even */, 1.01171875f /* tie, odd */, float.MaxValue];
        for (int i = 0; i < Math.Min(n, specials.Length); i++) a[i * 7 % n] = specials[i];
        return a;
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Bf16_FromFloat_MatchesScalarAtEveryLength(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        for (int n = 0; n <= 257; n++)
        {
            var src = Interesting(Math.Max(n, 1), n)[..n];
            var fast = new ushort[n + 2];
            var reference = new ushort[n];
            fast[n] = 0xBEEF; fast[n + 1] = 0xBEEF;
            Bf16.FromFloat(src, fast.AsSpan(0, n));
            Bf16.FromFloatScalar(src, reference);
            Assert.Equal(reference, fast[..n]);
            Assert.Equal(0xBEEF, fast[n]);
            Assert.Equal(0xBEEF, fast[n + 1]);
        }
    }

    [Fact]
    public void Bf16_RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, Bf16.FromFloat(1.00390625f));      // exactly halfway, even stays
        Assert.Equal(0x3F82, Bf16.FromFloat(1.01171875f));      // halfway, odd rounds up
        Assert.Equal(0x3F81, Bf16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F80_8001)));   // just above halfway
        Assert.True(float.IsNaN(Bf16.ToFloat(Bf16.FromFloat(float.NaN))));
        Assert.Equal(float.PositiveInfinity, Bf16.ToFloat(Bf16.FromFloat(float.MaxValue)));
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Bf16_ToFloat_MatchesScalar(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        for (int n = 0; n <= 130; n++)
        {
            var src = new ushort[n];
            for (int i = 0; i < n; i++) src[i] = (ushort)(i * 2654435761u >> 16);
            var fast = new float[n];
            var reference = new float[n];
            Bf16.ToFloat(src, fast);
            Bf16.ToFloatScalar(src, reference);
            Assert.Equal(reference.Select(BitConverter.SingleToUInt32Bits), fast.Select(BitConverter.SingleToUInt32Bits));
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void Fp16_RoundTrip_MatchesScalar(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        foreach (int n in new[] { 0, 1, 3, 17, 33, 257 })
        {
            var src = Interesting(Math.Max(n, 1), n)[..n];
            var fast = new ushort[n];
            var reference = new ushort[n];
            Fp16.FromFloat(src, fast);
            Fp16.FromFloatScalar(src, reference);
            Assert.Equal(reference, fast);
            var back = new float[n];
            var backRef = new float[n];
            Fp16.ToFloat(fast, back);
            Fp16.ToFloatScalar(fast, backRef);
            Assert.Equal(backRef.Select(BitConverter.SingleToUInt32Bits), back.Select(BitConverter.SingleToUInt32Bits));
        }
    }

    [Fact]
    public void Fp16_RoundsToNearestEven()
    {
        Assert.Equal(0x3C00, Fp16.FromFloat(1f + 1f / 2048));   // halfway between 1 and 1+2^-10: even (1)
        Assert.Equal(0x3C02, Fp16.FromFloat(1f + 3f / 2048));   // halfway, odd rounds up
        Assert.Equal(0x7C00, Fp16.FromFloat(65520f));           // rounds to +inf
    }

    [Fact]
    public void Fp16ToFloatFast_EveryBitPattern_EqualsHalfConversion()
    {
        for (int h = 0; h <= ushort.MaxValue; h++)
        {
            float expected = Fp16.ToFloat((ushort)h), actual = Fp16.ToFloatFast((ushort)h);
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(actual), $"0x{h:X4} should be NaN, got {actual}");
            else Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual), $"0x{h:X4}: {actual} != {expected}");
        }
    }
}
