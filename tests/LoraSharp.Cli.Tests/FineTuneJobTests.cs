using System.Text.Json;
using LoraSharp.App;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Training;
using LoraSharp.Training.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

/// <summary>End-to-end fine-tunes of stories260K on a small alpaca-style dataset.</summary>
public sealed class FineTuneJobTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-ft-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteDataset(string file, int rows, int seed) => StoryDataset.Write(_dir, file, rows, seed);

    private TrainingSettings Settings(string name, int micro, int batch, int maxSteps = 0, double epochs = 2) => new()
    {
        LoraName = name, Dataset = WriteDataset("train.json", 32, 1), EvalDataset = WriteDataset("eval.json", 8, 2), Format = "alpaca",
        CutoffLen = 256, MicroBatchSize = micro, BatchSize = batch, Epochs = epochs, MaxSteps = maxSteps, LearningRate = 3e-3, WarmupSteps = 1,
        LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.0, TargetModules = ["all-linear"], EvalSteps = 2, Seed = 5,
    };

    private sealed class Recorder(Action<StepRecord>? onStep = null) : IFineTuneObserver
    {
        public List<StepRecord> Steps { get; } = [];
        public void Info(string line) { }
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { Steps.Add(record); onStep?.Invoke(record); }
    }

    private FineTuneResult Run(TrainingSettings s, bool resume = false, IFineTuneObserver? observer = null, CancellationToken cancel = default)
        => FineTuneJob.Run(new FineTuneRequest { Model = SharedFixtures.Stories260KHf, Settings = s, OutputRoot = Path.Combine(_dir, "loras"), Resume = resume },
            observer ?? new Recorder(), cancel);

    [Fact]
    public void FineTune_LowersValidationLoss_AndWritesPeftAdapterFolder()
    {
        var result = Run(Settings("demo", 8, 8, epochs: 6));
        Assert.NotNull(result.InitialEvalLoss);
        Assert.True(result.Outcome.FinalEvalLoss < result.InitialEvalLoss * 0.5, $"eval loss {result.InitialEvalLoss} -> {result.Outcome.FinalEvalLoss}");
        foreach (var f in new[] { "adapter_model.safetensors", "adapter_config.json", "training_parameters.json", "training_prompt.json",
                     "training_log.json", "training_log.jsonl", "loss_chart.svg", "data_preview.json" })
            Assert.True(File.Exists(Path.Combine(result.AdapterFolder, f)), f);
        Assert.Contains("<polyline", File.ReadAllText(Path.Combine(result.AdapterFolder, "loss_chart.svg")));

        // PEFT format: the golden adapter's config keys with the same JSON types, keys and shapes [r, in] / [out, r].
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.Golden, "lora", "adapter_config.json")));
        using var ours = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.AdapterFolder, "adapter_config.json")));
        foreach (var p in golden.RootElement.EnumerateObject())
        {
            Assert.True(ours.RootElement.TryGetProperty(p.Name, out var v), $"adapter_config.json lacks '{p.Name}'");
            if (p.Value.ValueKind is not JsonValueKind.Null && v.ValueKind is not JsonValueKind.Null)
                Assert.True(p.Value.ValueKind == v.ValueKind || (p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False && v.ValueKind is JsonValueKind.True or JsonValueKind.False), p.Name);
        }
        using var st = SafetensorsFile.Open(Path.Combine(result.AdapterFolder, "adapter_model.safetensors"));
        var q = st.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
        Assert.Equal([4, 64], q.Shape);
        Assert.Equal([32, 4], st.Info("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight").Shape);
        Assert.Equal(70, st.Tensors.Count);

        // The adapter loads back and changes the continuation towards the trained answer.
        using var session = ModelSession.Open(SharedFixtures.Stories260KHf, [new AdapterSpec(result.AdapterFolder)]);
        string prompt = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
                        "### Instruction:\nTell me about Sue and the boat.\n\n### Response:\n";
        var text = GenerateJob.Run(session, prompt, new Models.Generation.GenerationOptions { MaxNewTokens = 20, Sampling = Models.Generation.SamplingSettings.Greedy }).Text;
        Assert.Contains("Sue", text);
        Assert.Contains("boat", text);
    }

    [Fact]
    public void SavedAdapter_ReloadsWithIdenticalLogits()
    {
        var result = Run(Settings("reload", 8, 8, maxSteps: 3));
        using var trained = ModelSession.Open(SharedFixtures.Stories260KHf, [new AdapterSpec(result.AdapterFolder)]);
        using var twice = ModelSession.Open(SharedFixtures.Stories260KHf, [new AdapterSpec(result.AdapterFolder, 1.0)]);
        var batch = new Batch(1, 6, [1, 365, 1691 % 512, 263, 400, 300]);
        Assert.Equal(trained.Model.Logits(batch), twice.Model.Logits(batch));
        using var plain = ModelSession.Open(SharedFixtures.Stories260KHf);
        Assert.NotEqual(plain.Model.Logits(batch), trained.Model.Logits(batch));
    }

    [Fact]
    public void GradientAccumulation_MicroEightByOne_EqualsTwoByFour()
    {
        var a = Run(Settings("acc8", micro: 8, batch: 8, maxSteps: 1) with { MaxGradNorm = 0 });
        var b = Run(Settings("acc2", micro: 2, batch: 8, maxSteps: 1) with { MaxGradNorm = 0 });
        using var fa = SafetensorsFile.Open(Path.Combine(a.AdapterFolder, PeftAdapter.WeightsFile));
        using var fb = SafetensorsFile.Open(Path.Combine(b.AdapterFolder, PeftAdapter.WeightsFile));
        foreach (var info in fa.Tensors)
        {
            using var ta = fa.GetTensor(info.Name);
            using var tb = fb.GetTensor(info.Name);
            Assert.True(TestData.MaxAbsDiff(ta.Floats, tb.Floats) <= 1e-5, info.Name);
        }
        Assert.Equal(a.Outcome.FinalLoss, b.Outcome.FinalLoss, 5);
    }

    [Fact]
    public void KillAndResume_GivesIdenticalLossesAndAdapterBytes()
    {
        var full = new Recorder();
        var uninterrupted = Run(Settings("full", 4, 8, maxSteps: 6) with { SaveSteps = 2, LoraDropout = 0.1 }, observer: full);

        using var stop = new CancellationTokenSource();
        var first = new Recorder(r => { if (r.Step == 3) stop.Cancel(); });
        var interrupted = Run(Settings("split", 4, 8, maxSteps: 6) with { SaveSteps = 2, LoraDropout = 0.1 }, observer: first, cancel: stop.Token);
        Assert.Equal("interrupted", interrupted.Outcome.StopReason);
        Assert.Equal(3, interrupted.Outcome.Steps);
        var second = new Recorder();
        var resumed = Run(Settings("split", 4, 8, maxSteps: 6) with { SaveSteps = 2, LoraDropout = 0.1 }, resume: true, observer: second);

        Assert.Equal(full.Steps.Select(s => s.Loss), first.Steps.Concat(second.Steps).Select(s => s.Loss));
        Assert.Equal(File.ReadAllBytes(Path.Combine(uninterrupted.AdapterFolder, PeftAdapter.WeightsFile)),
                     File.ReadAllBytes(Path.Combine(resumed.AdapterFolder, PeftAdapter.WeightsFile)));
    }

    [Fact]
    public void HugeLearningRate_StopsWithClearMessage_AndExistingFolderIsRefused()
    {
        var e = Assert.Throws<TrainingDivergedException>(() => Run(Settings("nan", 8, 8, maxSteps: 5) with { LearningRate = 1e30, MaxGradNorm = 0, WarmupSteps = 0 }));
        Assert.Contains("learning rate", e.Message);
        Run(Settings("exists", 8, 8, maxSteps: 1));
        var io = Assert.Throws<Core.UserErrorException>(() => Run(Settings("exists", 8, 8, maxSteps: 1)));
        Assert.Contains("already exists", io.Message);
    }

    [Fact]
    public void FineTune_Phi3_AdapterOnTheFusedModules_ThenGenerateAndPerplexity()
    {
        // The tiny phi3 checkpoint with LongRoPE and partial rotary (tests/references/families/phi3_longrope).
        string model = FamilyFixtures.ModelFolder("phi3_longrope");
        try
        {
            var s = Settings("phi3", 8, 8, epochs: 3);
            var result = FineTuneJob.Run(new FineTuneRequest { Model = model, Settings = s, OutputRoot = Path.Combine(_dir, "loras") }, new Recorder());
            Assert.True(result.Outcome.FinalEvalLoss < result.InitialEvalLoss, $"eval loss {result.InitialEvalLoss} -> {result.Outcome.FinalEvalLoss}");
            using (var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.AdapterFolder, "adapter_config.json"))))
                Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], cfg.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
            using (var st = SafetensorsFile.Open(Path.Combine(result.AdapterFolder, "adapter_model.safetensors")))
            {
                Assert.Equal(2 * 4 * 2, st.Tensors.Count);
                Assert.Equal([80, 4], st.Info("base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight").Shape);
            }
            using var session = ModelSession.Open(model, [new AdapterSpec(result.AdapterFolder)]);
            var text = GenerateJob.Run(session, "Once upon a time", new Models.Generation.GenerationOptions { MaxNewTokens = 12, Sampling = Models.Generation.SamplingSettings.Greedy }).Text;
            Assert.False(string.IsNullOrEmpty(text));
            string textFile = Path.Combine(_dir, "ppl.txt");
            File.WriteAllText(textFile, string.Concat(Enumerable.Repeat("Once upon a time there was a little cat. ", 20)));
            var ppl = PerplexityJob.Run(session, new PerplexityRequest { Model = model, File = textFile, MaxLength = 32, Stride = 16 });
            Assert.True(double.IsFinite(ppl.Perplexity) && ppl.Perplexity > 1, $"perplexity {ppl.Perplexity}");

            // q_proj v_proj given explicitly names modules phi3 does not have: refused, naming the fused ones.
            var e = Assert.Throws<Core.UserErrorException>(() => FineTuneJob.Run(
                new FineTuneRequest { Model = model, Settings = Settings("phi3-default", 8, 8, maxSteps: 1) with { TargetModules = ["q_proj", "v_proj"] }, OutputRoot = Path.Combine(_dir, "loras") },
                new Recorder()));
            Assert.Contains("qkv_proj", e.Message);
        }
        finally
        {
            Directory.Delete(model, true);
        }
    }

    private sealed class InfoRecorder : IFineTuneObserver
    {
        public List<string> Lines { get; } = [];
        public void Info(string line) => Lines.Add(line);
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { }
    }

    private static string[] TargetModulesOf(string adapterFolder)
    {
        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapterFolder, "adapter_config.json")));
        return [.. cfg.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!)];
    }

    [Fact]
    public void FineTune_TargetModulesNotGiven_UsesTheFamilysPeftDefault()
    {
        // phi3 (fused q/k/v): trains on qkv_proj, and adapter_config.json and the run header say so.
        string model = FamilyFixtures.ModelFolder("phi3_longrope");
        try
        {
            var info = new InfoRecorder();
            var phi3 = FineTuneJob.Run(new FineTuneRequest { Model = model, Settings = Settings("phi3-none", 8, 8, maxSteps: 1) with { TargetModules = null },
                OutputRoot = Path.Combine(_dir, "loras") }, info);
            Assert.Equal(["qkv_proj"], TargetModulesOf(phi3.AdapterFolder));
            using (var st = SafetensorsFile.Open(Path.Combine(phi3.AdapterFolder, "adapter_model.safetensors")))
            {
                Assert.Equal(2 * 2, st.Tensors.Count);   // 2 layers x lora_A/lora_B
                Assert.All(st.Tensors, t => Assert.Contains(".self_attn.qkv_proj.lora_", t.Name));
            }
            Assert.Contains(info.Lines, l => l.Contains("on qkv_proj (target_modules not given: the phi3 default)", StringComparison.Ordinal));
            // training_parameters.json keeps "not given"
            Assert.Null(TrainingSettingsFile.Load(phi3.AdapterFolder).TargetModules);
        }
        finally
        {
            Directory.Delete(model, true);
        }

        // llama: PEFT's q_proj v_proj, as before.
        var llamaInfo = new InfoRecorder();
        var llama = Run(Settings("llama-none", 8, 8, maxSteps: 1) with { TargetModules = null }, observer: llamaInfo);
        Assert.Equal(["q_proj", "v_proj"], TargetModulesOf(llama.AdapterFolder));
        Assert.Contains(llamaInfo.Lines, l => l.Contains("on q_proj,v_proj (target_modules not given: the llama default)", StringComparison.Ordinal));
    }
}


