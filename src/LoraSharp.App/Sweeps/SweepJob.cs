// The sweep use case shared by `lorasharp sweep` and the web UI: expand a sweep config into runs, train them one after
// another as normal adapter folders (OUTPUT/NAME, each committed atomically by FineTuneJob), measure each (losses,
// held-out perplexity or exact match, tokens/s, step time, peak RSS, trainable parameters, adapter and optimizer-state
// bytes), and write results.csv, results.md and plots/. Resumable: sweep_state.json records trained and finished runs
// (atomically, after each), so running the same command again skips them; an interrupted run continues from its
// checkpoint (Ctrl+C saves one; save_steps > 0 makes them for a kill -9). Every run's settings are checked before
// the first run starts. Not here: presentation (CLI, web).
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.App.DefaultModel;
using LoraSharp.Core;
using LoraSharp.Models.Generation;
using LoraSharp.Training;

namespace LoraSharp.App.Sweeps;

/// <summary>What to sweep and where.</summary>
public sealed record SweepRequest
{
    /// <summary>The sweep config file (.yaml or .json).</summary>
    public required string ConfigPath { get; init; }
    /// <summary>Output folder: adapter folders, sweep_state.json, results.csv/md, plots/.</summary>
    public required string OutputFolder { get; init; }
    /// <summary>Base model overriding the config's (null: the config's, else the embedded default model).</summary>
    public string? Model { get; init; }
    /// <summary>Forget recorded results and run every run again (adapter folders are replaced when each run finishes).</summary>
    public bool Restart { get; init; }
    /// <summary>Write PNG/SVG plots (off in tests that only need tables).</summary>
    public bool Plots { get; init; } = true;
    /// <summary>Folder of the shipped format files.</summary>
    public string? FormatsFolder { get; init; }
}

/// <summary>The outcome of a sweep (complete or interrupted).</summary>
/// <param name="OutputFolder">The sweep's folder.</param>
/// <param name="Runs">Every planned run.</param>
/// <param name="Results">Rows of finished runs, in run order.</param>
/// <param name="Interrupted">True when cancellation stopped the sweep before its last run finished.</param>
/// <param name="Files">Tables and plots written.</param>
public sealed record SweepResult(string OutputFolder, IReadOnlyList<SweepRun> Runs, IReadOnlyList<SweepRunResult> Results, bool Interrupted, IReadOnlyList<string> Files);

/// <summary>Observer of a sweep.</summary>
public interface ISweepObserver
{
    /// <summary>A line of information.</summary>
    void Info(string line);
    /// <summary>Run <paramref name="run"/> starts (or resumes); returns the observer of its fine-tune.</summary>
    IFineTuneObserver RunStarted(SweepRun run, int total, bool resuming);
    /// <summary>Run <paramref name="run"/> is finished and measured.</summary>
    void RunFinished(SweepRun run, SweepRunResult result);
}

/// <summary>Runs sweeps.</summary>
public static class SweepJob
{
    /// <summary>Plans the runs of a config without running them (for --dry-run and the web form); checks every run's settings.</summary>
    public static (SweepConfig Config, string Model, IReadOnlyList<SweepRun> Runs) Plan(SweepRequest request)
    {
        var config = SweepConfig.Load(request.ConfigPath);
        string model = request.Model ?? config.Model ?? DefaultJob.FindModel()
            ?? throw new UserErrorException($"{request.ConfigPath}: no model: set model: in the config or pass --model (the embedded default model was not found).");
        if (!File.Exists(model) && !Directory.Exists(model))
            throw new UserErrorException($"{request.ConfigPath}: model '{model}' does not exist; give a Hugging Face folder or a .gguf file.");
        foreach (var f in new[] { config.PerplexityFile, config.ExactMatchFile })
            if (f != null && !File.Exists(f)) throw new UserErrorException($"{request.ConfigPath}: metric file '{f}' does not exist.");
        var baseSettings = config.Task == "next-number" ? TaskSettings(Path.Combine(request.OutputFolder, "data"), write: false) : new TrainingSettings();
        var runs = config.Expand(baseSettings);
        bool measured = config.PerplexityFile != null || config.ExactMatchFile != null || config.Task != null;
        if (measured && runs.FirstOrDefault(r => r.Settings.FullFineTuning) is { } full)
            throw new UserErrorException($"{request.ConfigPath}: run {full.Name} is a full fine-tune, and the held-out metric loads adapters only; " +
                                         "leave full_fine_tuning out of this sweep, or drop metric: and task: (the table then has the losses).");
        return (config, model, runs);
    }

