// A minimal client of the Chrome DevTools protocol for one page: commands with ids over a WebSocket, answers
// matched by id, JavaScript errors and console errors collected (a test reports them when it fails). Only what the
// end-to-end test needs: navigate, evaluate, wait for a condition, set the viewport, screenshot.
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace LoraSharp.Web.Tests.Browser;

internal sealed class DevToolsPage : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);
    private readonly ClientWebSocket _socket;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _send = new(1);
    private Task _receiving = Task.CompletedTask;
    private int _lastId;

    private DevToolsPage(ClientWebSocket socket) => _socket = socket;

    /// <summary>JavaScript exceptions and console errors of the page so far.</summary>
    public IReadOnlyCollection<string> Errors => _errors;

    public static async Task<DevToolsPage> ConnectAsync(Uri endpoint)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using (var connect = new CancellationTokenSource(CommandTimeout)) await socket.ConnectAsync(endpoint, connect.Token);
        var page = new DevToolsPage(socket);
        page._receiving = Task.Run(page.ReceiveAsync);
        await page.SendAsync("Runtime.enable");
        await page.SendAsync("Page.enable");
        return page;
    }

    /// <summary>Sends a command and returns its result; a protocol error fails the test with its message.</summary>
    public async Task<JsonElement> SendAsync(string method, object? parameters = null)
    {
        int id = Interlocked.Increment(ref _lastId);
        var answer = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        await _send.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, _stop.Token);
        }
        finally
        {
            _send.Release();
        }
        try
        {
            return await answer.Task.WaitAsync(CommandTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"DevTools command {method} got no answer within {CommandTimeout.TotalSeconds:F0} s.");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page (promises awaited) and returns its value.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result.TryGetProperty("exceptionDetails", out var details))
            throw new Xunit.Sdk.XunitException($"JavaScript failed: {Describe(details)}\nin: {expression}");
        return result.GetProperty("result").TryGetProperty("value", out var value) ? value.Clone() : default;
    }

    /// <summary>Polls <paramref name="condition"/> (a JavaScript expression) until it is true; fails naming <paramref name="what"/>.</summary>
    public async Task WaitForAsync(string condition, TimeSpan timeout, string what, string? describe = null)
    {
        try
        {
            await Wait.UntilAsync(async () => (await EvaluateAsync($"!!({condition})")).ValueKind == JsonValueKind.True, timeout, what,
                async () => (describe == null ? "" : (await EvaluateAsync(describe)).ToString()) + ErrorsText());
        }
        catch (TimeoutException e)
        {
            throw new Xunit.Sdk.XunitException(e.Message);
        }
    }

    public async Task NavigateAsync(Uri url, TimeSpan timeout)
    {
        var result = await SendAsync("Page.navigate", new { url = url.ToString() });
        if (result.TryGetProperty("errorText", out var error)) throw new Xunit.Sdk.XunitException($"Could not open {url}: {error}");
        await WaitForAsync("document.readyState === 'complete'", timeout, $"{url} to load");
    }

    public Task SetViewportAsync(int width, int height) =>
        SendAsync("Emulation.setDeviceMetricsOverride", new { width, height, deviceScaleFactor = 1, mobile = false });

    /// <summary>Saves a PNG of the whole page to <paramref name="path"/>.</summary>
    public async Task ScreenshotAsync(string path)
    {
        var shot = await SendAsync("Page.captureScreenshot", new { format = "png", captureBeyondViewport = true });
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String(shot.GetProperty("data").GetString()!));
    }

    public string ErrorsText() => _errors.IsEmpty ? "" : "\nPage errors:\n" + string.Join("\n", _errors);

    private async Task ReceiveAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                var part = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (part.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage) continue;
                Dispatch(JsonDocument.Parse(message.ToArray()).RootElement.Clone());
                message.SetLength(0);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // closing
        }
        foreach (var pending in _pending.Values) pending.TrySetException(new IOException("The DevTools connection closed."));
    }

    private void Dispatch(JsonElement message)
    {
        if (message.TryGetProperty("id", out var id) && _pending.TryGetValue(id.GetInt32(), out var answer))
        {
            if (message.TryGetProperty("error", out var error)) answer.TrySetException(new Xunit.Sdk.XunitException($"DevTools error: {error}"));
            else answer.TrySetResult(message.GetProperty("result"));
            return;
        }
        string? method = message.TryGetProperty("method", out var m) ? m.GetString() : null;
        if (method == "Runtime.exceptionThrown") _errors.Enqueue(Describe(message.GetProperty("params").GetProperty("exceptionDetails")));
        else if (method == "Runtime.consoleAPICalled" && message.GetProperty("params").GetProperty("type").GetString() == "error")
            _errors.Enqueue("console.error: " + string.Join(" ", message.GetProperty("params").GetProperty("args").EnumerateArray()
                .Select(a => a.TryGetProperty("value", out var v) ? v.ToString() : a.TryGetProperty("description", out var d) ? d.GetString() : "?")));
    }

    private static string Describe(JsonElement details)
    {
        var text = new StringBuilder(details.TryGetProperty("text", out var t) ? t.GetString() : "exception");
        if (details.TryGetProperty("exception", out var e) && e.TryGetProperty("description", out var d)) text.Append(": ").Append(d.GetString());
        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            if (_socket.State == WebSocketState.Open)
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is WebSocketException or TimeoutException or OperationCanceledException)
        {
            // the browser is going away anyway
        }
        await _receiving;
        _socket.Dispose();
    }
}
