// Thrown when a second training is started while one is running: one job at a time, refused with a clear message.
namespace LoraSharp.App.Jobs;

/// <summary>A training run is already active.</summary>
public sealed class JobAlreadyRunningException(TrainingSnapshot running) : Core.UserErrorException(
    $"Training '{running.Name}' is already running (status {running.Status.ToString().ToLowerInvariant()}, step " +
    $"{running.History.Count}/{running.TotalSteps}); only one training runs at a time. Interrupt it or wait until it finishes.")
{
    /// <summary>The run that holds the slot.</summary>
    public TrainingSnapshot Running { get; } = running;
}
