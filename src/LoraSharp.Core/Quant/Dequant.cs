// Row dequantization by DType: one entry point for every stored element type (plain floats and ggml blocks),
// used by loaders (widening whole tensors row by row) and by the quantized matmul packing (per tile).
// Deliberately row-oriented and allocation-free; no tensor-level or threading logic here.
using System.Runtime.InteropServices;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Quant;

/// <summary>Dispatches row dequantization (to f32) and quantization (from f32) by <see cref="DType"/>.</summary>
public static class Dequant
{
    /// <summary>True when <see cref="DequantizeRow"/> can read <paramref name="type"/>.</summary>
    public static bool CanDequantize(DType type) => type is DType.F32 or DType.F16 or DType.BF16
        or DType.Q8_0 or DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1 or DType.Q4_K or DType.Q5_K or DType.Q6_K or DType.NF4;

    /// <summary>True when <see cref="QuantizeRow"/> can write <paramref name="type"/>.</summary>
    public static bool CanQuantize(DType type) => type is DType.F32 or DType.F16 or DType.BF16 or DType.Q8_0 or DType.Q4_0 or DType.NF4;

    /// <summary>
    /// dst (n floats) = the n elements stored in <paramref name="src"/> (DTypeInfo.ByteCount(type, n) bytes),
    /// vectorized at the active SIMD level and bit-identical to <see cref="DequantizeRowScalar"/>.
    /// </summary>
    public static void DequantizeRow(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case DType.F32: CheckPlain(type, src.Length, dst.Length); MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.F16: CheckPlain(type, src.Length, dst.Length); Fp16.ToFloat(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case DType.BF16: CheckPlain(type, src.Length, dst.Length); Bf16.ToFloat(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case DType.Q8_0: BlockQ8_0.DequantizeRow(src, dst); break;
            case DType.Q4_0: BlockQ4_0.DequantizeRow(src, dst); break;
            case DType.Q4_1: BlockQ4_1.DequantizeRow(src, dst); break;
            case DType.Q5_0: BlockQ5_0.DequantizeRow(src, dst); break;
            case DType.Q5_1: BlockQ5_1.DequantizeRow(src, dst); break;
            case DType.Q4_K: BlockQ4_K.DequantizeRow(src, dst); break;
            case DType.Q5_K: BlockQ5_K.DequantizeRow(src, dst); break;
            case DType.Q6_K: BlockQ6_K.DequantizeRow(src, dst); break;
            case DType.NF4: BlockNF4.DequantizeRow(src, dst); break;
            default: throw new NotSupportedException($"Dequantizing {type} to F32 is not supported.");
        }
    }

    /// <summary>Scalar reference twin of <see cref="DequantizeRow"/>.</summary>
    public static void DequantizeRowScalar(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case DType.F32: CheckPlain(type, src.Length, dst.Length); MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.F16: CheckPlain(type, src.Length, dst.Length); Fp16.ToFloatScalar(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case DType.BF16: CheckPlain(type, src.Length, dst.Length); Bf16.ToFloatScalar(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case DType.Q8_0: BlockQ8_0.DequantizeRowScalar(src, dst); break;
            case DType.Q4_0: BlockQ4_0.DequantizeRowScalar(src, dst); break;
            case DType.Q4_1: BlockQ4_1.DequantizeRowScalar(src, dst); break;
            case DType.Q5_0: BlockQ5_0.DequantizeRowScalar(src, dst); break;
            case DType.Q5_1: BlockQ5_1.DequantizeRowScalar(src, dst); break;
            case DType.Q4_K: BlockQ4_K.DequantizeRowScalar(src, dst); break;
            case DType.Q5_K: BlockQ5_K.DequantizeRowScalar(src, dst); break;
            case DType.Q6_K: BlockQ6_K.DequantizeRowScalar(src, dst); break;
            case DType.NF4: BlockNF4.DequantizeRowScalar(src, dst); break;
            default: throw new NotSupportedException($"Dequantizing {type} to F32 is not supported.");
        }
    }

    /// <summary>
    /// dst (DTypeInfo.ByteCount(type, n) bytes) = src (n floats) stored as <paramref name="type"/>:
    /// F32 copies, F16/BF16 round to nearest even, Q8_0/Q4_0 match ggml/gguf-py's reference quantizers bit for bit.
    /// </summary>
    public static void QuantizeRow(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case DType.F32: CheckPlain(type, dst.Length, src.Length); src.CopyTo(MemoryMarshal.Cast<byte, float>(dst)); break;
            case DType.F16: CheckPlain(type, dst.Length, src.Length); Fp16.FromFloat(src, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case DType.BF16: CheckPlain(type, dst.Length, src.Length); Bf16.FromFloat(src, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case DType.Q8_0: BlockQ8_0.QuantizeRow(src, dst); break;
            case DType.Q4_0: BlockQ4_0.QuantizeRow(src, dst); break;
            case DType.NF4: BlockNF4.QuantizeRow(src, dst); break;
            default: throw new NotSupportedException($"Quantizing F32 to {type} is not supported (F32, F16, BF16, Q8_0, Q4_0, NF4 are).");
        }
    }

    private static void CheckPlain(DType type, int bytes, int elements)
    {
        if ((long)elements * DTypeInfo.BlockBytes(type) != bytes)
            throw new ArgumentException($"{type}: {elements} elements need {(long)elements * DTypeInfo.BlockBytes(type)} bytes, got {bytes}.");
    }
}
