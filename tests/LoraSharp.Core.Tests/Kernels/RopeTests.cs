using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;
using LoraSharp.TestSupport;
using static LoraSharp.Core.Tests.Kernels.ElementwiseTestKit;

namespace LoraSharp.Core.Tests.Kernels;

public class RopeTests
{
    private static readonly int[] HeadSizes = [2, 4, 6, 8, 10, 14, 16, 18, 30, 32, 34, 64, 66, 128, 130];

    private static int[] Positions(int N, int max, int seed)
    {
        var rng = new Random(seed);
        var p = new int[N];
        for (int n = 0; n < N; n++) p[n] = rng.Next(max);
        return p;
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void ForwardAndBackward_MatchReference_AtOddHeadSizes(SimdLevel level)
    {
        using var _ = Simd.Force(level);
        const int N = 4, H = 3;
        foreach (int HS in HeadSizes)
        {
            var table = RopeTable.Create(HS, 50, 10000.0, null);
            var pos = Positions(N, 50, HS);
            var x = Uniform(N * H * HS, HS);
            var fast = Guarded(x.Length, x);
            var reference = (float[])x.Clone();
            Rope.Forward(Mid(fast), pos, table, N, H, HS);
            Rope.Reference.Forward<float>(reference, pos, table, N, H, HS);
            TestData.AssertClose(Mid(fast), reference, 1e-6, 1e-6, $"forward HS={HS}");
            Rope.Backward(Mid(fast), pos, table, N, H, HS);
            Rope.Reference.Backward<float>(reference, pos, table, N, H, HS);
            TestData.AssertClose(Mid(fast), reference, 1e-6, 1e-6, $"backward HS={HS}");
            TestData.AssertClose(Mid(fast), x, 1e-6, 1e-6, $"backward undoes forward HS={HS}");
            AssertGuards(fast, "x");
        }
    }

    [Theory]
    [MemberData(nameof(Levels), MemberType = typeof(ElementwiseTestKit))]
    public void PartialRotary_MatchesReference_AndLeavesThePassThroughDimsAlone(SimdLevel level)
    {
        // phi3's partial_rotary_factor: only the first rd dims of each head rotate (rotate_half within rd).
        using var _ = Simd.Force(level);
        const int N = 5, H = 3;
        foreach (var (HS, rd) in ((int, int)[])[(16, 12), (34, 2), (66, 48), (130, 96), (8, 8)])
        {
            var table = RopeTable.Create(HS, 40, 10000.0, null, rd, longFactors: false);
            var pos = Positions(N, 40, rd);
            var x = Uniform(N * H * HS, HS + rd);
            var fast = Guarded(x.Length, x);
            var reference = (float[])x.Clone();
            Rope.Forward(Mid(fast), pos, table, N, H, HS);
            Rope.Reference.Forward<float>(reference, pos, table, N, H, HS);
            TestData.AssertClose(Mid(fast), reference, 1e-6, 1e-6, $"forward HS={HS} rd={rd}");
            for (int n = 0; n < N; n++)
                for (int h = 0; h < H; h++)
                    for (int j = rd; j < HS; j++)
                        Assert.Equal(x[(n * H + h) * HS + j], Mid(fast)[(n * H + h) * HS + j]);
            Rope.Backward(Mid(fast), pos, table, N, H, HS);
            TestData.AssertClose(Mid(fast), x, 1e-6, 1e-6, $"backward undoes forward HS={HS} rd={rd}");
            AssertGuards(fast, "x");
        }
    }

    [Fact]
    public void LongRope_DividesByTheFactors_AndScalesCosSin()
    {
        var s = new RopeScaling("longrope", 32, OriginalMaxPositionEmbeddings: 8) { ShortFactor = [1f, 2f], LongFactor = [4f, 8f] };
        var shortT = RopeTable.Create(6, 4, 10000.0, s, 4, longFactors: false);
        var longT = RopeTable.Create(6, 4, 10000.0, s, 4, longFactors: true);
        Assert.Equal(1f, shortT.InvFreq[0]);
        Assert.Equal(1f / (2f * (float)Math.Pow(10000, 0.5)), shortT.InvFreq[1]);
        Assert.Equal(1f / 4f, longT.InvFreq[0]);
        float m = (float)Math.Sqrt(1 + Math.Log(32) / Math.Log(8));
        Assert.Equal(m, shortT.Cos[0]);
        Assert.Equal((float)Math.Cos(1.0 / 4) * m, longT.Cos[2], 6);
        Assert.Throws<UserErrorException>(() => RopeTable.Create(6, 4, 10000.0, s with { LongFactor = [1f] }, 4, longFactors: true));
    }

    [Fact]
    public void Forward_RotatesHalvesLikeRotateHalf()
    {
        // HS = 4, position 1: pairs (0,2) and (1,3) rotate by inv_freq 1 and 1/100.
        var table = RopeTable.Create(4, 2, 10000.0, null);
        float[] x = [1, 2, 3, 4];
        Rope.Forward(x, [1], table, 1, 1, 4);
        double a0 = 1.0, a1 = 0.01;
        float[] expected = [(float)(1 * Math.Cos(a0) - 3 * Math.Sin(a0)), (float)(2 * Math.Cos(a1) - 4 * Math.Sin(a1)),
                            (float)(3 * Math.Cos(a0) + 1 * Math.Sin(a0)), (float)(4 * Math.Cos(a1) + 2 * Math.Sin(a1))];
        TestData.AssertClose(x, expected, 1e-6, 1e-6, "rotated");
    }

    [Fact]
    public void Backward_Reference_MatchesFiniteDifferences_InDouble()
    {
        const int N = 3, H = 2, HS = 6;
        var table = RopeTable.Create(HS, 16, 10000.0, null);
        var pos = new[] { 0, 5, 15 };
        var x = ToDouble(Uniform(N * H * HS, 1));
        var R = ToDouble(Uniform(N * H * HS, 2));
        var grad = (double[])R.Clone();
        Rope.Reference.Backward<double>(grad, pos, table, N, H, HS);
        CheckGradient(xx =>
        {
            var y = (double[])xx.Clone();
            Rope.Reference.Forward<double>(y, pos, table, N, H, HS);
            return Dot(y, R);
        }, x, grad, 1e-6, 1e-7, 1e-9, "dx");
    }

    [Fact]
    public void Backward_Fast_MatchesFiniteDifferences_InFloat()
    {
        const int N = 2, H = 2, HS = 40;
        var table = RopeTable.Create(HS, 100, 500000.0, null);
        var pos = new[] { 3, 99 };
        var x = Uniform(N * H * HS, 3);
        var R = Uniform(N * H * HS, 4);
        var grad = (float[])R.Clone();
        Rope.Backward(grad, pos, table, N, H, HS);
        CheckGradient(xx =>
        {
            var y = (float[])xx.Clone();
            Rope.Forward(y, pos, table, N, H, HS);
            return Dot(y, R);
        }, x, grad, 1e-2f, 1e-3, 1e-4, "dx");
    }

    [Fact]
    public void DefaultInvFreq_MatchesFormula()
    {
        var inv = RopeTable.InverseFrequencies(64, 10000.0, null);
        for (int i = 0; i < 32; i++)
            Assert.Equal(1.0 / Math.Pow(10000.0, 2.0 * i / 64), inv[i], 1e-6 * inv[i] + 1e-12);
    }

    [Fact]
    public void LinearScaling_DividesInvFreqByFactor()
    {
        var plain = RopeTable.InverseFrequencies(32, 10000.0, null);
        var scaled = RopeTable.InverseFrequencies(32, 10000.0, new RopeScaling("linear", Factor: 4.0));
        for (int i = 0; i < 16; i++) Assert.Equal(plain[i] / 4f, scaled[i]);
    }

    // Written from the formula in transformers' _compute_llama3_parameters, in double, independent of RopeTable.
    private static double[] Llama3Expected(int HS, double theta, double factor, double low, double high, double orig)
    {
        var r = new double[HS / 2];
        for (int i = 0; i < r.Length; i++)
        {
            double f = 1.0 / Math.Pow(theta, 2.0 * i / HS);
            double wavelen = 2 * Math.PI / f;
            if (wavelen < orig / high) r[i] = f;
            else if (wavelen > orig / low) r[i] = f / factor;
            else
            {
                double s = (orig / wavelen - low) / (high - low);
                r[i] = (1 - s) * f / factor + s * f;
            }
        }
        return r;
    }

    [Theory]
    [InlineData(128, 500000.0, 8.0, 1.0, 4.0, 8192)]    // Llama 3.1
    [InlineData(64, 500000.0, 32.0, 1.0, 4.0, 8192)]    // Llama 3.2 1B
    [InlineData(128, 10000.0, 2.0, 2.0, 8.0, 2048)]     // unusual factors: every band taken
    public void Llama3Scaling_InvFreq_MatchesTransformersFormula(int HS, double theta, double factor, double low, double high, int orig)
    {
        var actual = RopeTable.InverseFrequencies(HS, theta, new RopeScaling("llama3", factor, low, high, orig));
        var expected = Llama3Expected(HS, theta, factor, low, high, orig);
        int medium = 0, scaled = 0, kept = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 2e-6 * expected[i], $"inv_freq[{i}] = {actual[i]}, expected {expected[i]}");
            double plain = 1.0 / Math.Pow(theta, 2.0 * i / HS);
            if (Math.Abs(expected[i] - plain) < 1e-12 * plain) kept++;
            else if (Math.Abs(expected[i] - plain / factor) < 1e-12 * plain) scaled++;
            else medium++;
        }
        Assert.True(medium > 0 && scaled > 0 && kept > 0, $"test case should cover all three bands (kept {kept}, medium {medium}, scaled {scaled})");
    }

    [Fact]
    public void Table_CosSin_MatchPositionTimesInvFreq()
    {
        var table = RopeTable.Create(16, 300, 10000.0, new RopeScaling("llama3", 8, 1, 4, 64));
        var inv = table.InvFreq;
        for (int p = 0; p < 300; p += 37)
            for (int i = 0; i < 8; i++)
            {
                double angle = (float)(p * inv[i]);
                Assert.Equal(Math.Cos(angle), table.Cos[p * 8 + i], 1e-7);
                Assert.Equal(Math.Sin(angle), table.Sin[p * 8 + i], 1e-7);
            }
    }

    [Fact]
    public void OneAndTwoThreads_GiveIdenticalResults()
    {
        const int N = 300, H = 4, HS = 64;
        var table = RopeTable.Create(HS, 512, 500000.0, null);
        var pos = Positions(N, 512, 5);
        var x = Uniform(N * H * HS, 6);
        var a = (float[])x.Clone();
        var b = (float[])x.Clone();
        using (Threads.Limit(1)) { Rope.Forward(a, pos, table, N, H, HS); Rope.Backward(a, pos, table, N, H, HS); }
        TestSupport.TwoThreads.Run(() => { Rope.Forward(b, pos, table, N, H, HS); Rope.Backward(b, pos, table, N, H, HS); });
        AssertBitwiseEqual(a, b, "x");
    }

    [Fact]
    public void BadInput_ThrowsClearErrors()
    {
        var table = RopeTable.Create(8, 10, 10000.0, null);
        var e = Assert.Throws<ArgumentException>(() => Rope.Forward(new float[16], [3, 10], table, 2, 1, 8));
        Assert.Contains("positions[1] = 10", e.Message);
        e = Assert.Throws<ArgumentException>(() => Rope.Forward(new float[16], [0, 1], table, 2, 1, 16));
        Assert.Contains("HS = 8", e.Message);
        e = Assert.Throws<ArgumentException>(() => RopeTable.Create(8, 10, 10000.0, new RopeScaling("yarn", 4)));
        Assert.Contains("yarn", e.Message);
        Assert.Throws<ArgumentException>(() => RopeTable.Create(7, 10, 10000.0, null));
    }

    [Fact]
    public void BadRopeScalingFromAConfig_IsAUserError()
    {
        // config.json values, not code: the message names the field and the front ends show it (exit code 1, not 70)
        var e = Assert.Throws<UserErrorException>(() => RopeTable.Create(8, 10, 10000.0, new RopeScaling("linear", 0)));
        Assert.Contains("rope_scaling.factor", e.Message);
        e = Assert.Throws<UserErrorException>(() => RopeTable.Create(8, 10, 10000.0, new RopeScaling("llama3", 8, LowFreqFactor: 4, HighFreqFactor: 1)));
        Assert.Contains("low_freq_factor", e.Message);
        e = Assert.Throws<UserErrorException>(() => RopeTable.Create(8, 10, 10000.0, new RopeScaling("llama3", 8, OriginalMaxPositionEmbeddings: 0)));
        Assert.Contains("original_max_position_embeddings", e.Message);
        e = Assert.Throws<UserErrorException>(() => RopeTable.InverseFrequencies(8, 10000.0, new RopeScaling("default") { FrequencyFactors = [1f, 0f, 1f, 1f] }));
        Assert.Contains("rope frequency factor 1", e.Message);
    }
}
