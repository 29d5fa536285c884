// Lists the adapters in an adapters folder (what training writes under its output root): PEFT folders with their
// adapter_config.json and training_log.json, llama.cpp GGUF LoRA files, and runs that have not finished (NAME.run:
// interrupted, killed or still training; kind "checkpoint", resumable with --resume). Temporary folders (dot names)
// are skipped: an adapter folder only ever appears complete. A broken file never hides the others: its problem is
// reported on its row. Not here: deciding which entries a user may
// see (the web UI filters links out of its folders) or reading tensors.
using System.Text.Json;
using LoraSharp.Formats.Peft;
using LoraSharp.Training;
using LoraSharp.Training.Peft;

namespace LoraSharp.App;

/// <summary>Reads adapter folders.</summary>
public static class AdapterCatalog
{
    /// <summary>The adapters directly inside <paramref name="root"/>, by name; an absent folder has none.</summary>
    public static IReadOnlyList<AdapterInfo> List(string root)
    {
        if (!Directory.Exists(root)) return [];
        var entries = new List<AdapterInfo>();
        foreach (var dir in Directory.EnumerateDirectories(root))
        {
            if (Path.GetFileName(dir).StartsWith(AtomicFolder.TempPrefix, StringComparison.Ordinal)) continue;
            if (File.Exists(Path.Combine(dir, PeftAdapterConfig.FileName)) || File.Exists(Path.Combine(dir, TrainingSettingsFile.ParametersFileName)))
                entries.Add(Read(dir));
        }
        foreach (var file in Directory.EnumerateFiles(root, "*.gguf"))
            entries.Add(new AdapterInfo(Path.GetFileName(file), file, "gguf", File.GetLastWriteTimeUtc(file), null, null, null, [], false, null, null, null, null));
        return entries.OrderBy(e => e.Name, StringComparer.Ordinal).ToArray();
    }

    /// <summary>Reads one adapter folder.</summary>
    public static AdapterInfo Read(string folder)
    {
        var problems = new List<string>();
        PeftAdapterConfig? config = null;
        if (File.Exists(Path.Combine(folder, PeftAdapterConfig.FileName)))
        {
            try { config = PeftAdapterConfig.Read(folder); }
            catch (Exception e) when (UserErrors.IsExpected(e)) { problems.Add(e.Message); }
        }
        var (outcome, lastLoss, lastEval) = ReadLog(Path.Combine(folder, "training_log.json"), problems);
        bool weights = File.Exists(Path.Combine(folder, PeftAdapter.WeightsFile)) || File.Exists(Path.Combine(folder, "model.safetensors"));
        var targets = config?.TargetModules is { } t ? t.Items ?? [t.Text!] : (IReadOnlyList<string>)[];
        string kind = folder.TrimEnd(Path.DirectorySeparatorChar).EndsWith(FineTuneJob.RunSuffix, StringComparison.Ordinal) ? "checkpoint" : weights ? "peft" : "incomplete";
        return new AdapterInfo(Path.GetFileName(folder), folder, kind, Directory.GetLastWriteTimeUtc(folder),
            config?.BaseModelNameOrPath, config?.R, config?.LoraAlpha, targets,
            File.Exists(Path.Combine(folder, TrainingSettingsFile.ParametersFileName)), outcome,
            outcome?.FinalLoss ?? lastLoss, outcome?.FinalEvalLoss ?? lastEval, problems.Count == 0 ? null : string.Join(" ", problems));
    }

    private static readonly JsonSerializerOptions LogOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    // training_log.json: {"outcome": TrainingOutcome or null, "log_history": [StepRecord...]}; a loss may be "NaN" (no step ran)
    private static (TrainingOutcome? Outcome, double? LastLoss, double? LastEval) ReadLog(string path, List<string> problems)
    {
        if (!File.Exists(path)) return (null, null, null);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            TrainingOutcome? outcome = root.TryGetProperty("outcome", out var o) && o.ValueKind == JsonValueKind.Object ? o.Deserialize<TrainingOutcome>(LogOptions) : null;
            var history = root.TryGetProperty("log_history", out var h) && h.ValueKind == JsonValueKind.Array ? h.Deserialize<StepRecord[]>(LogOptions) ?? [] : [];
            return (outcome, history.Length > 0 ? history[^1].Loss : null, history.LastOrDefault(r => r.EvalLoss != null)?.EvalLoss);
        }
        catch (JsonException e)
        {
            problems.Add($"{path}: {e.Message}");
            return (null, null, null);
        }
    }
}
