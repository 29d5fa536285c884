// phi3's fused projections: qkv_proj writes rows [q | k | v] and gate_up_proj rows [gate | up] as one (M, W) output
// (one GEMM each, and one LoRA A/B on the fused weight as PEFT has it). These copy the columns out to the separate
// q/k/v and gate/up buffers the attention and SwiGLU kernels read, and gather the gradients back for the backward.
// Unfused models never come here (their Llama path has no extra copies).
namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>Copies the column blocks of <paramref name="src"/> (M, wa + wb + wc) into a (M, wa), b (M, wb), c (M, wc); wc may be 0.</summary>
    internal static void SplitColumns(ReadOnlySpan<float> src, int M, Span<float> a, int wa, Span<float> b, int wb, Span<float> c, int wc)
    {
        int W = wa + wb + wc;
        for (int m = 0; m < M; m++)
        {
            var row = src.Slice(m * W, W);
            row[..wa].CopyTo(a.Slice(m * wa, wa));
            row.Slice(wa, wb).CopyTo(b.Slice(m * wb, wb));
            if (wc > 0) row.Slice(wa + wb, wc).CopyTo(c.Slice(m * wc, wc));
        }
    }

    /// <summary>The inverse of <see cref="SplitColumns"/>: writes [a | b | c] row by row into <paramref name="dst"/> (M, wa + wb + wc).</summary>
    internal static void JoinColumns(ReadOnlySpan<float> a, int wa, ReadOnlySpan<float> b, int wb, ReadOnlySpan<float> c, int wc, int M, Span<float> dst)
    {
        int W = wa + wb + wc;
        for (int m = 0; m < M; m++)
        {
            var row = dst.Slice(m * W, W);
            a.Slice(m * wa, wa).CopyTo(row[..wa]);
            b.Slice(m * wb, wb).CopyTo(row.Slice(wa, wb));
            if (wc > 0) c.Slice(m * wc, wc).CopyTo(row.Slice(wa + wb, wc));
        }
    }
}
