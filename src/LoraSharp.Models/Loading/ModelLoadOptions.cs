// How the loader stores base weights (--base-dtype): widened to F32, kept as stored (bf16/f16/quantized views of
// the file where no permutation is needed), or converted to bf16, f16, Q8_0, Q4_0 or NF4 row by row (never
// widening the whole model to f32 on the way). BaseStorageRules.cs has the per-tensor rules.
namespace LoraSharp.Models.Loading;

/// <summary>Options of <see cref="ModelLoader.Load"/>.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Default options: Hugging Face folders widened to F32, GGUF files as stored.</summary>
    public static ModelLoadOptions Default { get; } = new();

    /// <summary>
    /// null or "auto": F32 for Hugging Face folders, the file's own types for GGUF. "f32": every tensor becomes F32
    /// (quantized blocks dequantized). "stored": keep each tensor's stored dtype. "bf16", "f16", "q8_0", "q4_0",
    /// "nf4": matrices (2-D) are converted to that dtype (quantized ones only where rows are whole blocks); 1-D
    /// tensors (norms, biases) become F32, since kernels read them in F32.
    /// </summary>
    public string? BaseDType { get; init; }
}
