// PiSSA / OLoRA from the web training tab: the form's init_lora_weights choice reaches FineTuneJob, the adapter that
// appears is the converted plain LoRA (rank 2r), and a bad K is a 400 naming the setting.
namespace LoraSharp.Web.Tests;

public sealed class PissaTrainingEndpointTests : IAsyncLifetime
{
    private WebTestServer _web = null!;

    public async Task InitializeAsync() => _web = await WebTestServer.StartAsync();

    public async Task DisposeAsync() => await _web.DisposeAsync();

    [Fact]
    public async Task Train_WithPissaNiter_ListsTheConvertedRank2rAdapter()
    {
        await _web.StartTrainingAsync("pissa", maxSteps: 2, s => s["init_lora_weights"] = "pissa_niter_2");
        Assert.Equal("finished", (await _web.WaitForEndAsync("pissa")).GetProperty("status").GetString());
        var adapter = (await _web.GetJsonAsync("/api/adapters")).EnumerateArray().Single(a => a.GetProperty("name").GetString() == "pissa");
        Assert.Equal(8, adapter.GetProperty("rank").GetInt32());   // lora_rank 4, written as [B' | -B0]·[A'; A0]
        Assert.Contains("\"init_lora_weights\": true", File.ReadAllText(Path.Combine(_web.Adapters, "pissa", "adapter_config.json")));
    }

    [Fact]
    public async Task Train_WithABadPissaNiter_Is400NamingIt()
    {
        var settings = WebTestServer.TinyRun("bad", 2);
        settings["init_lora_weights"] = "pissa_niter_0";
        Assert.Contains("init_lora_weights", await _web.PostErrorAsync("/api/train", new { model = "stories260K-hf", settings }, 400));
    }
}
