// A sweep config (.yaml or .json): a base model, base training settings, and axes that vary them, as a grid (every
// combination) and/or a list of runs (each list entry crossed with the grid). Axis names are training setting names
// from the one settings list (TrainingSettingsSchema); every run's settings go through the same parser and checks as a
// settings file before anything runs, so a bad axis name or value fails at once, naming the axis. A value "=K*name"
// (e.g. "=2*lora_rank") is K times another setting of the same run: alpha = 2 x rank in one grid.
//
//   model: default                # or a Hugging Face folder / .gguf file (default: the embedded default model)
//   task: next-number             # optional: the default model's task (dataset, held-out eval set, exact match)
//   metric: { perplexity_file: x.txt, perplexity_max_tokens: 4096 }   # or { exact_match_file: qa.jsonl }
//   settings: { max_steps: 40, learning_rate: 3e-3 }
//   grid: { lora_rank: [4, 8], lora_alpha: ["=1*lora_rank", "=2*lora_rank"] }
//   runs: [ { lr_scheduler_type: cosine }, { lr_scheduler_type: linear } ]
//
// Not here: running (SweepJob), tables (SweepTable), plots (SweepPlots).
using System.Globalization;
using System.Text.Json.Nodes;
using LoraSharp.Core;
using LoraSharp.Training;
using LoraSharp.Training.Settings;

namespace LoraSharp.App.Sweeps;

/// <summary>A parsed sweep config.</summary>
public sealed class SweepConfig
{
    /// <summary>The keys a sweep config may hold.</summary>
    public static readonly IReadOnlyList<string> Keys = ["model", "task", "metric", "settings", "grid", "runs"];

    /// <summary>The metric keys.</summary>
    public static readonly IReadOnlyList<string> MetricKeys = ["perplexity_file", "perplexity_max_tokens", "exact_match_file"];

    /// <summary>Settings an axis may not vary (the sweep sets them per run).</summary>
    public static readonly IReadOnlyList<string> Reserved = ["lora_name", "always_override"];

    /// <summary>Where the config came from (named in errors).</summary>
    public required string Source { get; init; }
    /// <summary>Base model path, or null for the embedded default model.</summary>
    public string? Model { get; init; }
    /// <summary>A built-in task ("next-number") or null.</summary>
    public string? Task { get; init; }
    /// <summary>Text file whose perplexity is measured after each run (null: none).</summary>
    public string? PerplexityFile { get; init; }
    /// <summary>Score at most this many tokens of <see cref="PerplexityFile"/> (0 = all).</summary>
    public int PerplexityMaxTokens { get; init; }
    /// <summary>JSONL of {"prompt", "answer"} rows scored by greedy exact match after each run (null: none).</summary>
    public string? ExactMatchFile { get; init; }
    /// <summary>The base settings (training_parameters.json keys).</summary>
    public JsonObject Settings { get; init; } = [];
    /// <summary>Grid axes in file order: every combination runs.</summary>
    public IReadOnlyList<KeyValuePair<string, IReadOnlyList<JsonNode?>>> Grid { get; init; } = [];
    /// <summary>Listed runs (each crossed with the grid); empty = one run per grid point.</summary>
    public IReadOnlyList<JsonObject> Runs { get; init; } = [];

    /// <summary>The built-in task names.</summary>
    public static readonly IReadOnlyList<string> Tasks = ["next-number"];

    /// <summary>Reads and checks a sweep config file.</summary>
    public static SweepConfig Load(string path) => Parse(TrainingSettingsFile.ReadObject(path), path);

