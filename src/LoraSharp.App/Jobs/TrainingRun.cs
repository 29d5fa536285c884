// One fine-tune running in the background: its live state (status, step history, info lines, result or error) and
// its cancellation. It is the FineTuneJob's observer and turns every callback into a TrainingUpdate for the
// manager's subscribers. Created and started only by TrainingJobManager, which owns the lock it shares.
// Not here: threads of its own, HTTP, or deciding how an error is shown.
using LoraSharp.Training;

namespace LoraSharp.App.Jobs;

/// <summary>A training run started by <see cref="TrainingJobManager"/>.</summary>
public sealed class TrainingRun
{
    private const int MaxLogLines = 500;

    private readonly object _gate;
    private readonly Action<TrainingUpdate> _publish;   // called with _gate held
    private readonly CancellationTokenSource _cancel = new();
    private readonly List<StepRecord> _history = [];
    private readonly List<string> _log = [];
    private TrainingStatus _status = TrainingStatus.Preparing;
    private int _totalSteps, _resumedAt;
    private FineTuneResult? _result;
    private string? _error;

    internal TrainingRun(int id, FineTuneRequest request, object gate, Action<TrainingUpdate> publish)
    {
        Id = id;
        Request = request;
        _gate = gate;
        _publish = publish;
    }

    /// <summary>Increasing number of the run in this process.</summary>
    public int Id { get; }

    /// <summary>What is being trained.</summary>
    public FineTuneRequest Request { get; }

    /// <summary>When the run was started.</summary>
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Completes when the run has ended (never faults: failures end up in the snapshot).</summary>
    public Task Completion { get; internal set; } = Task.CompletedTask;

    /// <summary>The exception of a failed run, for the log (its message is in the snapshot when it is a user error).</summary>
    public Exception? Failure { get; private set; }

    /// <summary>The run's state now.</summary>
    public TrainingSnapshot Snapshot()
    {
        lock (_gate) return SnapshotLocked();
    }

    /// <summary>Asks the run to stop after the current step and save a checkpoint; false when it has already ended.</summary>
    public bool Interrupt()
    {
        lock (_gate)
        {
            if (!IsActiveLocked) return false;
            if (_status != TrainingStatus.Stopping) SetStatusLocked(TrainingStatus.Stopping);
        }
        _cancel.Cancel();
        return true;
    }

    internal bool IsActiveLocked => _status is TrainingStatus.Preparing or TrainingStatus.Training or TrainingStatus.Stopping;

    internal TrainingSnapshot SnapshotLocked() => new(Id, Request.Settings.LoraName, Request.Model, _status, StartedAt, _totalSteps, _resumedAt,
        _history.ToArray(), _log.ToArray(), _result?.Outcome, _result?.InitialEvalLoss, _result?.AdapterFolder, _error);

    internal void Execute(Func<FineTuneRequest, IFineTuneObserver, CancellationToken, FineTuneResult> job)
    {
        try
        {
            var result = job(Request, new Observer(this), _cancel.Token);
            lock (_gate)
            {
                _result = result;
                SetStatusLocked(result.Outcome.StopReason == "interrupted" ? TrainingStatus.Interrupted : TrainingStatus.Finished);
            }
        }
        catch (OperationCanceledException)
        {
            lock (_gate) SetStatusLocked(TrainingStatus.Interrupted);
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                Failure = e;
                _error = UserErrors.IsExpected(e) ? UserErrors.Unwrap(e).Message : $"unexpected error ({e.GetType().Name}); the server log has the details.";
                SetStatusLocked(TrainingStatus.Failed);
            }
        }
    }

    private void SetStatusLocked(TrainingStatus status)
    {
        _status = status;
        _publish(new TrainingUpdate(TrainingUpdateKind.Status, Id, Snapshot: SnapshotLocked()));
    }

    private sealed class Observer(TrainingRun run) : IFineTuneObserver
    {
        public void Info(string line)
        {
            lock (run._gate)
            {
                if (run._log.Count == MaxLogLines) run._log.RemoveAt(0);
                run._log.Add(line);
                run._publish(new TrainingUpdate(TrainingUpdateKind.Info, run.Id, Line: line));
            }
        }

        public void Started(int totalSteps, int resumedAtStep)
        {
            lock (run._gate)
            {
                run._totalSteps = totalSteps;
                run._resumedAt = resumedAtStep;
                run.SetStatusLocked(run._status == TrainingStatus.Stopping ? TrainingStatus.Stopping : TrainingStatus.Training);
            }
        }

        public void Step(StepRecord record)
        {
            lock (run._gate)
            {
                run._history.Add(record);
                run._publish(new TrainingUpdate(TrainingUpdateKind.Step, run.Id, Step: record));
            }
        }
    }
}
