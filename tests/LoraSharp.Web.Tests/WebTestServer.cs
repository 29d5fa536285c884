// A real server for endpoint tests: a temporary workspace (models/ with a copy of stories260K, datasets/ with a few
// KB of raw text and a small alpaca dataset, loras/), the WebServer bound to a free loopback port (or where the
// test says), and an HttpClient pointed at it. Disposing stops the server (interrupting a training) and deletes
// the workspace.
using System.Net.Http.Json;
using System.Text.Json;
using LoraSharp.TestSupport;

namespace LoraSharp.Web.Tests;

internal sealed class WebTestServer : IAsyncDisposable
{
    public static readonly TimeSpan TrainingTimeout = TimeSpan.FromSeconds(60);

    private WebTestServer(string root, WebServer server, HttpClient client)
    {
        Root = root;
        Server = server;
        Client = client;
    }

    public string Root { get; }
    public WebServer Server { get; }
    public HttpClient Client { get; }
    public string Models => Path.Combine(Root, "models");
    public string Datasets => Path.Combine(Root, "datasets");
    public string Adapters => Path.Combine(Root, "loras");

    public static async Task<WebTestServer> StartAsync(Func<WebServerOptions, WebServerOptions>? configure = null)
    {
        string root = Directory.CreateTempSubdirectory("lorasharp-web-").FullName;
        CopyModel(Path.Combine(root, "models", "stories260K-hf"));
        Directory.CreateDirectory(Path.Combine(root, "datasets"));
        string text = File.ReadAllText(SharedFixtures.Path("text", "war-and-peace.txt"));
        File.WriteAllText(Path.Combine(root, "datasets", "war-and-peace-6k.txt"), text[..6000]);
        File.WriteAllText(Path.Combine(root, "datasets", "alpaca.json"), AlpacaRows(24));
        var options = new WebServerOptions
        {
            ModelsFolder = Path.Combine(root, "models"), DatasetsFolder = Path.Combine(root, "datasets"), AdaptersFolder = Path.Combine(root, "loras"),
            Port = 0, Log = TextWriter.Null,
        };
        var server = await WebServer.StartAsync(configure?.Invoke(options) ?? options);
        var client = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(60) };
        if (server.Token != null) client.DefaultRequestHeaders.Authorization = new("Bearer", server.Token);
        return new WebTestServer(root, server, client);
    }

    // Settings of a tiny raw-text run on stories260K (about 5 ms a step); override keys with `with`.
    public static Dictionary<string, object?> TinyRun(string name, int maxSteps) => new()
    {
        ["lora_name"] = name, ["raw_text_file"] = "war-and-peace-6k.txt", ["cutoff_len"] = 64, ["overlap_len"] = 16,
        ["micro_batch_size"] = 4, ["batch_size"] = 4, ["max_steps"] = maxSteps, ["eval_split"] = 0.2, ["eval_steps"] = 2,
        ["learning_rate"] = 3e-3, ["warmup_steps"] = 1, ["lora_rank"] = 4, ["lora_alpha"] = 8, ["lora_dropout"] = 0.0,
    };

    public Task<HttpResponseMessage> PostJsonAsync(string path, object body) => Client.PostAsJsonAsync(path, body);

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Client.GetAsync(path);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>POSTs and asserts success; returns the JSON answer.</summary>
    public async Task<JsonElement> PostOkAsync(string path, object body)
    {
        using var response = await PostJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>POSTs, asserts the status, and returns the {error} message.</summary>
    public async Task<string> PostErrorAsync(string path, object body, int status)
    {
        using var response = await PostJsonAsync(path, body);
        return await ErrorOf(response, status);
    }

    public static async Task<string> ErrorOf(HttpResponseMessage response, int status)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {text}");
        string error = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString()!;
        Assert.DoesNotContain("   at ", error);   // never a stack trace
        return error;
    }

    public Task<JsonElement> StartTrainingAsync(string name, int maxSteps, Action<Dictionary<string, object?>>? change = null)
    {
        var settings = TinyRun(name, maxSteps);
        change?.Invoke(settings);
        return PostOkAsync("/api/train", new { model = "stories260K-hf", settings });
    }

    // A short preference (dpo / orpo) run on stories260K: pairs in datasets/pairs.json, held-out pairs in
    // datasets/pairs-eval.json, evaluated every 3 steps.
    public Task<JsonElement> StartPreferenceTrainingAsync(string name, string objective, int maxSteps)
    {
        WritePairs("pairs.json", 0, 12);
        WritePairs("pairs-eval.json", 100, 6);
        return StartTrainingAsync(name, maxSteps, s =>
        {
            s.Remove("raw_text_file"); s.Remove("overlap_len"); s.Remove("eval_split");
            s["dataset"] = "pairs.json"; s["eval_dataset"] = "pairs-eval.json"; s["objective"] = objective;
            s["cutoff_len"] = 128; s["eval_steps"] = 3; s["learning_rate"] = 1e-3; s["warmup_steps"] = 0;
        });
    }

    // {prompt, chosen, rejected} rows where chosen is the happy ending and rejected the sad one.
    private void WritePairs(string file, int first, int count)
    {
        string[] names = ["Lily", "Max", "Tom", "Sue", "Ben", "Mia", "Tim", "Anna", "Sam", "Lucy", "Jack", "Emma"];
        string[] things = ["ball", "box", "toy", "flower", "hat", "stick"];
        var rows = Enumerable.Range(first, count).Select(i => new Dictionary<string, string>
        {
            ["prompt"] = $"Once upon a time, there was a little dog named {names[i % names.Length]}. One day, {names[i % names.Length]} found a {things[i % things.Length]}.",
            ["chosen"] = $" {names[i % names.Length]} was very happy and played with the {things[i % things.Length]} all day.",
            ["rejected"] = $" {names[i % names.Length]} was very sad and cried about the {things[i % things.Length]}.",
        });
        File.WriteAllText(Path.Combine(Datasets, file), JsonSerializer.Serialize(rows));
    }

    /// <summary>The current run (GET /api/train), or null.</summary>
    public async Task<JsonElement?> RunAsync()
    {
        var run = (await GetJsonAsync("/api/train")).GetProperty("run");
        return run.ValueKind == JsonValueKind.Null ? null : run;
    }

    public async Task<JsonElement> WaitForRunAsync(Func<JsonElement, bool> condition, string what)
    {
        JsonElement? last = null;
        await Wait.UntilAsync(async () => (last = await RunAsync()) is { } r && condition(r), TrainingTimeout, what,
            async () => (await RunAsync())?.ToString() ?? "no run");
        return last!.Value;
    }

    public Task<JsonElement> WaitForEndAsync(string name) => WaitForRunAsync(r => r.GetProperty("name").GetString() == name && !r.GetProperty("active").GetBoolean(),
        $"training '{name}' to end");

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // a file still open on a slow machine; the temporary folder is cleaned by the OS eventually
        }
    }

    private static void CopyModel(string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(SharedFixtures.Stories260KHf))
            if (!file.EndsWith(".bf16.safetensors", StringComparison.Ordinal))
                File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
    }

    private static string AlpacaRows(int rows)
    {
        string[] names = ["Lily", "Tom", "Max", "Sue"], things = ["ball", "cat", "dog", "tree"];
        var list = Enumerable.Range(0, rows).Select(i => new Dictionary<string, string>
        {
            ["instruction"] = $"Tell me about {names[i % 4]} and the {things[i / 4 % 4]}.",
            ["output"] = $"{names[i % 4]} had a red {things[i / 4 % 4]}.",
        });
        return JsonSerializer.Serialize(list);
    }
}
