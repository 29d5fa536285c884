// Turns a loaded tensor into what the model holds: f32 values (vectors, trainable weights) or a packed frozen
// weight. F32 matrices are packed into f32 panels; any other stored type (bf16, f16, NF4, ggml quant blocks) stays
// in that type and is decoded inside the matmuls (QLoRA), optionally with NF4's block scales double-quantized.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

internal static class WeightConversion
{
    /// <summary>The tensor's values as a new f32 array (any dtype Dequant reads).</summary>
    public static float[] ToF32(Tensor t, string name)
    {
        if (!Dequant.CanDequantize(t.DType))
            throw new Core.UserErrorException($"Tensor '{name}' is stored as {t.DType}, which cannot be widened to f32.");
        if (t.DType == DType.F32) return t.Floats.ToArray();
        using var widened = Loading.ModelLoader.ConvertRows(t, DType.F32);
        return widened.Floats.ToArray();
    }

    /// <summary>Packs a [N, K] weight for the matmuls: f32 panels for F32, the stored type decoded on the fly otherwise.</summary>
    /// <param name="widen">Pack f32 panels whatever the stored type (full fine-tuning, which trains f32 weights).</param>
    /// <param name="doubleQuant">Re-encode NF4 block scales in 8 bits (QLoRA's double quantization).</param>
    /// <param name="consume">The caller gives <paramref name="t"/> up: once packed (every type is copied, a stored one
    /// onto huge pages) it is consumed (<see cref="Tensor.Consume"/>), so loading holds one tensor twice at most.</param>
    public static PackedWeight Pack(Tensor t, string name, int N, int K, bool widen = false, bool doubleQuant = false, bool consume = false)
    {
        if (t.Shape.Length != 2 || t.Shape[0] != N || t.Shape[1] != K)
            throw new Core.UserErrorException($"Tensor '{name}' has shape {t.ShapeText} but the config implies [{N}, {K}].");
        var packed = PackOnly(t, name, N, K, widen, doubleQuant);
        if (consume) t.Consume();   // a view of a mapped file drops its pages: loading never holds the file beside the weights
        return packed;
    }

    private static PackedWeight PackOnly(Tensor t, string name, int N, int K, bool widen, bool doubleQuant)
    {
        if (t.DType == DType.F32) return PackedWeight.FromF32(t.Floats, N, K);
        if (widen) return PackedWeight.FromF32(ToF32(t, name), N, K);
        if (!Dequant.CanDequantize(t.DType))
            throw new Core.UserErrorException($"Tensor '{name}' is stored as {t.DType}, which LoraSharp cannot decode; supported: F32, F16, BF16, NF4, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.");
        if (doubleQuant && t.DType == DType.NF4) return PackedWeight.FromNf4DoubleQuant(t);
        return PackedWeight.FromStored(t);   // one copy, onto huge pages; the caller's Consume then drops the source
    }
}
