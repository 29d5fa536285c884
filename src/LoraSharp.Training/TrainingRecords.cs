// What the training loop reports: one record per optimizer step, one per evaluation, and the run's outcome.
using System.Text.Json.Serialization;

namespace LoraSharp.Training;

/// <summary>One optimizer step, as written to the per-step JSONL log.</summary>
public sealed record StepRecord(
    [property: JsonPropertyName("step")] int Step,
    [property: JsonPropertyName("total_steps")] int TotalSteps,
    [property: JsonPropertyName("epoch")] double Epoch,
    [property: JsonPropertyName("loss")] double Loss,
    [property: JsonPropertyName("eval_loss")] double? EvalLoss,
    [property: JsonPropertyName("learning_rate")] double LearningRate,
    [property: JsonPropertyName("grad_norm")] double GradNorm,
    [property: JsonPropertyName("tokens_per_second")] double TokensPerSecond,
    [property: JsonPropertyName("elapsed_seconds")] double ElapsedSeconds,
    [property: JsonPropertyName("remaining_seconds")] double RemainingSeconds,
    // Preference objectives (dpo, orpo) only, named as TRL logs them; absent from the JSON for sft.
    [property: JsonPropertyName("rewards/chosen"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RewardsChosen = null,
    [property: JsonPropertyName("rewards/rejected"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RewardsRejected = null,
    [property: JsonPropertyName("rewards/margins"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RewardsMargins = null,
    [property: JsonPropertyName("rewards/accuracies"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RewardsAccuracies = null,
    [property: JsonPropertyName("eval_rewards/margins"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? EvalRewardsMargins = null,
    [property: JsonPropertyName("eval_rewards/accuracies"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? EvalRewardsAccuracies = null);

/// <summary>How a run ended.</summary>
public sealed record TrainingOutcome(
    [property: JsonPropertyName("stop_reason")] string StopReason,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("total_steps")] int TotalSteps,
    [property: JsonPropertyName("final_loss")] double FinalLoss,
    [property: JsonPropertyName("final_eval_loss")] double? FinalEvalLoss,
    [property: JsonPropertyName("best_eval_loss")] double? BestEvalLoss,
    [property: JsonPropertyName("train_tokens")] long TrainTokens,
    [property: JsonPropertyName("elapsed_seconds")] double ElapsedSeconds);
