// How the loader stores base weights: widened to F32 (default), kept as stored (bf16/f16/quantized views of the
// file where no permutation is needed), or converted to a requested f32/bf16/f16.
namespace LoraSharp.Models.Loading;

/// <summary>Options of <see cref="ModelLoader.Load"/>.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Default options: every tensor widened to F32.</summary>
    public static ModelLoadOptions Default { get; } = new();

    /// <summary>
    /// null or "f32": every tensor becomes F32 (quantized blocks dequantized). "stored": keep each tensor's stored
    /// dtype (quantized GGUF tensors stay quantized). "bf16" / "f16": matrices (2-D and up) are converted to that
    /// dtype; 1-D tensors (norms, biases) become F32, since kernels read them in F32.
    /// </summary>
    public string? BaseDType { get; init; }
}
