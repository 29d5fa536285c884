// The adapters tab's API: the list with settings and losses, merge, export to GGUF, combine and perplexity, each
// writing only inside its folder.
using System.Text.Json;
using LoraSharp.Training.Adapters;

namespace LoraSharp.Web.Tests;

public sealed class AdapterToolEndpointTests(TrainedServer trained) : IClassFixture<TrainedServer>
{
    private WebTestServer Web => trained.Web;

    private async Task<JsonElement> Adapter(string name) =>
        (await Web.GetJsonAsync("/api/adapters")).EnumerateArray().Single(a => a.GetProperty("name").GetString() == name);

    [Fact]
    public async Task Adapters_ListTheTrainedAdapterWithItsSettingsAndFinalLoss()
    {
        var a = await Adapter("trained");
        Assert.Equal("stories260K-hf", a.GetProperty("base_model").GetString());
        Assert.Equal(4, a.GetProperty("rank").GetInt32());
        Assert.Equal(8, a.GetProperty("alpha").GetDouble());
        Assert.Equal(Models.Llama.LlamaLayer.ProjectionNames, a.GetProperty("target_modules").EnumerateArray().Select(t => t.GetString()));   // all-linear, resolved
        Assert.Equal("completed", a.GetProperty("stop_reason").GetString());
        Assert.True(double.IsFinite(a.GetProperty("final_loss").GetDouble()));
        Assert.True(double.IsFinite(a.GetProperty("final_eval_loss").GetDouble()));
        Assert.True(a.GetProperty("has_parameters").GetBoolean());
    }

    [Fact]
    public async Task Merge_WritesAHuggingFaceFolderIntoModels_ThatIsListedAndGenerates()
    {
        var r = await Web.PostOkAsync("/api/merge", new { model = "stories260K-hf", adapters = new[] { new { name = "trained", scale = 1.0 } }, @out = "merged-hf" });
        Assert.Equal("merged-hf", r.GetProperty("output").GetString());
        Assert.True(r.GetProperty("merged_weights").GetInt32() > 0);
        Assert.True(File.Exists(Path.Combine(Web.Models, "merged-hf", "model.safetensors")));
        Assert.Contains((await Web.GetJsonAsync("/api/models")).EnumerateArray(), m => m.GetProperty("name").GetString() == "merged-hf");
    }

    [Fact]
    public async Task Merge_ToGguf_AddsTheExtension()
    {
        var r = await Web.PostOkAsync("/api/merge", new { model = "stories260K-hf", adapters = new[] { new { name = "trained", scale = 0.5 } }, @out = "merged", format = "gguf", dtype = "f16" });
        Assert.Equal("merged.gguf", r.GetProperty("output").GetString());
        Assert.True(File.Exists(Path.Combine(Web.Models, "merged.gguf")));
    }

    [Fact]
    public async Task Merge_OverAnExistingOutput_IsRefusedUnlessOverwrite()
    {
        Directory.CreateDirectory(Path.Combine(Web.Models, "occupied"));
        string error = await Web.PostErrorAsync("/api/merge", new { model = "stories260K-hf", adapters = new[] { new { name = "trained", scale = 1.0 } }, @out = "occupied" }, 400);
        Assert.Contains("exists", error);
        Assert.DoesNotContain(Web.Root, error);
    }

