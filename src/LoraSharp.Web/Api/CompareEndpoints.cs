// The compare view's API: several runs' records and settings in one answer, so the browser can overlay their curves
// and set their settings side by side.
//   GET /api/compare?adapter=NAME&adapter=NAME...
//     {runs: [{name, kind, base_model, rank, alpha, outcome, history: [StepRecord], history_source, logged_steps,
//              sampled, problem}],
//      settings: [{name, values: [one per run, null where the run has no such setting], differs}]}
// A name is any adapter folder inside the adapters folder, nested ones included (a sweep's runs), or NAME.run (a run
// that has not finished). The history is training_log.json's log_history (written when a run ends or is
// interrupted), else the per-step training_log.jsonl (a run still training, or killed; a torn last line is skipped).
// Histories longer than MaxPoints are thinned evenly, keeping every evaluation and the last step. `differs` compares
// the runs that have a training_parameters.json; base_model (from adapter_config.json) is the first row.
// Not here: the drawing (wwwroot/compare.js) or the adapters' tensors.
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.App;
using LoraSharp.Training;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Api;

/// <summary>Maps the compare endpoint.</summary>
internal static class CompareEndpoints
{
    /// <summary>Most runs in one comparison (more lines than that are unreadable in one chart).</summary>
    public const int MaxRuns = 16;

    /// <summary>Most step records sent per run.</summary>
    public const int MaxPoints = 2000;

    private static readonly JsonSerializerOptions LogOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static void Map(WebApplication app, WebFolders folders)
    {
        app.MapGet("/api/compare", (HttpContext ctx) =>
        {
            var names = ctx.Request.Query["adapter"].Where(n => !string.IsNullOrEmpty(n)).Select(n => n!).ToArray();
            if (names.Length == 0) throw new Core.UserErrorException("Pick at least one adapter to compare (?adapter=NAME, repeated).");
            if (names.Length > MaxRuns) throw new Core.UserErrorException($"{names.Length} adapters picked; compare at most {MaxRuns} at a time.");
            var runs = names.Select(n => Read(n, folders)).ToArray();
            return WebJson.Ok(new { runs = runs.Select(r => r.View), settings = Rows(runs) });
        });
    }

    private sealed record Run(object View, string? BaseModel, JsonObject? Settings);

    private static Run Read(string name, WebFolders folders)
    {
        string path = folders.Adapters.Resolve(name);
        name = folders.Adapters.Name(path) ?? name;
        if (File.Exists(path))
            return new Run(View(name, "gguf", null, null, null, null, [], null, 0, false, "A GGUF LoRA file has no training records or settings."), null, null);
        if (!Directory.Exists(path)) throw new FileNotFoundException($"'{name}' is not in the adapters folder; pick one from its list.");
        var info = AdapterCatalog.Read(path);
        var problems = new List<string>();
        if (info.Problem != null) problems.Add(folders.Redact(info.Problem));
        var (history, source) = History(path, problems);
        int logged = history.Count;
        var sent = Thin(history, MaxPoints);
        JsonObject? settings = null;
        string parameters = Path.Combine(path, TrainingSettingsFile.ParametersFileName);
        if (File.Exists(parameters))
        {
            try
            {
                var s = SettingsPaths.ToClient(TrainingSettingsFile.Load(parameters), folders);
                settings = JsonNode.Parse(TrainingSettingsFile.ToJson(s))!.AsObject();
            }
            catch (Exception e) when (UserErrors.IsExpected(e))
            {
                problems.Add(folders.Redact(e.Message));
            }
        }
        else problems.Add($"No {TrainingSettingsFile.ParametersFileName}: the settings column stays empty.");
        if (history.Count == 0 && source == null) problems.Add("No training_log.json or training_log.jsonl: no curves to draw.");
        return new Run(View(name, info.Kind, info.BaseModel, info.Rank, info.Alpha, info.Outcome, sent, source, logged, sent.Count < logged,
            problems.Count == 0 ? null : string.Join(" ", problems)), info.BaseModel, settings);
    }

    private static object View(string name, string kind, string? baseModel, int? rank, double? alpha, TrainingOutcome? outcome,
        IReadOnlyList<StepRecord> history, string? source, int logged, bool sampled, string? problem) => new
        {
            name, kind, base_model = baseModel, rank, alpha, outcome, history, history_source = source, logged_steps = logged, sampled, problem,
        };

    // training_log.json's log_history, else the per-step training_log.jsonl.
    private static (IReadOnlyList<StepRecord> History, string? Source) History(string folder, List<string> problems)
    {
        string json = Path.Combine(folder, "training_log.json");
        if (File.Exists(json))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(json));
                if (doc.RootElement.TryGetProperty("log_history", out var h) && h.ValueKind == JsonValueKind.Array)
                    return (h.Deserialize<StepRecord[]>(LogOptions) ?? [], "training_log.json");
                problems.Add("training_log.json has no log_history array.");
            }
            catch (JsonException e)
            {
                problems.Add($"training_log.json: {e.Message}");
            }
        }
        string jsonl = Path.Combine(folder, TrainingStepLog.FileName);
        if (!File.Exists(jsonl)) return ([], null);
        var records = TrainingStepLog.Read(jsonl, out int bad);
        if (bad > 0) problems.Add($"training_log.jsonl: {bad} unreadable line(s) skipped.");
        return (records, "training_log.jsonl");
    }

    /// <summary>At most about <paramref name="max"/> records, evenly spaced, always keeping evaluations and the last one.</summary>
    internal static IReadOnlyList<StepRecord> Thin(IReadOnlyList<StepRecord> history, int max)
    {
        if (history.Count <= max) return history;
        double every = (double)history.Count / max;
        var kept = new List<StepRecord>(max + 64);
        double next = 0;
        for (int i = 0; i < history.Count; i++)
        {
            bool due = i >= next;
            if (due) next += every;
            if (due || history[i].EvalLoss != null || history[i].EvalRewardsMargins != null || i == history.Count - 1) kept.Add(history[i]);
        }
        return kept;
    }

    // One row per setting (base_model first, then the keys in training_parameters.json's order); `differs` among the
    // runs that have settings.
    private static IEnumerable<object> Rows(IReadOnlyList<Run> runs)
    {
        var keys = new List<string>();
        foreach (var r in runs)
            if (r.Settings != null)
                foreach (var (key, _) in r.Settings)
                    if (!keys.Contains(key)) keys.Add(key);
        var withSettings = runs.Where(r => r.Settings != null).ToArray();
        yield return Row("base_model", runs.Select(r => r.BaseModel is null ? null : JsonValue.Create(r.BaseModel)).ToArray(),
            runs.Where(r => r.BaseModel != null).Select(r => r.BaseModel).Distinct().Count() > 1);
        foreach (var key in keys)
        {
            var values = runs.Select(r => r.Settings != null && r.Settings.TryGetPropertyValue(key, out var v) ? v?.DeepClone() : null).ToArray();
            var compared = withSettings.Select(r => r.Settings!.TryGetPropertyValue(key, out var v) ? v : null).ToArray();
            bool differs = compared.Skip(1).Any(v => !JsonNode.DeepEquals(v, compared[0]));
            yield return Row(key, values, differs);
        }
    }

    private static object Row(string name, JsonNode?[] values, bool differs) => new { name, values, differs };
}
