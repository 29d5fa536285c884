// The front end (wwwroot/: one HTML page, its CSS and JavaScript modules) served from resources embedded in this
// assembly, so the server needs no files beside it and the browser no CDN. Only names in the manifest exist:
// a request path is a dictionary key, never a file path.
using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LoraSharp.Web.Http;

/// <summary>Maps / and /assets/{name}.</summary>
internal static class StaticAssets
{
    private const string Prefix = "wwwroot/";

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
    };

    public static void Map(IEndpointRouteBuilder app)
    {
        var assembly = typeof(StaticAssets).Assembly;
        var assets = assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .ToDictionary(n => n[Prefix.Length..], n => Read(assembly, n), StringComparer.Ordinal);
        app.MapGet("/", () => Serve(assets, "index.html"));
        app.MapGet("/assets/{name}", (string name) => Serve(assets, name));
    }

    private static IResult Serve(Dictionary<string, byte[]> assets, string name)
    {
        if (name == "index.html" && !assets.ContainsKey(name)) throw new InvalidOperationException("wwwroot/index.html is not embedded in LoraSharp.Web.");
        if (!assets.TryGetValue(name, out var bytes)) return Results.NotFound();
        string type = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
        return Results.Bytes(bytes, type);
    }

    private static byte[] Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
