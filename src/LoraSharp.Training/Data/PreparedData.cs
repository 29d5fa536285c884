// The output of TrainingData.Prepare: training and validation samples with their statistics and the template record.
namespace LoraSharp.Training.Data;

/// <summary>Samples ready for a <see cref="Batcher"/>.</summary>
/// <param name="Kind">The dataset kind used.</param>
/// <param name="Train">Training samples.</param>
/// <param name="Eval">Validation samples (empty when there is no validation).</param>
/// <param name="Stats">Statistics of the training file's build (before any split or packing).</param>
/// <param name="Template">training_prompt.json entries.</param>
public sealed record PreparedData(DatasetKind Kind, IReadOnlyList<TrainingSample> Train, IReadOnlyList<TrainingSample> Eval,
    DatasetStats Stats, IReadOnlyDictionary<string, string> Template);
