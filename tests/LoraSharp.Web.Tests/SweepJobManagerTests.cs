// App's sweep slot with a stand-in sweep (no model): the planned runs and the current run's steps show while it
// runs, finished rows replace each other by name, interrupting cancels the job and ends Interrupted, a second start
// while one runs is refused, and a failure ends as Failed with the user error's message.
using LoraSharp.App;
using LoraSharp.App.Jobs;
using LoraSharp.App.Sweeps;
using LoraSharp.Core;
using LoraSharp.Training;

namespace LoraSharp.Web.Tests;

public sealed class SweepJobManagerTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-sweepjobs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly SweepRun[] Runs =
        [new(1, "01-a", [new("lora_rank", "2")], new TrainingSettings(), new Dictionary<string, string>()),
         new(2, "02-b", [new("lora_rank", "4")], new TrainingSettings(), new Dictionary<string, string>())];

    private SweepRequest Request() => new() { ConfigPath = "unused.yaml", OutputFolder = _dir };

    private static SweepRunResult Row(string name) => new() { Name = name, SettingsHash = "h", Values = new() { ["lora_rank"] = "2" }, Steps = 1 };

    private static StepRecord Step(int step) => new(step, 2, step / 2.0, 1.0 / step, null, 1e-3, 0.1, 100, step, 2 - step);

    // Run 1 takes one step and finishes; run 2 takes one step, then waits for the test's go-ahead (or cancellation).
    private sealed class Job
    {
        public readonly SemaphoreSlim Go = new(0);

        public SweepResult Run(SweepRequest request, ISweepObserver observer, CancellationToken cancel)
        {
            observer.Info("sweep: 2 runs");
            foreach (var run in Runs)
            {
                var fineTune = observer.RunStarted(run, Runs.Length, resuming: false);
                fineTune.Started(2, 0);
                fineTune.Step(Step(1));
                if (run.Index == 2)
                {
                    try { Go.Wait(cancel); }
                    catch (OperationCanceledException) { return new SweepResult(request.OutputFolder, Runs, [Row("01-a")], true, []); }
                }
                observer.RunFinished(run, Row(run.Name));
            }
            return new SweepResult(request.OutputFolder, Runs, [Row("01-a"), Row("02-b")], false, [Path.Combine(request.OutputFolder, "results.csv")]);
        }
    }

    private static async Task<SweepSnapshot> InRunTwo(SweepJobManager manager)
    {
        await Wait.UntilAsync(() => Task.FromResult(manager.Snapshot() is { CurrentRun: 2, History.Count: 1 }), Timeout, "run 2's first step");
        return manager.Snapshot()!;
    }

    [Fact]
    public async Task RunningSweep_ShowsItsRunsAndCurrentSteps_ThenFinishes()
    {
        var job = new Job();
        var manager = new SweepJobManager(job.Run);
        var started = manager.Start("s", "config text", Request(), Runs);
        Assert.Equal(["01-a", "02-b"], started.Runs.Select(r => r.Name));
        Assert.Equal("config text", started.Config);

        var running = await InRunTwo(manager);
        Assert.True(running.IsActive);
        Assert.Equal(TrainingStatus.Training, running.Status);
        Assert.Equal(2, running.TotalSteps);
        Assert.Equal("01-a", Assert.Single(running.Results).Name);
        Assert.Contains("run 2/2 02-b", running.Log);
        Assert.Throws<InvalidOperationException>(() => manager.Start("other", "", Request(), Runs));

        job.Go.Release();
        await Wait.UntilAsync(() => Task.FromResult(!manager.IsActive), Timeout, "the sweep to end");
        var done = manager.Snapshot()!;
        Assert.Equal(TrainingStatus.Finished, done.Status);
        Assert.Equal(["01-a", "02-b"], done.Results.Select(r => r.Name));
        Assert.Single(done.Files);
    }

    [Fact]
    public async Task Interrupt_CancelsTheSweep_AndItEndsInterrupted()
    {
        var manager = new SweepJobManager(new Job().Run);
        Assert.False(manager.Interrupt());
        manager.Start("s", "", Request(), Runs);
        await InRunTwo(manager);
        Assert.True(manager.Interrupt());
        await Wait.UntilAsync(() => Task.FromResult(!manager.IsActive), Timeout, "the sweep to stop");
        Assert.Equal(TrainingStatus.Interrupted, manager.Snapshot()!.Status);
        Assert.False(manager.Interrupt());
    }

    [Fact]
    public async Task FailingSweep_EndsFailed_WithTheUserErrorsMessage_AndFreesTheSlot()
    {
        var manager = new SweepJobManager((_, _, _) => throw new UserErrorException("run 2: lora_rank must be > 0"));
        manager.Start("s", "", Request(), Runs);
        await Wait.UntilAsync(() => Task.FromResult(!manager.IsActive), Timeout, "the sweep to fail");
        Assert.Equal(TrainingStatus.Failed, manager.Snapshot()!.Status);
        Assert.Equal("run 2: lora_rank must be > 0", manager.Snapshot()!.Error);
        manager.Start("again", "", Request(), Runs);   // the slot is free again
        await Wait.UntilAsync(() => Task.FromResult(!manager.IsActive), Timeout, "the second sweep to fail");
    }
}
