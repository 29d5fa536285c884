// A server that has already trained one small adapter ("trained"), shared by the tests that need an adapter.
namespace LoraSharp.Web.Tests;

public sealed class TrainedServer : IAsyncLifetime
{
    internal WebTestServer Web { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Web = await WebTestServer.StartAsync();
        await Web.StartTrainingAsync("trained", maxSteps: 6, s => s["target_modules"] = new[] { "all-linear" });
        var run = await Web.WaitForEndAsync("trained");
        Assert.Equal("finished", run.GetProperty("status").GetString());
    }

    public async Task DisposeAsync() => await Web.DisposeAsync();
}
