// JSON in and out of the HTTP API: snake_case names (as training_parameters.json), enums as snake_case strings,
// NaN/Infinity as strings instead of an exception, unknown request keys refused. Request bodies must say they are
// JSON, which a cross-site HTML form cannot (no CSRF through forms).
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Http;

/// <summary>Serializer settings and body reading of the API.</summary>
internal static class WebJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        AllowTrailingCommas = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,   // the answers are JSON, never embedded in HTML
    };

    // Reading also refuses null for a non-nullable property (`"adapter": null` was a NullReferenceException, a 500,
    // found by fuzzing); writing keeps Options, whose anonymous answers may hold nulls.
    private static readonly JsonSerializerOptions s_readOptions = new(Options) { RespectNullableAnnotations = true };

    /// <summary>The body as <typeparamref name="T"/>; 415 when it is not JSON, 400 with the parser's message when it is invalid.</summary>
    public static async Task<T> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (!request.HasJsonContentType()) throw new HttpError(StatusCodes.Status415UnsupportedMediaType, "Send the request body as JSON (Content-Type: application/json).");
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
            var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
            // System.Text.Json checks UTF-8 inside strings only when they are read (JsonElement.GetRawText throws then).
            if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
                throw new HttpError(StatusCodes.Status400BadRequest, "The request body is not valid UTF-8; send UTF-8 JSON.");
            return JsonSerializer.Deserialize<T>(bytes.Span, s_readOptions)
                ?? throw new HttpError(StatusCodes.Status400BadRequest, "The request body is null; send a JSON object.");
        }
        catch (JsonException e)
        {
            throw new HttpError(StatusCodes.Status400BadRequest, $"The request body is not valid: {e.Message}");
        }
    }

    /// <summary>A JSON response.</summary>
    public static IResult Ok(object value, int status = StatusCodes.Status200OK) => Results.Json(value, Options, statusCode: status);
}
