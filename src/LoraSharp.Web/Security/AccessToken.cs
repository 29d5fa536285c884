// The access token of a server bound to a non-loopback address: generated from the OS random generator, found in a
// request (Authorization: Bearer, the cookie set on the first visit with ?token=, or the token query parameter,
// which EventSource needs because it cannot set headers) and compared in constant time.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Security;

/// <summary>Token generation and checking.</summary>
public static class AccessToken
{
    /// <summary>The cookie that carries the token after the first visit.</summary>
    public const string CookieName = "lorasharp_token";

    /// <summary>The query parameter that carries the token.</summary>
    public const string QueryName = "token";

    /// <summary>A new random token: 32 bytes as URL-safe base64 (43 characters).</summary>
    public static string Generate() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The token a request presents and where it came from, or (null, null).</summary>
    public static (string? Token, string? Source) Find(HttpRequest request)
    {
        string auth = request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return (auth["Bearer ".Length..].Trim(), "header");
        if (request.Query.TryGetValue(QueryName, out var q) && q.Count > 0) return (q[0], "query");
        if (request.Cookies.TryGetValue(CookieName, out var c)) return (c, "cookie");
        return (null, null);
    }

    /// <summary>Constant-time comparison of <paramref name="given"/> with <paramref name="expected"/>.</summary>
    public static bool Matches(string? given, string expected)
    {
        if (given == null) return false;
        byte[] a = SHA256.HashData(Encoding.UTF8.GetBytes(given)), b = SHA256.HashData(Encoding.UTF8.GetBytes(expected));
        return CryptographicOperations.FixedTimeEquals(a, b);   // hashing first makes the time independent of the lengths too
    }
}
