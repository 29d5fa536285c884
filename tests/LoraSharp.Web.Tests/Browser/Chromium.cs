// A headless Chromium for the end-to-end test: found on this machine (LORASHARP_CHROMIUM, or chromium /
// chromium-browser / google-chrome on PATH), started with a throw-away profile and the DevTools protocol on a free
// loopback port, and killed with its child processes at the end. A missing browser fails the test saying how to
// install it; it never skips.
using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LoraSharp.Web.Tests.Browser;

internal sealed partial class Chromium : IAsyncDisposable
{
    private static readonly string[] Candidates = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    private readonly Process _process;
    private readonly string _profile;

    private Chromium(Process process, string profile, Uri devTools)
    {
        _process = process;
        _profile = profile;
        DevTools = devTools;
    }

    /// <summary>The browser's DevTools endpoint (ws://127.0.0.1:PORT/devtools/browser/ID).</summary>
    public Uri DevTools { get; }

    public static string Find()
    {
        string? configured = Environment.GetEnvironmentVariable("LORASHARP_CHROMIUM");
        if (!string.IsNullOrEmpty(configured))
            return File.Exists(configured) ? configured : throw new Xunit.Sdk.XunitException($"LORASHARP_CHROMIUM names '{configured}', which does not exist.");
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (var name in Candidates)
            foreach (var dir in dirs)
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        throw new Xunit.Sdk.XunitException(
            "The end-to-end web UI test needs a Chromium browser, and none was found (looked for " + string.Join(", ", Candidates) +
            " on PATH, and LORASHARP_CHROMIUM). Install Debian's package: apt-get install -y chromium (.ci/run does this), " +
            "or set LORASHARP_CHROMIUM to a Chromium or Chrome executable.");
    }

    public static async Task<Chromium> LaunchAsync(TimeSpan timeout)
    {
        string exe = Find();
        string profile = Directory.CreateTempSubdirectory("lorasharp-chromium-").FullName;
        var info = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                     "--no-default-browser-check", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-extensions", "--mute-audio", "--window-size=1400,1000", $"--user-data-dir={profile}",
                     "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
                 })
            info.ArgumentList.Add(arg);
        var process = Process.Start(info) ?? throw new Xunit.Sdk.XunitException($"Could not start {exe}.");
        var endpoint = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stderr = new List<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data == null) return;
            lock (stderr) stderr.Add(e.Data);
            if (Listening().Match(e.Data) is { Success: true } m) endpoint.TrySetResult(new Uri(m.Groups[1].Value));
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var browser = new Chromium(process, profile, await Started(process, endpoint.Task, timeout, exe, stderr));
        return browser;
    }

    private static async Task<Uri> Started(Process process, Task<Uri> endpoint, TimeSpan timeout, string exe, List<string> stderr)
    {
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(endpoint, exited, Task.Delay(timeout));
        if (first == endpoint) return await endpoint;
        string said;
        lock (stderr) said = string.Join("\n", stderr.TakeLast(20));
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        throw new Xunit.Sdk.XunitException($"{exe} did not print its DevTools address within {timeout.TotalSeconds:F0} s" +
                                           (first == exited ? $" (it exited with {process.ExitCode})" : "") + $". Its last output:\n{said}");
    }

    /// <summary>Connects to the page the browser opened (about:blank).</summary>
    public async Task<DevToolsPage> OpenPageAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var targets = JsonDocument.Parse(await http.GetStringAsync($"http://{DevTools.Authority}/json/list"));
        var page = targets.RootElement.EnumerateArray().FirstOrDefault(t => t.GetProperty("type").GetString() == "page");
        if (page.ValueKind != JsonValueKind.Object) throw new Xunit.Sdk.XunitException($"Chromium at {DevTools} has no page target: {targets.RootElement}");
        return await DevToolsPage.ConnectAsync(new Uri(page.GetProperty("webSocketDebuggerUrl").GetString()!));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
            // the browser's last writes may still be settling; the temporary folder is cleaned by the OS eventually
        }
    }

    [GeneratedRegex(@"DevTools listening on (ws://\S+)")]
    private static partial Regex Listening();
}
