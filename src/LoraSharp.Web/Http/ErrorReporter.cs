// Turns exceptions into what the browser may see: {"error": message} with a status code for the user's mistakes
// (400 bad input, 403 a path outside the folders, 404 not found, 409 busy, 413 too large), and a generic message
// for anything unexpected, whose stack trace goes to the server log only. Folder paths are replaced by their labels.
// Not here: streaming responses' own error events (they call Describe).
using LoraSharp.App;
using LoraSharp.App.Jobs;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Http;

/// <summary>The error middleware and classification.</summary>
internal sealed class ErrorReporter(WebFolders folders, TextWriter log)
{
    /// <summary>Adds the middleware; call it first so it wraps everything.</summary>
    public void Use(WebApplication app) => app.Use(async (ctx, next) =>
    {
        try
        {
            await next(ctx);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away; nothing to answer
        }
        catch (Exception e)
        {
            var (status, message) = Describe(e, $"{ctx.Request.Method} {ctx.Request.Path}");
            if (ctx.Response.HasStarted) return;   // a stream already under way; it reports its own errors
            ctx.Response.Clear();
            await WriteAsync(ctx.Response, status, message);
        }
    });

    /// <summary>The status and browser-safe message of <paramref name="e"/>; unexpected ones are logged with their trace.</summary>
    public (int Status, string Message) Describe(Exception e, string where)
    {
        e = UserErrors.Unwrap(e);
        int status = e switch
        {
            HttpError h => h.Status,
            BadHttpRequestException b => b.StatusCode,
            JobAlreadyRunningException => StatusCodes.Status409Conflict,
            FileNotFoundException or DirectoryNotFoundException => StatusCodes.Status404NotFound,
            UnauthorizedAccessException => StatusCodes.Status403Forbidden,
            _ when UserErrors.IsExpected(e) => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status500InternalServerError,
        };
        if (status == StatusCodes.Status500InternalServerError)
        {
            lock (log) log.WriteLine($"{DateTimeOffset.Now:u} {where}: unexpected error: {e}");
            return (status, $"Internal error ({e.GetType().Name}). The server log has the details.");
        }
        return (status, folders.Redact(e.Message));
    }

    /// <summary>Writes {"error": message}.</summary>
    public static Task WriteAsync(HttpResponse response, int status, string message)
    {
        response.StatusCode = status;
        return response.WriteAsJsonAsync(new { error = message }, WebJson.Options);
    }
}