    /// <summary>Checks a sweep config object; <paramref name="source"/> names it in errors.</summary>
    public static SweepConfig Parse(JsonObject json, string source)
    {
        foreach (var (key, _) in json)
            if (!Keys.Contains(key))
                throw new UserErrorException($"{source}: unknown key '{key}'. A sweep config has {string.Join(", ", Keys)}; training settings go under 'settings:', varied ones under 'grid:' or 'runs:'.");
        string? model = Text(json, "model", source);
        if (model is "default") model = null;
        string? task = Text(json, "task", source);
        if (task != null && !Tasks.Contains(task))
            throw new UserErrorException($"{source}: task '{task}' is not a built-in task; use one of: {string.Join(", ", Tasks)}, or leave task out and give the data in settings.");

        var metric = Object(json, "metric", source) ?? [];
        foreach (var (key, _) in metric)
            if (!MetricKeys.Contains(key))
                throw new UserErrorException($"{source}: metric: unknown key '{key}'; use {string.Join(", ", MetricKeys)}.");
        string? ppl = Text(metric, "perplexity_file", $"{source}: metric");
        string? em = Text(metric, "exact_match_file", $"{source}: metric");
        int pplTokens = 0;
        if (metric["perplexity_max_tokens"] is { } mt)
        {
            if (mt is not JsonValue v || !v.TryGetValue(out long l) || l < 0 || l > int.MaxValue)
                throw new UserErrorException($"{source}: metric: perplexity_max_tokens must be a whole number >= 0 (0 = the whole file), not {mt.ToJsonString()}.");
            pplTokens = (int)l;
        }
        if (ppl != null && em != null)
            throw new UserErrorException($"{source}: metric: give perplexity_file or exact_match_file, not both.");

        var settings = Object(json, "settings", source) ?? [];
        foreach (string r in Reserved)
            if (settings.ContainsKey(r)) throw new UserErrorException($"{source}: settings: '{r}' is set by the sweep for each run (the run's name); leave it out.");

        var grid = new List<KeyValuePair<string, IReadOnlyList<JsonNode?>>>();
        if (Object(json, "grid", source) is { } g)
            foreach (var (axis, values) in g)
            {
                CheckAxis(axis, $"{source}: grid");
                if (values is not JsonArray arr || arr.Count == 0)
                    throw new UserErrorException($"{source}: grid: {axis} must be a non-empty list of values, e.g. {axis}: [a, b].");
                grid.Add(new(axis, arr.Select(v => v?.DeepClone()).ToList()));
            }
        var runs = new List<JsonObject>();
        if (json["runs"] is { } rn)
        {
            if (rn is not JsonArray list || list.Count == 0)
                throw new UserErrorException($"{source}: runs must be a non-empty list of settings maps, e.g. runs: [{{optimizer: adamw}}, {{optimizer: sgd}}].");
            for (int i = 0; i < list.Count; i++)
            {
                if (list[i] is not JsonObject o)
                    throw new UserErrorException($"{source}: runs[{i}] must be a map of settings, e.g. {{optimizer: sgd}}.");
                foreach (var (axis, _) in o) CheckAxis(axis, $"{source}: runs[{i}]");
                runs.Add((JsonObject)o.DeepClone());
            }
        }
        if (grid.Count == 0 && runs.Count == 0)
            throw new UserErrorException($"{source}: no axes: add grid: (every combination) or runs: (a list), e.g. grid: {{lora_rank: [4, 8, 16]}}.");
        var config = new SweepConfig
        {
            Source = source, Model = model, Task = task, PerplexityFile = ppl, PerplexityMaxTokens = pplTokens, ExactMatchFile = em,
            Settings = settings, Grid = grid, Runs = runs,
        };
        return config;
    }

    /// <summary>The axis names in order (grid axes, then names first seen in the runs list).</summary>
    public IReadOnlyList<string> Axes =>
        Grid.Select(a => a.Key).Concat(Runs.SelectMany(r => r.Select(kv => kv.Key))).Distinct().ToList();

    /// <summary>
    /// Every run: its name, axis values and full settings, checked through the settings parser and Validate.
    /// <paramref name="baseSettings"/> is the base the config's settings apply to (a task's settings, or the defaults).
    /// </summary>
    public IReadOnlyList<SweepRun> Expand(TrainingSettings baseSettings)
    {
        var axes = Axes;
        var points = new List<JsonObject> { new() };
        foreach (var (axis, values) in Grid)
            points = points.SelectMany(p => values.Select(v => { var q = (JsonObject)p.DeepClone(); q[axis] = v?.DeepClone(); return q; })).ToList();
        var entries = Runs.Count > 0 ? Runs : [new JsonObject()];
        var baseJson = (JsonObject)JsonNode.Parse(TrainingSettingsFile.ToJson(baseSettings))!;
        foreach (var (k, v) in Settings) baseJson[k] = v?.DeepClone();
        // The base settings alone first, so a typo under settings: fails naming settings, not a run.
        TrainingSettingsSchema.CheckJson((JsonObject)Settings.DeepClone(), $"{Source}: settings");

        var result = new List<SweepRun>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
            foreach (var point in points)
            {
                var changes = (JsonObject)entry.DeepClone();
                foreach (var (k, v) in point) changes[k] = v?.DeepClone();
                var merged = (JsonObject)baseJson.DeepClone();
                foreach (var (k, v) in changes) merged[k] = v?.DeepClone();
                var values = new List<KeyValuePair<string, string>>();
                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (string axis in axes)
                {
                    labels[axis] = changes.ContainsKey(axis) ? Display(changes[axis]) : "-";
                    var resolved = Resolve(axis, merged, changes);
                    merged[axis] = resolved?.DeepClone();
                    values.Add(new(axis, changes.ContainsKey(axis) ? Display(resolved) : "-"));
                }
                int index = result.Count + 1;
                string name = RunName(index, values);
                if (!names.Add(name)) name = $"{name}-{index}";
                merged["lora_name"] = name;
                string where = $"{Source}: run {index} ({string.Join(", ", values.Select(v => v.Key + "=" + v.Value))})";
                var settings = TrainingSettingsFile.Parse(merged, where);
                try { settings.Validate(); }
                catch (UserErrorException e) { throw new UserErrorException($"{where}: {e.Message}", e); }
                result.Add(new SweepRun(index, name, values, settings, labels));
            }
        return result;
    }

