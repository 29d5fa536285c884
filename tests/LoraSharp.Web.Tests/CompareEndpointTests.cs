// The compare view's API: several runs' step records and settings side by side, with the differing settings flagged;
// finished runs (training_log.json), runs still training or killed (training_log.jsonl, torn last line), and the
// refusals (no name, too many, a name or a link outside the adapters folder, a missing adapter).
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.Training;
using LoraSharp.Web.Api;

namespace LoraSharp.Web.Tests;

public sealed class CompareEndpointTests(TrainedServer trained) : IClassFixture<TrainedServer>
{
    private WebTestServer Web => trained.Web;

    private static StepRecord Step(int step, double loss, double? eval = null) =>
        new(step, 10, step / 10.0, loss, eval, 1e-3, 0.5, 100, step, 10 - step);

    // A run folder with the trained adapter's settings, some of them changed, and the given records.
    private string MakeRun(string name, Action<JsonObject> change, StepRecord[] history, bool asJsonl = false, string? tornTail = null)
    {
        string folder = Path.Combine(Web.Adapters, name);
        Directory.CreateDirectory(folder);
        var settings = JsonNode.Parse(File.ReadAllText(Path.Combine(Web.Adapters, "trained", TrainingSettingsFile.ParametersFileName)))!.AsObject();
        change(settings);
        File.WriteAllText(Path.Combine(folder, TrainingSettingsFile.ParametersFileName), settings.ToJsonString());
        if (asJsonl)
            File.WriteAllText(Path.Combine(folder, "training_log.jsonl"), string.Concat(history.Select(r => JsonSerializer.Serialize(r) + "\n")) + tornTail);
        else
            File.WriteAllText(Path.Combine(folder, "training_log.json"), JsonSerializer.Serialize(new Dictionary<string, object?> { ["outcome"] = null, ["log_history"] = history }));
        return folder;
    }

    private Task<JsonElement> Compare(params string[] names) =>
        Web.GetJsonAsync("/api/compare?" + string.Join("&", names.Select(n => "adapter=" + Uri.EscapeDataString(n))));

    private static JsonElement Row(JsonElement answer, string setting) =>
        answer.GetProperty("settings").EnumerateArray().Single(r => r.GetProperty("name").GetString() == setting);

    [Fact]
    public async Task Compare_TrainedAndAnotherRun_GivesBothHistories_AndFlagsOnlyTheDifferingSettings()
    {
        MakeRun("cmp-r8", s => { s["lora_rank"] = 8; s["lora_alpha"] = 16; }, [Step(1, 5.0), Step(2, 4.0, 4.5), Step(3, 3.5)]);
        var answer = await Compare("trained", "cmp-r8");

        var runs = answer.GetProperty("runs").EnumerateArray().ToArray();
        Assert.Equal(["trained", "cmp-r8"], runs.Select(r => r.GetProperty("name").GetString()));
        var steps = runs[0].GetProperty("history").EnumerateArray().Select(h => h.GetProperty("step").GetInt32());
        Assert.Equal([1, 2, 3, 4, 5, 6], steps);   // the trained run's 6 steps, from its training_log.json
        Assert.Equal("training_log.json", runs[0].GetProperty("history_source").GetString());
        Assert.Equal("completed", runs[0].GetProperty("outcome").GetProperty("stop_reason").GetString());
        Assert.Equal(JsonValueKind.Null, runs[0].GetProperty("problem").ValueKind);
        Assert.Equal([5.0, 4.0, 3.5], runs[1].GetProperty("history").EnumerateArray().Select(h => h.GetProperty("loss").GetDouble()));
        Assert.Equal(4.5, runs[1].GetProperty("history")[1].GetProperty("eval_loss").GetDouble());

        var rank = Row(answer, "lora_rank");
        Assert.True(rank.GetProperty("differs").GetBoolean());
        Assert.Equal([4, 8], rank.GetProperty("values").EnumerateArray().Select(v => v.GetInt32()));
        Assert.True(Row(answer, "lora_alpha").GetProperty("differs").GetBoolean());
        var differing = answer.GetProperty("settings").EnumerateArray().Where(r => r.GetProperty("differs").GetBoolean()).Select(r => r.GetProperty("name").GetString());
        Assert.Equal(["lora_rank", "lora_alpha"], differing);
        // Files are names in the datasets folder, never server paths.
        Assert.Equal(["war-and-peace-6k.txt", "war-and-peace-6k.txt"], Row(answer, "raw_text_file").GetProperty("values").EnumerateArray().Select(v => v.GetString()));
        Assert.DoesNotContain(Web.Root, answer.GetRawText());
    }

