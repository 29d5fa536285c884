// One row of `lorasharp inspect`'s tensor table: a tensor kind (layer index replaced by N) with its stored dtypes.
namespace LoraSharp.App;

/// <summary>Tensors of one kind ("model.layers.N.mlp.up_proj.weight"): how many, their stored dtypes, parameters.</summary>
/// <param name="Kind">HF name with the layer index replaced by N.</param>
/// <param name="DTypes">Stored dtypes, comma-separated ("Q4_0" or "F32, Q8_0").</param>
/// <param name="Count">Number of tensors of this kind.</param>
/// <param name="Shape">Shape of the first tensor of the kind, as text.</param>
/// <param name="Parameters">Elements over all tensors of the kind.</param>
public sealed record TensorKindSummary(string Kind, string DTypes, int Count, string Shape, long Parameters);
