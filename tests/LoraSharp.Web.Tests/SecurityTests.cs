// The security model end to end: names that lead out of the folders are refused by every endpoint, a
// non-loopback server needs its token on every request, a loopback one refuses foreign Host headers, requests
// from other sites and oversized bodies are refused, one training runs at a time, and no error carries a stack trace.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;

namespace LoraSharp.Web.Tests;

public sealed class SecurityTests : IAsyncLifetime
{
    private WebTestServer _web = null!;
    private string _outside = null!;

    public async Task InitializeAsync()
    {
        _web = await WebTestServer.StartAsync();
        _outside = Directory.CreateDirectory(Path.Combine(_web.Root, "outside")).FullName;
        File.WriteAllText(Path.Combine(_outside, "secret.txt"), "Once upon a time there was a secret. " + new string('x', 2000));
        File.CreateSymbolicLink(Path.Combine(_web.Datasets, "linked-out.txt"), Path.Combine(_outside, "secret.txt"));
        Directory.CreateSymbolicLink(Path.Combine(_web.Models, "linked-model"), TestSupport.SharedFixtures.Stories260KHf);
    }

    public async Task DisposeAsync() => await _web.DisposeAsync();

    private static object Train(string? model = "stories260K-hf", string? rawText = "war-and-peace-6k.txt", string name = "sec")
    {
        var settings = WebTestServer.TinyRun(name, 2);
        settings["raw_text_file"] = rawText;
        return new { model, settings };
    }

    public static TheoryData<string, string> TraversalNames => new()
    {
        { "../outside/secret.txt", "'..' is not accepted" },
        { "/etc/passwd", "absolute paths are not accepted" },
        { "linked-out.txt", "points outside" },
    };

    [Theory]
    [MemberData(nameof(TraversalNames))]
    public async Task Train_ADatasetOutsideTheDatasetsFolder_IsRefused(string name, string why)
    {
        string error = await _web.PostErrorAsync("/api/train", Train(rawText: name), 403);
        Assert.Contains(why, error);
        Assert.Null(await _web.RunAsync());   // nothing was started
    }

    [Theory]
    [InlineData("../models/stories260K-hf")]
    [InlineData("/work/shared/models/stories260K-hf")]
    [InlineData("linked-model")]
    public async Task Generate_AModelOutsideTheModelsFolder_IsRefused(string model) =>
        Assert.Contains("refused", await _web.PostErrorAsync("/api/generate", new { model, prompt = "x" }, 403));

    [Fact]
    public async Task Listings_LeaveOutLinksThatPointOutside()
    {
        Assert.DoesNotContain((await _web.GetJsonAsync("/api/datasets")).EnumerateArray(), d => d.GetProperty("name").GetString() == "linked-out.txt");
        Assert.DoesNotContain((await _web.GetJsonAsync("/api/models")).EnumerateArray(), d => d.GetProperty("name").GetString() == "linked-model");
    }

    [Fact]
    public async Task Perplexity_OfAFileOutside_IsRefused() =>
        Assert.Contains("refused", await _web.PostErrorAsync("/api/perplexity", new { model = "stories260K-hf", file = "../outside/secret.txt" }, 403));

    [Theory]
    [InlineData("../escaped")]
    [InlineData("/tmp/escaped")]
    public async Task MergeAndCombineOutputs_MustBePlainNames(string name)
    {
        var adapters = new[] { new { name = "whatever", scale = 1.0 } };
        Assert.Contains("plain name", await _web.PostErrorAsync("/api/merge", new { model = "stories260K-hf", adapters, @out = name }, 400));
        Assert.Contains("plain name", await _web.PostErrorAsync("/api/combine", new { adapters, @out = name }, 400));
        Assert.Contains("plain name", await _web.PostErrorAsync("/api/export", new { adapter = "whatever", model = "stories260K-hf", @out = name }, 400));
        Assert.False(Directory.Exists(Path.Combine(_web.Root, "escaped")) || Directory.Exists("/tmp/escaped"));
    }

