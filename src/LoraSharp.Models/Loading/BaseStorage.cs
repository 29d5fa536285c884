// The element type base weights are held in (--base-dtype): what the user may ask for. BaseStorageRules.cs maps
// a request and a stored tensor to the dtype the loader produces.
namespace LoraSharp.Models.Loading;

/// <summary>How frozen base weights are kept in memory.</summary>
public enum BaseStorage
{
    /// <summary>Hugging Face folders: F32; GGUF files: as stored (quantized stays quantized).</summary>
    Auto,
    /// <summary>Every tensor widened to f32.</summary>
    F32,
    /// <summary>Matrices as bf16 (2 bytes a weight), decoded inside the matmuls.</summary>
    BF16,
    /// <summary>Matrices as f16.</summary>
    F16,
    /// <summary>Matrices as ggml Q8_0 (8.5 bits a weight).</summary>
    Q8_0,
    /// <summary>Matrices as ggml Q4_0 (4.5 bits a weight).</summary>
    Q4_0,
    /// <summary>Matrices as NF4 (QLoRA's 4-bit NormalFloat, 4.5 bits a weight; 4.127 with double quantization).</summary>
    NF4,
    /// <summary>Every tensor in the dtype the file stores it in.</summary>
    Stored,
}