    /// <summary>Runs (or resumes) the sweep; cancellation stops after the current step with a checkpoint, and the next run of the same request continues.</summary>
    public static SweepResult Run(SweepRequest request, ISweepObserver observer, CancellationToken cancel = default)
    {
        var (config, model, runs) = Plan(request);
        string output = Path.GetFullPath(request.OutputFolder);
        Directory.CreateDirectory(output);
        string? exactMatch = config.ExactMatchFile;
        if (config.Task == "next-number")
        {
            TaskSettings(Path.Combine(output, "data"), write: true);
            exactMatch ??= config.PerplexityFile == null ? Path.Combine(output, "data", "heldout-qa.jsonl") : null;
        }
        var questions = exactMatch != null ? ReadQuestions(exactMatch) : null;

        var state = request.Restart ? new SweepState() : SweepState.Load(output);
        observer.Info($"sweep: {runs.Count} runs of {model} over {string.Join(", ", config.Axes)}; output {output}");
        var files = new List<string>();
        bool interrupted = false;
        foreach (var run in runs)
        {
            string hash = Hash(model, run.Settings, config);
            var row = state.Find(run.Name);
            if (row != null && row.SettingsHash != hash)
                throw new UserErrorException($"{output}: run {run.Name} was recorded with other settings or another model; the config changed. " +
                                             "Use a new --output folder, or pass --restart to run every run again.");
            if (row is { Status: "finished" })
            {
                observer.Info($"run {run.Index}/{runs.Count} {run.Name}: done before, skipped");
                continue;
            }
            if (row == null)
            {
                row = Train(run, runs.Count, model, output, hash, request, observer, cancel);
                if (row == null) { interrupted = true; break; }
                state.Put(row);
                state.Save(output);
            }
            if (cancel.IsCancellationRequested) { interrupted = true; break; }   // trained and recorded: the next call measures it
            row = Measure(row, run, model, output, config, questions);
            state.Put(row);
            state.Save(output);
            observer.RunFinished(run, row);
            files = WriteOutputs(output, config, runs, state, plots: false);   // the table so far; plots at the end
        }
        var results = runs.Select(r => state.Find(r.Name)).Where(r => r is { Status: "finished" }).Select(r => r!).ToList();
        files = WriteOutputs(output, config, runs, state, request.Plots && !interrupted);
        return new SweepResult(output, runs, results, interrupted, files);
    }

    // Trains one run; null when cancellation interrupted it (its checkpoint is saved).
    private static SweepRunResult? Train(SweepRun run, int total, string model, string output, string hash, SweepRequest request,
        ISweepObserver observer, CancellationToken cancel)
    {
        string runFolder = FineTuneJob.RunFolder(Path.Combine(output, run.Name));
        bool resume = !request.Restart && Training.Checkpoint.All(runFolder).Count > 0;
        var fineTuneObserver = observer.RunStarted(run, total, resume);
        // Free the previous run's memory and reset the kernel's peak-RSS mark (VmHWM), so the peak is this run's.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        bool peakReset = PeakRss.Reset();
        var result = FineTuneJob.Run(new FineTuneRequest
        {
            Model = model,
            Settings = run.Settings with { AlwaysOverride = true },
            OutputRoot = output,
            Resume = resume,
            FormatsFolder = request.FormatsFolder,
        }, fineTuneObserver, cancel);
        long? peak = peakReset ? PeakRss.Read() : null;
        var o = result.Outcome;
        if (o.StopReason == "interrupted") return null;
        string adapterFile = Path.Combine(result.AdapterFolder, run.Settings.FullFineTuning ? "model.safetensors" : "adapter_model.safetensors");
        return new SweepRunResult
        {
            Name = run.Name,
            SettingsHash = hash,
            Values = run.Values.ToDictionary(v => v.Key, v => v.Value),
            Status = "trained",
            StopReason = o.StopReason,
            Steps = o.Steps,
            FinalLoss = o.FinalLoss,
            BestEvalLoss = o.BestEvalLoss,
            TokensPerSecond = o.ElapsedSeconds > 0 ? o.TrainTokens / o.ElapsedSeconds : 0,
            StepSeconds = o.Steps > 0 ? o.ElapsedSeconds / o.Steps : 0,
            PeakRssBytes = peak,
            TrainableParameters = result.TrainableParameters,
            AdapterBytes = File.Exists(adapterFile) ? new FileInfo(adapterFile).Length : 0,
            OptimizerStateBytes = result.OptimizerStateBytes,
            BaseWeightBytes = result.BaseWeightBytes,
        };
    }

    // The held-out metric with the run's adapter on its base (same base dtype as training).
    private static SweepRunResult Measure(SweepRunResult row, SweepRun run, string model, string output, SweepConfig config, IReadOnlyList<(string Prompt, string Answer)>? questions)
    {
        if (config.PerplexityFile == null && questions == null) return row with { Status = "finished" };
        using var session = ModelSession.Open(model, [new AdapterSpec(Path.Combine(output, run.Name))], run.Settings.BaseDType, doubleQuant: run.Settings.DoubleQuant);
        double? ppl = null, em = null;
        if (config.PerplexityFile != null)
            ppl = PerplexityJob.Run(session, new PerplexityRequest { Model = model, File = config.PerplexityFile, MaxTokens = config.PerplexityMaxTokens }).Perplexity;
        if (questions != null) em = ExactMatch(session, questions);
        return row with { Status = "finished", Perplexity = ppl, ExactMatch = em };
    }

