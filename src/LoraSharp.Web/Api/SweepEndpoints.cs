// The sweep tab's API: check a sweep config (the expanded runs, or the schema's error naming the axis), start it in
// the job slot it shares with training, watch it, stop it (after the current step, with a checkpoint) and start it
// again to resume (finished runs are skipped, as `lorasharp sweep` does), and fetch its tables and plots.
//   GET  /api/sweep                      {sweep: the latest sweep or null}
//   POST /api/sweep/validate             {name, config, restart} -> {model, axes, runs: [{index, name, values, settings}]}
//   POST /api/sweep                      {name, config, restart} -> 202 {sweep}; 409 when a training or a sweep runs
//   POST /api/sweep/interrupt            {} -> {sweep}; 409 when no sweep runs
//   GET  /api/sweeps/{name}/files/{file} results.csv, results.md, plots/NAME.png|svg
// A sweep named NAME lives in adapters/sweeps/NAME/ (its runs are adapters the compare tab opens as sweeps/NAME/RUN).
// The config is the CLI's (docs/experiments.md) with names instead of paths: model: a name in the models folder (or
// default), dataset/eval_dataset/raw_text_file and the metric files: names in the datasets folder, format: a format
// name. They are resolved here, inside their folders, before the engine sees the config.
// Not here: expanding, training or measuring (App's SweepJob), the slot (JobSlot, SweepJobManager).
using System.Text.Json.Nodes;
using LoraSharp.App.Jobs;
using LoraSharp.App.Sweeps;
using LoraSharp.Core;
using LoraSharp.Training;
using LoraSharp.Training.Settings;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using LoraSharp.Web.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Api;

/// <summary>Maps the sweep endpoints.</summary>
internal static class SweepEndpoints
{
    /// <summary>The folder inside the adapters folder that holds the sweeps.</summary>
    public const string SweepsFolder = "sweeps";

    /// <summary>The engine's copy of the config (paths resolved) in a sweep's folder.</summary>
    public const string ConfigFileName = "sweep_config.json";

    private static readonly Dictionary<string, string> FileTypes = new(StringComparer.Ordinal)
    {
        [".png"] = "image/png", [".svg"] = "image/svg+xml", [".csv"] = "text/csv; charset=utf-8", [".md"] = "text/markdown; charset=utf-8",
    };

