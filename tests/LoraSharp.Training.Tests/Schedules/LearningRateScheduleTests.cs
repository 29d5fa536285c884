// Each schedule against its closed form (transformers.optimization lr_lambda, written out here independently) at
// the sample steps 0, warmup−1, warmup, mid, last and past the end, including warmup 0 and total == warmup.
using LoraSharp.Training.Schedules;

namespace LoraSharp.Training.Tests.Schedules;

public class LearningRateScheduleTests
{
    private const double Lr = 3e-4;

    public static TheoryData<int, int> WarmupTotal => new() { { 10, 100 }, { 0, 100 }, { 20, 20 }, { 1, 7 }, { 0, 0 } };

    private static IEnumerable<int> Samples(int w, int t)
        => new[] { 0, w - 1, w, w + 1, (w + t) / 2, t - 1, t, t + 5 }.Where(s => s >= 0).Distinct();

    private static void AssertSchedule(LearningRateSchedule s, Func<int, double> lambda)
    {
        foreach (int step in Samples(s.WarmupSteps, s.TotalSteps))
        {
            double expected = Lr * lambda(step);
            Assert.True(Math.Abs(s.At(step) - expected) <= 1e-15 * Math.Max(1, Math.Abs(expected)),
                $"{s.Name} (warmup {s.WarmupSteps}, total {s.TotalSteps}) at step {step}: {s.At(step)} vs {expected}");
        }
    }

    private static double Warm(int step, int w) => (double)step / Math.Max(1, w);

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void Constant_IsAlwaysBase(int w, int t)
        => AssertSchedule(LearningRateSchedule.Create("constant", Lr, w, t), _ => 1.0);

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void ConstantWithWarmup_RampsThenHolds(int w, int t)
        => AssertSchedule(LearningRateSchedule.Create("constant_with_warmup", Lr, w, t), s => s < w ? Warm(s, w) : 1.0);

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void Linear_MatchesClosedForm(int w, int t)
        => AssertSchedule(LearningRateSchedule.Create("linear", Lr, w, t),
            s => s < w ? Warm(s, w) : Math.Max(0, (t - s) / (double)Math.Max(1, t - w)));

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void Cosine_MatchesClosedForm(int w, int t)
        => AssertSchedule(LearningRateSchedule.Create("cosine", Lr, w, t),
            s => s < w ? Warm(s, w) : Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * 0.5 * 2 * ((s - w) / (double)Math.Max(1, t - w))))));

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void CosineWithRestarts_ThreeCycles_MatchesClosedForm(int w, int t)
        => AssertSchedule(LearningRateSchedule.Create("cosine_with_restarts", Lr, w, t, new ScheduleOptions { NumCycles = 3 }), s =>
        {
            if (s < w) return Warm(s, w);
            double progress = (s - w) / (double)Math.Max(1, t - w);
            return progress >= 1 ? 0 : Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * ((3 * progress) % 1.0))));
        });

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void Polynomial_Power2_MatchesClosedForm(int w, int t)
    {
        const double end = 1e-5, power = 2;
        AssertSchedule(LearningRateSchedule.Create("polynomial", Lr, w, t, new ScheduleOptions { LrEnd = end, Power = power }), s =>
        {
            if (s < w) return Warm(s, w);
            if (s > t || t == w) return end / Lr;
            return ((Lr - end) * Math.Pow(1 - (s - w) / (double)(t - w), power) + end) / Lr;
        });
    }

    [Theory]
    [MemberData(nameof(WarmupTotal))]
    public void InverseSqrt_DefaultTimescale_MatchesClosedForm(int w, int t)
    {
        int timescale = w != 0 ? w : 10_000;
        AssertSchedule(LearningRateSchedule.Create("inverse_sqrt", Lr, w, t),
            s => s < w ? Warm(s, w) : 1 / Math.Sqrt((s + timescale - w) / (double)timescale));
    }

    [Fact]
    public void KnownValues_SpotChecks()
    {
        // Values worked out by hand: linear at half of the decay, cosine at half and at the end, warmup midpoint.
        Assert.Equal(0.5 * Lr, LearningRateSchedule.Create("linear", Lr, 0, 100).At(50), 15);
        Assert.Equal(0.5 * Lr, LearningRateSchedule.Create("cosine", Lr, 10, 110).At(60), 15);
        Assert.Equal(0.0, LearningRateSchedule.Create("cosine", Lr, 10, 110).At(110), 15);
        Assert.Equal(0.5 * Lr, LearningRateSchedule.Create("constant_with_warmup", Lr, 10, 100).At(5), 15);
        Assert.Equal(Lr, LearningRateSchedule.Create("inverse_sqrt", Lr, 4, 100).At(4), 15);
        Assert.Equal(Lr / 2, LearningRateSchedule.Create("inverse_sqrt", Lr, 4, 100).At(16), 15);
        // Restarts: each of 2 cycles starts at the peak again.
        var r = LearningRateSchedule.Create("cosine_with_restarts", Lr, 0, 100, new ScheduleOptions { NumCycles = 2 });
        Assert.Equal(Lr, r.At(50), 15);
        Assert.Equal(0.5 * Lr, r.At(25), 15);
    }

    [Fact]
    public void WarmupRatio_IsCeilOfRatioTimesTotal_UnlessStepsGiven()
    {
        Assert.Equal(3, LearningRateSchedule.ResolveWarmupSteps(0, 0.03, 100));   // Python: math.ceil(100 * 0.03) == 3
        Assert.Equal(3, LearningRateSchedule.ResolveWarmupSteps(0, 0.1, 25));     // 2.5 → 3
        Assert.Equal(3, LearningRateSchedule.ResolveWarmupSteps(0, 0.03, 67));   // 2.01 → 3
        Assert.Equal(0, LearningRateSchedule.ResolveWarmupSteps(0, 0.0, 100));
        Assert.Equal(7, LearningRateSchedule.ResolveWarmupSteps(7, 0.5, 100));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.ResolveWarmupSteps(0, 1.5, 100));
    }

    [Fact]
    public void UnknownName_ListsValidNames()
    {
        var e = Assert.Throws<ArgumentException>(() => LearningRateSchedule.Create("cosine_with_min_lr", Lr, 0, 10));
        Assert.Contains("'cosine_with_min_lr'", e.Message);
        foreach (string n in LearningRateSchedule.Names) Assert.Contains(n, e.Message);
    }

    [Fact]
    public void Names_AllCreate_CaseInsensitive()
    {
        foreach (string n in LearningRateSchedule.Names)
            Assert.Equal(n, LearningRateSchedule.Create(n.ToUpperInvariant(), Lr, 2, 10).Name);
    }

    [Fact]
    public void InvalidArguments_Throw()
    {
        Assert.Throws<LoraSharp.Core.UserErrorException>(() => LearningRateSchedule.Create("polynomial", 1e-7, 0, 10));   // lr_end 1e-7 not below lr
        Assert.Throws<ArgumentException>(() => LearningRateSchedule.Create("cosine_with_restarts", Lr, 0, 10, new ScheduleOptions { NumCycles = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Create("linear", Lr, -1, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Create("linear", double.NaN, 0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Create("linear", Lr, 0, 10).At(-1));
    }
}
