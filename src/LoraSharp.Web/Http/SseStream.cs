// Server-sent events: producers on any thread queue named events with JSON data; one pump writes them to the
// response in order and flushes, with a comment line every few seconds so proxies and dead clients are noticed.
// Not here: what the events mean.
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoraSharp.Web.Http;

/// <summary>One text/event-stream response.</summary>
internal sealed class SseStream
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);
    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Queues event <paramref name="name"/> with <paramref name="data"/> as JSON; never blocks.</summary>
    public void Send(string name, object data) =>
        _queue.Writer.TryWrite($"event: {name}\ndata: {JsonSerializer.Serialize(data, WebJson.Options)}\n\n");

    /// <summary>No more events: the pump ends the response after the queued ones.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Sets the event-stream headers and writes queued events until <see cref="Complete"/> or <paramref name="cancel"/>.</summary>
    public async Task PumpAsync(HttpContext context, CancellationToken cancel)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.Body.FlushAsync(cancel);
        var reader = _queue.Reader;
        try
        {
            while (true)
            {
                bool more;
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancel))
                {
                    wait.CancelAfter(KeepAlive);
                    try
                    {
                        more = await reader.WaitToReadAsync(wait.Token);
                    }
                    catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                    {
                        await response.WriteAsync(": keep-alive\n\n", cancel);
                        await response.Body.FlushAsync(cancel);
                        continue;
                    }
                }
                if (!more) break;
                while (reader.TryRead(out var message)) await response.WriteAsync(message, cancel);
                await response.Body.FlushAsync(cancel);
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // client gone or server stopping
        }
    }
}
