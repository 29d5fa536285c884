// The web API's JSON request bodies: each body goes through WebJson.ReadAsync on a real HttpRequest (the code the
// server runs) and then the endpoint's own checks and name resolution against a private set of folders. Besides
// "no crash", every resolved path must lie inside its folder: a name that escapes is reported as a crash.
// Rejections are the exceptions the server answers with 4xx: HttpError (400/409/415), the user-error types (400),
// FileNotFound 404, UnauthorizedAccess 403. ArgumentException & co. are bugs (500), so they count as crashes.
using System.Runtime.CompilerServices;
using LoraSharp.Web;
using LoraSharp.Web.Api;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Fuzz;

public static partial class Targets
{
    private static readonly ConditionalWeakTable<FuzzWorkspace, WebFolders> s_folders = new();

    private static Type[] WebRejections =>
    [
        typeof(HttpError), typeof(Core.UserErrorException), typeof(Core.UserErrorException), typeof(FileNotFoundException),
        typeof(DirectoryNotFoundException), typeof(UnauthorizedAccessException),
    ];

    /// <summary>Thrown by a target when a parse succeeded but broke a promise (a path outside its folder).</summary>
    public sealed class PropertyViolation(string message) : Exception(message);

    private static WebFolders Folders(FuzzWorkspace ws) => s_folders.GetValue(ws, w =>
    {
        string root = Path.Combine(w.Root, "web");
        Directory.CreateDirectory(Path.Combine(root, "models", "m"));
        Directory.CreateDirectory(Path.Combine(root, "loras", "a"));
        Directory.CreateDirectory(Path.Combine(root, "datasets"));
        Directory.CreateDirectory(Path.Combine(root, "formats"));
        File.WriteAllText(Path.Combine(root, "datasets", "d.json"), "[]");
        File.WriteAllText(Path.Combine(root, "formats", "alpaca-format.json"), "{\"instruction,output\": \"%instruction%%output%\"}");
        return new WebFolders(new WebServerOptions
        {
            ModelsFolder = Path.Combine(root, "models"), DatasetsFolder = Path.Combine(root, "datasets"),
            AdaptersFolder = Path.Combine(root, "loras"), FormatsFolder = Path.Combine(root, "formats"),
        });
    });

    private static T Read<T>(byte[] input) where T : class
    {
        var ctx = new DefaultHttpContext();
        ctx.Request.ContentType = "application/json";
        ctx.Request.Body = new MemoryStream(input, writable: false);
        return WebJson.ReadAsync<T>(ctx.Request).GetAwaiter().GetResult();
    }

    private static void Inside(WebFolder folder, string? path)
    {
        if (path != null && !folder.Contains(path)) throw new PropertyViolation($"'{path}' resolved outside the {folder.Label} folder {folder.Root}.");
    }

