// A frozen weight matrix W [N, K] (out features N, in features K, row-major as torch.nn.Linear stores it),
// prepared once for the matmul kernels. LoRA training never changes base weights, so preparing is paid once.
//
// Two kinds of storage behind one type (Gemm/PanelSource.cs is the seam):
// - f32 (FromF32, FromBf16): 32-row panels of W stored k-major, [ceil(N/32)][K][32] floats, 64-byte aligned, so
//   the forward microkernel reads 32 consecutive out features per k with two aligned Vector512 loads.
//   BackwardInput needs 32-column panels ([ceil(K/32)][N][32]); those are built from the forward panels on the
//   first BackwardInput call. Memory: ~1x the f32 weight for inference, ~2x once used in training.
// - stored (FromStored, ViewStored, FromNf4DoubleQuant: QLoRA): W stays in its compressed element type (ggml
//   quant blocks, NF4, f16, bf16) and the GEMM decodes [kc x 32] tiles while it runs, in both orientations.
//   Memory: the stored size (0.14x the f32 weight for Q4_0 or NF4), nothing more in training.
using LoraSharp.Core.Kernels.Gemm;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels;

/// <summary>A frozen [N, K] weight packed for <see cref="MatMul"/>.</summary>
public sealed class PackedWeight
{
    internal PanelSource Source { get; }

    /// <summary>Output features (rows of W).</summary>
    public int N => Source.N;

    /// <summary>Input features (columns of W).</summary>
    public int K => Source.K;

    /// <summary>How W is held: F32 for packed panels, else the stored element type (NF4 for double-quantized NF4 too).</summary>
    public DType StorageDType { get; }

    /// <summary>True for NF4 with double-quantized block scales.</summary>
    public bool DoubleQuantized { get; }

    /// <summary>Bytes of memory held now (f32 backward panels count once built; a borrowed tensor counts 0).</summary>
    public long Bytes => Source.Bytes;

    private PackedWeight(PanelSource source, DType storage, bool doubleQuantized = false)
    {
        Source = source;
        StorageDType = storage;
        DoubleQuantized = doubleQuantized;
    }

    /// <summary>Packs an f32 [N, K] row-major weight.</summary>
    /// <param name="w">W [N, K] row-major.</param>
    /// <param name="N">Out features.</param>
    /// <param name="K">In features.</param>
    public static PackedWeight FromF32(ReadOnlySpan<float> w, int N, int K)
    {
        CheckSize(w.Length, N, K);
        return new PackedWeight(F32PanelSource.FromF32(w, N, K), DType.F32);
    }

    /// <summary>Packs a bf16 [N, K] row-major weight (bit patterns), widening to f32 panels while packing.</summary>
    /// <param name="w">W [N, K] row-major, bf16 bit patterns.</param>
    /// <param name="N">Out features.</param>
    /// <param name="K">In features.</param>
    public static PackedWeight FromBf16(ReadOnlySpan<ushort> w, int N, int K)
    {
        CheckSize(w.Length, N, K);
        return new PackedWeight(F32PanelSource.FromBf16(w, N, K), DType.F32);
    }

    /// <summary>
    /// Keeps a private copy of <paramref name="w"/> [N, K] in its stored element type (any type Dequant reads except
    /// F32, which <see cref="FromF32"/> packs) and decodes it inside the matmuls.
    /// </summary>
    public static PackedWeight FromStored(Tensor w)
    {
        CheckStored(w);
        return new PackedWeight(new StoredPanelSource(w.CopyToHugePages(), owned: true), w.DType);
    }

    /// <summary>
    /// Like <see cref="FromStored"/> but reads <paramref name="w"/> in place: the caller owns it and keeps it alive
    /// as long as this weight is used (after it is disposed, a matmul throws ObjectDisposedException).
    /// For a tied embedding that the token lookup reads too.
    /// </summary>
    public static PackedWeight ViewStored(Tensor w)
    {
        CheckStored(w);
        return new PackedWeight(new StoredPanelSource(w, owned: false), w.DType);
    }

    /// <summary>Re-encodes an NF4 [N, K] tensor with double-quantized block scales (4.127 instead of 4.5 bits a weight).</summary>
    public static PackedWeight FromNf4DoubleQuant(Tensor nf4)
    {
        CheckStored(nf4);
        if (nf4.DType != DType.NF4) throw new ArgumentException($"Double quantization applies to NF4 weights, not {nf4.DType}.", nameof(nf4));
        return new PackedWeight(new Nf4DoubleQuantSource(nf4), DType.NF4, doubleQuantized: true);
    }

    /// <summary>
    /// x[i, :] = W[ids[i], :] for every id: the embedding lookup of a model whose tied output projection holds the
    /// only copy of the embedding. <paramref name="x"/> holds ids.Length rows of K floats.
    /// </summary>
    public unsafe void GatherRows(ReadOnlySpan<int> ids, Span<float> x)
    {
        int K = this.K;
        if (x.Length < (long)ids.Length * K)
            throw new ArgumentException($"GatherRows: {ids.Length} rows of {K} need {(long)ids.Length * K} floats, the output has {x.Length}.");
        fixed (float* dst = x)
            for (int i = 0; i < ids.Length; i++)
            {
                if ((uint)ids[i] >= (uint)N) throw new ArgumentOutOfRangeException(nameof(ids), ids[i], $"row id outside the weight's {N} rows");
                Source.Row(ids[i], dst + (long)i * K);
            }
    }

    /// <summary>
    /// W[n, :] += <paramref name="delta"/> in place (K floats). Only f32 panels (<see cref="StorageDType"/> F32) can be
    /// changed: a stored (quantized, f16, bf16) weight would need re-encoding, so it throws InvalidOperationException.
    /// For initialisations that move part of a frozen weight into an adapter (PiSSA, OLoRA) without a second copy.
    /// </summary>
    public void AddToRow(int n, ReadOnlySpan<float> delta)
    {
        if (Source is not F32PanelSource f32)
            throw new InvalidOperationException($"AddToRow: the weight is held as {StorageDType}; only f32 panels can be changed in place.");
        if ((uint)n >= (uint)N) throw new ArgumentOutOfRangeException(nameof(n), n, $"row outside the weight's {N} rows");
        if (delta.Length != K) throw new ArgumentException($"AddToRow: the row has {K} columns, the delta {delta.Length}.", nameof(delta));
        f32.AddToRow(n, delta);
    }

    private static void CheckStored(Tensor w)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (w.Shape.Length != 2 || w.Shape[0] <= 0 || w.Shape[1] <= 0)
            throw new ArgumentException($"A stored weight must be a 2-D [N, K] tensor with N and K positive, got {w.ShapeText}.", nameof(w));
        if (w.DType == DType.F32 || !Dequant.CanDequantize(w.DType))
            throw new ArgumentException($"Weight of type {w.DType} cannot be kept stored: use FromF32 for F32; " +
                                        "stored types are F16, BF16, NF4 and the ggml quant types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.", nameof(w));
    }

    private static void CheckSize(long length, int N, int K)
    {
        if (N <= 0 || K <= 0 || length != (long)N * K)
            throw new ArgumentException($"Weight of {length} elements does not have shape [N, K] = [{N}, {K}] ({(long)N * K} elements, N and K positive).");
    }
}
