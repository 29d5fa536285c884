// Which dtype the loader gives each tensor for a --base-dtype request. Matrices (2-D) take the requested type;
// vectors (norms, biases) are always F32, since kernels read them in F32. A quantized type needs rows that are a
// whole number of its blocks: a matrix whose rows are not (stories260K's down_proj rows of 172) stays F32, as
// llama-quantize leaves such tensors, and the loader says so in LoadedModel.Notes.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Loading;

/// <summary>Parses --base-dtype values and picks each tensor's dtype.</summary>
public static class BaseStorageRules
{
    /// <summary>The accepted spellings, for help texts and errors.</summary>
    public const string Choices = "f32, bf16, f16, q8_0, q4_0, nf4, stored";

    /// <summary>Parses a --base-dtype value (null or empty: <see cref="BaseStorage.Auto"/>).</summary>
    public static BaseStorage Parse(string? s) => s?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => BaseStorage.Auto,
        "f32" or "float32" => BaseStorage.F32,
        "stored" or "keep" => BaseStorage.Stored,
        "bf16" or "bfloat16" => BaseStorage.BF16,
        "f16" or "float16" or "fp16" => BaseStorage.F16,
        "q8_0" or "int8" or "8bit" => BaseStorage.Q8_0,
        "q4_0" => BaseStorage.Q4_0,
        "nf4" => BaseStorage.NF4,
        _ => throw new ArgumentException($"Base dtype '{s}' is not one of {Choices} (or auto)."),
    };

    /// <summary>
    /// <see cref="Parse"/> for a value the user gave (--base-dtype, base_dtype): a bad one is a UserErrorException.
    /// (Parse itself throws ArgumentException, which the settings schema's choice check turns into its own message.)
    /// </summary>
    public static BaseStorage ParseUserValue(string? s)
    {
        try { return Parse(s); }
        catch (ArgumentException e) { throw new Core.UserErrorException($"base_dtype: {e.Message}", e); }
    }

    /// <summary>
    /// The dtype tensor <paramref name="t"/> is loaded as under <paramref name="mode"/>. Auto keeps a bf16 or f16
    /// matrix as stored (widening is exact, so it would only double the bytes: the matmuls decode it tile by tile)
    /// and gives F32 to everything else; the GGUF loader turns Auto into Stored first.
    /// <paramref name="fallback"/> explains a matrix kept in F32 instead.
    /// </summary>
    public static DType Target(BaseStorage mode, Tensor t, out string? fallback)
    {
        fallback = null;
        if (mode == BaseStorage.Stored) return t.DType;
        if (mode == BaseStorage.Auto && t.Shape.Length == 2 && t.DType is DType.BF16 or DType.F16) return t.DType;
        if (mode is BaseStorage.Auto or BaseStorage.F32 || t.Shape.Length < 2) return DType.F32;
        var wanted = mode switch
        {
            BaseStorage.BF16 => DType.BF16,
            BaseStorage.F16 => DType.F16,
            BaseStorage.Q8_0 => DType.Q8_0,
            BaseStorage.Q4_0 => DType.Q4_0,
            _ => DType.NF4,
        };
        int block = DTypeInfo.BlockSize(wanted), row = t.Shape[^1];
        if (row % block == 0) return wanted;
        fallback = $"kept as F32, not {wanted}: its rows of {row} are not a whole number of {wanted} blocks of {block}";
        return DType.F32;
    }
}
