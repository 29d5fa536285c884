// The result of a dataset build: the samples plus the counts behind them and a description of the template used
// (for training_prompt.json). It does not batch, shuffle or split; see Batcher and DatasetSplit.
namespace LoraSharp.Training.Data;

/// <summary>Samples built from a dataset file, with statistics.</summary>
/// <param name="Samples">The samples in file order.</param>
/// <param name="Stats">What was read, kept and left out.</param>
/// <param name="Template">How the text was rendered, as text-generation-webui's training_prompt.json records it
/// ("template_type" = "raw_text" / "dataset" / "chat" / "text", and "template_N" entries for format files).</param>
public sealed record BuiltDataset(IReadOnlyList<TrainingSample> Samples, DatasetStats Stats, IReadOnlyDictionary<string, string> Template);
