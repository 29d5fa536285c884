// The sweep tab's API on the embedded default model's next-number task with a few steps per run: a bad config is
// refused naming the axis, a 2-run sweep returns its results table and serves its files, and a stopped sweep started
// again skips its finished run and continues the interrupted one from its checkpoint; meanwhile the shared job slot
// refuses a training. Names outside the sweeps folder are refused.
using System.Text.Json;

namespace LoraSharp.Web.Tests;

public sealed class SweepEndpointTests
{
    private static readonly TimeSpan SweepTimeout = TimeSpan.FromSeconds(120);

    // Tiny runs of the default model's task: a few steps of 4 sequences each (as the CLI's sweep tests).
    private const string Base = """
        task: next-number
        settings:
          max_steps: 3
          micro_batch_size: 4
          batch_size: 4
          warmup_steps: 1
          eval_steps: 3

        """;

    private static object Body(string name, string config, bool restart = false) => new { name, config = Base + config, restart };

    private static async Task<JsonElement> SweepAsync(WebTestServer web) => (await web.GetJsonAsync("/api/sweep")).GetProperty("sweep");

    private static async Task<JsonElement> WaitAsync(WebTestServer web, Func<JsonElement, bool> condition, string what)
    {
        JsonElement last = default;
        await Wait.UntilAsync(async () => { last = await SweepAsync(web); return last.ValueKind == JsonValueKind.Object && condition(last); },
            SweepTimeout, what, () => Task.FromResult(last.ToString()));
        return last;
    }

    private static string Status(JsonElement s) => s.GetProperty("status").GetString()!;

    [Fact]
    public async Task Validate_MisspelledAxis_Is400NamingTheAxis_AndAGoodConfigListsItsRuns()
    {
        await using var web = await WebTestServer.StartAsync();
        string error = await web.PostErrorAsync("/api/sweep/validate", Body("bad", "grid:\n  lora_rnk: [4, 8]\n"), 400);
        Assert.Contains("lora_rnk", error);
        Assert.Contains("lora_rank", error);   // the suggestion
        Assert.DoesNotContain(Path.GetTempPath(), error);

        string badValue = await web.PostErrorAsync("/api/sweep/validate", Body("bad", "grid:\n  lora_rank: [4, -1]\n"), 400);
        Assert.Contains("lora_rank", badValue);

        var plan = await web.PostOkAsync("/api/sweep/validate", Body("good", "grid:\n  lora_rank: [2, 4]\n  lora_alpha: [\"=2*lora_rank\"]\n"));
        Assert.Equal("default", plan.GetProperty("model").GetString());
        var runs = plan.GetProperty("runs").EnumerateArray().ToArray();
        Assert.Equal(2, runs.Length);
        Assert.Equal([2, 4], runs.Select(r => r.GetProperty("settings").GetProperty("lora_rank").GetInt32()));
        Assert.Equal([4, 8], runs.Select(r => r.GetProperty("settings").GetProperty("lora_alpha").GetInt32()));
        Assert.Equal("2", runs[0].GetProperty("values").GetProperty("lora_rank").GetString());
        Assert.StartsWith("adapters/sweeps/good/data/", runs[0].GetProperty("settings").GetProperty("dataset").GetString());   // server paths hidden
        Assert.False(Directory.Exists(Path.Combine(web.Adapters, "sweeps", "good")), "checking a config must not create the sweep's folder");
    }

    [Fact]
    public async Task Names_OutsideTheirFolders_AreRefused()
    {
        await using var web = await WebTestServer.StartAsync();
        Assert.Contains("plain name", await web.PostErrorAsync("/api/sweep/validate", Body("../escape", "grid:\n  lora_rank: [2]\n"), 400));
        Assert.Contains("..", await web.PostErrorAsync("/api/sweep/validate",
            new { name = "s", config = "settings: {raw_text_file: ../x.txt}\ngrid: {lora_rank: [2]}\n", restart = false }, 403));
        Assert.Contains("absolute", await web.PostErrorAsync("/api/sweep/validate",
            new { name = "s", config = "model: /etc\ngrid: {lora_rank: [2]}\n", restart = false }, 403));
        using var file = await web.Client.GetAsync("/api/sweeps/s/files/sweep_state.json");
        Assert.Contains("not a sweep's file", await WebTestServer.ErrorOf(file, 400));

        // A plot that is a link to a file outside is not served; nor is a sweeps folder that is a link to elsewhere.
        string outside = Path.Combine(web.Root, "secret.png");
        File.WriteAllText(outside, "secret");
        Directory.CreateDirectory(Path.Combine(web.Adapters, "sweeps", "s", "plots"));
        File.CreateSymbolicLink(Path.Combine(web.Adapters, "sweeps", "s", "plots", "leak.png"), outside);
        using var leak = await web.Client.GetAsync("/api/sweeps/s/files/plots/leak.png");
        Assert.Contains("points outside", await WebTestServer.ErrorOf(leak, 403));
        Directory.Delete(Path.Combine(web.Adapters, "sweeps"), recursive: true);
        Directory.CreateSymbolicLink(Path.Combine(web.Adapters, "sweeps"), web.Root);
        Assert.Contains("outside the adapters folder", await web.PostErrorAsync("/api/sweep/validate", Body("s", "grid:\n  lora_rank: [2]\n"), 403));
    }

