// The life cycle of one background training run, as a front end shows it.
namespace LoraSharp.App.Jobs;

/// <summary>Where a training run is.</summary>
public enum TrainingStatus
{
    /// <summary>Loading the model and building the datasets.</summary>
    Preparing,
    /// <summary>Optimizer steps are running.</summary>
    Training,
    /// <summary>An interrupt was requested; the current step finishes and a checkpoint is saved.</summary>
    Stopping,
    /// <summary>Ended normally (last step, stop_at_loss or early stopping); the adapter is written.</summary>
    Finished,
    /// <summary>Interrupted; a resumable checkpoint and the adapter so far are written.</summary>
    Interrupted,
    /// <summary>Ended with an error (see the snapshot's Error).</summary>
    Failed,
}
