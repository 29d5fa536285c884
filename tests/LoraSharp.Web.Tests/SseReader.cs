// Reads server-sent events from a streamed HttpResponseMessage, each read with a deadline that names what was
// awaited. Handles comment (keep-alive) lines and multi-line blocks as EventSource does.
using System.Text;
using System.Text.Json;

namespace LoraSharp.Web.Tests;

internal sealed class SseReader : IDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseReader(HttpResponseMessage response, Stream stream)
    {
        _response = response;
        _reader = new StreamReader(stream, Encoding.UTF8);
    }

    /// <summary>Sends <paramref name="request"/> and returns a reader of its event stream (asserting the content type).</summary>
    public static async Task<SseReader> OpenAsync(HttpClient client, HttpRequestMessage request)
    {
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
            throw new Xunit.Sdk.XunitException($"{request.Method} {request.RequestUri}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType?.ToString());
        return new SseReader(response, await response.Content.ReadAsStreamAsync());
    }

    /// <summary>The next event, or null at the end of the stream.</summary>
    public async Task<(string Name, JsonElement Data)?> NextAsync(TimeSpan timeout, string what)
    {
        using var cancel = new CancellationTokenSource(timeout);
        string name = "message";
        var data = new StringBuilder();
        try
        {
            while (await _reader.ReadLineAsync(cancel.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    if (data.Length > 0) return (name, JsonDocument.Parse(data.ToString()).RootElement.Clone());
                    name = "message";
                    continue;
                }
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Append(line[6..]);
            }
            return null;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No server-sent event within {timeout.TotalSeconds:F0} s while waiting for {what}.");
        }
    }

    /// <summary>Reads events until one satisfies <paramref name="match"/>; returns it and every event before it.</summary>
    public async Task<List<(string Name, JsonElement Data)>> UntilAsync(Func<string, JsonElement, bool> match, TimeSpan timeout, string what)
    {
        var seen = new List<(string, JsonElement)>();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s waiting for {what}; saw {seen.Count} events.");
            var e = await NextAsync(left, what) ?? throw new Xunit.Sdk.XunitException($"The event stream ended before {what}; saw {seen.Count} events.");
            seen.Add(e);
            if (match(e.Name, e.Data)) return seen;
        }
    }

    public void Dispose()
    {
        _reader.Dispose();
        _response.Dispose();
    }
}
