// The checks every request passes before any endpoint runs:
//   - security headers (no sniffing, no framing, no referrer carrying the token, scripts and styles from this
//     server only);
//   - with a token (any non-loopback bind, or --token given): the token from header, cookie or query parameter,
//     else 401. A correct ?token= on a page visit sets an HttpOnly SameSite=Strict cookie and redirects to the
//     same page without the token in the address bar;
//   - without a token (loopback): the Host header must name the loopback interface, which defeats DNS rebinding;
//   - requests that change something (POST) must carry a JSON or octet-stream body type, and a browser's Origin
//     header must be this server: HTML forms of other sites can send neither, so there is no CSRF.
// Not here: which files a request may name (SafePath does that).
using System.Net;
using LoraSharp.Web.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Security;

/// <summary>The access middleware.</summary>
internal static class AccessGate
{
    private const string ContentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    /// <summary>Adds the middleware; <paramref name="token"/> null means loopback without a token.</summary>
    public static void Use(WebApplication app, string? token) => app.Use(async (ctx, next) =>
    {
        var headers = ctx.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers["Referrer-Policy"] = "no-referrer";

        string? refusal = token == null ? CheckHost(ctx.Request) : null;
        if (token != null)
        {
            var (given, source) = AccessToken.Find(ctx.Request);
            if (!AccessToken.Matches(given, token))
            {
                headers.WWWAuthenticate = "Bearer";
                await ErrorReporter.WriteAsync(ctx.Response, StatusCodes.Status401Unauthorized, given == null
                    ? "This server needs its access token: open the address printed when it started (it ends in ?token=...), or send 'Authorization: Bearer TOKEN'."
                    : "The access token is wrong. Use the one printed when the server started.");
                return;
            }
            if (source == "query")
            {
                ctx.Response.Cookies.Append(AccessToken.CookieName, given!, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true });
                if (HttpMethods.IsGet(ctx.Request.Method) && !ctx.Request.Path.StartsWithSegments("/api"))
                {
                    ctx.Response.Redirect(ctx.Request.PathBase + ctx.Request.Path);
                    return;
                }
            }
        }
        refusal ??= CheckUnsafeMethod(ctx.Request);
        if (refusal != null)
        {
            await ErrorReporter.WriteAsync(ctx.Response, StatusCodes.Status403Forbidden, refusal);
            return;
        }
        await next(ctx);
    });

    private static string? CheckHost(HttpRequest request)
    {
        string host = request.Host.Host;
        bool loopback = host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                        || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
        return loopback ? null : $"Host '{request.Host}' is not this server's loopback address; open it as http://127.0.0.1:{request.HttpContext.Connection.LocalPort}/ " +
                                 "(to serve other machines, start it with --listen, which requires an access token).";
    }

    private static string? CheckUnsafeMethod(HttpRequest request)
    {
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) return null;
        string type = request.ContentType ?? "";
        if (!type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) && !type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
            return "Requests that change something must send Content-Type: application/json (or application/octet-stream for uploads).";
        string origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && (!Uri.TryCreate(origin, UriKind.Absolute, out var o) || !string.Equals(o.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)))
            return $"Origin '{origin}' is not this server; requests from other sites are refused.";
        return null;
    }
}
