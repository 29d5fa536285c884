// One change of a training run, pushed to subscribers (the web UI's live chart): a new step, an info line, or a
// status change carrying a whole new snapshot.
using LoraSharp.Training;

namespace LoraSharp.App.Jobs;

/// <summary>What changed.</summary>
public enum TrainingUpdateKind
{
    /// <summary>The status changed (started, stopping, ended); <see cref="TrainingUpdate.Snapshot"/> is set.</summary>
    Status,
    /// <summary>A step finished; <see cref="TrainingUpdate.Step"/> is set.</summary>
    Step,
    /// <summary>An info line; <see cref="TrainingUpdate.Line"/> is set.</summary>
    Info,
}

/// <summary>A change of the run <paramref name="RunId"/>.</summary>
/// <param name="Kind">What changed.</param>
/// <param name="RunId">The run it belongs to.</param>
/// <param name="Snapshot">The new state (Status updates).</param>
/// <param name="Step">The finished step (Step updates).</param>
/// <param name="Line">The info line (Info updates).</param>
public sealed record TrainingUpdate(TrainingUpdateKind Kind, int RunId, TrainingSnapshot? Snapshot = null, StepRecord? Step = null, string? Line = null);
