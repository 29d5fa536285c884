// What the pickers and the form are built from: the models, datasets and formats in the folders, the training
// settings with their defaults and help, the generation defaults; and the dataset upload (size-limited, written
// under a temporary name and renamed, never over an existing file).
//   GET  /api/info      GET /api/models      GET /api/datasets      GET /api/formats      GET /api/settings
//   POST /api/datasets?name=NAME   (Content-Type: application/octet-stream; the file's bytes)
using System.Text.Json.Nodes;
using LoraSharp.Training.Settings;
using LoraSharp.Models.Generation;
using LoraSharp.Training;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoraSharp.Web.Api;

/// <summary>Maps the library endpoints.</summary>
internal static class LibraryEndpoints
{
    private static readonly string[] UploadExtensions = [".json", ".jsonl", ".txt"];

    public static void Map(WebApplication app, WebFolders folders, WebServerOptions options, bool tokenRequired)
    {
        app.MapGet("/api/info", () => WebJson.Ok(new
        {
            version = typeof(LibraryEndpoints).Assembly.GetName().Version?.ToString(3),
            token_required = tokenRequired,
            max_upload_bytes = options.MaxUploadBytes,
            formats_folder = folders.Formats != null,
        }));
        app.MapGet("/api/models", () => WebJson.Ok(folders.ListModels()));
        app.MapGet("/api/datasets", () => WebJson.Ok(folders.ListDatasets()));
        app.MapGet("/api/formats", () => WebJson.Ok(folders.ListFormats()));
        app.MapGet("/api/settings", () =>
        {
            var generation = new GenerationOptions();
            var sampling = generation.Sampling;
            return WebJson.Ok(new
            {
                defaults = JsonNode.Parse(TrainingSettingsFile.ToJson(new TrainingSettings())),
                fields = TrainingSettingsSchema.All,
                generation = new
                {
                    max_new_tokens = generation.MaxNewTokens, temperature = sampling.Temperature, top_k = sampling.TopK, top_p = sampling.TopP,
                    min_p = sampling.MinP, repetition_penalty = sampling.RepetitionPenalty, seed = sampling.Seed,
                },
            });
        });
        // A block body: an expression lambda would bind as a RequestDelegate and drop the result.
        app.MapPost("/api/datasets", async (HttpContext ctx) => { return await UploadAsync(ctx, folders, options.MaxUploadBytes); });
    }

    private static async Task<IResult> UploadAsync(HttpContext ctx, WebFolders folders, long limit)
    {
        var request = ctx.Request;
        if (!(request.ContentType ?? "").StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
            throw new HttpError(StatusCodes.Status415UnsupportedMediaType, "Upload the file's bytes with Content-Type: application/octet-stream.");
        string? name = request.Query["name"];
        if (string.IsNullOrWhiteSpace(name) || !UploadExtensions.Contains(Path.GetExtension(name).ToLowerInvariant()))
            throw new Core.UserErrorException($"Upload name '{name}' must end in {string.Join(", ", UploadExtensions)}.");
        string path = folders.Datasets.ResolveChild(name);
        if (File.Exists(path) || Directory.Exists(path))
            throw new HttpError(StatusCodes.Status409Conflict, $"Dataset '{name}' already exists; upload it under another name.");
        if (request.ContentLength > limit) throw TooLarge(request.ContentLength.Value, limit);
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = limit;

        string temp = Path.Combine(folders.Datasets.Root, $".{name}.{Guid.NewGuid():N}.upload");
        try
        {
            long written = 0;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                var buffer = new byte[81920];
                int n;
                while ((n = await request.Body.ReadAsync(buffer, ctx.RequestAborted)) > 0)
                {
                    written += n;
                    if (written > limit) throw TooLarge(written, limit);
                    await file.WriteAsync(buffer.AsMemory(0, n), ctx.RequestAborted);
                }
            }
            File.Move(temp, path, overwrite: false);
            return WebJson.Ok(new { name, size = written }, StatusCodes.Status201Created);
        }
        finally
        {
            File.Delete(temp);   // gone already after a successful move
        }
    }

    private static HttpError TooLarge(long size, long limit) => new(StatusCodes.Status413PayloadTooLarge,
        $"The upload is larger than the limit of {limit:N0} bytes (at least {size:N0}); start the server with a larger --max-upload-mb, or copy the file into the datasets folder.");
}