    [Fact]
    public async Task TwoRunSweep_OnTheDefaultModel_ReturnsItsResultsTable_AndServesItsFiles()
    {
        await using var web = await WebTestServer.StartAsync();
        var started = await web.PostOkAsync("/api/sweep", Body("ranks", "grid:\n  lora_rank: [2, 4]\n"));
        Assert.Equal(2, started.GetProperty("sweep").GetProperty("runs").GetArrayLength());

        var done = await WaitAsync(web, s => !s.GetProperty("active").GetBoolean(), "the sweep to end");
        Assert.True(Status(done) == "finished", $"sweep ended {Status(done)}: {done.GetProperty("error")}");
        var results = done.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(2, results.Length);
        Assert.All(results, r => Assert.Equal(3, r.GetProperty("steps").GetInt32()));
        Assert.All(results, r => Assert.True(double.IsFinite(r.GetProperty("final_loss").GetDouble())));
        Assert.All(results, r => Assert.InRange(r.GetProperty("exact_match").GetDouble(), 0, 1));   // the task's held-out metric
        Assert.Equal(["2", "4"], results.Select(r => r.GetProperty("values").GetProperty("lora_rank").GetString()));
        Assert.Equal(results.Select(r => "sweeps/ranks/" + r.GetProperty("name").GetString()),
            done.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("compare_name").GetString()));

        string log = string.Join("\n", done.GetProperty("log").EnumerateArray().Select(l => l.GetString()));
        Assert.Contains("sweep: 2 runs of default model over lora_rank; output adapters/sweeps/ranks", log);   // no server paths
        Assert.DoesNotContain(web.Root, log);

        var files = done.GetProperty("files").EnumerateArray().Select(f => f.GetString()!).ToArray();
        Assert.Contains("results.csv", files);
        Assert.Contains("plots/loss-curves.png", files);
        string csv = await web.Client.GetStringAsync("/api/sweeps/ranks/files/results.csv");
        Assert.Equal(3, csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);   // header + 2 runs
        using var png = await web.Client.GetAsync("/api/sweeps/ranks/files/plots/loss-curves.png");
        Assert.True(png.IsSuccessStatusCode, $"plot: {(int)png.StatusCode}");
        Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);

        // The runs are adapters the compare tab opens by their nested names.
        var compare = await web.GetJsonAsync("/api/compare?adapter=sweeps/ranks/" + results[0].GetProperty("name").GetString());
        Assert.Equal(3, compare.GetProperty("runs")[0].GetProperty("history").GetArrayLength());
    }

    [Fact]
    public async Task StoppedSweep_StartedAgain_SkipsTheFinishedRun_AndResumesTheInterruptedOne()
    {
        await using var web = await WebTestServer.StartAsync();
        string config = "runs:\n  - {lr_scheduler_type: constant}\n  - {lr_scheduler_type: cosine, max_steps: 400, save_steps: 0}\n";
        await web.PostOkAsync("/api/sweep", Body("stop", config));
        await WaitAsync(web, s => s.GetProperty("current_run").GetInt32() == 2 && s.GetProperty("history").GetArrayLength() >= 2, "run 2's first steps");

        // One job at a time: the training tab is refused while the sweep runs.
        string busy = await web.PostErrorAsync("/api/train", new { model = "stories260K-hf", settings = WebTestServer.TinyRun("t", 2), resume = false }, 409);
        Assert.Contains("Sweep 'stop' is running", busy);
        Assert.Contains("Sweep 'stop' is running", await web.PostErrorAsync("/api/sweep", Body("other", "grid:\n  lora_rank: [2]\n"), 409));

        await web.PostOkAsync("/api/sweep/interrupt", new { });
        var stopped = await WaitAsync(web, s => !s.GetProperty("active").GetBoolean(), "the sweep to stop");
        Assert.True(Status(stopped) == "interrupted", $"sweep ended {Status(stopped)}: {stopped.GetProperty("error")}");
        Assert.Single(stopped.GetProperty("results").EnumerateArray());
        string firstRun = stopped.GetProperty("runs")[0].GetProperty("name").GetString()!;
        string adapter = Path.Combine(web.Adapters, "sweeps", "stop", firstRun, "adapter_model.safetensors");
        DateTime written = File.GetLastWriteTimeUtc(adapter);

        // Started again with the same config: run 1 is skipped (its row shows at once), run 2 continues from its checkpoint.
        var again = (await web.PostOkAsync("/api/sweep", Body("stop", config))).GetProperty("sweep");
        Assert.Equal(firstRun, Assert.Single(again.GetProperty("results").EnumerateArray()).GetProperty("name").GetString());
        var resumed = await WaitAsync(web, s => s.GetProperty("current_run").GetInt32() == 2 && s.GetProperty("history").GetArrayLength() >= 1, "run 2 to resume");
        Assert.True(resumed.GetProperty("resuming").GetBoolean());
        Assert.True(resumed.GetProperty("resumed_at_step").GetInt32() >= 2, $"resumed at {resumed.GetProperty("resumed_at_step")}");
        Assert.Contains(resumed.GetProperty("log").EnumerateArray(), l => l.GetString()!.Contains($"{firstRun}: done before, skipped", StringComparison.Ordinal));
        await web.PostOkAsync("/api/sweep/interrupt", new { });
        await WaitAsync(web, s => !s.GetProperty("active").GetBoolean(), "the resumed sweep to stop");
        Assert.Equal(written, File.GetLastWriteTimeUtc(adapter));   // the finished run was not trained again
    }
}
