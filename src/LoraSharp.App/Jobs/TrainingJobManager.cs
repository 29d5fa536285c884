// The single training slot of a long-lived front end (the web UI): starts at most one FineTuneJob at a time on a
// background thread, keeps the latest run so a reconnecting client sees it as it is, and fans its updates out to
// subscribers. A second start while one is active is refused with JobAlreadyRunningException.
// Not here: HTTP, serialisation, or resolving user-given paths (the caller hands over a checked request).
namespace LoraSharp.App.Jobs;

/// <summary>Runs one fine-tune at a time and publishes its progress.</summary>
public sealed class TrainingJobManager
{
    private readonly object _gate = new();
    private readonly List<Action<TrainingUpdate>> _subscribers = [];
    private readonly Func<FineTuneRequest, IFineTuneObserver, CancellationToken, FineTuneResult> _job;
    private readonly Action<string> _log;
    private TrainingRun? _current;
    private int _lastId;

    /// <summary>
    /// A manager running <see cref="FineTuneJob.Run"/>, or <paramref name="job"/> (tests). <paramref name="log"/> receives
    /// what an operator must see: a run that failed for a reason other than the user's input (with its stack trace) and
    /// a subscriber that threw and was dropped.
    /// </summary>
    public TrainingJobManager(Func<FineTuneRequest, IFineTuneObserver, CancellationToken, FineTuneResult>? job = null, Action<string>? log = null)
    {
        _job = job ?? FineTuneJob.Run;
        _log = log ?? (_ => { });
    }

    /// <summary>The latest run (active or ended), or null before the first start.</summary>
    public TrainingRun? Current
    {
        get { lock (_gate) return _current; }
    }

    /// <summary>Starts <paramref name="request"/> in the background; throws <see cref="JobAlreadyRunningException"/> when a run is active.</summary>
    public TrainingRun Start(FineTuneRequest request)
    {
        lock (_gate)
        {
            if (_current is { IsActiveLocked: true } busy) throw new JobAlreadyRunningException(busy.SnapshotLocked());
            var run = new TrainingRun(++_lastId, request, _gate, Publish);
            _current = run;
            Publish(new TrainingUpdate(TrainingUpdateKind.Status, run.Id, Snapshot: run.SnapshotLocked()));
            run.Completion = Task.Factory.StartNew(() =>
            {
                run.Execute(_job);
                // Logged here, not by a subscriber, so that no subscriber's failure can switch it off.
                if (run.Failure is { } e && !UserErrors.IsExpected(e)) _log($"training '{request.Settings.LoraName}' failed: {e}");
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            return run;
        }
    }

    /// <summary>Interrupts the active run; false when none is active.</summary>
    public bool Interrupt() => Current?.Interrupt() ?? false;

    /// <summary>
    /// Calls <paramref name="onUpdate"/> for every later update of any run, and returns in <paramref name="current"/> the
    /// state it starts from (no update is missed or seen twice). The handler runs under the manager's lock: it must
    /// only queue the update. Dispose the result to unsubscribe.
    /// </summary>
    public IDisposable Subscribe(Action<TrainingUpdate> onUpdate, out TrainingSnapshot? current)
    {
        lock (_gate)
        {
            _subscribers.Add(onUpdate);
            current = _current?.SnapshotLocked();
        }
        return new Subscription(this, onUpdate);
    }

    /// <summary>
    /// Interrupts the active run and waits for it to save its checkpoint (server shutdown). Returns false, after logging
    /// it, when the run did not end within <paramref name="timeout"/>: its interruption checkpoint may be missing, and
    /// the last periodic checkpoint is what --resume will use.
    /// </summary>
    public async Task<bool> StopAsync(TimeSpan timeout)
    {
        var run = Current;
        if (run == null) return true;
        run.Interrupt();
        try
        {
            await run.Completion.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            _log($"training '{run.Request.Settings.LoraName}' did not stop within {timeout.TotalSeconds:F0} s; its interruption checkpoint may not have been written " +
                 "(the newest periodic checkpoint-N is intact and --resume will use it).");
            return false;
        }
    }

    private void Publish(TrainingUpdate update)
    {
        foreach (var s in _subscribers.ToArray())
        {
            try
            {
                s(update);
            }
            catch (Exception e)
            {
                _subscribers.Remove(s);   // a broken subscriber must never stop the training
                _log($"a training-progress subscriber threw and was removed: {e}");
            }
        }
    }

    private sealed class Subscription(TrainingJobManager owner, Action<TrainingUpdate> handler) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._gate) owner._subscribers.Remove(handler);
        }
    }
}