    [Fact]
    public async Task Compare_ARunStillTraining_ReadsItsJsonl_SkippingATornLastLine()
    {
        MakeRun("cmp-live.run", s => s["learning_rate"] = 1e-4, [Step(1, 5.0), Step(2, 4.2, 4.4)], asJsonl: true, tornTail: "{\"step\": 3, \"total_st");
        var run = (await Compare("cmp-live.run")).GetProperty("runs")[0];
        Assert.Equal("checkpoint", run.GetProperty("kind").GetString());
        Assert.Equal("training_log.jsonl", run.GetProperty("history_source").GetString());
        Assert.Equal([1, 2], run.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("step").GetInt32()));
        Assert.Equal(JsonValueKind.Null, run.GetProperty("problem").ValueKind);
    }

    [Fact]
    public async Task Compare_ANestedRun_AsASweepWritesThem_IsFound()
    {
        MakeRun(Path.Combine("cmp-sweep", "run-1"), _ => { }, [Step(1, 3.0)]);
        var run = (await Compare("cmp-sweep/run-1")).GetProperty("runs")[0];
        Assert.Equal("cmp-sweep/run-1", run.GetProperty("name").GetString());
        Assert.Equal(1, run.GetProperty("history").GetArrayLength());
    }

    [Fact]
    public async Task Compare_AFolderWithoutRecords_SaysSo_AndLeavesItsSettingsOutOfTheDifferences()
    {
        Directory.CreateDirectory(Path.Combine(Web.Adapters, "cmp-bare"));
        var answer = await Compare("trained", "cmp-bare");
        var bare = answer.GetProperty("runs")[1];
        Assert.Contains("training_parameters.json", bare.GetProperty("problem").GetString());
        Assert.Contains("training_log", bare.GetProperty("problem").GetString());
        Assert.Equal(0, bare.GetProperty("history").GetArrayLength());
        Assert.DoesNotContain(answer.GetProperty("settings").EnumerateArray(), r => r.GetProperty("differs").GetBoolean());
        Assert.Equal(JsonValueKind.Null, Row(answer, "lora_rank").GetProperty("values")[1].ValueKind);
    }

    [Fact]
    public async Task Compare_Refusals_SayWhatIsWrong()
    {
        Assert.Contains("at least one adapter", await WebTestServer.ErrorOf(await Web.Client.GetAsync("/api/compare"), 400));
        Assert.Contains("no-such", await WebTestServer.ErrorOf(await Web.Client.GetAsync("/api/compare?adapter=trained&adapter=no-such"), 404));
        Assert.Contains("'..'", await WebTestServer.ErrorOf(await Web.Client.GetAsync("/api/compare?adapter=..%2Fmodels"), 403));
        string many = string.Join("&", Enumerable.Repeat("adapter=trained", CompareEndpoints.MaxRuns + 1));
        Assert.Contains($"at most {CompareEndpoints.MaxRuns}", await WebTestServer.ErrorOf(await Web.Client.GetAsync("/api/compare?" + many), 400));
    }

    [Fact]
    public async Task Compare_ALinkOutOfTheAdaptersFolder_IsRefused_AndReadsNothing()
    {
        string outside = Path.Combine(Web.Root, "outside-run");
        MakeRun("cmp-to-move", _ => { }, [Step(1, 2.0)]);
        Directory.Move(Path.Combine(Web.Adapters, "cmp-to-move"), outside);
        Directory.CreateSymbolicLink(Path.Combine(Web.Adapters, "cmp-linked"), outside);
        string error = await WebTestServer.ErrorOf(await Web.Client.GetAsync("/api/compare?adapter=cmp-linked"), 403);
        Assert.Contains("outside", error);
        Assert.DoesNotContain(Web.Root, error);
    }

    [Fact]
    public void Thin_ALongHistory_KeepsAboutMaxPoints_EveryEvaluation_AndTheLastStep()
    {
        var history = Enumerable.Range(1, 10_000).Select(i => Step(i, 1.0 / i, i % 250 == 0 ? 2.0 / i : null)).ToArray();
        var kept = CompareEndpoints.Thin(history, 1000);
        Assert.InRange(kept.Count, 1000, 1000 + 40 + 1);
        Assert.Equal(history.Where(h => h.EvalLoss != null).Select(h => h.Step), kept.Where(h => h.EvalLoss != null).Select(h => h.Step));
        Assert.Equal(10_000, kept[^1].Step);
        Assert.Equal(kept.Select(h => h.Step).Order(), kept.Select(h => h.Step));
        Assert.Same(history, CompareEndpoints.Thin(history, 10_000));
    }
}
