// Scheduler-specific options of transformers.get_scheduler's scheduler_specific_kwargs. Each schedule reads only
// its own; null means the transformers default.
namespace LoraSharp.Training.Schedules;

/// <summary>Options of the learning-rate schedules that have any.</summary>
public sealed record ScheduleOptions
{
    /// <summary>
    /// num_cycles: cosine waves (cosine, default 0.5: one half-wave from the peak to 0) or hard restarts
    /// (cosine_with_restarts, default 1; must be a whole number there).
    /// </summary>
    public double? NumCycles { get; init; }

    /// <summary>polynomial lr_end: the final learning rate (default 1e-7); must be below the base learning rate.</summary>
    public double LrEnd { get; init; } = 1e-7;

    /// <summary>polynomial power (default 1.0: linear).</summary>
    public double Power { get; init; } = 1.0;

    /// <summary>inverse_sqrt timescale; null: the warmup steps, or 10 000 when there are none (transformers).</summary>
    public int? Timescale { get; init; }
}