    private static IEnumerable<FuzzTarget> WebTargets()
    {
        var words = Words("model", "adapter", "adapters", "name", "scale", "out", "format", "dtype", "safe", "overwrite", "settings", "resume",
            "prompt", "max_new_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed", "stop", "chat", "chat_template",
            "system", "method", "rank", "file", "max_length", "stride", "max_tokens", "m", "a", "d.json", "..", "../", "/etc/passwd", "a/../../x",
            "lora_name", "dataset", "raw_text_file", "eval_dataset", "alpaca", "chatml", "linear", "svd", "cat", "gguf", "hf", "f16");
        FuzzTarget Web(string name, string parser, Action<byte[], FuzzWorkspace> run, params string[] seeds) => new()
        {
            Name = name, Parser = parser, Rejections = WebRejections, Dictionary = words, Run = run,
            Seeds = () => seeds.Select(Seeds.Utf8).ToList(),
        };
        yield return Web("web-train", "POST /api/train body: WebJson.ReadAsync, TrainingEndpoints.ToRequest (settings parse, Validate, folder resolution)", (input, ws) =>
        {
            var folders = Folders(ws);
            var request = TrainingEndpoints.ToRequest(Read<TrainingEndpoints.TrainBody>(input), folders);
            Inside(folders.Models, request.Model);
            Inside(folders.Datasets, request.Settings.Dataset);
            Inside(folders.Datasets, request.Settings.RawTextFile);
            Inside(folders.Datasets, request.Settings.EvalDataset);
            if (!folders.Adapters.Contains(Path.Combine(request.OutputRoot, request.Settings.LoraName)))
                throw new PropertyViolation($"lora_name '{request.Settings.LoraName}' leaves the adapters folder.");
        },
            """{"model": "m", "settings": {"lora_name": "x", "dataset": "d.json", "format": "alpaca", "lora_rank": 4, "epochs": 1}, "resume": false}""",
            """{"model": "m", "settings": {"lora_name": "a", "raw_text_file": "d.json", "always_override": true, "cutoff_len": 32}}""");
        yield return Web("web-generate", "POST /api/generate body: WebJson.ReadAsync, name resolution, ToOptions, ToChat", (input, ws) =>
        {
            var folders = Folders(ws);
            var body = Read<GenerateEndpoints.GenerateBody>(input);
            Inside(folders.Models, folders.Models.Resolve(body.Model));
            if (!string.IsNullOrEmpty(body.Adapter)) Inside(folders.Adapters, folders.Adapters.Resolve(body.Adapter));
            _ = body.ToOptions();
            _ = body.ToChat();
        },
            """{"model": "m", "adapter": "a", "adapter_scale": 0.5, "prompt": "Once", "max_new_tokens": 16, "temperature": 0.7, "top_k": 40, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.1, "seed": 3, "stop": ["\n"], "chat": true, "chat_template": "chatml", "system": "Be brief."}""",
            """{"model": "m", "prompt": "", "temperature": "NaN"}""");
        yield return Web("web-merge", "POST /api/merge body: WebJson.ReadAsync, adapter specs, name resolution", (input, ws) =>
        {
            var folders = Folders(ws);
            var body = Read<AdapterToolEndpoints.MergeBody>(input);
            Inside(folders.Models, folders.Models.Resolve(body.Model));
            foreach (var s in AdapterToolEndpoints.Specs(body.Adapters, folders)) Inside(folders.Adapters, s[..s.LastIndexOf(':')]);
            Inside(folders.Models, folders.Models.ResolveChild(body.Out));
        },
            """{"model": "m", "adapters": [{"name": "a", "scale": 1.0}, {"name": "a", "scale": -0.5}], "out": "merged", "format": "gguf", "dtype": "f16", "safe": true, "overwrite": false}""");
        yield return Web("web-export", "POST /api/export body: WebJson.ReadAsync, name resolution", (input, ws) =>
        {
            var folders = Folders(ws);
            var body = Read<AdapterToolEndpoints.ExportBody>(input);
            Inside(folders.Adapters, folders.Adapters.Resolve(body.Adapter.TrimEnd('/')));
            Inside(folders.Models, folders.Models.Resolve(body.Model));
            Inside(folders.Adapters, folders.Adapters.ResolveChild(string.IsNullOrEmpty(body.Out) ? body.Adapter.TrimEnd('/') + ".gguf" : body.Out));
        },
            """{"adapter": "a", "model": "m", "out": "a.gguf", "dtype": "f16", "overwrite": true}""");
        yield return Web("web-combine", "POST /api/combine body: WebJson.ReadAsync, CheckCombine (method, density, sign method, seed, rank), adapter specs, name resolution", (input, ws) =>
        {
            var folders = Folders(ws);
            var body = Read<AdapterToolEndpoints.CombineBody>(input);
            AdapterToolEndpoints.CheckCombine(body);
            foreach (var s in AdapterToolEndpoints.Specs(body.Adapters, folders)) Inside(folders.Adapters, s[..s.LastIndexOf(':')]);
            Inside(folders.Adapters, folders.Adapters.ResolveChild(body.Out));
            if (!string.IsNullOrEmpty(body.Model)) Inside(folders.Models, folders.Models.Resolve(body.Model));
        },
            """{"adapters": [{"name": "a", "scale": 0.5}, {"name": "a"}], "method": "svd", "rank": 4, "out": "c", "model": "m", "overwrite": false}""",
            """{"adapters": [{"name": "a", "scale": 0.7}, {"name": "a", "scale": -0.3}], "method": "dare_ties", "density": 0.5, "majority_sign_method": "frequency", "seed": 3, "out": "c"}""");
        yield return Web("web-perplexity", "POST /api/perplexity body: WebJson.ReadAsync, name resolution", (input, ws) =>
        {
            var folders = Folders(ws);
            var body = Read<AdapterToolEndpoints.PerplexityBody>(input);
            Inside(folders.Models, folders.Models.Resolve(body.Model));
            Inside(folders.Datasets, folders.Datasets.Resolve(body.File));
            if (!string.IsNullOrEmpty(body.Adapter)) Inside(folders.Adapters, folders.Adapters.Resolve(body.Adapter));
        },
            """{"model": "m", "adapter": "a", "file": "d.json", "max_length": 64, "stride": 32, "max_tokens": 1000}""");
    }
}
