// A frozen weight W [N, K] kept in its stored element type (ggml quant blocks, NF4, f16, bf16), row-major as the
// file holds it: ByteCount(type, K) bytes a row. The GEMM decodes it tile by tile (DecodedPanelSource), so the
// memory held is the stored size, e.g. 4.5 bits a weight for Q4_0 or NF4.
// The tensor is either owned (a private copy) or borrowed from a caller that keeps it alive (a tied embedding
// that the lookup reads too); Tensor.Pointer throws once it is disposed, so a borrowed source can never read
// freed memory.
// Not here: decoding (Quant/Dequant.cs), double-quantized NF4 (Nf4DoubleQuantSource.cs).
using System.Runtime.Intrinsics.X86;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>W [N, K] in a stored dtype, decoded on demand.</summary>
internal sealed unsafe class StoredPanelSource : DecodedPanelSource
{
    private readonly Tensor _storage;
    private readonly long _rowBytes;
    private readonly bool _owned;

    [ThreadStatic] private static AlignedBuffer? t_staged;   // per thread: x rearranged for the fused dot

    public StoredPanelSource(Tensor storage, bool owned)
        : base(storage.Shape[0], storage.Shape[1], DTypeInfo.BlockSize(storage.DType))
    {
        _storage = storage;
        _owned = owned;
        _rowBytes = DTypeInfo.ByteCount(storage.DType, storage.Shape[1]);
    }

    /// <summary>The element type of the stored rows.</summary>
    public DType DType => _storage.DType;

    /// <summary>Bytes held: the stored size when owned, 0 when borrowed (counted by its owner).</summary>
    public override long Bytes => _owned ? _storage.ByteLength : 0;

    // 4 KiB ahead measured best of 2, 4, 8 and 16 KiB (8+ fell back towards no prefetch).
    private const int PrefetchAhead = 4096;

    public override void DotRows(int n0, int n1, float* x, float* y)
    {
        var type = _storage.DType;
        if (!DecodedDot.Supports(type, Simd.Level))
        {
            base.DotRows(n0, n1, x, y);
            return;
        }
        byte* row = (byte*)_storage.Pointer + n0 * _rowBytes;
        float* xs = DecodedDot.Stage(type, x, K, (t_staged ??= new AlignedBuffer()).Ensure(K));
        byte* end = (byte*)_storage.Pointer + n1 * _rowBytes;
        bool prefetch = Sse.IsSupported;
        for (int n = n0; n < n1; n++, row += _rowBytes)
        {
            // Touch the bytes PrefetchAhead past this row before multiplying it: the dot product of one row is a
            // short dependent chain, and the hardware prefetcher alone kept too few lines in flight (decode at shape
            // b, interleaved runs: bf16 52-57 -> 75-78 tokens/s, Q8_0 +25-40%, NF4 +22%, Q4_0, compute-bound, even).
            if (prefetch)
            {
                byte* ahead = row + PrefetchAhead;
                for (long l = 0, lim = Math.Min(_rowBytes, end - ahead); l < lim; l += 64) Sse.Prefetch0(ahead + l);
            }
            y[n - n0] = DecodedDot.Dot(type, row, xs, K);
        }
    }

    // Q4_0 only: the integer path made Q8_0 decode slower (0.80-0.86x of the float path in the same bench runs: Q8_0
    // decode is bound by memory bandwidth, and quantizing the activations adds work); Q4_0 gained 1.3-1.6x.
    public override bool SupportsQ8Dot => _storage.DType == DType.Q4_0;

    /// <summary>
    /// Rows of W a pass of the grouped Q4_0 kernel (Q8Dot.DotRowsQ4_0G512): 4, 2 or 1; 0 takes the one-row loop.
    /// A benchmark switch (old and new loops alternating in one process); results are the same bits either way.
    /// Four: one decode token's products streamed from memory (shape b, 76 MB) on two threads, the decode setting,
    /// ran 1.08-1.10x faster than with the one-row loop with four rows a pass, 1.05-1.06x with two (on one thread
    /// two was ahead, 1.06-1.23x against 1.01-1.20x; in cache four was 0-5% ahead).
    /// </summary>
    internal static int GroupedRows = 4;