public sealed class TrainingStopTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-stop-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Quiet : IFineTuneObserver
    {
        public void Info(string line) { }
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { }
    }

    private FineTuneResult Run(TrainingSettings s) => FineTuneJob.Run(
        new FineTuneRequest { Model = SharedFixtures.Stories260KHf, Settings = s, OutputRoot = Path.Combine(_dir, "loras") }, new Quiet());

    private TrainingSettings Settings(string name)
    {
        string data = Path.Combine(_dir, "train.json");
        var rows = Enumerable.Range(0, 16).Select(i => new Dictionary<string, string> { ["instruction"] = $"Say {i}.", ["output"] = $"Lily said {i}." });
        File.WriteAllText(data, JsonSerializer.Serialize(rows));
        return new TrainingSettings
        {
            LoraName = name, Dataset = data, Format = "alpaca", CutoffLen = 256, MicroBatchSize = 8, BatchSize = 8, MaxSteps = 40,
            LearningRate = 5e-3, WarmupSteps = 0, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0, TargetModules = ["all-linear"], EvalSteps = 1, EvalSplit = 0.25,
        };
    }

    [Fact]
    public void StopAtLoss_EndsTheRunEarly()
    {
        var r = Run(Settings("stop") with { StopAtLoss = 2.5 });
        Assert.Equal("stop_at_loss", r.Outcome.StopReason);
        Assert.True(r.Outcome.Steps < 40 && r.Outcome.FinalLoss <= 2.5);
    }

    [Fact]
    public void EarlyStopping_StopsAfterPatienceEvaluationsWithoutImprovement()
    {
        // A learning rate of ~0 cannot improve the validation loss, so patience 2 stops at step 3.
        var r = Run(Settings("patience") with { LearningRate = 1e-12, EarlyStoppingPatience = 2 });
        Assert.Equal("early_stopping", r.Outcome.StopReason);
        Assert.Equal(3, r.Outcome.Steps);
    }

    [Fact]
    public void FailedWrite_LeavesNoFolderBehind()
    {
        string target = Path.Combine(_dir, "out");
        Assert.Throws<IOException>(() => AtomicFolder.Write(target, overwrite: false, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "half.bin"), "partial");
            throw new IOException("No space left on device");
        }));
        Assert.False(Directory.Exists(target));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_dir), p => Path.GetFileName(p).StartsWith(".out", StringComparison.Ordinal));
    }
}
