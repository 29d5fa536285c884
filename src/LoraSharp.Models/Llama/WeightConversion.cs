// Turns a stored tensor (F32, F16, BF16) into f32 values or a packed weight. Quantized storage is handled by
// the QLoRA path; here it is refused with a clear message until that lands.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

internal static class WeightConversion
{
    /// <summary>The tensor's values as a new f32 array.</summary>
    public static float[] ToF32(Tensor t, string name)
    {
        var result = new float[checked((int)t.ElementCount)];
        switch (t.DType)
        {
            case DType.F32: t.Floats.CopyTo(result); break;
            case DType.BF16: Bf16.ToFloat(t.AsSpan<ushort>(), result); break;
            case DType.F16: Fp16.ToFloat(t.AsSpan<ushort>(), result); break;
            default: throw new NotSupportedException($"Tensor '{name}' is stored as {t.DType}, which cannot be widened to f32 here.");
        }
        return result;
    }

    /// <summary>Packs a [N, K] weight for the matmuls, keeping bf16 storage compact until packing.</summary>
    public static PackedWeight Pack(Tensor t, string name, int N, int K)
    {
        if (t.Shape.Length != 2 || t.Shape[0] != N || t.Shape[1] != K)
            throw new InvalidDataException($"Tensor '{name}' has shape {t.ShapeText} but the config implies [{N}, {K}].");
        return t.DType switch
        {
            DType.F32 => PackedWeight.FromF32(t.Floats, N, K),
            DType.BF16 => PackedWeight.FromBf16(t.AsSpan<ushort>(), N, K),
            _ => PackedWeight.FromF32(ToF32(t, name), N, K),
        };
    }
}
