// Everything a front end needs to draw a training run from scratch (a page reload): settings summary, status,
// the whole step history and the info lines. Immutable; a new one is taken for every status change.
using LoraSharp.Training;

namespace LoraSharp.App.Jobs;

/// <summary>The state of one training run at one moment.</summary>
/// <param name="RunId">Increasing number of the run in this process.</param>
/// <param name="Name">Adapter name (lora_name).</param>
/// <param name="Model">Base model path as given.</param>
/// <param name="Status">Where the run is.</param>
/// <param name="StartedAt">When the run was started.</param>
/// <param name="TotalSteps">Optimizer steps of the whole run (0 until known).</param>
/// <param name="ResumedAtStep">Step the run resumed at (0 for a fresh run).</param>
/// <param name="History">Every step so far, oldest first; records with EvalLoss are the evaluations.</param>
/// <param name="Log">Info lines (model summary, dataset sizes, warnings), oldest first, at most the last few hundred.</param>
/// <param name="Outcome">How training ended (null while running or after a failure).</param>
/// <param name="InitialEvalLoss">Validation loss before training (null without a validation set or until finished).</param>
/// <param name="AdapterFolder">The adapter folder written (null until finished).</param>
/// <param name="Error">What went wrong (null unless Failed).</param>
public sealed record TrainingSnapshot(
    int RunId,
    string Name,
    string Model,
    TrainingStatus Status,
    DateTimeOffset StartedAt,
    int TotalSteps,
    int ResumedAtStep,
    IReadOnlyList<StepRecord> History,
    IReadOnlyList<string> Log,
    TrainingOutcome? Outcome,
    double? InitialEvalLoss,
    string? AdapterFolder,
    string? Error)
{
    /// <summary>True while the run holds the training slot (preparing, training or stopping).</summary>
    public bool IsActive => Status is TrainingStatus.Preparing or TrainingStatus.Training or TrainingStatus.Stopping;
}
