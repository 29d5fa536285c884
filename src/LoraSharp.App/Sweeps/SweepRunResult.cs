// The measured row of one finished sweep run, as kept in sweep_state.json and written to results.csv/results.md.
using System.Text.Json.Serialization;

namespace LoraSharp.App.Sweeps;

/// <summary>What one finished run measured. Null where a value was not measured (no validation set, no metric).</summary>
public sealed record SweepRunResult
{
    /// <summary>The run's name (adapter folder).</summary>
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>Hash of the run's settings and model: a changed config does not reuse an old result.</summary>
    [JsonPropertyName("settings_hash")] public required string SettingsHash { get; init; }
    /// <summary>Axis values as shown.</summary>
    [JsonPropertyName("values")] public required Dictionary<string, string> Values { get; init; }
    /// <summary>"trained" (adapter written, metrics not yet measured) or "finished" (the row is complete).</summary>
    [JsonPropertyName("status")] public string Status { get; init; } = "finished";
    /// <summary>How training ended (finished, max_steps, stop_at_loss, early_stopping).</summary>
    [JsonPropertyName("stop_reason")] public string StopReason { get; init; } = "";
    /// <summary>Optimizer steps.</summary>
    [JsonPropertyName("steps")] public int Steps { get; init; }
    /// <summary>Training loss of the last step.</summary>
    [JsonPropertyName("final_loss")] public double FinalLoss { get; init; }
    /// <summary>Best validation loss (null without a validation set).</summary>
    [JsonPropertyName("best_eval_loss")] public double? BestEvalLoss { get; init; }
    /// <summary>Perplexity of the metric text file with the adapter.</summary>
    [JsonPropertyName("perplexity")] public double? Perplexity { get; init; }
    /// <summary>Share of exact-match questions answered exactly (0..1).</summary>
    [JsonPropertyName("exact_match")] public double? ExactMatch { get; init; }
    /// <summary>Trained tokens per second.</summary>
    [JsonPropertyName("tokens_per_second")] public double TokensPerSecond { get; init; }
    /// <summary>Mean seconds per optimizer step.</summary>
    [JsonPropertyName("step_seconds")] public double StepSeconds { get; init; }
    /// <summary>Peak resident memory of the process during the run, in bytes (null where it cannot be reset per run).</summary>
    [JsonPropertyName("peak_rss_bytes")] public long? PeakRssBytes { get; init; }
    /// <summary>Trained parameters.</summary>
    [JsonPropertyName("trainable_parameters")] public long TrainableParameters { get; init; }
    /// <summary>Bytes of the adapter files (adapter_model.safetensors).</summary>
    [JsonPropertyName("adapter_bytes")] public long AdapterBytes { get; init; }
    /// <summary>Bytes of optimizer state at the end of training.</summary>
    [JsonPropertyName("optimizer_state_bytes")] public long OptimizerStateBytes { get; init; }
    /// <summary>Bytes the frozen base weights held in memory (null in rows recorded before this column existed).</summary>
    [JsonPropertyName("base_weight_bytes")] public long? BaseWeightBytes { get; init; }
}