    [Theory]
    [InlineData("..%2F..%2Foutside")]   // routing keeps %2F encoded: a literal name that does not exist
    [InlineData("%2E%2E")]              // the server folds dot segments before routing: no such route
    public async Task AdapterParameters_WithAnEncodedTraversal_ReadNothing(string name)
    {
        using var response = await _web.Client.GetAsync($"/api/adapters/{name}/parameters");
        await WebTestServer.ErrorOf(response, 404);
    }

    [Theory]
    [InlineData("../evil.txt")]
    [InlineData("/tmp/evil.txt")]
    [InlineData("..")]
    public async Task Upload_WithATraversalName_IsRefused(string name)
    {
        var content = new ByteArrayContent("evil"u8.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await _web.Client.PostAsync($"/api/datasets?name={Uri.EscapeDataString(name)}", content);
        await WebTestServer.ErrorOf(response, 400);
        Assert.False(File.Exists(Path.Combine(_web.Root, "evil.txt")) || File.Exists("/tmp/evil.txt"));
    }

    [Fact]
    public async Task SecondTraining_WhileOneRuns_IsRefusedWith409()
    {
        await _web.StartTrainingAsync("first", maxSteps: 100_000);
        string error = await _web.PostErrorAsync("/api/train", Train(name: "second"), 409);
        Assert.Contains("'first' is already running", error);
        Assert.Contains("one training runs at a time", error);
        Assert.False(Directory.Exists(Path.Combine(_web.Adapters, "second")));
        await _web.PostOkAsync("/api/train/interrupt", new { });
        await _web.WaitForEndAsync("first");
    }

    [Fact]
    public async Task Loopback_AForeignHostHeader_IsRefused()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        request.Headers.Host = "attacker.example";
        using var response = await _web.Client.SendAsync(request);
        Assert.Contains("not this server's loopback address", await WebTestServer.ErrorOf(response, 403));
    }

    [Fact]
    public async Task Post_FromAnHtmlForm_IsRefused()
    {
        using var response = await _web.Client.PostAsync("/api/train/interrupt", new FormUrlEncodedContent([]));
        Assert.Contains("Content-Type: application/json", await WebTestServer.ErrorOf(response, 403));
    }

    [Fact]
    public async Task Post_FromAnotherOrigin_IsRefused()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/train/interrupt") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        request.Headers.Add("Origin", "http://attacker.example");
        using var response = await _web.Client.SendAsync(request);
        Assert.Contains("other sites", await WebTestServer.ErrorOf(response, 403));

        using var same = new HttpRequestMessage(HttpMethod.Post, "/api/train/interrupt") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        same.Headers.Add("Origin", _web.Server.Url.GetLeftPart(UriPartial.Authority));
        using var sameResponse = await _web.Client.SendAsync(same);
        Assert.Equal(HttpStatusCode.Conflict, sameResponse.StatusCode);   // past the gate: nothing to interrupt
    }

    [Fact]
    public async Task RequestBody_OverTheLimit_Is413()
    {
        string prompt = new('a', 2 << 20);
        using var response = await _web.PostJsonAsync("/api/generate", new { model = "stories260K-hf", prompt });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task InvalidJson_Is400WithTheParserMessage_AndNoStackTrace()
    {
        using var response = await _web.Client.PostAsync("/api/train", new StringContent("{\"model\": ", Encoding.UTF8, "application/json"));
        Assert.Contains("not valid", await WebTestServer.ErrorOf(response, 400));
    }

    [Fact]
    public void UnexpectedError_ShowsAGenericMessage_AndLogsTheTraceOnTheServer()
    {
        var log = new StringWriter();
        var reporter = new ErrorReporter(new WebFolders(new WebServerOptions { ModelsFolder = _web.Models, DatasetsFolder = _web.Datasets, AdaptersFolder = _web.Adapters }), log);
        Exception thrown;
        try { throw new NullReferenceException("secret detail"); }
        catch (Exception e) { thrown = e; }
        var (status, message) = reporter.Describe(thrown, "GET /x");
        Assert.Equal(500, status);
        Assert.DoesNotContain("secret detail", message);
        Assert.Contains("server log", message);
        Assert.Contains("   at ", log.ToString());
        Assert.Contains("secret detail", log.ToString());
    }

    [Fact]
    public void ExpectedErrors_HideTheFoldersRealPaths()
    {
        var reporter = new ErrorReporter(new WebFolders(new WebServerOptions { ModelsFolder = _web.Models, DatasetsFolder = _web.Datasets, AdaptersFolder = _web.Adapters }), TextWriter.Null);
        var (status, message) = reporter.Describe(new FileNotFoundException($"'{Path.Combine(_web.Models, "x")}' does not exist"), "GET /x");
        Assert.Equal(404, status);
        Assert.Equal("'models/x' does not exist", message);
    }
}

