// One PEFT modules_to_save matrix held by an adapter: embed_tokens or lm_head, trained in full, which replaces the
// base's matrix (no scale, no delta) wherever the adapter applies. Not here: reading and writing (LoraWeights).
namespace LoraSharp.Training.Adapters;

/// <summary>A full replacement matrix saved in an adapter (PEFT modules_to_save).</summary>
/// <param name="Module">embed_tokens or lm_head.</param>
/// <param name="Rows">Rows (the vocabulary).</param>
/// <param name="Columns">Columns (hidden size).</param>
/// <param name="Values">[Rows, Columns] row-major.</param>
public sealed record SavedModuleWeights(string Module, int Rows, int Columns, float[] Values)
{
    /// <summary>The Hugging Face weight it replaces (model.embed_tokens.weight, lm_head.weight).</summary>
    public string WeightName => Models.Llama.LlamaModel.ModuleWeightName(Module);
}