    /// <summary>Whether the other cases take two rows a pass (Q8Dot.Dot2) when GroupedRows is above 1; a benchmark switch like it.</summary>
    internal static bool PairedRows = true;

    private int _scalesFinite;   // Q4_0: 0 not yet checked, 1 no f16 scale is infinite or NaN, -1 some is

    private bool ScalesFinite()
    {
        if (_scalesFinite == 0)   // once per weight (frozen bytes); a race only repeats the scan
            _scalesFinite = Q8Dot.ScalesFinite((byte*)_storage.Pointer, N * (long)(K / Q8Row.Block)) ? 1 : -1;
        return _scalesFinite > 0;
    }

    public override void DotRowsQ8(int n0, int n1, in Q8Row x, float* y, SimdLevel level)
    {
        var type = _storage.DType;
        int blocks = K / Q8Row.Block;
        byte* row = (byte*)_storage.Pointer + n0 * _rowBytes;
        byte* end = (byte*)_storage.Pointer + n1 * _rowBytes;
        bool prefetch = Sse.IsSupported;
        int rows = GroupedRows;
        if (type == DType.Q4_0 && rows > 0 && Q8Dot.GroupedApplies(level, x) && ScalesFinite())
        {
            long tensorBytes = N * _rowBytes, readBytes = Q8Dot.GroupReadBytes(blocks);
            for (int m = n0; m < n1; m += rows, row += rows * _rowBytes)
            {
                if (m + rows > n1) rows = 1;   // the last rows one at a time
                // A last partial group read whole where its bytes past the pass's last row stay inside W (all but
                // the tensor's last row or two).
                bool overread = (m + rows - 1) * _rowBytes + readBytes <= tensorBytes;
                if (prefetch)   // as in DotRows, the pass's rows
                {
                    byte* ahead = row + PrefetchAhead;
                    for (long l = 0, lim = Math.Min(rows * _rowBytes, end - ahead); l < lim; l += 64) Sse.Prefetch0(ahead + l);
                }
                Q8Dot.DotRowsQ4_0G512(row, _rowBytes, rows, x, blocks, y + (m - n0), overread);
            }
            return;
        }
        int n = n0;
        if (rows > 1 && PairedRows)   // two rows a pass in the one-row layout (Q8_0; Q4_0 without AVX-512 VBMI)
            for (; n + 2 <= n1; n += 2, row += 2 * _rowBytes)
            {
                if (prefetch)
                {
                    byte* ahead = row + PrefetchAhead;
                    for (long l = 0, lim = Math.Min(2 * _rowBytes, end - ahead); l < lim; l += 64) Sse.Prefetch0(ahead + l);
                }
                Q8Dot.Dot2(type, row, _rowBytes, x, blocks, y + (n - n0), level);
            }
        for (; n < n1; n++, row += _rowBytes)
        {
            if (prefetch)   // as in DotRows
            {
                byte* ahead = row + PrefetchAhead;
                for (long l = 0, lim = Math.Min(_rowBytes, end - ahead); l < lim; l += 64) Sse.Prefetch0(ahead + l);
            }
            y[n - n0] = Q8Dot.Dot(type, row, x, blocks, level);
        }
    }

    public override void DequantizeRow(int n, int k0, int count, float* dst)
    {
        var type = _storage.DType;
        long from = n * _rowBytes + DTypeInfo.ByteCount(type, k0);
        int bytes = (int)DTypeInfo.ByteCount(type, count);
        Dequant.DequantizeRow(type, new ReadOnlySpan<byte>((byte*)_storage.Pointer + from, bytes), new Span<float>(dst, count));
    }
}