    /// <summary>Share of <paramref name="questions"/> whose greedy continuation (up to a newline) equals the answer, both trimmed.</summary>
    public static double ExactMatch(ModelSession session, IReadOnlyList<(string Prompt, string Answer)> questions)
    {
        var generator = new TextGenerator(session.Model, session.Tokenizer);
        int right = 0;
        foreach (var (prompt, answer) in questions)
        {
            int budget = session.Tokenizer.EncodeToIds(answer, addSpecialTokens: false).Length + 2;
            var r = generator.Generate(prompt, new GenerationOptions { MaxNewTokens = budget, Sampling = SamplingSettings.Greedy, StopStrings = ["\n"] });
            if (r.Text.Trim() == answer.Trim()) right++;
        }
        return right / (double)Math.Max(1, questions.Count);
    }

    /// <summary>Reads a JSONL file of {"prompt": ..., "answer": ...} rows.</summary>
    public static IReadOnlyList<(string Prompt, string Answer)> ReadQuestions(string path)
    {
        var list = new List<(string, string)>();
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (text.Trim().Length == 0) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(text); }
            catch (JsonException e) { throw new UserErrorException($"{path}: line {line}: not valid JSON ({e.Message}); each line is {{\"prompt\": \"...\", \"answer\": \"...\"}}.", e); }
            if (node is not JsonObject o || o["prompt"] is not JsonValue p || !p.TryGetValue(out string? prompt)
                || o["answer"] is not JsonValue a || !a.TryGetValue(out string? answer))
                throw new UserErrorException($"{path}: line {line}: expected {{\"prompt\": \"...\", \"answer\": \"...\"}} with text values.");
            list.Add((prompt, answer));
        }
        if (list.Count == 0) throw new UserErrorException($"{path}: no questions; each line is {{\"prompt\": \"...\", \"answer\": \"...\"}}.");
        return list;
    }

    // The next-number task: the default fine-tune's data (training numbers, held-out numbers as the validation set and
    // as exact-match questions) and settings, which the config's settings then change.
    private static TrainingSettings TaskSettings(string dataDir, bool write)
    {
        var (train, heldOut) = IncrementTask.Split(heldOut: 20, seed: 7);
        string dataset = Path.Combine(dataDir, "next-number.jsonl");
        string eval = Path.Combine(dataDir, "heldout.jsonl");
        if (write)
        {
            Directory.CreateDirectory(dataDir);
            Formats.Durable.WriteAllText(dataset, Lines(train.Select(n => Row("question", IncrementTask.Prompt(n), "answer", IncrementTask.Answer(n)))));
            Formats.Durable.WriteAllText(eval, Lines(heldOut.Select(n => Row("question", IncrementTask.Prompt(n), "answer", IncrementTask.Answer(n)))));
            Formats.Durable.WriteAllText(Path.ChangeExtension(dataset, ".format.json"), IncrementTask.FormatFile);
            Formats.Durable.WriteAllText(Path.Combine(dataDir, "heldout-qa.jsonl"), Lines(heldOut.Select(n => Row("prompt", IncrementTask.Prompt(n), "answer", IncrementTask.Answer(n)))));
        }
        return DefaultJob.Settings(dataset) with { EvalDataset = eval, AlwaysOverride = false };
    }

    private static string Row(string k1, string v1, string k2, string v2) => JsonSerializer.Serialize(new Dictionary<string, string> { [k1] = v1, [k2] = v2 });

    private static string Lines(IEnumerable<string> lines) => string.Concat(lines.Select(l => l + "\n"));

    // The settings (lora_name aside), the model and the metric: what makes a recorded row reusable.
    private static string Hash(string model, TrainingSettings settings, SweepConfig config)
    {
        string text = string.Join("\n", Path.GetFullPath(model), TrainingSettingsFile.ToJson(settings),
            config.PerplexityFile ?? "", config.PerplexityMaxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture), config.ExactMatchFile ?? "", config.Task ?? "");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    private static List<string> WriteOutputs(string output, SweepConfig config, IReadOnlyList<SweepRun> runs, SweepState state, bool plots)
    {
        var rows = runs.Select(r => (Run: r, Row: state.Find(r.Name))).Where(x => x.Row is { Status: "finished" }).Select(x => (x.Run, x.Row!)).ToList();
        var axes = config.Axes;
        string csv = Path.Combine(output, "results.csv"), md = Path.Combine(output, "results.md");
        Formats.Durable.WriteAllText(csv, SweepTable.Csv(axes, rows));
        Formats.Durable.WriteAllText(md, SweepTable.Markdown(axes, rows));
        var files = new List<string> { csv, md };
        if (plots && rows.Count > 0) files.AddRange(SweepPlots.Write(Path.Combine(output, "plots"), axes, rows, output));
        return files;
    }
}
