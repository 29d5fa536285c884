// The sweep slot of a long-lived front end (the web UI): runs at most one SweepJob at a time on a background thread,
// keeps its live state (planned runs, the current run's steps, finished rows, info lines) for clients that poll it,
// and stops it as Ctrl+C stops `lorasharp sweep` (after the current step, with a checkpoint; the next start of the
// same sweep skips the finished runs). Sharing one slot with training is the front end's business: it checks
// TrainingJobManager before starting a sweep and this manager before starting a training.
// Not here: HTTP, resolving user-given names, or the sweep itself (SweepJob).
using LoraSharp.App.Sweeps;
using LoraSharp.Training;

namespace LoraSharp.App.Jobs;

/// <summary>Runs one sweep at a time and keeps its progress.</summary>
public sealed class SweepJobManager
{
    private const int MaxLogLines = 500;

    private readonly object _gate = new();
    private readonly Func<SweepRequest, ISweepObserver, CancellationToken, SweepResult> _job;
    private readonly Action<string> _log;
    private State? _current;
    private int _lastId;

    /// <summary>A manager running <see cref="SweepJob.Run"/> (or <paramref name="job"/>); <paramref name="log"/> gets unexpected failures with their trace.</summary>
    public SweepJobManager(Func<SweepRequest, ISweepObserver, CancellationToken, SweepResult>? job = null, Action<string>? log = null)
    {
        _job = job ?? SweepJob.Run;
        _log = log ?? (_ => { });
    }

    /// <summary>The latest sweep's state, or null before the first start.</summary>
    public SweepSnapshot? Snapshot()
    {
        lock (_gate) return _current?.Snapshot();
    }

    /// <summary>True while a sweep runs.</summary>
    public bool IsActive
    {
        get { lock (_gate) return _current?.IsActive == true; }
    }

    /// <summary>
    /// Starts <paramref name="request"/> (already planned: <paramref name="runs"/>) in the background. Rows that the
    /// sweep's folder records as finished show at once (the sweep skips them unless it restarts). Throws
    /// <see cref="InvalidOperationException"/> when a sweep is active (callers check <see cref="IsActive"/> first).
    /// </summary>
    public SweepSnapshot Start(string name, string configText, SweepRequest request, IReadOnlyList<SweepRun> runs)
    {
        List<SweepRunResult> recorded = request.Restart ? [] : SweepState.Load(request.OutputFolder).Runs.Where(r => r.Status == "finished" && runs.Any(p => p.Name == r.Name)).ToList();
        lock (_gate)
        {
            if (_current?.IsActive == true) throw new InvalidOperationException($"sweep '{_current.Name}' is already running");
            var state = new State(this, ++_lastId, name, configText, runs, recorded);
            _current = state;
            state.Completion = Task.Factory.StartNew(() => state.Execute(request), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            return state.Snapshot();
        }
    }

    /// <summary>Asks the running sweep to stop after the current step (checkpoint saved); false when none runs.</summary>
    public bool Interrupt()
    {
        State? s;
        lock (_gate)
        {
            s = _current;
            if (s == null || !s.IsActive) return false;
            s.Status = TrainingStatus.Stopping;
        }
        s.Cancel.Cancel();
        return true;
    }

    /// <summary>Interrupts a running sweep and waits for it to save its checkpoint (server shutdown); false when it did not end in time.</summary>
    public async Task<bool> StopAsync(TimeSpan timeout)
    {
        State? s;
        lock (_gate) s = _current;
        if (s == null) return true;
        Interrupt();
        try
        {
            await s.Completion.WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            _log($"sweep '{s.Name}' did not stop within {timeout.TotalSeconds:F0} s; its current run's interruption checkpoint may not have been written.");
            return false;
        }
    }

    // One sweep's live state; every field is guarded by the manager's lock.
    private sealed class State(SweepJobManager owner, int id, string name, string config, IReadOnlyList<SweepRun> runs, List<SweepRunResult> recorded)
        : ISweepObserver, IFineTuneObserver
    {
        private readonly List<StepRecord> _history = [];
        private readonly List<string> _log = [];
        private readonly List<SweepRunResult> _results = recorded;
        private readonly DateTimeOffset _startedAt = DateTimeOffset.UtcNow;
        private IReadOnlyList<string> _files = [];
        private int _currentRun, _totalSteps, _resumedAt;
        private bool _resuming;
        private string? _error;

        public string Name => name;
        public TrainingStatus Status { get; set; } = TrainingStatus.Preparing;
        public CancellationTokenSource Cancel { get; } = new();
        public Task Completion { get; set; } = Task.CompletedTask;
        public bool IsActive => Status is TrainingStatus.Preparing or TrainingStatus.Training or TrainingStatus.Stopping;

        public SweepSnapshot Snapshot() => new(id, name, config, Status, _startedAt, runs, _currentRun, _resuming, _totalSteps, _resumedAt,
            _history.ToArray(), _results.OrderBy(r => runs.ToList().FindIndex(p => p.Name == r.Name)).ToArray(), _log.ToArray(), _files, _error);

        public void Execute(SweepRequest request)
        {
            try
            {
                var result = owner._job(request, this, Cancel.Token);
                lock (owner._gate)
                {
                    _results.Clear();
                    _results.AddRange(result.Results);
                    _files = result.Files;
                    Status = result.Interrupted ? TrainingStatus.Interrupted : TrainingStatus.Finished;
                }
            }
            catch (OperationCanceledException)
            {
                lock (owner._gate) Status = TrainingStatus.Interrupted;
            }
            catch (Exception e)
            {
                lock (owner._gate)
                {
                    _error = UserErrors.IsExpected(e) ? UserErrors.Unwrap(e).Message : $"unexpected error ({e.GetType().Name}); the server log has the details.";
                    Status = TrainingStatus.Failed;
                }
                if (!UserErrors.IsExpected(e)) owner._log($"sweep '{name}' failed: {e}");
            }
        }

        public void Info(string line)
        {
            lock (owner._gate)
            {
                if (_log.Count == MaxLogLines) _log.RemoveAt(0);
                _log.Add(line);
            }
        }

        public IFineTuneObserver RunStarted(SweepRun run, int total, bool resuming)
        {
            lock (owner._gate)
            {
                _currentRun = run.Index;
                _resuming = resuming;
                _totalSteps = _resumedAt = 0;
                _history.Clear();
            }
            Info($"run {run.Index}/{total} {run.Name}" + (resuming ? " (resuming from its checkpoint)" : ""));
            return this;
        }

        public void RunFinished(SweepRun run, SweepRunResult result)
        {
            lock (owner._gate)
            {
                _results.RemoveAll(r => r.Name == result.Name);
                _results.Add(result);
            }
        }

        // The current run's fine-tune: its model/data summary repeats for every run, so only steps are kept.
        void IFineTuneObserver.Info(string line) { }

        void IFineTuneObserver.Started(int totalSteps, int resumedAtStep)
        {
            lock (owner._gate)
            {
                _totalSteps = totalSteps;
                _resumedAt = resumedAtStep;
                if (Status == TrainingStatus.Preparing) Status = TrainingStatus.Training;
            }
        }

        void IFineTuneObserver.Step(StepRecord record)
        {
            lock (owner._gate) _history.Add(record);
        }
    }
}
