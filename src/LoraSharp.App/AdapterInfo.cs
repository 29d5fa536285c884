// What the adapters list shows about one adapter: where it is, its LoRA settings and how its training ended.
using LoraSharp.Training;

namespace LoraSharp.App;

/// <summary>One adapter in an adapters folder.</summary>
/// <param name="Name">Folder or file name inside the adapters folder.</param>
/// <param name="Path">Full path.</param>
/// <param name="Kind">"peft" (a PEFT folder with weights), "gguf" (a llama.cpp LoRA file), "checkpoint" (NAME.run: a run
/// that has not finished; its checkpoint-N folders are resumable) or "incomplete" (a folder without weights).</param>
/// <param name="Modified">Last write time.</param>
/// <param name="BaseModel">base_model_name_or_path (null when unknown).</param>
/// <param name="Rank">r (null when unknown).</param>
/// <param name="Alpha">lora_alpha (null when unknown).</param>
/// <param name="TargetModules">target_modules as written (empty when unknown).</param>
/// <param name="HasParameters">A training_parameters.json is there (its settings can be copied).</param>
/// <param name="Outcome">How its training ended, from training_log.json (null when there is none).</param>
/// <param name="FinalLoss">The last training loss (from the outcome, else the last logged step).</param>
/// <param name="FinalEvalLoss">The last validation loss, if any.</param>
/// <param name="Problem">Why part of it could not be read (null when all is well).</param>
public sealed record AdapterInfo(
    string Name,
    string Path,
    string Kind,
    DateTimeOffset Modified,
    string? BaseModel,
    int? Rank,
    double? Alpha,
    IReadOnlyList<string> TargetModules,
    bool HasParameters,
    TrainingOutcome? Outcome,
    double? FinalLoss,
    double? FinalEvalLoss,
    string? Problem);
