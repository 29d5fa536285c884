// The web's one job slot, shared by the training tab and the sweep tab: a training and a sweep never run at the same
// time (each would slow the other and fight for memory). Both starts go through here, under one lock, so two
// requests racing from different clients cannot both get in.
// Not here: the jobs themselves (App's TrainingJobManager and SweepJobManager).
using LoraSharp.App;
using LoraSharp.App.Jobs;
using LoraSharp.App.Sweeps;
using LoraSharp.Web.Http;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Api;

/// <summary>Starts trainings and sweeps, one job at a time.</summary>
internal sealed class JobSlot(TrainingJobManager training, SweepJobManager sweeps)
{
    private readonly object _gate = new();

    public TrainingJobManager Training => training;
    public SweepJobManager Sweeps => sweeps;

    /// <summary>Starts a training; 409 while a sweep runs (and, from the manager, while a training runs).</summary>
    public TrainingRun StartTraining(FineTuneRequest request)
    {
        lock (_gate)
        {
            if (sweeps.Snapshot() is { IsActive: true } s) throw Busy(s);
            return training.Start(request);
        }
    }

    /// <summary>Starts a sweep after <paramref name="prepare"/> (writing its folder); 409 while a training or another sweep runs.</summary>
    public SweepSnapshot StartSweep(string name, string configText, SweepRequest request, IReadOnlyList<SweepRun> runs, Action prepare)
    {
        lock (_gate)
        {
            if (training.Current?.Snapshot() is { IsActive: true } t) throw new JobAlreadyRunningException(t);
            if (sweeps.Snapshot() is { IsActive: true } s) throw Busy(s);
            prepare();
            return sweeps.Start(name, configText, request, runs);
        }
    }

    private static HttpError Busy(SweepSnapshot s) => new(StatusCodes.Status409Conflict,
        $"Sweep '{s.Name}' is running (run {Math.Max(1, s.CurrentRun)} of {s.Runs.Count}); only one job runs at a time. Stop it in the Sweep tab or wait until it finishes.");
}
