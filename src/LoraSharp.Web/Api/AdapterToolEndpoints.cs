// The adapters tab's tools, each a use case of App run off the request thread; every input is a name inside its
// folder and every output a plain new name in the folder it belongs to:
//   POST /api/merge       {model, adapters: [{name, scale}], out, format: hf|gguf, dtype, safe, overwrite} -> models folder
//   POST /api/export      {adapter, model, out, dtype: f32|f16, overwrite}                             -> adapters folder (.gguf)
//   POST /api/combine     {adapters: [{name, scale (the weight)}], method (AdapterCombiner.MethodNames), rank, density,
//                          majority_sign_method: total|frequency, seed, out, overwrite}                   -> adapters folder
//   POST /api/perplexity  {model, adapter, file, max_length, stride, max_tokens}                       (file in datasets)
// Not here: the tools themselves (MergeJob, ExportJob, CombineJob, PerplexityJob).
using System.Globalization;
using System.Text.Json.Serialization;
using LoraSharp.App;
using LoraSharp.Training.Adapters;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LoraSharp.Web.Api;

/// <summary>Maps merge, export, combine and perplexity.</summary>
internal static class AdapterToolEndpoints
{
    public static void Map(WebApplication app, WebFolders folders, ModelCache models)
    {
        app.MapPost("/api/merge", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<MergeBody>(ctx.Request);
            bool gguf = body.Format == "gguf" || body.Out.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);
            var options = new MergeJobOptions
            {
                ModelPath = folders.Models.Resolve(body.Model),
                Adapters = Specs(body.Adapters, folders),
                OutPath = folders.Models.ResolveChild(gguf && !body.Out.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? body.Out + ".gguf" : body.Out),
                Format = gguf ? "gguf" : "hf", DType = string.IsNullOrEmpty(body.DType) ? null : body.DType, Safe = body.Safe, Overwrite = body.Overwrite,
            };
            var report = await Task.Run(() => MergeJob.Run(options));
            return WebJson.Ok(new
            {
                output = folders.Models.Name(report.OutputPath), merged_weights = report.MergedWeights, total_tensors = report.TotalTensors,
                dtype = report.DType, notes = report.Notes.Select(folders.Redact),
            });
        });
        app.MapPost("/api/export", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<ExportBody>(ctx.Request);
            string adapterName = body.Adapter.TrimEnd('/');
            string outName = string.IsNullOrEmpty(body.Out) ? adapterName + ".gguf" : body.Out.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? body.Out : body.Out + ".gguf";
            var options = new ExportJobOptions
            {
                AdapterPath = folders.Adapters.Resolve(adapterName), ModelPath = folders.Models.Resolve(body.Model),
                OutPath = folders.Adapters.ResolveChild(outName), DType = body.DType, Overwrite = body.Overwrite,
            };
            var weights = await Task.Run(() => ExportJob.Run(options));
            return WebJson.Ok(new { output = outName, modules = weights.Modules.Count });
        });
        app.MapPost("/api/combine", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<CombineBody>(ctx.Request);
            CheckCombine(body);
            var options = new CombineJobOptions
            {
                Adapters = Specs(body.Adapters, folders), Method = body.Method, Rank = body.Rank, OutPath = folders.Adapters.ResolveChild(body.Out),
                Density = body.Density, MajoritySignMethod = body.MajoritySignMethod, Seed = body.Seed,
                ModelPath = string.IsNullOrEmpty(body.Model) ? null : folders.Models.Resolve(body.Model), Overwrite = body.Overwrite,
            };
            var combined = await Task.Run(() => CombineJob.Run(options));
            return WebJson.Ok(new { output = body.Out, modules = combined.Modules.Count, ranks = combined.Modules.Select(m => m.Rank).Distinct().Order() });
        });
        app.MapPost("/api/perplexity", async (HttpContext ctx) =>
        {
            var body = await WebJson.ReadAsync<PerplexityBody>(ctx.Request);
            var request = new PerplexityRequest
            {
                Model = folders.Models.Resolve(body.Model), File = folders.Datasets.Resolve(body.File),
                Adapters = string.IsNullOrEmpty(body.Adapter) ? [] : [new AdapterSpec(folders.Adapters.Resolve(body.Adapter))],
                MaxLength = body.MaxLength, Stride = body.Stride, MaxTokens = body.MaxTokens,
            };
            PerplexityJob.CheckFile(request);
            var r = await Task.Run(() => models.Use(request.Model, request.Adapters, session => PerplexityJob.Run(session, request, cancel: ctx.RequestAborted), ctx.RequestAborted));
            return WebJson.Ok(new
            {
                adapter = body.Adapter, perplexity = r.Perplexity, token_weighted_perplexity = r.TokenWeightedPerplexity, windows = r.Windows,
                tokens = r.Tokens, scored_tokens = r.ScoredTokens,
            });
        });
    }

    // The combine form's own checks, named as the form names its fields, before any adapter is read. A setting the
    // chosen method does not use is refused when it differs from its default rather than silently ignored.
    internal static void CheckCombine(CombineBody body)
    {
        var method = AdapterCombiner.ParseMethod(body.Method);
        string name = body.Method.Trim().ToLowerInvariant();
        bool task = method is not (CombineMethod.Linear or CombineMethod.Cat or CombineMethod.Svd);
        bool signs = method is CombineMethod.Ties or CombineMethod.TiesSvd or CombineMethod.DareTies or CombineMethod.DareTiesSvd;
        bool dare = method is CombineMethod.DareLinear or CombineMethod.DareLinearSvd or CombineMethod.DareTies or CombineMethod.DareTiesSvd;
        if (!(double.IsFinite(body.Density) && body.Density > 0 && body.Density <= 1))
            throw new Core.UserErrorException($"density must be a number in (0, 1] (is {body.Density.ToString(CultureInfo.InvariantCulture)}): the share of each task tensor kept; 1 keeps everything.");
        if (!task && body.Density != 1)
            throw new Core.UserErrorException($"density applies to ties, dare_linear, dare_ties and magnitude_prune (and their _svd variants), not to {name}; leave it at 1 or pick one of those methods.");
        if (body.MajoritySignMethod is not ("total" or "frequency"))
            throw new Core.UserErrorException($"majority_sign_method '{body.MajoritySignMethod}' is not total or frequency.");
        if (!signs && body.MajoritySignMethod != "total")
            throw new Core.UserErrorException($"majority_sign_method applies to ties and dare_ties (and their _svd variants), not to {name}; leave it at total or pick one of those methods.");
        if (body.Seed < 0) throw new Core.UserErrorException($"seed must be 0 or more (is {body.Seed}).");
        if (!dare && body.Seed != 0)
            throw new Core.UserErrorException($"seed drives DARE's random pruning and applies to dare_linear and dare_ties (and their _svd variants), not to {name}; leave it at 0.");
        if (body.Rank is { } r && r < 1) throw new Core.UserErrorException($"rank must be 1 or more (is {r}); leave it empty for the largest input rank.");
        if (body.Rank != null && !AdapterCombiner.IsSvd(method))
            throw new Core.UserErrorException($"rank applies to svd and the *_svd methods only, not to {name}; leave it empty.");
    }

    // PATH:SCALE strings as the App jobs take them; the path is resolved inside the adapters folder first.
    internal static string[] Specs(IReadOnlyList<AdapterRef> adapters, WebFolders folders)
    {
        if (adapters.Count == 0) throw new Core.UserErrorException("Select at least one adapter.");
        return adapters.Select(a =>
        {
            if (a is null) throw new Core.UserErrorException("An adapter entry is null; send {\"name\": ..., \"scale\": ...} objects.");
            if (!double.IsFinite(a.Scale)) throw new Core.UserErrorException($"The scale of '{a.Name}' must be a number.");
            return folders.Adapters.Resolve(a.Name) + ":" + a.Scale.ToString("R", CultureInfo.InvariantCulture);
        }).ToArray();
    }

    internal sealed record AdapterRef
    {
        public required string Name { get; init; }
        public double Scale { get; init; } = 1.0;   // combine: the weight
    }

    internal sealed record MergeBody
    {
        public required string Model { get; init; }
        public required AdapterRef[] Adapters { get; init; }
        public required string Out { get; init; }
        public string? Format { get; init; }
        [JsonPropertyName("dtype")] public string? DType { get; init; }
        public bool Safe { get; init; }
        public bool Overwrite { get; init; }
    }

    internal sealed record ExportBody
    {
        public required string Adapter { get; init; }
        public required string Model { get; init; }
        public string? Out { get; init; }
        [JsonPropertyName("dtype")] public string DType { get; init; } = "f32";
        public bool Overwrite { get; init; }
    }

    internal sealed record CombineBody
    {
        public required AdapterRef[] Adapters { get; init; }
        public string Method { get; init; } = "linear";
        public int? Rank { get; init; }
        public double Density { get; init; } = 1.0;
        public string MajoritySignMethod { get; init; } = "total";
        public int Seed { get; init; }
        public required string Out { get; init; }
        public string? Model { get; init; }
        public bool Overwrite { get; init; }
    }

    internal sealed record PerplexityBody
    {
        public required string Model { get; init; }
        public string? Adapter { get; init; }
        public required string File { get; init; }
        public int MaxLength { get; init; }
        public int Stride { get; init; }
        public int MaxTokens { get; init; }
    }
}
