// The web UI server behind `lorasharp serve`: Kestrel (part of the .NET SDK's ASP.NET Core) on 127.0.0.1 unless told
// otherwise, the access gate, the error reporter, the embedded front end and the API endpoints. It owns the single
// training slot; stopping the server interrupts a running training, which then saves its checkpoint.
// Not here: command-line parsing (the CLI's ServeCommand) or any model work (App's use cases).
using System.Net;
using LoraSharp.App;
using LoraSharp.App.Jobs;
using LoraSharp.Web.Api;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using LoraSharp.Web.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoraSharp.Web;

/// <summary>A running web UI server.</summary>
public sealed class WebServer : IAsyncDisposable
{
    private static readonly TimeSpan TrainingStopTimeout = TimeSpan.FromMinutes(2);
    private readonly WebApplication _app;

    private WebServer(WebApplication app, Uri url, string? token, bool loopback, TrainingJobManager training)
    {
        _app = app;
        Url = url;
        Token = token;
        IsLoopback = loopback;
        Training = training;
    }

    /// <summary>The address to open on this machine (a wildcard bind is shown as the loopback address).</summary>
    public Uri Url { get; }

    /// <summary>The access token, or null when none is required.</summary>
    public string? Token { get; }

    /// <summary>Bound to a loopback address only.</summary>
    public bool IsLoopback { get; }

    /// <summary><see cref="Url"/> with the token, as a person opens it the first time.</summary>
    public Uri BrowserUrl => Token == null ? Url : new Uri(Url, "?" + AccessToken.QueryName + "=" + Uri.EscapeDataString(Token));

    /// <summary>Cancelled when the host is asked to stop (SIGINT/Ctrl+C, SIGTERM): the caller then disposes the server.</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>The training slot (the server's only running job).</summary>
    public TrainingJobManager Training { get; }

    /// <summary>Checks the folders, binds and starts serving; throws with a clear message on a bad option or a busy port.</summary>
    public static async Task<WebServer> StartAsync(WebServerOptions options, CancellationToken cancel = default)
    {
        if (options.Port is < 0 or > 65535) throw new Core.UserErrorException($"--port must be between 0 and 65535 (is {options.Port}).");
        if (options.MaxUploadBytes < 1) throw new Core.UserErrorException($"The upload limit must be positive (is {options.MaxUploadBytes}).");
        var address = ParseAddress(options.Listen);
        bool loopback = IPAddress.IsLoopback(address);
        string? token = string.IsNullOrEmpty(options.Token) ? (loopback ? null : AccessToken.Generate()) : options.Token;
        var folders = new WebFolders(options);
        var log = options.Log ?? Console.Error;

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [], ContentRootPath = AppContext.BaseDirectory, EnvironmentName = Environments.Production,
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            k.Listen(address, options.Port);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));
        var app = builder.Build();

        var training = new TrainingJobManager(log: line => { lock (log) log.WriteLine($"{DateTimeOffset.Now:u} {line}"); });
        var models = new ModelCache();
        app.Lifetime.ApplicationStopped.Register(models.Dispose);
        var errors = new ErrorReporter(folders, log);
        errors.Use(app);
        AccessGate.Use(app, token);
        StaticAssets.Map(app);
        LibraryEndpoints.Map(app, folders, options, token != null);
        TrainingEndpoints.Map(app, folders, training, models);
        GenerateEndpoints.Map(app, folders, errors, models);
        AdapterEndpoints.Map(app, folders);
        AdapterToolEndpoints.Map(app, folders, models);
        CompareEndpoints.Map(app, folders);
        app.MapFallback((HttpContext ctx) => ErrorReporter.WriteAsync(ctx.Response, StatusCodes.Status404NotFound, $"Nothing at {ctx.Request.Path}."));

        try
        {
            await app.StartAsync(cancel);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new IOException($"Cannot listen on {address}:{options.Port}: {e.Message} Choose another --port (0 picks a free one).", e);
        }
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        string host = address.Equals(IPAddress.Any) ? "127.0.0.1" : address.Equals(IPAddress.IPv6Any) ? "[::1]" : bound.Host;
        return new WebServer(app, new Uri($"http://{host}:{bound.Port}/"), token, loopback, training);
    }

    /// <summary>Interrupts a running training (it saves a checkpoint) and stops serving.</summary>
    public async ValueTask DisposeAsync()
    {
        await Training.StopAsync(TrainingStopTimeout);   // logs when the run did not stop in time
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static IPAddress ParseAddress(string? listen)
    {
        if (string.IsNullOrEmpty(listen)) return IPAddress.Loopback;
        if (listen.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        return IPAddress.TryParse(listen.Trim('[', ']'), out var ip) ? ip
            : throw new Core.UserErrorException($"--listen takes an IP address (0.0.0.0 for every interface, or one of this machine's addresses), not '{listen}'.");
    }
}