    // "=K*name" -> K times the run's value of setting name (which may itself come from an axis).
    private JsonNode? Resolve(string axis, JsonObject merged, JsonObject changes)
    {
        var node = merged[axis];
        if (node is not JsonValue v || !v.TryGetValue(out string? text) || !text.StartsWith('=')) return node;
        string expr = text[1..].Replace(" ", "", StringComparison.Ordinal);
        int star = expr.IndexOf('*');
        string where = $"{Source}: {axis}: '{text}'";
        if (star <= 0 || !double.TryParse(expr[..star], NumberStyles.Float, CultureInfo.InvariantCulture, out double k) || !double.IsFinite(k))
            throw new UserErrorException($"{where} is not an expression of the form =K*setting (for example =2*lora_rank).");
        string other = expr[(star + 1)..];
        if (other == axis) throw new UserErrorException($"{where} refers to itself.");
        try { TrainingSettingsSchema.Get(other); }
        catch (ArgumentException) { throw new UserErrorException($"{where}: '{other}' is not a training setting (see docs/training.md for the names)."); }
        if (merged[other] is not JsonValue ov || !ov.TryGetValue(out double baseValue))
            throw new UserErrorException($"{where}: setting '{other}' of this run is not a number ({merged[other]?.ToJsonString() ?? "null"}).");
        double value = k * baseValue;
        return value == Math.Floor(value) && Math.Abs(value) < 1e15 ? JsonValue.Create((long)value) : JsonValue.Create(value);
    }

    private static void CheckAxis(string axis, string where)
    {
        if (Reserved.Contains(axis)) throw new UserErrorException($"{where}: '{axis}' cannot be an axis: the sweep names each run itself.");
        try { TrainingSettingsSchema.Get(axis); }
        catch (ArgumentException)
        {
            var near = TrainingSettingsSchema.All.Select(s => s.Name).OrderBy(n => Distance(n, axis)).First();
            throw new UserErrorException($"{where}: '{axis}' is not a training setting (did you mean '{near}'?). Axes are the snake_case names of training_parameters.json (docs/training.md).");
        }
    }

    /// <summary>An axis value as shown in run names and tables ("q_proj,v_proj" for a list).</summary>
    public static string Display(JsonNode? v) => v switch
    {
        null => "null",
        JsonArray a => string.Join(",", a.Select(Display)),
        JsonValue x when x.TryGetValue(out string? s) => s,
        JsonValue x when x.TryGetValue(out double d) => d.ToString("G6", CultureInfo.InvariantCulture),
        _ => v.ToJsonString(),
    };

    // "03-lora_rank-16_lora_alpha-32": the index keeps names unique and in order; characters are safe in folder names.
    private static string RunName(int index, IReadOnlyList<KeyValuePair<string, string>> values)
    {
        var parts = values.Where(v => v.Value != "-").Select(v => Safe(v.Key) + "-" + Safe(v.Value));
        string name = $"{index:D2}-" + string.Join("_", parts);
        return name.Length > 120 ? name[..120] : name;
    }

    private static string Safe(string s) => new(s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : c == ',' ? '+' : '-').ToArray());

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    private static string? Text(JsonObject o, string key, string source)
    {
        if (o[key] is not { } n) return null;
        if (n is JsonValue v && v.TryGetValue(out string? s) && s.Length > 0) return s;
        throw new UserErrorException($"{source}: {key} must be a text value, not {n.ToJsonString()}.");
    }

    private static JsonObject? Object(JsonObject o, string key, string source)
    {
        if (o[key] is not { } n) return null;
        return n as JsonObject ?? throw new UserErrorException($"{source}: {key} must be a map (key: value lines), not {n.ToJsonString()}.");
    }
}
