// Token embedding lookup (legend: N rows = B*T tokens, C channels, V vocabulary; table [V, C] = embed_tokens):
//   Forward   out[n, :] = table[ids[n], :]
//   Backward  dTable[ids[n], :] += dOut[n, :]   for every n, in row order
// The backward is split over column ranges, not rows: two rows with the same id would otherwise race, and
// each column is summed over rows in the same order for any thread count, so results are identical.
// A table kept compressed (QLoRA: bf16, f16, NF4, ggml blocks) is decoded row by row (ForwardStored); it is frozen,
// so it has no backward.
// Not here: padding_idx, max_norm, tied output heads (the caller passes the same table to both).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>Embedding lookup, forward and backward.</summary>
public static unsafe class Embedding
{
    /// <summary>Copies row ids[n] of the table into row n of the output.</summary>
    /// <param name="ids">Token ids [N], each in [0, V).</param>
    /// <param name="table">Embedding table [V, C].</param>
    /// <param name="output">Output [N, C].</param>
    /// <param name="N">Tokens.</param>
    /// <param name="C">Channels.</param>
    public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> table, Span<float> output, int N, int C)
    {
        Check(ids, table.Length, "table", output.Length, "output", N, C);
        for (int n = 0; n < N; n++) table.Slice(ids[n] * C, C).CopyTo(output.Slice(n * C, C));
    }

    /// <summary>Decodes row ids[n] of a table stored as <paramref name="type"/> (bf16, f16, NF4, ggml blocks) into row n.</summary>
    /// <param name="ids">Token ids [N], each in [0, V).</param>
    /// <param name="type">Element type of the table.</param>
    /// <param name="table">Embedding table [V, C] as stored: V rows of DTypeInfo.ByteCount(type, C) bytes.</param>
    /// <param name="output">Output [N, C].</param>
    /// <param name="N">Tokens.</param>
    /// <param name="C">Channels.</param>
    public static void ForwardStored(ReadOnlySpan<int> ids, DType type, ReadOnlySpan<byte> table, Span<float> output, int N, int C)
    {
        if (C <= 0) throw new ArgumentException("Embedding width C must be positive.", nameof(C));
        int rowBytes = (int)DTypeInfo.ByteCount(type, C);
        if (table.Length % rowBytes != 0)
            throw new ArgumentException($"table has {table.Length} bytes, not a whole number of {type} rows of C = {C} ({rowBytes} bytes each).", nameof(table));
        Check(ids, table.Length / rowBytes * C, "table", output.Length, "output", N, C);
        for (int n = 0; n < N; n++)
            Dequant.DequantizeRow(type, table.Slice(ids[n] * rowBytes, rowBytes), output.Slice(n * C, C));
    }

    /// <summary>dTable[ids[n]] += dOut[n] for every row.</summary>
    /// <param name="dOut">Output gradient [N, C].</param>
    /// <param name="ids">Token ids [N].</param>
    /// <param name="dTable">Table gradient [V, C], added into.</param>
    /// <param name="N">Tokens.</param>
    /// <param name="C">Channels.</param>
    public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<int> ids, Span<float> dTable, int N, int C)
    {
        Check(ids, dTable.Length, "dTable", dOut.Length, "dOut", N, C);
        if (N == 0 || C == 0) return;
        fixed (float* pd = dOut, pt = dTable)
        fixed (int* pi = ids)
        {
            var work = new BackwardWork { DOut = pd, Ids = pi, DTable = pt, N = N, C = C, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts((long)N * C, (C + 15) / 16));
        }
    }

    private static void Check(ReadOnlySpan<int> ids, int tableLength, string tableName, int rowsLength, string rowsName, int N, int C)
    {
        Elementwise.CheckDims(N, C);
        if (C == 0) throw new ArgumentException("Embedding width C must be positive.", nameof(C));
        if (tableLength % C != 0)
            throw new ArgumentException($"{tableName} has {tableLength} elements, not a whole number of rows of C = {C}; expected shape [V, {C}].", tableName);
        Elementwise.CheckLength(ids.Length, N, "ids");
        Elementwise.CheckLength(rowsLength, N, C, rowsName);
        int V = tableLength / C;
        for (int n = 0; n < N; n++)
            if ((uint)ids[n] >= (uint)V)
                throw new ArgumentException(
                    $"Token id {ids[n]} at row {n} is outside the vocabulary [0, {V}) (V = {V}); check the tokenizer matches the model.", nameof(ids));
    }

    private struct BackwardWork : IParallelWork
    {
        public float* DOut, DTable;
        public int* Ids;
        public int N, C;
        public SimdLevel Level;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (c0, c1) = Threads.SplitAligned(C, 16, part, parts);
            int w = c1 - c0;
            for (int n = 0; n < N; n++)
                Add(DOut + (long)n * C + c0, DTable + (long)Ids[n] * C + c0, w, Level);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Add(float* src, float* dst, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(dst + i) + Vector512.Load(src + i), dst + i);
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(dst + i) + Vector256.Load(src + i), dst + i);
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4) Vector128.Store(Vector128.Load(dst + i) + Vector128.Load(src + i), dst + i);
        for (; i < n; i++) dst[i] += src[i];
    }

    /// <summary>Plain scalar twins.</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="Embedding.Forward"/>.</summary>
        public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> table, Span<float> output, int N, int C)
        {
            Check(ids, table.Length, "table", output.Length, "output", N, C);
            for (int n = 0; n < N; n++)
                for (int c = 0; c < C; c++) output[n * C + c] = table[ids[n] * C + c];
        }

        /// <summary>Scalar <see cref="Embedding.Backward"/>.</summary>
        public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<int> ids, Span<float> dTable, int N, int C)
        {
            Check(ids, dTable.Length, "dTable", dOut.Length, "dOut", N, C);
            for (int n = 0; n < N; n++)
                for (int c = 0; c < C; c++) dTable[ids[n] * C + c] += dOut[n * C + c];
        }
    }
}
