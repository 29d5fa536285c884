// Element types of stored tensors: plain numbers and the GGML block-quantized formats.
// The block layouts themselves (bytes per block, how to dequantize) live in Quant/; this file only names them.
namespace LoraSharp.Core.Tensors;

/// <summary>Storage type of a tensor's elements. Quantized types store blocks of <see cref="DTypeInfo.BlockSize"/> elements.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    Bool,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4_K,
    Q5_K,
    Q6_K,
    NF4,
}
