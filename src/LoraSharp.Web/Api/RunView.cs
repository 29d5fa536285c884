// A training snapshot as the browser sees it: model and adapter by name, messages with folder paths hidden.
using LoraSharp.App.Jobs;
using LoraSharp.Training;
using LoraSharp.Web.Library;

namespace LoraSharp.Web.Api;

/// <summary>The JSON of one training run.</summary>
internal sealed record RunView(
    int RunId, string Name, string Model, TrainingStatus Status, bool Active, DateTimeOffset StartedAt, int TotalSteps, int ResumedAtStep,
    IReadOnlyList<StepRecord> History, IReadOnlyList<string> Log, TrainingOutcome? Outcome, double? InitialEvalLoss, string? Adapter, string? Error)
{
    public static RunView? From(TrainingSnapshot? s, WebFolders folders) => s == null ? null : new(
        s.RunId, s.Name, folders.Models.Name(s.Model) ?? Path.GetFileName(s.Model), s.Status, s.IsActive, s.StartedAt, s.TotalSteps, s.ResumedAtStep,
        s.History, s.Log.Select(folders.Redact).ToArray(), s.Outcome, s.InitialEvalLoss, folders.Adapters.Name(s.AdapterFolder),
        s.Error == null ? null : folders.Redact(s.Error));
}
