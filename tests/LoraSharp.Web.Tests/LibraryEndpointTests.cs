// The endpoints the pickers and the form are built from, the embedded front end, and the dataset upload.
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using LoraSharp.Training.Settings;
using LoraSharp.Training;

namespace LoraSharp.Web.Tests;

public sealed class LibraryEndpointTests : IAsyncLifetime
{
    private const long UploadLimit = 64 * 1024;
    private WebTestServer _web = null!;

    public async Task InitializeAsync()
    {
        _web = await WebTestServer.StartAsync(o => o with { MaxUploadBytes = UploadLimit });
        File.Copy(Path.Combine(TestSupport.SharedFixtures.Path("models", "stories260K-gguf"), "stories260K-Q8_0.gguf"), Path.Combine(_web.Models, "tiny.gguf"));
    }

    public async Task DisposeAsync() => await _web.DisposeAsync();

    private static string[] Names(JsonElement list, string? kind = null) =>
        list.EnumerateArray().Where(e => kind == null || e.GetProperty("kind").GetString() == kind).Select(e => e.GetProperty("name").GetString()!).ToArray();

    [Fact]
    public void Server_BindsLoopbackWithoutToken()
    {
        Assert.True(_web.Server.IsLoopback);
        Assert.Null(_web.Server.Token);
        Assert.Equal("127.0.0.1", _web.Server.Url.Host);
        Assert.NotEqual(0, _web.Server.Url.Port);
    }

    [Fact]
    public async Task Models_ListsHuggingFaceFoldersAndGgufFiles()
    {
        var models = await _web.GetJsonAsync("/api/models");
        Assert.Equal(["stories260K-hf"], Names(models, "hf"));
        Assert.Equal(["tiny.gguf"], Names(models, "gguf"));
    }

    [Fact]
    public async Task Datasets_ListsJsonAndTextFiles()
    {
        var datasets = await _web.GetJsonAsync("/api/datasets");
        Assert.Equal(["alpaca.json"], Names(datasets, "json"));
        Assert.Equal(["war-and-peace-6k.txt"], Names(datasets, "text"));
    }

    [Fact]
    public async Task Formats_ListsTheShippedFormatFiles()
    {
        var formats = (await _web.GetJsonAsync("/api/formats")).EnumerateArray().Select(f => f.GetString()).ToArray();
        Assert.Contains("alpaca", formats);
        Assert.Contains("vicuna", formats);
    }

    [Fact]
    public async Task Settings_GiveEveryTrainingSettingWithItsDefaultAndTheCliHelp()
    {
        var settings = await _web.GetJsonAsync("/api/settings");
        var defaults = settings.GetProperty("defaults");
        using var expected = JsonDocument.Parse(TrainingSettingsFile.ToJson(new TrainingSettings()));
        Assert.True(JsonElement.DeepEquals(expected.RootElement, defaults), defaults.ToString());
        var fields = settings.GetProperty("fields").EnumerateArray().ToArray();
        Assert.Equal(expected.RootElement.EnumerateObject().Select(p => p.Name).Order(), fields.Select(f => f.GetProperty("name").GetString()!).Order());
        foreach (var f in fields)
            Assert.Equal(TrainingSettingsSchema.For(f.GetProperty("name").GetString()!), f.GetProperty("help").GetString());
        Assert.Equal("integer", fields.Single(f => f.GetProperty("name").GetString() == "lora_rank").GetProperty("kind").GetString());
        Assert.Equal(200, settings.GetProperty("generation").GetProperty("max_new_tokens").GetInt32());
    }

    [Fact]
    public async Task FrontEnd_IsServedFromTheAssembly_WithSecurityHeaders()
    {
        using var page = await _web.Client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("/assets/app.js", html);
        Assert.DoesNotContain("https://", html);   // nothing from a CDN
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        foreach (var asset in new[] { "app.js", "api.js", "dom.js", "chart.js", "train.js", "generate.js", "adapters.js" })
        {
            using var js = await _web.Client.GetAsync($"/assets/{asset}");
            Assert.Equal(HttpStatusCode.OK, js.StatusCode);
            Assert.Equal("text/javascript", js.Content.Headers.ContentType?.MediaType);
        }
        using var css = await _web.Client.GetAsync("/assets/app.css");
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
        using var missing = await _web.Client.GetAsync("/assets/nope.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task UnknownApiPath_Is404WithAJsonError()
    {
        using var response = await _web.Client.GetAsync("/api/nothing-here");
        Assert.Contains("/api/nothing-here", await WebTestServer.ErrorOf(response, 404));
    }

    private Task<HttpResponseMessage> Upload(string name, byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return _web.Client.PostAsync($"/api/datasets?name={Uri.EscapeDataString(name)}", content);
    }

    [Fact]
    public async Task Upload_WritesTheDataset_AndRefusesAnExistingName()
    {
        using (var ok = await Upload("uploaded.jsonl", "{\"text\": \"Once upon a time.\"}\n"u8.ToArray()))
            Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        Assert.Equal("{\"text\": \"Once upon a time.\"}\n", File.ReadAllText(Path.Combine(_web.Datasets, "uploaded.jsonl")));
        Assert.Contains("uploaded.jsonl", Names(await _web.GetJsonAsync("/api/datasets")));
        using var again = await Upload("uploaded.jsonl", "[]"u8.ToArray());
        Assert.Contains("already exists", await WebTestServer.ErrorOf(again, 409));
        Assert.Equal("{\"text\": \"Once upon a time.\"}\n", File.ReadAllText(Path.Combine(_web.Datasets, "uploaded.jsonl")));   // untouched
    }

    [Fact]
    public async Task Upload_OverTheLimit_Is413_AndLeavesNoFile()
    {
        using var response = await Upload("big.txt", new byte[UploadLimit + 1]);
        Assert.Contains("limit", await WebTestServer.ErrorOf(response, 413));
        Assert.Equal(["alpaca.json", "war-and-peace-6k.txt"], Directory.EnumerateFileSystemEntries(_web.Datasets).Select(Path.GetFileName)
            .Where(n => n != "uploaded.jsonl").Order());
    }

    [Fact]
    public async Task Upload_StreamedWithoutLength_OverTheLimit_Is413_AndLeavesNoFile()
    {
        using var response = await _web.Client.PostAsync("/api/datasets?name=streamed.txt", new UnknownLengthContent(new byte[UploadLimit * 2]));
        Assert.Equal(413, (int)response.StatusCode);
        Assert.False(File.Exists(Path.Combine(_web.Datasets, "streamed.txt")));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_web.Datasets), f => f.EndsWith(".upload", StringComparison.Ordinal));
    }

    // A body sent chunked, as a browser streams a file of unknown size.
    private sealed class UnknownLengthContent : HttpContent
    {
        private readonly byte[] _bytes;

        public UnknownLengthContent(byte[] bytes)
        {
            _bytes = bytes;
            Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(_bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task Upload_OfAnotherFileType_IsRefused()
    {
        using var response = await Upload("model.safetensors", [1, 2, 3]);
        Assert.Contains(".jsonl", await WebTestServer.ErrorOf(response, 400));
    }
}
