// A frozen weight matrix W [N, K] (out features N, in features K, row-major as torch.nn.Linear stores it),
// prepared once for the matmul kernels. LoRA training never changes base weights, so packing is paid once.
//
// Layout (Gemm/F32PanelSource.cs): 32-row panels of W stored k-major, [ceil(N/32)][K][32] floats, 64-byte
// aligned, so the forward microkernel reads 32 consecutive out features per k with two aligned Vector512 loads.
// BackwardInput needs 32-column panels of W ([ceil(K/32)][N][32]); those are built from the forward panels on the
// first BackwardInput call. Memory: ~1x the f32 weight for inference, ~2x once used in training.
// bf16 weights are widened row by row while packing.
// Not here: quantized weights. A later FromQuantized(bytes, DType, N, K) adds a PanelSource whose Pack dequantizes
// one [kc x 32] tile at a time inside the GEMM; nothing else has to change.
using LoraSharp.Core.Kernels.Gemm;

namespace LoraSharp.Core.Kernels;

/// <summary>A frozen [N, K] weight packed for <see cref="MatMul"/>.</summary>
public sealed class PackedWeight
{
    internal PanelSource Source { get; }

    /// <summary>Output features (rows of W).</summary>
    public int N => Source.N;

    /// <summary>Input features (columns of W).</summary>
    public int K => Source.K;

    private PackedWeight(PanelSource source) => Source = source;

    /// <summary>Packs an f32 [N, K] row-major weight.</summary>
    /// <param name="w">W [N, K] row-major.</param>
    /// <param name="N">Out features.</param>
    /// <param name="K">In features.</param>
    public static PackedWeight FromF32(ReadOnlySpan<float> w, int N, int K)
    {
        CheckSize(w.Length, N, K);
        return new PackedWeight(F32PanelSource.FromF32(w, N, K));
    }

    /// <summary>Packs a bf16 [N, K] row-major weight (bit patterns), widening to f32 while packing.</summary>
    /// <param name="w">W [N, K] row-major, bf16 bit patterns.</param>
    /// <param name="N">Out features.</param>
    /// <param name="K">In features.</param>
    public static PackedWeight FromBf16(ReadOnlySpan<ushort> w, int N, int K)
    {
        CheckSize(w.Length, N, K);
        return new PackedWeight(F32PanelSource.FromBf16(w, N, K));
    }

    private static void CheckSize(long length, int N, int K)
    {
        if (N <= 0 || K <= 0 || length != (long)N * K)
            throw new ArgumentException($"Weight of {length} elements does not have shape [N, K] = [{N}, {K}] ({(long)N * K} elements, N and K positive).");
    }
}
