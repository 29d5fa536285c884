// Scratch memory of the fused output projection + cross-entropy: one [chunkRows, V] logits block (reused as the
// logits gradient) and the per-row losses of a chunk. Allocated once per model/batch shape, never per call.
namespace LoraSharp.Core.Kernels;

/// <summary>Reusable scratch for <see cref="CrossEntropy"/>.</summary>
public sealed class CrossEntropyWorkspace
{
    internal readonly float[] Logits;     // (ChunkRows, V)
    internal readonly double[] RowLoss;   // (ChunkRows)

    /// <summary>Rows processed per chunk (the logits block holds ChunkRows * V floats).</summary>
    public int ChunkRows { get; }

    /// <summary>Vocabulary size.</summary>
    public int V { get; }

    /// <summary>Allocates a [chunkRows, V] logits block.</summary>
    /// <param name="chunkRows">Rows per chunk (e.g. 64-256; more rows make the matmul more efficient, fewer save memory).</param>
    /// <param name="V">Vocabulary size (rows of lm_head).</param>
    public CrossEntropyWorkspace(int chunkRows, int V)
    {
        if (chunkRows <= 0) throw new ArgumentOutOfRangeException(nameof(chunkRows), chunkRows, "Cross-entropy chunk must hold at least one row.");
        if (V <= 0) throw new ArgumentOutOfRangeException(nameof(V), V, "Vocabulary size must be positive.");
        if ((long)chunkRows * V > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(chunkRows), chunkRows,
                $"A [{chunkRows}, {V}] logits chunk exceeds one array; use at most {Array.MaxLength / V} rows per chunk.");
        ChunkRows = chunkRows;
        this.V = V;
        Logits = new float[(long)chunkRows * V];
        RowLoss = new double[chunkRows];
    }
}
