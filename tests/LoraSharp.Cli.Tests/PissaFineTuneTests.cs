// End-to-end PiSSA / OLoRA fine-tunes of stories260K through FineTuneJob (what `lorasharp train --init-lora-weights`
// and the web training tab run): step 0 is the base model, the finished folder holds the converted plain LoRA
// (r × 2, lora_alpha × 2, init_lora_weights true), and kill + resume recomputes the same residual base.
using System.Text.Json;
using LoraSharp.App;
using LoraSharp.Training;
using LoraSharp.Training.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class PissaFineTuneTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-pissa-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private TrainingSettings Settings(string name, string init) => new()
    {
        LoraName = name, Dataset = StoryDataset.Write(_dir, "train.json", 16, 1), EvalDataset = StoryDataset.Write(_dir, "eval.json", 4, 2), Format = "alpaca",
        CutoffLen = 128, MicroBatchSize = 4, BatchSize = 8, MaxSteps = 4, SaveSteps = 2, LearningRate = 3e-3, WarmupSteps = 1,
        LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.0, TargetModules = ["q_proj", "v_proj", "down_proj"], EvalSteps = 0, Seed = 5, InitLoraWeights = init,
    };

    private sealed class Recorder(Action<StepRecord>? onStep = null) : IFineTuneObserver
    {
        public List<StepRecord> Steps { get; } = [];
        public List<string> Lines { get; } = [];
        public void Info(string line) => Lines.Add(line);
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { Steps.Add(record); onStep?.Invoke(record); }
    }

    private FineTuneResult Run(TrainingSettings s, Recorder observer, bool resume = false, CancellationToken cancel = default)
        => FineTuneJob.Run(new FineTuneRequest { Model = SharedFixtures.Stories260KHf, Settings = s, OutputRoot = Path.Combine(_dir, "loras"), Resume = resume },
            observer, cancel);

    [Fact]
    public void Olora_StartsAtTheBaseModel_AndWritesAConvertedPlainLora()
    {
        var plain = Run(Settings("plain", "default"), new Recorder());
        var log = new Recorder();
        var olora = Run(Settings("olora", "olora"), log);
        Assert.Equal(plain.InitialEvalLoss!.Value, olora.InitialEvalLoss!.Value, 1e-5);   // W_res + s·B0·A0 = W
        Assert.Contains(log.Lines, l => l.Contains("residual") && l.Contains("rank 8"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(olora.AdapterFolder, "adapter_config.json")));
        Assert.Equal(8, doc.RootElement.GetProperty("r").GetInt32());
        Assert.Equal(16.0, doc.RootElement.GetProperty("lora_alpha").GetDouble());
        Assert.True(doc.RootElement.GetProperty("init_lora_weights").GetBoolean());
        var weights = Training.Adapters.AdapterLoader.Read(olora.AdapterFolder, null);   // readable by every tool: not refused as residual-relative
        Assert.Equal(15, weights.Modules.Count);
        Assert.All(weights.Modules, m => Assert.Equal(8, m.Rank));
    }

    [Fact]
    public void Export_ConvertsAnUnconvertedOloraAdapter_OnlyWithToLora()
    {
        string raw = Path.Combine(_dir, "raw");
        Directory.CreateDirectory(raw);
        var lora = new Models.Lora.LoraSettings { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"], Init = "olora" };
        using (var loaded = Models.Loading.ModelLoader.Load(SharedFixtures.Stories260KHf))
        using (var model = Models.Llama.LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath))
        {
            Training.Adapters.PissaInit.Attach(model, lora, seed: 1);
            PeftAdapter.WriteFiles(model, "default", PeftAdapter.ToConfig(lora, "stories260K"), raw);   // unconverted, as PEFT's plain save
        }
        var options = new ExportJobOptions { AdapterPath = raw, OutPath = Path.Combine(_dir, "a.gguf"), ModelPath = SharedFixtures.Stories260KHf };
        Assert.Contains("--to-lora", Assert.ThrowsAny<Core.UserErrorException>(() => ExportJob.Run(options)).Message);
        var weights = ExportJob.Run(options with { ToLora = true });
        Assert.Equal(10, weights.Modules.Count);
        Assert.All(weights.Modules, m => Assert.Equal(8, m.Rank));
        Assert.True(File.Exists(Path.Combine(_dir, "a.gguf")));
    }

    [Fact]
    public void PissaNiter_KillAndResume_GivesIdenticalLossesAndAdapterBytes()
    {
        var full = new Recorder();
        var uninterrupted = Run(Settings("full", "pissa_niter_2"), full);
        using var stop = new CancellationTokenSource();
        var first = new Recorder(r => { if (r.Step == 3) stop.Cancel(); });
        var interrupted = Run(Settings("split", "pissa_niter_2"), first, cancel: stop.Token);
        Assert.Equal("interrupted", interrupted.Outcome.StopReason);
        var second = new Recorder();
        var resumed = Run(Settings("split", "pissa_niter_2"), second, resume: true);
        Assert.Equal(full.Steps.Select(s => s.Loss), first.Steps.Concat(second.Steps).Select(s => s.Loss));
        Assert.Equal(File.ReadAllBytes(Path.Combine(uninterrupted.AdapterFolder, PeftAdapter.WeightsFile)),
                     File.ReadAllBytes(Path.Combine(resumed.AdapterFolder, PeftAdapter.WeightsFile)));
    }
}
