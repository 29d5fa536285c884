// Keys and values of every layer for the positions generated so far, plus the scratch buffers of a cached
// forward step. One sequence (B = 1); capacity fixed at creation (at most max_position_embeddings).
namespace LoraSharp.Models.Llama;

/// <summary>A per-sequence key/value cache for incremental decoding.</summary>
public sealed class KvCache
{
    internal KvCache(LlamaConfig c, int capacity, int maxChunk)
    {
        Capacity = capacity;
        MaxChunk = maxChunk;
        int KD = c.NumKeyValueHeads * c.HeadDim, QD = c.NumAttentionHeads * c.HeadDim, C = c.HiddenSize, H = c.IntermediateSize;
        K = new float[c.NumHiddenLayers][];
        V = new float[c.NumHiddenLayers][];
        for (int l = 0; l < K.Length; l++)
        {
            K[l] = new float[capacity * KD];
            V[l] = new float[capacity * KD];
        }
        X = new float[maxChunk * C];
        Xn = new float[maxChunk * C];
        Rstd = new float[maxChunk];
        Q = new float[maxChunk * QD];
        Att = new float[maxChunk * QD];
        Lse = new float[c.NumAttentionHeads * maxChunk];
        Gate = new float[maxChunk * H];
        Up = new float[maxChunk * H];
        Hidden = new float[maxChunk * H];
        Positions = new int[maxChunk];
        QRaw = c.QkNorm ? new float[maxChunk * QD] : [];
        KRaw = c.QkNorm ? new float[maxChunk * KD] : [];
        RstdHeads = c.QkNorm ? new float[maxChunk * c.NumAttentionHeads] : [];
        Branch = c.SandwichNorms ? new float[maxChunk * C] : [];
        Fused = c.FusedProjections ? new float[maxChunk * Math.Max(QD + 2 * KD, 2 * H)] : [];
        Logits = new float[c.VocabSize];
    }

    /// <summary>Positions held so far.</summary>
    public int Length { get; internal set; }

    /// <summary>Most positions the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Most tokens one cached forward call may take.</summary>
    public int MaxChunk { get; }

    /// <summary>Clears the cache (keeps the memory).</summary>
    public void Reset() => Length = 0;

    internal readonly float[][] K;      // (L, capacity, NKV*HS)
    internal readonly float[][] V;      // (L, capacity, NKV*HS)
    internal readonly float[] X, Xn, Rstd, Q, Att, Lse, Gate, Up, Hidden;
    internal readonly int[] Positions;
    internal readonly float[] QRaw, KRaw, RstdHeads;   // qwen3's q/k before their per-head norm, and its 1/rms; empty otherwise
    internal readonly float[] Branch;                  // gemma: o_proj / down_proj output before its norm; empty otherwise
    internal readonly float[] Fused;                   // phi3: qkv_proj / gate_up_proj output before the split; empty otherwise
    internal readonly float[] Logits;   // (V) of the last position
}
