// Sophia-G end to end: `train --optimizer sophia` with its settings through the CLI (recorded in
// training_parameters.json, the memory-estimate line names it), and kill-and-resume across a Hessian refresh giving
// the same losses and adapter bytes as an uninterrupted run (the Hessian is checkpointed, the sampled labels seeded).
using System.Text.Json;
using LoraSharp.App;
using LoraSharp.Training;
using LoraSharp.Training.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class SophiaCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-sophia-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Train_OptimizerSophia_TakesItsSettings_AndNamesItInTheEstimate()
    {
        string data = StoryDataset.Write(_dir, "train.json", 16, 1);
        var (code, output, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", data, "--format", "alpaca",
            "--name", "soph", "--output", Path.Combine(_dir, "loras"), "--max-steps", "3", "--micro-batch-size", "4", "--batch-size", "4",
            "-r", "4", "--lr", "1e-3", "--warmup-steps", "0", "--use-dora",
            "--optimizer", "sophia", "--sophia-rho", "0.05", "--hessian-update-interval", "2", "--adam-beta1", "0.9", "--adam-beta2", "0.95");
        Assert.True(code == 0, err + output);
        Assert.Contains("sophia state", output + err);
        Assert.Contains("DoRA buffers", output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "loras", "soph", "training_parameters.json")));
        var r = doc.RootElement;
        Assert.Equal("sophia", r.GetProperty("optimizer").GetString());
        Assert.Equal(0.05, r.GetProperty("sophia_rho").GetDouble());
        Assert.Equal(2, r.GetProperty("hessian_update_interval").GetInt32());
        Assert.Equal(0.9, r.GetProperty("adam_beta1").GetDouble());
        Assert.Equal(0.95, r.GetProperty("adam_beta2").GetDouble());
    }

    private sealed class Recorder(Action<StepRecord>? onStep = null) : IFineTuneObserver
    {
        public List<StepRecord> Steps { get; } = [];
        public void Info(string line) { }
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { Steps.Add(record); onStep?.Invoke(record); }
    }

    private TrainingSettings Settings(string name) => new()
    {
        LoraName = name, Dataset = StoryDataset.Write(_dir, "train.json", 32, 1), Format = "alpaca", CutoffLen = 128, MicroBatchSize = 4, BatchSize = 8,
        MaxSteps = 6, LearningRate = 3e-3, WarmupSteps = 1, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.1, TargetModules = ["all-linear"], Seed = 5,
        SaveSteps = 2, Optimizer = "sophia", HessianUpdateInterval = 2,
    };

    private FineTuneResult Run(TrainingSettings s, bool resume = false, IFineTuneObserver? observer = null, CancellationToken cancel = default)
        => FineTuneJob.Run(new FineTuneRequest { Model = SharedFixtures.Stories260KHf, Settings = s, OutputRoot = Path.Combine(_dir, "loras"), Resume = resume },
            observer ?? new Recorder(), cancel);

    [Fact]
    public void KillAndResume_AcrossHessianRefreshes_GivesIdenticalLossesAndAdapterBytes()
    {
        var full = new Recorder();
        var uninterrupted = Run(Settings("full"), observer: full);
        using var stop = new CancellationTokenSource();
        var first = new Recorder(r => { if (r.Step == 3) stop.Cancel(); });
        var interrupted = Run(Settings("split"), observer: first, cancel: stop.Token);
        Assert.Equal("interrupted", interrupted.Outcome.StopReason);
        var second = new Recorder();
        var resumed = Run(Settings("split"), resume: true, observer: second);
        Assert.Equal(full.Steps.Select(s => s.Loss), first.Steps.Concat(second.Steps).Select(s => s.Loss));
        Assert.Equal(File.ReadAllBytes(Path.Combine(uninterrupted.AdapterFolder, PeftAdapter.WeightsFile)),
                     File.ReadAllBytes(Path.Combine(resumed.AdapterFolder, PeftAdapter.WeightsFile)));
    }
}
