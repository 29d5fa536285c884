// The training API against a real server: live progress over server-sent events, the state a reconnecting page
// gets, interrupting, and the refusals (bad settings, an existing adapter, nothing to interrupt).
using System.Text.Json;

namespace LoraSharp.Web.Tests;

public sealed class TrainingEndpointTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = WebTestServer.TrainingTimeout;
    private WebTestServer _web = null!;

    public async Task InitializeAsync() => _web = await WebTestServer.StartAsync();

    public async Task DisposeAsync() => await _web.DisposeAsync();

    private Task<SseReader> Events() => SseReader.OpenAsync(_web.Client, new HttpRequestMessage(HttpMethod.Get, "/api/train/events"));

    private static bool IsStatus(string name, JsonElement data, string status) =>
        name == "snapshot" && data.GetProperty("run").ValueKind == JsonValueKind.Object && data.GetProperty("run").GetProperty("status").GetString() == status;

    [Fact]
    public async Task Train_StreamsEveryStepOverSse_AndTheAdapterAppearsWithItsFinalLoss()
    {
        using var events = await Events();
        var first = await events.NextAsync(Timeout, "the first snapshot");
        Assert.Equal("snapshot", first?.Name);
        await _web.StartTrainingAsync("live", maxSteps: 6);

        var seen = await events.UntilAsync((n, d) => IsStatus(n, d, "finished"), Timeout, "training 'live' to finish");
        var steps = seen.Where(e => e.Name == "step").Select(e => e.Data.GetProperty("step")).ToArray();
        Assert.Equal([1, 2, 3, 4, 5, 6], steps.Select(s => s.GetProperty("step").GetInt32()));
        Assert.All(steps, s => Assert.True(double.IsFinite(s.GetProperty("loss").GetDouble()) && s.GetProperty("tokens_per_second").GetDouble() > 0));
        Assert.Equal([2, 4, 6], steps.Where(s => s.GetProperty("eval_loss").ValueKind == JsonValueKind.Number).Select(s => s.GetProperty("step").GetInt32()));
        Assert.Contains(seen, e => e.Name == "info" && e.Data.GetProperty("line").GetString()!.StartsWith("data: RawText", StringComparison.Ordinal));
        Assert.Contains(seen, e => IsStatus(e.Name, e.Data, "training"));

        var run = seen[^1].Data.GetProperty("run");
        Assert.Equal("live", run.GetProperty("adapter").GetString());
        Assert.Equal(6, run.GetProperty("history").GetArrayLength());
        var outcome = run.GetProperty("outcome");
        Assert.Equal("completed", outcome.GetProperty("stop_reason").GetString());
        Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), run.ToString());   // server paths stay on the server

        var adapter = (await _web.GetJsonAsync("/api/adapters")).EnumerateArray().Single(a => a.GetProperty("name").GetString() == "live");
        Assert.Equal("peft", adapter.GetProperty("kind").GetString());
        Assert.Equal(4, adapter.GetProperty("rank").GetInt32());
        Assert.Equal(6, adapter.GetProperty("steps").GetInt32());
        Assert.Equal(outcome.GetProperty("final_loss").GetDouble(), adapter.GetProperty("final_loss").GetDouble());
        Assert.Equal(outcome.GetProperty("final_eval_loss").GetDouble(), adapter.GetProperty("final_eval_loss").GetDouble());
        Assert.True(File.Exists(Path.Combine(_web.Adapters, "live", "adapter_model.safetensors")));
    }

    // What the training tab's preference charts draw: every step of a dpo / orpo run carries TRL's reward metrics,
    // live over server-sent events and in the snapshot, and the evaluations carry the held-out margin and accuracy.
    [Theory]
    [InlineData("dpo")]   // orpo logs through the same records (the CLI's MethodsCliTests train both)
    public async Task Train_PreferenceObjective_StepsCarryTheRewardMetrics_LiveAndInTheSnapshot(string objective)
    {
        using var events = await Events();
        await events.NextAsync(Timeout, "the first snapshot");
        await _web.StartPreferenceTrainingAsync(objective, objective, maxSteps: 6);
        var seen = await events.UntilAsync((n, d) => IsStatus(n, d, "finished") || IsStatus(n, d, "failed"), Timeout, $"the {objective} run to end");
        var run = seen[^1].Data.GetProperty("run");
        Assert.True(run.GetProperty("status").GetString() == "finished", run.GetProperty("error").ToString());
        var live = seen.Where(e => e.Name == "step").Select(e => e.Data.GetProperty("step")).ToArray();
        foreach (var history in new[] { live, run.GetProperty("history").EnumerateArray().ToArray() })
        {
            Assert.Equal([1, 2, 3, 4, 5, 6], history.Select(h => h.GetProperty("step").GetInt32()));
            foreach (var key in new[] { "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies" })
                Assert.All(history, h => Assert.True(double.IsFinite(h.GetProperty(key).GetDouble()), $"{key} of step {h.GetProperty("step")}"));
            Assert.All(history, h => Assert.InRange(h.GetProperty("rewards/accuracies").GetDouble(), 0, 1));
            Assert.Equal([3, 6], history.Where(h => h.TryGetProperty("eval_rewards/margins", out _)).Select(h => h.GetProperty("step").GetInt32()));
            Assert.Equal([3, 6], history.Where(h => h.TryGetProperty("eval_rewards/accuracies", out _)).Select(h => h.GetProperty("step").GetInt32()));
        }
        // The compare view reads the same metrics from the finished adapter's log.
        var compared = (await _web.GetJsonAsync($"/api/compare?adapter={objective}")).GetProperty("runs")[0].GetProperty("history");
        Assert.Equal(6, compared.EnumerateArray().Count(h => h.TryGetProperty("rewards/margins", out _)));
    }

    [Fact]
    public async Task Reconnect_FirstEventIsTheRunSoFar_ThenTheNextSteps()
    {
        await _web.StartTrainingAsync("reconnect", maxSteps: 100_000);
        await _web.WaitForRunAsync(r => r.GetProperty("history").GetArrayLength() >= 2, "two steps of 'reconnect'");

        using var events = await Events();
        var first = await events.NextAsync(Timeout, "the snapshot a reloaded page starts from");
        Assert.Equal("snapshot", first?.Name);
        var run = first!.Value.Data.GetProperty("run");
        Assert.Equal("training", run.GetProperty("status").GetString());
        int have = run.GetProperty("history").GetArrayLength();
        Assert.True(have >= 2, $"snapshot has {have} steps");
        Assert.Equal(100_000, run.GetProperty("total_steps").GetInt32());
        Assert.NotEmpty(run.GetProperty("log").EnumerateArray());
        var next = await events.UntilAsync((n, _) => n == "step", Timeout, "the next step after the snapshot");
        Assert.Equal(have + 1, next[^1].Data.GetProperty("step").GetProperty("step").GetInt32());   // no step missed or repeated

        await _web.PostOkAsync("/api/train/interrupt", new { });
        await _web.WaitForEndAsync("reconnect");
    }

    [Fact]
    public async Task Interrupt_StopsAfterTheCurrentStep_AndLeavesAResumableCheckpoint_NotAnAdapter()
    {
        await _web.StartTrainingAsync("stopped", maxSteps: 100_000);
        await _web.WaitForRunAsync(r => r.GetProperty("history").GetArrayLength() >= 1, "the first step of 'stopped'");
        var answer = await _web.PostOkAsync("/api/train/interrupt", new { });
        Assert.True(answer.GetProperty("run").GetProperty("status").GetString() is "stopping" or "interrupted");

        var run = await _web.WaitForEndAsync("stopped");
        Assert.Equal("interrupted", run.GetProperty("status").GetString());
        var outcome = run.GetProperty("outcome");
        Assert.Equal("interrupted", outcome.GetProperty("stop_reason").GetString());
        int steps = outcome.GetProperty("steps").GetInt32();
        // The run stays stopped.run (its checkpoint is a usable adapter); no "stopped" adapter appears until it finishes.
        Assert.True(Directory.Exists(Path.Combine(_web.Adapters, "stopped.run", $"checkpoint-{steps}")), $"checkpoint-{steps}");
        Assert.True(File.Exists(Path.Combine(_web.Adapters, "stopped.run", $"checkpoint-{steps}", "adapter_model.safetensors")));
        Assert.False(Directory.Exists(Path.Combine(_web.Adapters, "stopped")));
        var listed = (await _web.GetJsonAsync("/api/adapters")).EnumerateArray().ToArray();
        Assert.DoesNotContain(listed, a => a.GetProperty("name").GetString() == "stopped");
        var run2 = listed.Single(a => a.GetProperty("name").GetString() == "stopped.run");
        Assert.Equal("checkpoint", run2.GetProperty("kind").GetString());
        Assert.Equal("interrupted", run2.GetProperty("stop_reason").GetString());
    }

    [Fact]
    public async Task Interrupt_BeforeTheFirstStep_EndsInterrupted_NotFailed()
    {
        await _web.StartTrainingAsync("early", maxSteps: 100_000);
        await _web.PostOkAsync("/api/train/interrupt", new { });
        var run = await _web.WaitForEndAsync("early");
        Assert.Equal("interrupted", run.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, run.GetProperty("error").ValueKind);
    }

    [Fact]
    public async Task Interrupt_WhenNothingRuns_Is409()
    {
        if (await _web.RunAsync() is { } r && r.GetProperty("active").GetBoolean()) await _web.WaitForEndAsync(r.GetProperty("name").GetString()!);
        Assert.Equal("No training is running.", await _web.PostErrorAsync("/api/train/interrupt", new { }, 409));
    }

    [Fact]
    public async Task Train_AnExistingAdapterName_Is409_UnlessOverwriteIsTicked()
    {
        Directory.CreateDirectory(Path.Combine(_web.Adapters, "taken"));
        File.WriteAllText(Path.Combine(_web.Adapters, "taken", "keep.txt"), "mine");
        string error = await _web.PostErrorAsync("/api/train", new { model = "stories260K-hf", settings = WebTestServer.TinyRun("taken", 2) }, 409);
        Assert.Contains("'taken' already exists", error);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(_web.Adapters, "taken", "keep.txt")));

        var settings = WebTestServer.TinyRun("taken", 2);
        settings["always_override"] = true;
        await _web.PostOkAsync("/api/train", new { model = "stories260K-hf", settings });
        Assert.Equal("finished", (await _web.WaitForEndAsync("taken")).GetProperty("status").GetString());
        Assert.False(File.Exists(Path.Combine(_web.Adapters, "taken", "keep.txt")));
    }

    [Theory]
    [InlineData("micro_batch_size", 0, "micro_batch_size")]
    [InlineData("learning_rate", -1.0, "learning_rate")]
    [InlineData("no_such_setting", 1, "no_such_setting")]
    public async Task Train_ABadSetting_Is400NamingIt(string key, object value, string named)
    {
        var settings = WebTestServer.TinyRun("bad", 2);
        settings[key] = value;
        Assert.Contains(named, await _web.PostErrorAsync("/api/train", new { model = "stories260K-hf", settings }, 400));
    }

    [Fact]
    public async Task Train_WithoutData_Is400SayingWhatToPick()
    {
        var settings = WebTestServer.TinyRun("nodata", 2);
        settings["raw_text_file"] = null;
        Assert.Contains("No training data", await _web.PostErrorAsync("/api/train", new { model = "stories260K-hf", settings }, 400));
    }

    [Fact]
    public async Task Train_AFormattedDataset_ThenCopyParameters_GivesNamesNotPaths()
    {
        await _web.StartTrainingAsync("alpaca", maxSteps: 2, s =>
        {
            s["raw_text_file"] = null;
            s["dataset"] = "alpaca.json";
            s["format"] = "alpaca";
            s["cutoff_len"] = 128;
        });
        var run = await _web.WaitForEndAsync("alpaca");
        Assert.Equal("finished", run.GetProperty("status").GetString());
        Assert.Contains(run.GetProperty("log").EnumerateArray(), l => l.GetString()!.StartsWith("data: Formatted", StringComparison.Ordinal));

        var copied = (await _web.GetJsonAsync("/api/adapters/alpaca/parameters")).GetProperty("settings");
        Assert.Equal("alpaca.json", copied.GetProperty("dataset").GetString());
        Assert.Equal("alpaca", copied.GetProperty("format").GetString());
        Assert.Equal(128, copied.GetProperty("cutoff_len").GetInt32());
        Assert.Equal(JsonValueKind.Null, copied.GetProperty("raw_text_file").ValueKind);
    }

    [Fact]
    public async Task Train_AnUnknownFormat_Is400ListingTheFormats()
    {
        var settings = WebTestServer.TinyRun("fmt", 2);
        settings["raw_text_file"] = null;
        settings["dataset"] = "alpaca.json";
        settings["format"] = "../../etc/passwd";
        Assert.Contains("alpaca", await _web.PostErrorAsync("/api/train", new { model = "stories260K-hf", settings }, 400));
    }
}