    public static void Map(WebApplication app, WebFolders folders, JobSlot slot, ModelCache models)
    {
        app.MapGet("/api/sweep", () => WebJson.Ok(new { sweep = View(slot.Sweeps.Snapshot(), folders) }));
        app.MapPost("/api/sweep/validate", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<SweepBody>(ctx.Request);
            var (_, request, config, model, runs) = Plan(body, folders);
            return WebJson.Ok(new
            {
                model = ModelName(model, folders),
                axes = config.Axes,
                runs = runs.Select(r => new
                {
                    index = r.Index, name = r.Name, values = Values(r),
                    settings = JsonNode.Parse(folders.Redact(TrainingSettingsFile.ToJson(r.Settings))),
                }),
                resumes = request.Restart ? 0 : SweepState.Load(request.OutputFolder).Runs.Count(x => x.Status == "finished" && runs.Any(r => r.Name == x.Name)),
            });
        });
        app.MapPost("/api/sweep", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<SweepBody>(ctx.Request);
            var (json, request, _, _, runs) = Plan(body, folders);
            string configPath = Path.Combine(request.OutputFolder, ConfigFileName);
            var snapshot = slot.StartSweep(body.Name, body.Config, request with { ConfigPath = configPath }, runs, prepare: () =>
            {
                Directory.CreateDirectory(request.OutputFolder);
                string temp = configPath + ".tmp";   // written whole, then renamed over the old copy
                File.WriteAllText(temp, json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                File.Move(temp, configPath, overwrite: true);
            });
            models.Drop();   // the generate tab's model gives its memory to the runs
            return WebJson.Ok(new { sweep = View(snapshot, folders) }, StatusCodes.Status202Accepted);
        });
        app.MapPost("/api/sweep/interrupt", () =>
        {
            if (!slot.Sweeps.Interrupt()) throw new HttpError(StatusCodes.Status409Conflict, "No sweep is running.");
            return WebJson.Ok(new { sweep = View(slot.Sweeps.Snapshot(), folders) });
        });
        app.MapGet("/api/sweeps/{name}/files/{**file}", (HttpContext ctx, string name, string file) =>
        {
            string folder = SweepFolder(name, folders);
            bool allowed = file is "results.csv" or "results.md"
                           || (file.StartsWith("plots/", StringComparison.Ordinal) && file.Count(c => c == '/') == 1 && Path.GetExtension(file) is ".png" or ".svg");
            if (!allowed) throw new UserErrorException($"'{file}' is not a sweep's file; ask for results.csv, results.md or plots/NAME.png|svg.");
            string path = SafePath.Resolve(folder, $"adapters/{SweepsFolder}/{name}", file);
            if (!File.Exists(path)) throw new FileNotFoundException($"Sweep '{name}' has no {file} (yet): tables are written as runs finish, plots when the sweep ends.");
            ctx.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'";
            ctx.Response.Headers.XContentTypeOptions = "nosniff";
            return Results.File(File.ReadAllBytes(path), FileTypes[Path.GetExtension(path)]);
        });
    }

    /// <summary>The sweep's folder, adapters/sweeps/NAME, for a plain name; refused outside the adapters folder.</summary>
    internal static string SweepFolder(string name, WebFolders folders)
    {
        string root = Path.Combine(folders.Adapters.Root, SweepsFolder);
        Directory.CreateDirectory(root);
        if (!folders.Adapters.Contains(root))
            throw new UnauthorizedAccessException($"adapters/{SweepsFolder} is a link that points outside the adapters folder; sweeps are kept inside it.");
        return SafePath.ResolveChild(SafePath.RealPath(root), $"adapters/{SweepsFolder}", name);
    }

    // Reads the config text, resolves its names inside the folders and plans the runs (every run's settings checked).
    private static (JsonObject Json, SweepRequest Request, SweepConfig Config, string Model, IReadOnlyList<SweepRun> Runs) Plan(SweepBody body, WebFolders folders)
    {
        string output = SweepFolder(body.Name, folders);
        string dir = Directory.CreateTempSubdirectory("lorasharp-sweep-").FullName;
        try
        {
            string text = Path.Combine(dir, body.Config.TrimStart().StartsWith('{') ? "config.json" : "config.yaml");
            string resolved = Path.Combine(dir, "resolved.json");
            try
            {
                File.WriteAllText(text, body.Config);
                var json = TrainingSettingsFile.ReadObject(text);
                string? model = ResolveNames(json, folders);
                File.WriteAllText(resolved, json.ToJsonString());
                var request = new SweepRequest
                {
                    ConfigPath = resolved, OutputFolder = output, Model = model, Restart = body.Restart, FormatsFolder = folders.Formats?.Root,
                };
                var (config, m, runs) = SweepJob.Plan(request);
                return (json, request, config, m, runs);
            }
            catch (UserErrorException e)
            {
                throw new UserErrorException(Redact(e.Message.Replace(text, "sweep config").Replace(resolved, "sweep config"), folders), e);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // Model, dataset, format and metric names to server paths, in place; returns the model path (null: the default model).
    private static string? ResolveNames(JsonObject json, WebFolders folders)
    {
        string? model = null;
        if (json["model"] is JsonValue mv && mv.TryGetValue(out string? m))
        {
            if (m != "default") model = folders.Models.Resolve(m);
            json.Remove("model");
        }
        if (json["metric"] is JsonObject metric)
            foreach (string key in new[] { "perplexity_file", "exact_match_file" })
                if (metric[key] is JsonValue v && v.TryGetValue(out string? f)) metric[key] = folders.Datasets.Resolve(f);
        if (json["settings"] is JsonObject settings) ResolveSettings(settings, folders);
        if (json["grid"] is JsonObject grid)
            foreach (var (axis, values) in grid)
                if (values is JsonArray list)
                    for (int i = 0; i < list.Count; i++)
                        if (Resolve(axis, list[i], folders) is { } path) list[i] = path;
        if (json["runs"] is JsonArray runs)
            foreach (var run in runs)
                if (run is JsonObject o) ResolveSettings(o, folders);
        return model;
    }

    private static void ResolveSettings(JsonObject settings, WebFolders folders)
    {
        foreach (string key in settings.Select(kv => kv.Key).ToList())
            if (Resolve(key, settings[key], folders) is { } path) settings[key] = path;
    }

    // The server path of a dataset or format setting's name; null when the value is not such a name (left as it is).
    private static string? Resolve(string key, JsonNode? value, WebFolders folders)
    {
        if (value is not JsonValue v || !v.TryGetValue(out string? name) || name.Length == 0) return null;
        var info = TrainingSettingsSchema.All.FirstOrDefault(s => s.Name == key);
        return info?.Kind switch
        {
            SettingKind.Dataset => folders.Datasets.Resolve(name),
            SettingKind.Format => name == "chat" ? null : folders.FormatFile(name),
            _ => null,
        };
    }

    private static string ModelName(string model, WebFolders folders) =>
        folders.Models.Name(model) ?? (model == App.DefaultModel.DefaultJob.FindModel() ? "default" : Path.GetFileName(model));

    private static Dictionary<string, string> Values(SweepRun run) => run.Values.ToDictionary(v => v.Key, v => v.Value);

    private static object? View(SweepSnapshot? s, WebFolders folders)
    {
        if (s == null) return null;
        string folder = Path.Combine(folders.Adapters.Root, SweepsFolder, s.Name);
        var current = s.CurrentRun > 0 && s.CurrentRun <= s.Runs.Count ? s.Runs[s.CurrentRun - 1] : null;
        return new
        {
            id = s.Id, name = s.Name, config = s.Config, status = s.Status, active = s.IsActive, started_at = s.StartedAt,
            runs = s.Runs.Select(r => new { index = r.Index, name = r.Name, values = Values(r), compare_name = $"{SweepsFolder}/{s.Name}/{r.Name}" }),
            current_run = s.CurrentRun, current_name = current?.Name, resuming = s.Resuming, total_steps = s.TotalSteps, resumed_at_step = s.ResumedAtStep,
            history = s.History, results = s.Results, log = s.Log.Select(l => Redact(l, folders)),
            files = s.Files.Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/')).Where(f => !f.StartsWith("..", StringComparison.Ordinal)),
            error = s.Error == null ? null : Redact(s.Error, folders),
        };
    }

    // Folder paths as their labels, and the embedded default model's path (outside every folder) as "default model".
    private static string Redact(string line, WebFolders folders) =>
        App.DefaultModel.DefaultJob.FindModel() is { } model ? folders.Redact(line).Replace(model, "default model") : folders.Redact(line);

    internal sealed record SweepBody
    {
        public required string Name { get; init; }
        public required string Config { get; init; }
        public bool Restart { get; init; }
    }
}
