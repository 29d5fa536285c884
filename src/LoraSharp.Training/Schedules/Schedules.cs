// The built-in schedules: each λ(step) is transformers' lr_lambda of the same name, line for line.
// Deviation: polynomial with total == warmup (no decay steps) gives lr_end at step == total where Python would divide
// by zero.
namespace LoraSharp.Training.Schedules;

/// <summary>constant: λ = 1 (get_constant_schedule; warmup is ignored).</summary>
internal sealed class ConstantSchedule(double baseLr, int warmup, int total) : LearningRateSchedule("constant", baseLr, warmup, total)
{
    public override double Factor(int step) => 1.0;
}

/// <summary>constant_with_warmup: λ = step/W during warmup, then 1.</summary>
internal sealed class ConstantWithWarmupSchedule(double baseLr, int warmup, int total)
    : LearningRateSchedule("constant_with_warmup", baseLr, warmup, total)
{
    public override double Factor(int step) => step < WarmupSteps ? Warmup(step) : 1.0;
}

/// <summary>linear: warmup, then max(0, (T − step)/max(1, T − W)).</summary>
internal sealed class LinearSchedule(double baseLr, int warmup, int total) : LearningRateSchedule("linear", baseLr, warmup, total)
{
    public override double Factor(int step)
        => step < WarmupSteps ? Warmup(step) : Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
}

/// <summary>cosine: warmup, then max(0, ½(1 + cos(π · 2 · cycles · progress))), progress = (step − W)/max(1, T − W).</summary>
internal sealed class CosineSchedule : LearningRateSchedule
{
    private readonly double _cycles;

    public CosineSchedule(double baseLr, int warmup, int total, double cycles) : base("cosine", baseLr, warmup, total)
    {
        if (!double.IsFinite(cycles) || cycles <= 0) throw new ArgumentException($"cosine num_cycles must be > 0 (got {cycles}).", nameof(cycles));
        _cycles = cycles;
    }

    public override double Factor(int step)
    {
        if (step < WarmupSteps) return Warmup(step);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * _cycles * 2.0 * progress)));
    }
}

/// <summary>cosine_with_restarts: warmup, then 0 once progress ≥ 1, else max(0, ½(1 + cos(π · ((cycles · progress) mod 1)))).</summary>
internal sealed class CosineWithRestartsSchedule(double baseLr, int warmup, int total, int cycles)
    : LearningRateSchedule("cosine_with_restarts", baseLr, warmup, total)
{
    public override double Factor(int step)
    {
        if (step < WarmupSteps) return Warmup(step);
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        if (progress >= 1.0) return 0.0;
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * (cycles * progress % 1.0))));
    }
}

/// <summary>
/// polynomial: warmup; after T, lr_end/lr; else ((lr − lr_end)·(1 − (step − W)/(T − W))^power + lr_end)/lr.
/// </summary>
internal sealed class PolynomialSchedule : LearningRateSchedule
{
    private readonly double _lrEnd, _power;

    public PolynomialSchedule(double baseLr, int warmup, int total, double lrEnd, double power) : base("polynomial", baseLr, warmup, total)
    {
        if (!(baseLr > lrEnd))
            throw new Core.UserErrorException($"polynomial: lr_end ({lrEnd}) must be smaller than the initial learning rate ({baseLr}); raise learning_rate or pick another lr_scheduler_type.");
        if (!double.IsFinite(power)) throw new ArgumentException($"polynomial power must be finite (got {power}).", nameof(power));
        _lrEnd = lrEnd;
        _power = power;
    }

    public override double Factor(int step)
    {
        if (step < WarmupSteps) return Warmup(step);
        int decaySteps = TotalSteps - WarmupSteps;
        if (step > TotalSteps || decaySteps <= 0) return _lrEnd / BaseLr;
        double pctRemaining = 1.0 - (double)(step - WarmupSteps) / decaySteps;
        double decay = (BaseLr - _lrEnd) * Math.Pow(pctRemaining, _power) + _lrEnd;
        return decay / BaseLr;
    }
}

/// <summary>inverse_sqrt: warmup, then 1/sqrt((step + timescale − W)/timescale); timescale defaults to W, or 10 000 if W = 0.</summary>
internal sealed class InverseSqrtSchedule : LearningRateSchedule
{
    private readonly int _timescale;

    public InverseSqrtSchedule(double baseLr, int warmup, int total, int? timescale) : base("inverse_sqrt", baseLr, warmup, total)
    {
        _timescale = timescale ?? (warmup != 0 ? warmup : 10_000);
        if (_timescale <= 0) throw new ArgumentException($"inverse_sqrt timescale must be > 0 (got {_timescale}).", nameof(timescale));
    }

    /// <summary>The timescale in use.</summary>
    public int Timescale => _timescale;

    public override double Factor(int step)
    {
        if (step < WarmupSteps) return Warmup(step);
        int shift = _timescale - WarmupSteps;
        return 1.0 / Math.Sqrt((double)(step + shift) / _timescale);
    }
}
