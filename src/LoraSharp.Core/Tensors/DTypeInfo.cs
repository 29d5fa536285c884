// Sizes of each DType: elements per block and bytes per block (1 element per block for plain types).
// Block sizes follow ggml-common.h (QK4_0 = 32, QK_K = 256, ...); NF4 follows bitsandbytes (block 64, f32 absmax).
namespace LoraSharp.Core.Tensors;

/// <summary>Block geometry of every <see cref="DType"/>.</summary>
public static class DTypeInfo
{
    /// <summary>Elements per block: 1 for plain types.</summary>
    public static int BlockSize(DType t) => t switch
    {
        DType.Q8_0 or DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1 => 32,
        DType.Q4_K or DType.Q5_K or DType.Q6_K => 256,
        DType.NF4 => 64,
        _ => 1,
    };

    /// <summary>Bytes per block (per element for plain types).</summary>
    public static int BlockBytes(DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.I8 or DType.U8 or DType.Bool => 1,
        DType.Q8_0 => 2 + 32,          // f16 d, 32 x i8
        DType.Q4_0 => 2 + 16,          // f16 d, 32 x 4-bit
        DType.Q4_1 => 2 + 2 + 16,      // f16 d, f16 m, 32 x 4-bit
        DType.Q5_0 => 2 + 4 + 16,      // f16 d, 32 high bits, 32 x 4-bit
        DType.Q5_1 => 2 + 2 + 4 + 16,  // f16 d, f16 m, 32 high bits, 32 x 4-bit
        DType.Q4_K => 2 + 2 + 12 + 128,
        DType.Q5_K => 2 + 2 + 12 + 32 + 128,
        DType.Q6_K => 128 + 64 + 16 + 2,
        DType.NF4 => 4 + 32,           // f32 absmax, 64 x 4-bit
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>True for block-quantized types.</summary>
    public static bool IsQuantized(DType t) => BlockSize(t) > 1;

    /// <summary>
    /// Bytes needed for <paramref name="elements"/> elements. Throws when a quantized count is not a whole number of blocks.
    /// </summary>
    public static long ByteCount(DType t, long elements)
    {
        int bs = BlockSize(t);
        if (elements % bs != 0)
            throw new ArgumentException($"{elements} elements is not a whole number of {t} blocks of {bs}.", nameof(elements));
        return checked(elements / bs * BlockBytes(t));
    }
}
