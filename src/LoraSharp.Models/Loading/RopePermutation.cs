// The q/k row permutation between GGUF/Meta (rotary pairs interleaved: rows 2j, 2j+1 of a head) and Hugging Face
// (rotate_half: rows j, j + HS/2). Within each head of HS rows, GGUF row 2j+c is HF row c*(HS/2)+j, which is
// transformers' convert_llama_weights_to_hf permute: w.view(NH, HS/2, 2, C).transpose(1, 2).reshape(NH*HS, C).
// Works on whole rows of bytes, so it applies to any dtype, quantized blocks included (a row is whole blocks),
// and to 1-D biases (one element per row). Copies into a new owned tensor; never permutes in place.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Loading;

/// <summary>Permutes q/k projection rows between the GGUF (interleaved) and HF (half-split) rotary layouts.</summary>
public static class RopePermutation
{
    /// <summary>HF row of GGUF row <paramref name="row"/> for head size <paramref name="headDim"/>.</summary>
    public static int GgufToHfRow(int row, int headDim)
    {
        int h = row / headDim, r = row % headDim;
        return h * headDim + (r % 2) * (headDim / 2) + r / 2;
    }

    /// <summary>A new tensor with GGUF-interleaved rows of <paramref name="src"/> in HF order. Shape [NH*HS, ...] or [NH*HS].</summary>
    public static Tensor GgufToHf(Tensor src, int nHeads) => Permute(src, nHeads, toHf: true);

    /// <summary>The inverse of <see cref="GgufToHf"/>: HF rows to GGUF's interleaved order (for export).</summary>
    public static Tensor HfToGguf(Tensor src, int nHeads) => Permute(src, nHeads, toHf: false);

    private static unsafe Tensor Permute(Tensor src, int nHeads, bool toHf)
    {
        if (src.Shape.Length is < 1 or > 2) throw new ArgumentException($"Rotary permutation needs a 1-D or 2-D tensor, got shape {src.ShapeText}.");
        int rows = src.Shape[0];
        if (nHeads <= 0 || rows % nHeads != 0 || rows / nHeads % 2 != 0)
            throw new ArgumentException($"Rotary permutation: {rows} rows do not split into {nHeads} heads of an even size (shape {src.ShapeText}).");
        int hs = rows / nHeads;
        long rowBytes = src.ByteLength / rows;
        var dst = Tensor.Zeros(src.DType, src.Shape);
        byte* s = (byte*)src.Pointer, d = (byte*)dst.Pointer;
        for (int g = 0; g < rows; g++)
        {
            int hf = GgufToHfRow(g, hs);
            long from = toHf ? g : hf, to = toHf ? hf : g;
            Buffer.MemoryCopy(s + from * rowBytes, d + to * rowBytes, rowBytes, rowBytes);
        }
        return dst;
    }
}
