// A frozen weight matrix W [N, K] (out features N, in features K, row-major as torch.nn.Linear stores it),
// prepared once for the matmul kernels. LoRA training never changes base weights, so packing cost is paid once.
//
// This is the reference layout (row-major f32 copy); the fast GEMM replaces the internals with its own panel
// layout while keeping this API.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels;

/// <summary>A frozen [N, K] weight packed for <see cref="MatMul"/>.</summary>
public sealed class PackedWeight
{
    internal readonly float[] Data;   // (N, K) row-major

    /// <summary>Output features (rows of W).</summary>
    public int N { get; }

    /// <summary>Input features (columns of W).</summary>
    public int K { get; }

    private PackedWeight(float[] data, int n, int k)
    {
        Data = data;
        N = n;
        K = k;
    }

    /// <summary>Packs an f32 [N, K] row-major weight.</summary>
    public static PackedWeight FromF32(ReadOnlySpan<float> w, int N, int K)
    {
        CheckSize(w.Length, N, K);
        return new PackedWeight(w.ToArray(), N, K);
    }

    /// <summary>Packs a bf16 [N, K] row-major weight (bit patterns), widening to f32 while packing.</summary>
    public static PackedWeight FromBf16(ReadOnlySpan<ushort> w, int N, int K)
    {
        CheckSize(w.Length, N, K);
        var data = new float[(long)N * K];
        Bf16.ToFloat(w, data);
        return new PackedWeight(data, N, K);
    }

    private static void CheckSize(long length, int N, int K)
    {
        if (N <= 0 || K <= 0 || length != (long)N * K)
            throw new ArgumentException($"Weight of {length} elements does not have shape [{N}, {K}].");
    }
}