/// <summary>A server bound to every interface: the token is generated and needed on every request.</summary>
public sealed class TokenTests : IAsyncLifetime
{
    private WebTestServer _web = null!;

    public async Task InitializeAsync() => _web = await WebTestServer.StartAsync(o => o with { Listen = "0.0.0.0" });

    public async Task DisposeAsync() => await _web.DisposeAsync();

    private HttpClient Bare(bool redirects = true) => new(new HttpClientHandler { AllowAutoRedirect = redirects, UseCookies = false }) { BaseAddress = _web.Server.Url };

    [Fact]
    public void NonLoopbackBind_GeneratesALongToken()
    {
        Assert.False(_web.Server.IsLoopback);
        Assert.Equal(43, _web.Server.Token!.Length);
        Assert.Contains("?token=", _web.Server.BrowserUrl.ToString());
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/api/models")]
    [InlineData("/assets/app.js")]
    [InlineData("/api/train/events")]
    public async Task WithoutTheToken_EveryRequestIs401(string path)
    {
        using var client = Bare();
        using var response = await client.GetAsync(path);
        Assert.Contains("access token", await WebTestServer.ErrorOf(response, 401));
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task AWrongToken_Is401()
    {
        using var client = Bare();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-the-token");
        using var response = await client.GetAsync("/api/models");
        Assert.Contains("wrong", await WebTestServer.ErrorOf(response, 401));
    }

    [Fact]
    public async Task TheTokenAsBearer_IsAccepted()
    {
        using var client = Bare();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _web.Server.Token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/models")).StatusCode);
    }

    [Fact]
    public async Task TheTokenInTheAddress_SetsAnHttpOnlyCookie_AndRedirectsToTheBareAddress()
    {
        using var client = Bare(redirects: false);
        using var first = await client.GetAsync($"/?token={Uri.EscapeDataString(_web.Server.Token!)}");
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Equal("/", first.Headers.Location?.OriginalString);
        string cookie = first.Headers.GetValues("Set-Cookie").Single();
        Assert.StartsWith("lorasharp_token=", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        request.Headers.Add("Cookie", cookie.Split(';')[0]);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task TheTokenAsQueryParameter_OpensTheEventStream()
    {
        using var client = Bare();
        using var events = await SseReader.OpenAsync(client, new HttpRequestMessage(HttpMethod.Get, $"/api/train/events?token={Uri.EscapeDataString(_web.Server.Token!)}"));
        Assert.Equal("snapshot", (await events.NextAsync(WebTestServer.TrainingTimeout, "the first snapshot"))?.Name);
    }

    [Fact]
    public async Task AForeignHostHeader_IsAcceptedWithTheToken()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        request.Headers.Host = "lorasharp.lan";
        Assert.Equal(HttpStatusCode.OK, (await _web.Client.SendAsync(request)).StatusCode);
    }
}
