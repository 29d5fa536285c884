using System.Globalization;
using LoraSharp.App;
using LoraSharp.App.Sweeps;
using LoraSharp.Core;
using LoraSharp.Training;

namespace LoraSharp.Cli.Tests;

/// <summary>`lorasharp sweep`: grid expansion, the results table and plots, resume after an interruption, bad axes.</summary>
public sealed class SweepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-sweep-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Tiny runs of the default model's next-number task: a few steps of 4 sequences each.
    private const string Base = """
        task: next-number
        settings:
          max_steps: 3
          micro_batch_size: 4
          batch_size: 4
          warmup_steps: 1
          eval_steps: 3
        """;

    private string Config(string body, string name = "sweep.yaml")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, Base + "\n" + body);
        return path;
    }

    [Fact]
    public void ThreeRunSweep_FromTheCommandLine_WritesAdaptersTableAndPlots()
    {
        string cfg = Config("grid:\n  lora_rank: [2, 4, 8]\n");
        string output = Path.Combine(_dir, "out");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = CliApp.Run(["sweep", "--config", cfg, "--output", output], stdout, stderr);
        Assert.True(rc == 0, $"exit {rc}: {stderr}\n{stdout}");

        var state = SweepState.Load(output);
        Assert.Equal(3, state.Runs.Count);
        Assert.All(state.Runs, r => Assert.Equal("finished", r.Status));
        foreach (var r in state.Runs)
        {
            Assert.True(File.Exists(Path.Combine(output, r.Name, "adapter_model.safetensors")), $"{r.Name} is not an adapter folder");
            Assert.Equal(3, r.Steps);
            Assert.True(r.ExactMatch is >= 0 and <= 1, $"{r.Name}: exact match {r.ExactMatch}");
            Assert.True(r.BestEvalLoss is > 0, $"{r.Name}: no validation loss");
            Assert.True(r.TokensPerSecond > 0 && r.StepSeconds > 0);
            // AdamW keeps two moments per trained value.
            Assert.Equal(2 * 4 * r.TrainableParameters, r.OptimizerStateBytes);
            Assert.True(r.BaseWeightBytes > 0, $"{r.Name}: base weight bytes not recorded");
            Assert.True(r.AdapterBytes > 4 * r.TrainableParameters, $"{r.Name}: adapter file {r.AdapterBytes} bytes for {r.TrainableParameters} parameters");
        }
        // LoRA parameters grow linearly with the rank.
        var byRank = state.Runs.ToDictionary(r => int.Parse(r.Values["lora_rank"], CultureInfo.InvariantCulture));
        Assert.Equal(2 * byRank[2].TrainableParameters, byRank[4].TrainableParameters);
        Assert.Equal(2 * byRank[4].TrainableParameters, byRank[8].TrainableParameters);

        // The CSV holds one row per run with the axis value and the measured numbers, as recorded.
        var lines = File.ReadAllLines(Path.Combine(output, "results.csv"));
        var header = lines[0].Split(',');
        Assert.Equal(["run", "lora_rank"], header[..2]);
        Assert.Contains("exact_match", header);
        Assert.Contains("optimizer_state_bytes", header);
        Assert.Equal(4, lines.Length);
        for (int i = 0; i < 3; i++)
        {
            var cells = lines[i + 1].Split(',');
            var row = state.Runs[i];
            Assert.Equal(row.Name, cells[0]);
            Assert.Equal(row.Values["lora_rank"], cells[1]);
            Assert.Equal(row.FinalLoss, double.Parse(cells[Array.IndexOf(header, "final_loss")], CultureInfo.InvariantCulture));
            Assert.Equal(row.TrainableParameters.ToString(CultureInfo.InvariantCulture), cells[Array.IndexOf(header, "trainable_parameters")]);
        }
        string md = File.ReadAllText(Path.Combine(output, "results.md"));
        Assert.StartsWith("| run | lora_rank |", md);
        Assert.All(state.Runs, r => Assert.Contains($"| {r.Name} |", md));

        foreach (string plot in new[] { "loss-curves", "metric-vs-lora_rank", "memory-vs-time" })
        {
            var png = File.ReadAllBytes(Path.Combine(output, "plots", plot + ".png"));
            Assert.True(png.Length > 1000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', $"{plot}.png is not a PNG");
            Assert.Contains("<svg", File.ReadAllText(Path.Combine(output, "plots", plot + ".svg")));
        }
    }

    private sealed class Recorder(Func<SweepRun, StepRecord, bool>? stopWhen = null, CancellationTokenSource? cts = null) : ISweepObserver
    {
        public readonly List<(string Name, bool Resuming)> Started = [];
        public void Info(string line) { }
        public void RunFinished(SweepRun run, SweepRunResult result) { }
        public IFineTuneObserver RunStarted(SweepRun run, int total, bool resuming)
        {
            Started.Add((run.Name, resuming));
            return new Steps(r => { if (stopWhen?.Invoke(run, r) == true) cts!.Cancel(); });
        }
    }

    private sealed class Steps(Action<StepRecord> onStep) : IFineTuneObserver
    {
        public void Info(string line) { }
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) => onStep(record);
    }

    [Fact]
    public void InterruptedSweep_ResumesTheInterruptedRunAndSkipsFinishedOnes()
    {
        string cfg = Config("runs:\n  - {lr_scheduler_type: constant}\n  - {lr_scheduler_type: cosine}\n  - {lr_scheduler_type: linear}\n");
        var request = new SweepRequest { ConfigPath = cfg, OutputFolder = Path.Combine(_dir, "out"), Plots = false };

        using var cts = new CancellationTokenSource();
        var first = new Recorder((run, step) => run.Index == 2 && step.Step == 1, cts);
        var stopped = SweepJob.Run(request, first, cts.Token);
        Assert.True(stopped.Interrupted);
        Assert.Single(stopped.Results);
        Assert.Equal(2, first.Started.Count);
        string firstRun = stopped.Runs[0].Name, secondRun = stopped.Runs[1].Name;
        DateTime firstWritten = File.GetLastWriteTimeUtc(Path.Combine(request.OutputFolder, firstRun, "adapter_model.safetensors"));
        Assert.True(Directory.Exists(Path.Combine(request.OutputFolder, secondRun + FineTuneJob.RunSuffix)), "the interrupted run keeps its working folder");

        var second = new Recorder();
        var done = SweepJob.Run(request, second);
        Assert.False(done.Interrupted);
        Assert.Equal([(secondRun, true), (stopped.Runs[2].Name, false)], second.Started);   // run 1 not redone, run 2 continued
        Assert.Equal(3, done.Results.Count);
        Assert.All(done.Results, r => Assert.Equal(3, r.Steps));
        Assert.Equal(firstWritten, File.GetLastWriteTimeUtc(Path.Combine(request.OutputFolder, firstRun, "adapter_model.safetensors")));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(request.OutputFolder, "results.csv")).Length);

        // A third call has nothing left to train.
        var third = new Recorder();
        Assert.Equal(3, SweepJob.Run(request, third).Results.Count);
        Assert.Empty(third.Started);

        // A changed config never reuses the recorded rows silently.
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("warmup_steps: 1", "warmup_steps: 2", StringComparison.Ordinal));
        var e = Assert.Throws<UserErrorException>(() => SweepJob.Run(request, new Recorder()));
        Assert.Contains("config changed", e.Message);
        Assert.Contains("--restart", e.Message);
    }

    [Theory]
    [InlineData("grid:\n  lora_rnk: [4, 8]\n", "lora_rnk", "did you mean 'lora_rank'")]
    [InlineData("grid:\n  lora_rank: [4, 0]\n", "lora_rank", "run 2")]
    [InlineData("runs:\n  - {optimizer: adamw}\n  - {optimizer: adamx}\n", "adamx", "run 2")]
    [InlineData("grid:\n  lora_name: [a, b]\n", "lora_name", "cannot be an axis")]
    [InlineData("grid:\n  lora_alpha: ['=2*lora_rnk']\n", "lora_rnk", "not a training setting")]
    [InlineData("grid:\n  lora_rank: 8\n", "lora_rank", "non-empty list")]
    [InlineData("grid:\n  full_fine_tuning: [false, true]\n", "full_fine_tuning", "full fine-tune")]
    [InlineData("settings:\n  learning_rte: 0.1\ngrid:\n  lora_rank: [4]\n", "learning_rte", "settings")]
    public void BadAxis_FailsBeforeAnyRunNamingIt(string body, string named, string says)
    {
        string path = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(path, body.Contains("settings:", StringComparison.Ordinal) ? "task: next-number\n" + body : Base + "\n" + body);
        string output = Path.Combine(_dir, "out");
        var e = Assert.ThrowsAny<UserErrorException>(() => SweepJob.Run(new SweepRequest { ConfigPath = path, OutputFolder = output }, new Recorder()));
        Assert.Contains(named, e.Message);
        Assert.Contains(says, e.Message);
        Assert.False(Directory.Exists(output), "nothing may run (or be written) before every run's settings are checked");
    }

    [Fact]
    public void Table_QuotesListValuesInCsv_AndLeavesUnmeasuredColumnsOut()
    {
        var run = new SweepRun(1, "01-target_modules-q_proj+v_proj", [new("target_modules", "q_proj,v_proj")], new TrainingSettings(),
            new Dictionary<string, string> { ["target_modules"] = "q_proj,v_proj" });
        var row = new SweepRunResult
        {
            Name = run.Name, SettingsHash = "x", Values = new() { ["target_modules"] = "q_proj,v_proj" },
            Steps = 3, FinalLoss = 1.25, TrainableParameters = 100, AdapterBytes = 2048, OptimizerStateBytes = 800,
        };
        string csv = SweepTable.Csv(["target_modules"], [(run, row)]);
        var lines = csv.TrimEnd('\n').Split('\n');
        Assert.Equal("run,target_modules,steps,final_loss,tokens_per_second,step_seconds,trainable_parameters,adapter_bytes,optimizer_state_bytes", lines[0]);
        Assert.Equal("01-target_modules-q_proj+v_proj,\"q_proj,v_proj\",3,1.25,0,0,100,2048,800", lines[1]);
        string md = SweepTable.Markdown(["target_modules"], [(run, row with { BestEvalLoss = 2.0 }), (run, row)]);
        Assert.Contains("| 01-target_modules-q_proj+v_proj | q_proj,v_proj | 3 | 1.2500 | 2.0000 |", md);
        Assert.Contains("| 1.2500 | – |", md);   // a run without a validation loss
        Assert.DoesNotContain("perplexity", md);
    }

    [Fact]
    public void Grid_TimesList_WithAlphaAsAMultipleOfRank()
    {
        string cfg = Config("grid:\n  lora_rank: [4, 16]\n  lora_alpha: ['=1*lora_rank', '=2*lora_rank']\nruns:\n  - {optimizer: adamw}\n  - {optimizer: sgd}\n");
        var (_, _, runs) = SweepJob.Plan(new SweepRequest { ConfigPath = cfg, OutputFolder = Path.Combine(_dir, "out") });
        Assert.Equal(8, runs.Count);
        Assert.Equal(["adamw", "adamw", "adamw", "adamw", "sgd", "sgd", "sgd", "sgd"], runs.Select(r => r.Settings.Optimizer));
        Assert.Equal([4, 4, 16, 16, 4, 4, 16, 16], runs.Select(r => r.Settings.LoraRank));
        Assert.Equal([4.0, 8, 16, 32, 4, 8, 16, 32], runs.Select(r => r.Settings.LoraAlpha!.Value));
        Assert.Equal("01-lora_rank-4_lora_alpha-4_optimizer-adamw", runs[0].Name);
        Assert.Equal("=2*lora_rank", runs[1].Labels["lora_alpha"]);
        Assert.Equal(runs.Count, runs.Select(r => r.Name).Distinct().Count());
    }
}
