// App's single training slot with a stand-in job (no model): one run at a time, subscribers see the state they
// start from and then every update in order, interrupting cancels the job, failures end as Failed.
using System.Collections.Concurrent;
using LoraSharp.App;
using LoraSharp.App.Jobs;
using LoraSharp.Training;

namespace LoraSharp.Web.Tests;

public sealed class TrainingJobManagerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);   // only a failing test waits this long; CI runs test assemblies side by side on 2 cores

    private static FineTuneRequest Request(string name) => new() { Model = "model", Settings = new TrainingSettings { LoraName = name } };

    private static StepRecord Step(int step) => new(step, 3, step / 3.0, 1.0 / step, step == 3 ? 0.5 : null, 1e-3, 0.1, 100, step, 3 - step);

    // A job that reports three steps, waiting for the test's go-ahead before each, and honours cancellation.
    private sealed class SteppedJob
    {
        public readonly SemaphoreSlim Go = new(0);

        public FineTuneResult Run(FineTuneRequest request, IFineTuneObserver observer, CancellationToken cancel)
        {
            observer.Info("loading");
            observer.Started(3, 0);
            for (int i = 1; i <= 3; i++)
            {
                if (!Go.Wait(Timeout)) throw new TimeoutException("the test never let step " + i + " run");
                if (cancel.IsCancellationRequested) return Result(request, "interrupted", i - 1);
                observer.Step(Step(i));
            }
            return Result(request, "completed", 3);
        }

        private static FineTuneResult Result(FineTuneRequest request, string reason, int steps) =>
            new("/adapters/" + request.Settings.LoraName, new TrainingOutcome(reason, steps, 3, 0.3, 0.5, 0.5, 10, 1), 2.0);
    }

    // A manager whose run "name" has finished its first step and waits for the next go-ahead.
    private static async Task<(SteppedJob Job, TrainingJobManager Manager, TrainingRun Run)> AfterOneStep(string name)
    {
        var job = new SteppedJob();
        var manager = new TrainingJobManager(job.Run);
        var run = manager.Start(Request(name));
        job.Go.Release();
        await Wait.UntilAsync(() => Task.FromResult(run.Snapshot().History.Count == 1), Timeout, "the first step");
        return (job, manager, run);
    }

    private static async Task<TrainingSnapshot> Ended(TrainingRun run)
    {
        await run.Completion.WaitAsync(Timeout);
        return run.Snapshot();
    }

    [Fact]
    public async Task Start_WhileARunIsActive_Throws_AndTheFirstRunGoesOn()
    {
        var job = new SteppedJob();
        var manager = new TrainingJobManager(job.Run);
        var first = manager.Start(Request("first"));
        var e = Assert.Throws<JobAlreadyRunningException>(() => manager.Start(Request("second")));
        Assert.Equal("first", e.Running.Name);
        Assert.Contains("only one training runs at a time", e.Message);
        job.Go.Release(3);
        Assert.Equal(TrainingStatus.Finished, (await Ended(first)).Status);
        Assert.Same(first, manager.Current);

        var again = manager.Start(Request("again"));   // the slot is free once the run has ended
        Assert.Equal(2, again.Id);
        job.Go.Release(3);
        await Ended(again);
    }

    [Fact]
    public async Task Subscribe_GivesTheStartingState_ThenEveryUpdateInOrder()
    {
        var (job, manager, run) = await AfterOneStep("seen");

        var updates = new ConcurrentQueue<TrainingUpdate>();
        using var subscription = manager.Subscribe(updates.Enqueue, out var current);
        Assert.NotNull(current);
        Assert.Single(current.History);
        Assert.Equal(["loading"], current.Log);
        job.Go.Release(2);
        var end = await Ended(run);

        var steps = updates.Where(u => u.Kind == TrainingUpdateKind.Step).Select(u => u.Step!.Step).ToArray();
        Assert.Equal([2, 3], steps);
        var last = updates.Last();
        Assert.Equal(TrainingUpdateKind.Status, last.Kind);
        Assert.Equal(TrainingStatus.Finished, last.Snapshot!.Status);
        Assert.Equal(3, end.History.Count);
        Assert.Equal(0.5, end.History[^1].EvalLoss);
        Assert.Equal("/adapters/seen", end.AdapterFolder);
        Assert.Equal(2.0, end.InitialEvalLoss);
    }

    [Fact]
    public async Task Interrupt_CancelsTheJob_AndEndsInterrupted()
    {
        var (job, manager, run) = await AfterOneStep("stop");
        Assert.True(manager.Interrupt());
        Assert.Equal(TrainingStatus.Stopping, run.Snapshot().Status);
        job.Go.Release();
        var end = await Ended(run);
        Assert.Equal(TrainingStatus.Interrupted, end.Status);
        Assert.Equal("interrupted", end.Outcome!.StopReason);
        Assert.False(manager.Interrupt());   // nothing active any more
    }

    [Fact]
    public async Task AUserError_EndsFailed_WithItsMessage()
    {
        var manager = new TrainingJobManager((_, _, _) => throw new Training.Data.DatasetException("no template fits.", "data.json", row: 3));
        var end = await Ended(manager.Start(Request("bad")));
        Assert.Equal(TrainingStatus.Failed, end.Status);
        Assert.Equal("data.json, row 3: no template fits.", end.Error);
        Assert.False(end.IsActive);
    }

    [Fact]
    public async Task AnUnexpectedError_EndsFailed_WithoutItsDetails_WhichStayInFailure()
    {
        var manager = new TrainingJobManager((_, _, _) => throw new NullReferenceException("internal detail"));
        var run = manager.Start(Request("bug"));
        var end = await Ended(run);
        Assert.Equal(TrainingStatus.Failed, end.Status);
        Assert.DoesNotContain("internal detail", end.Error);
        Assert.Contains("NullReferenceException", end.Error);
        Assert.IsType<NullReferenceException>(run.Failure);
    }

    [Fact]
    public async Task ABrokenSubscriber_NeverStopsTheTraining()
    {
        var job = new SteppedJob();
        var manager = new TrainingJobManager(job.Run);
        using var subscription = manager.Subscribe(_ => throw new InvalidOperationException("subscriber bug"), out _);
        var run = manager.Start(Request("robust"));
        job.Go.Release(3);
        Assert.Equal(TrainingStatus.Finished, (await Ended(run)).Status);
    }
}
