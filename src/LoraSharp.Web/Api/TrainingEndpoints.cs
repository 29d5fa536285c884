// The training tab's API: one run at a time through App's TrainingJobManager.
//   GET  /api/train              {run: the latest run or null}
//   POST /api/train              {model, settings: {training_parameters.json keys}, resume} -> 202 {run}; 409 when busy
//   POST /api/train/interrupt    {} -> {run}; 409 when nothing runs
//   GET  /api/train/events       server-sent events: "snapshot" {run} first and on every status change,
//                                "step" {run_id, step}, "info" {run_id, line}
// The first event of the stream is the state it continues from, so a reloaded page misses nothing.
// Not here: training itself (FineTuneJob) or checking names against folders (SettingsPaths, WebFolder).
using System.Text.Json;
using LoraSharp.App;
using LoraSharp.App.Jobs;
using LoraSharp.Training;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace LoraSharp.Web.Api;

/// <summary>Maps the training endpoints.</summary>
internal static class TrainingEndpoints
{
    public static void Map(WebApplication app, WebFolders folders, TrainingJobManager jobs, ModelCache models, JobSlot slot)
    {
        app.MapGet("/api/train", () => WebJson.Ok(new { run = RunView.From(jobs.Current?.Snapshot(), folders) }));
        app.MapPost("/api/train", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<TrainBody>(ctx.Request);
            var run = slot.StartTraining(ToRequest(body, folders));   // refused while a sweep runs
            models.Drop();   // the generate tab's model gives its memory to the run
            return WebJson.Ok(new { run = RunView.From(run.Snapshot(), folders) }, StatusCodes.Status202Accepted);
        });
        app.MapPost("/api/train/interrupt", () =>
        {
            if (!jobs.Interrupt()) throw new HttpError(StatusCodes.Status409Conflict, "No training is running.");
            return WebJson.Ok(new { run = RunView.From(jobs.Current?.Snapshot(), folders) });
        });
        app.MapGet("/api/train/events", async (HttpContext ctx, IHostApplicationLifetime lifetime) =>
        {
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, lifetime.ApplicationStopping);
            var sse = new SseStream();
            using var subscription = jobs.Subscribe(update => Forward(sse, update, folders), out var current);
            sse.Send("snapshot", new { run = RunView.From(current, folders) });
            await sse.PumpAsync(ctx, cancel.Token);
        });
    }

    private static void Forward(SseStream sse, TrainingUpdate update, WebFolders folders)
    {
        switch (update.Kind)
        {
            case TrainingUpdateKind.Status: sse.Send("snapshot", new { run = RunView.From(update.Snapshot, folders) }); break;
            case TrainingUpdateKind.Step: sse.Send("step", new { run_id = update.RunId, step = update.Step }); break;
            case TrainingUpdateKind.Info: sse.Send("info", new { run_id = update.RunId, line = folders.Redact(update.Line ?? "") }); break;
        }
    }

    internal static FineTuneRequest ToRequest(TrainBody body, WebFolders folders)
    {
        var settings = TrainingSettingsFile.Parse(body.Settings.GetRawText(), "settings");
        settings.Validate();
        if (string.IsNullOrEmpty(settings.Dataset) && string.IsNullOrEmpty(settings.RawTextFile))
            throw new Core.UserErrorException("No training data: pick a formatted or chat dataset, or a raw text file.");
        settings = SettingsPaths.ToServer(settings, folders);
        string model = folders.Models.Resolve(body.Model);
        string folder = folders.Adapters.ResolveChild(settings.LoraName);
        if (!body.Resume && !settings.AlwaysOverride && Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
            throw new HttpError(StatusCodes.Status409Conflict,
                $"Adapter '{settings.LoraName}' already exists. Choose another name, tick 'overwrite' to replace it, or 'resume' to continue it.");
        if (!body.Resume && !settings.AlwaysOverride && Directory.Exists(FineTuneJob.RunFolder(folder)))
            throw new HttpError(StatusCodes.Status409Conflict,
                $"An interrupted run of '{settings.LoraName}' exists ({settings.LoraName}{FineTuneJob.RunSuffix}). Tick 'resume' to continue it, or 'overwrite' to start over.");
        return new FineTuneRequest
        {
            Model = model, Settings = settings, OutputRoot = folders.Adapters.Root, Resume = body.Resume, FormatsFolder = folders.Formats?.Root,
        };
    }

    internal sealed record TrainBody
    {
        public required string Model { get; init; }
        public required JsonElement Settings { get; init; }
        public bool Resume { get; init; }
    }
}
