// Learning-rate schedules with the closed forms of transformers.get_scheduler (optimization.py): constant,
// constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial, inverse_sqrt. A schedule is a pure
// function of the step, like torch's LambdaLR: At(step) = baseLr · λ(step), where step is the number of optimizer
// steps already taken (At(0) is the rate of the first step). Resuming is calling At(step); there is no state.
// Not here: reduce_lr_on_plateau (needs metrics), warmup_stable_decay, cosine_with_min_lr.
namespace LoraSharp.Training.Schedules;

/// <summary>A learning rate as a function of the optimizer step.</summary>
public abstract class LearningRateSchedule
{
    /// <summary>The accepted names (transformers' SchedulerType values).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial", "inverse_sqrt"];

    /// <summary>Sets the common fields.</summary>
    protected LearningRateSchedule(string name, double baseLr, int warmupSteps, int totalSteps)
    {
        if (!double.IsFinite(baseLr) || baseLr < 0)
            throw new ArgumentOutOfRangeException(nameof(baseLr), baseLr, "The learning rate must be a finite number >= 0.");
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warmup steps must be >= 0.");
        if (totalSteps < 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "Total steps must be >= 0.");
        Name = name;
        BaseLr = baseLr;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
    }

    /// <summary>The schedule's name, one of <see cref="Names"/>.</summary>
    public string Name { get; }

    /// <summary>The peak (initial, for LambdaLR) learning rate.</summary>
    public double BaseLr { get; }

    /// <summary>Steps of linear warmup from 0 to <see cref="BaseLr"/>.</summary>
    public int WarmupSteps { get; }

    /// <summary>num_training_steps: total optimizer steps of the run.</summary>
    public int TotalSteps { get; }

    /// <summary>The learning rate for the step taken after <paramref name="step"/> steps (step 0 = the first step).</summary>
    public double At(int step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "The step must be >= 0.");
        return BaseLr * Factor(step);
    }

    /// <summary>The multiplier λ(step) of <see cref="BaseLr"/>, as transformers' lr_lambda.</summary>
    public abstract double Factor(int step);

    /// <summary>The linear warmup factor step / max(1, warmup) shared by every schedule with warmup.</summary>
    protected double Warmup(int step) => (double)step / Math.Max(1, WarmupSteps);

    /// <summary>
    /// transformers' TrainingArguments.get_warmup_steps: <paramref name="warmupSteps"/> if it is &gt; 0, else
    /// ceil(<paramref name="warmupRatio"/> · <paramref name="totalSteps"/>).
    /// </summary>
    public static int ResolveWarmupSteps(int warmupSteps, double warmupRatio, int totalSteps)
    {
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warmup steps must be >= 0.");
        if (!(warmupRatio >= 0 && warmupRatio <= 1))
            throw new ArgumentOutOfRangeException(nameof(warmupRatio), warmupRatio, "warmup_ratio must be in [0, 1].");
        return warmupSteps > 0 ? warmupSteps : (int)Math.Ceiling(totalSteps * warmupRatio);
    }

    /// <summary>Creates the schedule <paramref name="name"/> (case-insensitive, one of <see cref="Names"/>).</summary>
    /// <param name="name">Scheduler type, e.g. "cosine".</param>
    /// <param name="baseLr">Peak learning rate.</param>
    /// <param name="warmupSteps">Linear warmup steps (ignored by "constant", as in transformers).</param>
    /// <param name="totalSteps">Total optimizer steps (used by linear, cosine, cosine_with_restarts, polynomial).</param>
    /// <param name="options">Schedule-specific options (num_cycles, lr_end, power, timescale).</param>
    /// <exception cref="ArgumentException">Unknown name (the message lists the valid ones) or invalid options.</exception>
    public static LearningRateSchedule Create(string name, double baseLr, int warmupSteps, int totalSteps, ScheduleOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        var o = options ?? new ScheduleOptions();
        return name.Trim().ToLowerInvariant() switch
        {
            "constant" => new ConstantSchedule(baseLr, warmupSteps, totalSteps),
            "constant_with_warmup" => new ConstantWithWarmupSchedule(baseLr, warmupSteps, totalSteps),
            "linear" => new LinearSchedule(baseLr, warmupSteps, totalSteps),
            "cosine" => new CosineSchedule(baseLr, warmupSteps, totalSteps, o.NumCycles ?? 0.5),
            "cosine_with_restarts" => new CosineWithRestartsSchedule(baseLr, warmupSteps, totalSteps, WholeCycles(o.NumCycles ?? 1)),
            "polynomial" => new PolynomialSchedule(baseLr, warmupSteps, totalSteps, o.LrEnd, o.Power),
            "inverse_sqrt" => new InverseSqrtSchedule(baseLr, warmupSteps, totalSteps, o.Timescale),
            _ => throw new ArgumentException($"Unknown learning-rate scheduler '{name}'. Valid names: {string.Join(", ", Names)}.", nameof(name)),
        };
    }

    private static int WholeCycles(double cycles)
    {
        if (cycles != Math.Floor(cycles) || cycles < 1 || cycles > int.MaxValue)
            throw new ArgumentException($"cosine_with_restarts needs a whole number of cycles >= 1 (num_cycles = {cycles}).", nameof(cycles));
        return (int)cycles;
    }
}
