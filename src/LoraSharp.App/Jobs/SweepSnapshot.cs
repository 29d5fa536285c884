// A sweep running in the background (or the last one), as a front end shows it: the planned runs, the run being
// trained with its step history, the finished rows so far, info lines, the files written and the error, if any.
using LoraSharp.App.Sweeps;
using LoraSharp.Training;

namespace LoraSharp.App.Jobs;

/// <summary>The state of a sweep started by <see cref="SweepJobManager"/>.</summary>
/// <param name="Id">Increasing number of the sweep in this process.</param>
/// <param name="Name">The sweep's name (its folder's name).</param>
/// <param name="Config">The config text as the user gave it.</param>
/// <param name="Status">Preparing, Training, Stopping, then Finished, Interrupted or Failed.</param>
/// <param name="StartedAt">When it was started.</param>
/// <param name="Runs">Every planned run.</param>
/// <param name="CurrentRun">1-based index of the run being trained (0 before the first).</param>
/// <param name="Resuming">The current run continues from its checkpoint.</param>
/// <param name="TotalSteps">Optimizer steps of the current run.</param>
/// <param name="ResumedAtStep">Step the current run resumed from (0 = started fresh).</param>
/// <param name="History">Step records of the current run.</param>
/// <param name="Results">Rows of finished runs (those recorded before, then the new ones), in run order.</param>
/// <param name="Log">Info lines (the latest 500).</param>
/// <param name="Files">Tables and plots written (full paths).</param>
/// <param name="Error">Why it failed (a user error's message), or null.</param>
public sealed record SweepSnapshot(int Id, string Name, string Config, TrainingStatus Status, DateTimeOffset StartedAt, IReadOnlyList<SweepRun> Runs,
    int CurrentRun, bool Resuming, int TotalSteps, int ResumedAtStep, IReadOnlyList<StepRecord> History, IReadOnlyList<SweepRunResult> Results,
    IReadOnlyList<string> Log, IReadOnlyList<string> Files, string? Error)
{
    /// <summary>True while it holds the job slot.</summary>
    public bool IsActive => Status is TrainingStatus.Preparing or TrainingStatus.Training or TrainingStatus.Stopping;
}