    [Fact]
    public async Task Export_WritesAGgufLoraIntoAdapters()
    {
        var r = await Web.PostOkAsync("/api/export", new { adapter = "trained", model = "stories260K-hf", dtype = "f16" });
        Assert.Equal("trained.gguf", r.GetProperty("output").GetString());
        Assert.Equal(35, r.GetProperty("modules").GetInt32());   // 5 layers x 7 projections
        Assert.Equal("gguf", (await Adapter("trained.gguf")).GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Combine_WritesANewAdapterFolder()
    {
        var r = await Web.PostOkAsync("/api/combine", new { adapters = new[] { new { name = "trained", scale = 0.5 }, new { name = "trained", scale = 0.5 } }, method = "cat", @out = "combined" });
        Assert.Equal(35, r.GetProperty("modules").GetInt32());
        Assert.Equal([8], r.GetProperty("ranks").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(8, (await Adapter("combined")).GetProperty("rank").GetInt32());
    }

    // The form's TIES/DARE settings reach the combiner: the web result equals CombineJob's with the same settings
    // and differs from the unpruned one.
    [Theory]
    [InlineData("ties", 0.5, "frequency", 0)]
    [InlineData("dare_ties_svd", 0.3, "total", 7)]
    public async Task Combine_TaskMethod_PassesDensitySignMethodAndSeed(string method, double density, string sign, int seed)
    {
        string outName = $"web-{method}";
        var body = new Dictionary<string, object?>
        {
            ["adapters"] = new[] { new { name = "trained", scale = 0.7 }, new { name = "trained", scale = -0.4 } },
            ["method"] = method, ["density"] = density, ["majority_sign_method"] = sign, ["out"] = outName,
        };
        if (method.StartsWith("dare", StringComparison.Ordinal)) body["seed"] = seed;
        await Web.PostOkAsync("/api/combine", body);
        string trainedPath = Path.Combine(Web.Adapters, "trained");
        LoraWeights Expected(double d) => App.CombineJob.Run(new App.CombineJobOptions
        {
            Adapters = [trainedPath + ":0.7", trainedPath + ":-0.4"], Method = method, Density = d, MajoritySignMethod = sign, Seed = seed,
            OutPath = Path.Combine(Web.Root, $"expected-{method}-{d}"),
        });
        var web = LoraWeights.ReadPeft(Path.Combine(Web.Adapters, outName));
        var same = Expected(density);
        var unpruned = Expected(1.0);
        Assert.Equal(same.Modules.Count, web.Modules.Count);
        foreach (var m in web.Modules)
        {
            Assert.Equal(same.Find(m.Module)!.A, m.A);
            Assert.Equal(same.Find(m.Module)!.B, m.B);
        }
        Assert.Contains(web.Modules, m => !m.A.SequenceEqual(unpruned.Find(m.Module)!.A) || !m.B.SequenceEqual(unpruned.Find(m.Module)!.B));
    }

    [Theory]
    [InlineData("ties", "density", 0.0, "total", 0, "(0, 1]")]
    [InlineData("ties", "density", 1.5, "total", 0, "(0, 1]")]
    [InlineData("linear", "density", 0.5, "total", 0, "not to linear")]
    [InlineData("ties", "majority_sign_method", 1.0, "most", 0, "total or frequency")]
    [InlineData("dare_linear", "majority_sign_method", 1.0, "frequency", 0, "not to dare_linear")]
    [InlineData("ties", "seed", 1.0, "total", 3, "not to ties")]
    [InlineData("dare_ties", "seed", 1.0, "total", -1, "0 or more")]
    public async Task Combine_BadTaskSetting_NamesTheFieldAndWhy(string method, string field, double density, string sign, int seed, string why)
    {
        string error = await Web.PostErrorAsync("/api/combine", new
        {
            adapters = new[] { new { name = "trained", scale = 1.0 } }, method, density, majority_sign_method = sign, seed, @out = "never",
        }, 400);
        Assert.Contains(field, error);
        Assert.Contains(why, error);
        Assert.False(Directory.Exists(Path.Combine(Web.Adapters, "never")));
    }

    [Fact]
    public async Task Combine_UnknownMethod_ListsTheMethods()
    {
        string error = await Web.PostErrorAsync("/api/combine", new { adapters = new[] { new { name = "trained", scale = 1.0 } }, method = "tie", @out = "never" }, 400);
        Assert.Contains("dare_ties_svd", error);
    }

    [Fact]
    public async Task Perplexity_OfBaseAndAdapter_AreFinite()
    {
        var baseline = await Web.PostOkAsync("/api/perplexity", new { model = "stories260K-hf", file = "war-and-peace-6k.txt", max_length = 64, max_tokens = 400 });
        var adapted = await Web.PostOkAsync("/api/perplexity", new { model = "stories260K-hf", adapter = "trained", file = "war-and-peace-6k.txt", max_length = 64, max_tokens = 400 });
        Assert.True(baseline.GetProperty("perplexity").GetDouble() is > 1 and < 1e4);
        Assert.True(adapted.GetProperty("perplexity").GetDouble() is > 1 and < 1e4);
        Assert.NotEqual(baseline.GetProperty("perplexity").GetDouble(), adapted.GetProperty("perplexity").GetDouble());
        Assert.Equal(400, baseline.GetProperty("tokens").GetInt32());
        // The loaded model is shared between requests: the adapter is gone again afterwards.
        var again = await Web.PostOkAsync("/api/perplexity", new { model = "stories260K-hf", file = "war-and-peace-6k.txt", max_length = 64, max_tokens = 400 });
        Assert.Equal(baseline.GetProperty("perplexity").GetDouble(), again.GetProperty("perplexity").GetDouble());
    }

    [Fact]
    public async Task Perplexity_OfAMissingFile_Is404()
    {
        Assert.Contains("no-such.txt", await Web.PostErrorAsync("/api/perplexity", new { model = "stories260K-hf", file = "no-such.txt" }, 404));
    }

    [Fact]
    public async Task Tools_WithNoAdapter_SayWhatToTick()
    {
        Assert.Contains("at least one adapter", await Web.PostErrorAsync("/api/combine", new { adapters = Array.Empty<object>(), @out = "x" }, 400));
    }

    [Fact]
    public async Task Parameters_OfAnAdapterWithoutThem_Is404()
    {
        Directory.CreateDirectory(Path.Combine(Web.Adapters, "bare"));
        Assert.Contains("training_parameters.json", await WebTestServer.ErrorOf(await Web.Client.GetAsync("/api/adapters/bare/parameters"), 404));
    }
}
