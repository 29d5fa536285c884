// The adapters tab's listing: every adapter in the adapters folder with its LoRA settings and final losses, and an
// adapter's training settings for "copy parameters" (file settings as names, so the form can use them).
//   GET /api/adapters                       [{name, kind, base_model, rank, alpha, target_modules, steps, total_steps,
//                                             stop_reason, final_loss, final_eval_loss, has_parameters, problem, modified}]
//   GET /api/adapters/{name}/parameters     {settings}
using System.Text.Json.Nodes;
using LoraSharp.App;
using LoraSharp.Training;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;

namespace LoraSharp.Web.Api;

/// <summary>Maps the adapter listing endpoints.</summary>
internal static class AdapterEndpoints
{
    public static void Map(WebApplication app, WebFolders folders)
    {
        app.MapGet("/api/adapters", () => WebJson.Ok(AdapterCatalog.List(folders.Adapters.Root)
            .Where(a => folders.Adapters.Contains(a.Path))
            .Select(a => new
            {
                a.Name, a.Kind, a.BaseModel, a.Rank, a.Alpha, a.TargetModules, steps = a.Outcome?.Steps, total_steps = a.Outcome?.TotalSteps,
                stop_reason = a.Outcome?.StopReason, a.FinalLoss, a.FinalEvalLoss, a.HasParameters,
                problem = a.Problem == null ? null : folders.Redact(a.Problem), a.Modified,
            })));
        app.MapGet("/api/adapters/{name}/parameters", (string name) =>
        {
            string folder = folders.Adapters.ResolveChild(name);
            string file = Path.Combine(folder, TrainingSettingsFile.ParametersFileName);
            if (!File.Exists(file)) throw new FileNotFoundException($"Adapter '{name}' has no {TrainingSettingsFile.ParametersFileName} to copy settings from.");
            var settings = SettingsPaths.ToClient(TrainingSettingsFile.Load(file), folders);
            return WebJson.Ok(new { settings = JsonNode.Parse(TrainingSettingsFile.ToJson(settings)) });
        });
    }
}
