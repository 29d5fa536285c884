// ggml tensor type codes (ggml.h enum ggml_type) <-> DType. Only the codes this project can read are mapped;
// others are named in errors so the user learns which type the file uses.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Gguf;

/// <summary>Maps ggml type codes to <see cref="DType"/>.</summary>
public static class GgmlTypes
{
    private static readonly string[] s_names =
    [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
        "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64",
        "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0",
    ];

    /// <summary>The DType of ggml type <paramref name="code"/>, or null when unsupported.</summary>
    public static DType? ToDType(uint code) => code switch
    {
        0 => DType.F32,
        1 => DType.F16,
        2 => DType.Q4_0,
        3 => DType.Q4_1,
        6 => DType.Q5_0,
        7 => DType.Q5_1,
        8 => DType.Q8_0,
        12 => DType.Q4_K,
        13 => DType.Q5_K,
        14 => DType.Q6_K,
        24 => DType.I8,
        25 => DType.I16,
        26 => DType.I32,
        27 => DType.I64,
        28 => DType.F64,
        30 => DType.BF16,
        _ => null,
    };

    /// <summary>The ggml type code of <paramref name="type"/>; throws for types GGUF cannot hold.</summary>
    public static uint ToCode(DType type) => type switch
    {
        DType.F32 => 0,
        DType.F16 => 1,
        DType.Q4_0 => 2,
        DType.Q4_1 => 3,
        DType.Q5_0 => 6,
        DType.Q5_1 => 7,
        DType.Q8_0 => 8,
        DType.Q4_K => 12,
        DType.Q5_K => 13,
        DType.Q6_K => 14,
        DType.I8 => 24,
        DType.I16 => 25,
        DType.I32 => 26,
        DType.I64 => 27,
        DType.F64 => 28,
        DType.BF16 => 30,
        _ => throw new ArgumentException($"{type} has no ggml type code; it cannot be written to GGUF."),
    };

    /// <summary>ggml's name of a type code ("Q4_K", "IQ2_XS", ...), or "type N" when unknown.</summary>
    public static string Name(uint code) => code < s_names.Length ? s_names[code] : $"type {code}";
}
