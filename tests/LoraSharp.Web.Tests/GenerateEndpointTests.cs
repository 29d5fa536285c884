// POST /api/generate: base and base + adapter answers streamed as server-sent events, one after the other.
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LoraSharp.Web.Tests;

public sealed class GenerateEndpointTests(TrainedServer trained) : IClassFixture<TrainedServer>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private WebTestServer Web => trained.Web;

    private async Task<List<(string Name, JsonElement Data)>> Generate(object body)
    {
        using var events = await SseReader.OpenAsync(Web.Client, new HttpRequestMessage(HttpMethod.Post, "/api/generate") { Content = JsonContent.Create(body) });
        return await events.UntilAsync((n, _) => n is "end" or "error", Timeout, "the end of the generation");
    }

    private static string Text(List<(string Name, JsonElement Data)> events, string side) => string.Concat(events
        .Where(e => e.Name == "text" && e.Data.GetProperty("side").GetString() == side).Select(e => e.Data.GetProperty("text").GetString()));

    [Fact]
    public async Task Generate_StreamsTheBaseAnswer_ThenTheAdapterAnswer()
    {
        var events = await Generate(new { model = "stories260K-hf", adapter = "trained", prompt = "Once upon a time", max_new_tokens = 12, temperature = 0 });
        Assert.Equal("end", events[^1].Name);
        var order = events.Where(e => e.Name is "start" or "done").Select(e => $"{e.Name}:{e.Data.GetProperty("side").GetString()}").ToArray();
        Assert.Equal(["start:base", "done:base", "start:adapter", "done:adapter"], order);
        Assert.True(events.Count(e => e.Name == "text") >= 4, "the text arrives in pieces, as it is generated");
        Assert.False(string.IsNullOrWhiteSpace(Text(events, "base")));
        Assert.False(string.IsNullOrWhiteSpace(Text(events, "adapter")));
        var done = events.First(e => e.Name == "done").Data;
        Assert.Equal(12, done.GetProperty("tokens").GetInt32());
        Assert.Equal("length", done.GetProperty("stop_reason").GetString());
    }

    [Fact]
    public async Task Generate_Greedy_IsReproducible_AndWithoutAdapterGivesOnlyTheBase()
    {
        var body = new { model = "stories260K-hf", prompt = "The cat", max_new_tokens = 8, temperature = 0 };
        var a = await Generate(body);
        var b = await Generate(body);
        Assert.Equal(Text(a, "base"), Text(b, "base"));
        Assert.DoesNotContain(a, e => e.Name == "start" && e.Data.GetProperty("side").GetString() == "adapter");
    }

    [Theory]
    [InlineData("top_p", 0.0, "top_p")]
    [InlineData("max_new_tokens", 0, "max_new_tokens")]
    [InlineData("temperature", -1.0, "temperature")]
    public async Task Generate_BadSampling_Is400NamingTheSetting(string key, object value, string named)
    {
        var body = new Dictionary<string, object> { ["model"] = "stories260K-hf", ["prompt"] = "x", [key] = value };
        Assert.Contains(named, await Web.PostErrorAsync("/api/generate", body, 400));
    }

    [Fact]
    public async Task Generate_AMissingModel_Is404BeforeAnyStream()
    {
        string error = await Web.PostErrorAsync("/api/generate", new { model = "no-such-model", prompt = "x" }, 404);
        Assert.Contains("no-such-model", error);
    }

    [Fact]
    public async Task Generate_ABrokenAdapter_SendsAnErrorEvent_WithoutAStackTrace()
    {
        string broken = Path.Combine(Web.Adapters, "broken");
        Directory.CreateDirectory(broken);
        File.WriteAllText(Path.Combine(broken, "adapter_config.json"), "{ not json");
        var events = await Generate(new { model = "stories260K-hf", adapter = "broken", prompt = "x", max_new_tokens = 2 });
        var error = events[^1];
        Assert.Equal("error", error.Name);
        string message = error.Data.GetProperty("error").GetString()!;
        Assert.Contains("adapters/broken", message);
        Assert.DoesNotContain("   at ", message);
        Assert.DoesNotContain(Web.Root, message);   // the folder is named by its label
        Assert.True(Encoding.UTF8.GetByteCount(message) < 1000);
    }

    [Fact]
    public async Task Generate_ChatMode_AnswersAsTheCliChatModeDoes()
    {
        var events = await Generate(new { model = "stories260K-hf", prompt = "Tell me a story", max_new_tokens = 10, temperature = 0, chat = true, chat_template = "chatml", system = "Be brief." });
        Assert.Equal("end", events[^1].Name);
        var cli = LoraSharp.App.GenerateJob.Run(new LoraSharp.App.GenerateRequest
        {
            Model = LoraSharp.TestSupport.SharedFixtures.Stories260KHf, Prompt = "Tell me a story", Chat = true, ChatTemplate = "chatml", System = "Be brief.",
            Options = new LoraSharp.Models.Generation.GenerationOptions { MaxNewTokens = 10, Sampling = new LoraSharp.Models.Generation.SamplingSettings { Temperature = 0 } },
        });
        Assert.Equal(cli.Text, Text(events, "base"));
        var raw = await Generate(new { model = "stories260K-hf", prompt = "Tell me a story", max_new_tokens = 10, temperature = 0 });
        Assert.NotEqual(Text(raw, "base"), Text(events, "base"));   // the template changed what the model saw
    }

    [Fact]
    public async Task Generate_AnUnknownChatTemplate_Is400NamingTheSetting()
    {
        string error = await Web.PostErrorAsync("/api/generate", new { model = "stories260K-hf", prompt = "x", chat = true, chat_template = "no-such" }, 400);
        Assert.Contains("chat_template", error);
        Assert.Contains("chatml", error);   // the known names
    }
}
