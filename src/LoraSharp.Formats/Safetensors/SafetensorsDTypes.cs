// safetensors dtype strings <-> DType. The format's names are upper case ("F32", "BF16", "I64", "BOOL").
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Safetensors;

/// <summary>Maps safetensors dtype names to <see cref="DType"/> and back.</summary>
public static class SafetensorsDTypes
{
    /// <summary>The dtype names this reader accepts.</summary>
    public static IReadOnlyList<string> Supported { get; } = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"];

    /// <summary>The DType for a safetensors name, or null when it is not supported.</summary>
    public static DType? Parse(string name) => name switch
    {
        "F64" => DType.F64,
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        "I64" => DType.I64,
        "I32" => DType.I32,
        "I16" => DType.I16,
        "I8" => DType.I8,
        "U8" => DType.U8,
        "BOOL" => DType.Bool,
        _ => null,
    };

    /// <summary>The safetensors name of <paramref name="type"/>; throws for block-quantized types, which safetensors cannot hold.</summary>
    public static string Name(DType type) => type switch
    {
        DType.F64 => "F64",
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.I64 => "I64",
        DType.I32 => "I32",
        DType.I16 => "I16",
        DType.I8 => "I8",
        DType.U8 => "U8",
        DType.Bool => "BOOL",
        _ => throw new ArgumentException($"{type} tensors cannot be stored in safetensors (supported: {string.Join(", ", Supported)}); dequantize first or write GGUF."),
    };
}
