// Nothing is lost on failure: an adapter folder appears only complete, --overwrite replaces the old adapter only once
// the new one is complete, an interrupted run stays a resumable NAME.run (listed as a checkpoint, not an adapter), and
// --resume passes over a damaged checkpoint to the newest intact one.
using LoraSharp.App;
using LoraSharp.Core;
using LoraSharp.Training;
using LoraSharp.Training.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class NothingLostTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-lost-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Root => Path.Combine(_dir, "loras");

    private TrainingSettings Settings(string name, int maxSteps, int seed = 5) => new()
    {
        LoraName = name, Dataset = StoryDataset.Write(_dir, "train.json", 32, 1), Format = "alpaca", CutoffLen = 128,
        MicroBatchSize = 4, BatchSize = 8, MaxSteps = maxSteps, LearningRate = 3e-3, WarmupSteps = 1, LoraRank = 4,
        LoraDropout = 0.1, TargetModules = ["q_proj", "v_proj"], EvalSteps = 0, SaveSteps = 2, Seed = seed,
    };

    private sealed class Lines(Action<StepRecord>? onStep = null) : IFineTuneObserver
    {
        public List<string> Info { get; } = [];
        public List<StepRecord> Steps { get; } = [];
        void IFineTuneObserver.Info(string line) => Info.Add(line);
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { Steps.Add(record); onStep?.Invoke(record); }
    }

    private FineTuneResult Run(TrainingSettings s, bool resume = false, IFineTuneObserver? observer = null, CancellationToken cancel = default) =>
        FineTuneJob.Run(new FineTuneRequest { Model = SharedFixtures.Stories260KHf, Settings = s, OutputRoot = Root, Resume = resume }, observer ?? new Lines(), cancel);

    private static byte[] Weights(string folder) => File.ReadAllBytes(Path.Combine(folder, PeftAdapter.WeightsFile));

    [Fact]
    public void Overwrite_ThatFailsBeforeTraining_KeepsTheOldAdapter()
    {
        var old = Run(Settings("keep", 2));
        byte[] before = Weights(old.AdapterFolder);
        var bad = Settings("keep", 2) with { Dataset = Path.Combine(_dir, "missing.json"), AlwaysOverride = true };
        Assert.ThrowsAny<Exception>(() => Run(bad));
        Assert.Equal(before, Weights(old.AdapterFolder));
        Assert.Equal(["keep"], Directory.EnumerateDirectories(Root).Select(Path.GetFileName));
    }

    [Fact]
    public void Overwrite_ThatDivergesMidRun_KeepsTheOldAdapter_AndTheRunsLog()
    {
        var old = Run(Settings("keep", 2));
        byte[] before = Weights(old.AdapterFolder);
        var diverging = Settings("keep", 6) with { LearningRate = 1e30, MaxGradNorm = 0, WarmupSteps = 0, AlwaysOverride = true };
        Assert.Throws<TrainingDivergedException>(() => Run(diverging));
        Assert.Equal(before, Weights(old.AdapterFolder));
        Assert.True(File.Exists(Path.Combine(FineTuneJob.RunFolder(old.AdapterFolder), "training_log.json")));
        var listed = AdapterCatalog.List(Root);
        Assert.Equal("peft", listed.Single(a => a.Name == "keep").Kind);
        Assert.Equal("checkpoint", listed.Single(a => a.Name == "keep.run").Kind);
    }

    [Fact]
    public void Overwrite_ThatFinishes_ReplacesTheOldAdapter_WithNothingLeftOver()
    {
        var old = Run(Settings("swap", 2));
        byte[] before = Weights(old.AdapterFolder);
        var fresh = Run(Settings("swap", 3, seed: 9) with { AlwaysOverride = true });
        Assert.Equal(old.AdapterFolder, fresh.AdapterFolder);
        Assert.NotEqual(before, Weights(fresh.AdapterFolder));
        Assert.Equal(["swap"], Directory.EnumerateFileSystemEntries(Root).Select(Path.GetFileName));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(fresh.AdapterFolder, "training_log.jsonl")).Length);
    }

    [Fact]
    public void Interrupted_IsACheckpointNotAnAdapter_AndResumeFinishesIt()
    {
        using var stop = new CancellationTokenSource();
        var first = Run(Settings("cut", 6), observer: new Lines(r => { if (r.Step == 3) stop.Cancel(); }), cancel: stop.Token);
        Assert.Equal("interrupted", first.Outcome.StopReason);
        string adapter = Path.Combine(Root, "cut");
        Assert.False(Directory.Exists(adapter), "an interrupted run must not look like a finished adapter");
        Assert.Equal(FineTuneJob.RunFolder(adapter), first.AdapterFolder);
        Assert.Equal("checkpoint", AdapterCatalog.List(Root).Single().Kind);

        var e = Assert.Throws<UserErrorException>(() => Run(Settings("cut", 6)));
        Assert.Contains("--resume", e.Message);

        var done = Run(Settings("cut", 6), resume: true);
        Assert.Equal(adapter, done.AdapterFolder);
        Assert.False(Directory.Exists(FineTuneJob.RunFolder(adapter)));
        Assert.Equal("peft", AdapterCatalog.List(Root).Single().Kind);
    }

    [Fact]
    public void Resume_PassesOverADamagedCheckpoint_ToTheNewestIntactOne_AndStaysExact()
    {
        var reference = new Lines();
        var full = Run(Settings("ref", 6), observer: reference);

        using var stop = new CancellationTokenSource();
        var first = new Lines(r => { if (r.Step == 5) stop.Cancel(); });
        Run(Settings("hurt", 6), observer: first, cancel: stop.Token);   // periodic checkpoint-2, checkpoint-4; interrupt checkpoint-5
        string run = FineTuneJob.RunFolder(Path.Combine(Root, "hurt"));
        string newest = Path.Combine(run, "checkpoint-5");
        string weights = Path.Combine(newest, "trainable.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        bytes[^3] ^= 0x40;   // one flipped bit in a parameter: the file still parses, only the checksum can tell
        File.WriteAllBytes(weights, bytes);

        var second = new Lines();
        var resumed = Run(Settings("hurt", 6), resume: true, observer: second);
        Assert.Contains(second.Info, l => l.Contains("checkpoint-5 cannot be used") && l.Contains("damaged"));
        Assert.Contains(second.Info, l => l.Contains("resumed from") && l.Contains("checkpoint-4"));
        Assert.True(Directory.Exists(Path.Combine(resumed.AdapterFolder, "checkpoint-5.damaged")));
        Assert.Equal(reference.Steps.Select(s => s.Loss), first.Steps.Take(4).Concat(second.Steps).Select(s => s.Loss));
        Assert.Equal(Weights(full.AdapterFolder), Weights(resumed.AdapterFolder));
    }

    [Fact]
    public void Resume_WithEveryCheckpointDamaged_SaysSo()
    {
        using var stop = new CancellationTokenSource();
        Run(Settings("gone", 6), observer: new Lines(r => { if (r.Step == 2) stop.Cancel(); }), cancel: stop.Token);
        string run = FineTuneJob.RunFolder(Path.Combine(Root, "gone"));
        foreach (var cp in Checkpoint.All(run)) File.WriteAllText(Path.Combine(cp, "trainer_state.json"), "{ truncated");
        var e = Assert.Throws<UserErrorException>(() => Run(Settings("gone", 6), resume: true));
        Assert.Contains("intact", e.Message);
    }

    [Fact]
    public void LeftOverTemporaryFiles_OfAKilledProcess_AreRemovedOnResume()
    {
        using var stop = new CancellationTokenSource();
        Run(Settings("tidy", 6), observer: new Lines(r => { if (r.Step == 2) stop.Cancel(); }), cancel: stop.Token);
        string run = FineTuneJob.RunFolder(Path.Combine(Root, "tidy"));
        const int deadPid = 2_000_000_000;   // no such process
        Directory.CreateDirectory(Path.Combine(run, $".checkpoint-4.tmp-{deadPid}-abc"));
        File.WriteAllText(Path.Combine(run, $".training_log.json.tmp-{deadPid}-abc"), "half");
        var done = Run(Settings("tidy", 6), resume: true);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(done.AdapterFolder), e => e.Contains(".tmp-"));
    }
}
