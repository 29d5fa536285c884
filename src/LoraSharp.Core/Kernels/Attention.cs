// Causal self-attention with grouped KV heads, a key padding mask, optional segment (packed sequence) ids and an
// optional sliding window, forward and backward, in the FlashAttention-2 style: the scores are computed one 64x64 (keys x queries) tile at a time with
// an online softmax, so no T x T matrix is ever held. The forward saves only the output and the log-sum-exp of
// every query row; the backward recomputes each tile's probabilities from them.
// It does not apply RoPE, project q/k/v or hold a KV cache: callers pass the projected (and rotated) tensors.
//
// Legend (llm.c letters):
//   B batch, Tq query positions, Tk key positions, NH query heads, NKV kv heads (NH % NKV == 0), HS head size,
//   G = NH / NKV query heads per kv head (query head h reads kv head h / G).
//   q, output, dq [B, Tq, NH*HS]   k, v, dk, dv [B, Tk, NKV*HS]   lse [B, NH, Tq]   keyMask [B, Tk] or empty.
//   segmentIds [B, Tk] or empty: non-decreasing per row; a row holds several packed samples, one id per sample.
//   Query i sits at absolute position p_i = Tk - Tq + i (Tq == Tk: training/prefill; Tq == 1: decoding).
//   Key j is visible to query i iff j <= p_i, keyMask[b*Tk + j] != 0 (empty mask: all keys real),
//   segmentIds[b*Tk + j] == segmentIds[b*Tk + p_i] (empty: one segment per row), and
//   (slidingWindow == 0 or p_i - j < slidingWindow). Segments make the mask block-diagonal causal: the tiled paths
//   start each query tile's key loop at the start of its first query's segment, so a packed row costs the sum of
//   its samples' own causal attention, not T².
// Soft-cap (Gemma 2's attn_logit_softcapping; softCap > 0): every score s = scale·q·k becomes cap·tanh(s/cap) before
// the mask and the softmax, inside the tiles (SoftCap over each score tile row, also on the row path); the
// backward multiplies dS by 1 − (s_capped/cap)². softCap = 0 skips it (one branch per tile).
//
// Files: Attention.cs (API, checks, scratch), Attention.Forward.cs, Attention.Backward.cs, Attention.Tiles.cs
// (the vector micro-kernels), Attention.Reference.cs (the scalar twins that build the full score matrix).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>
/// Tiled causal self-attention (FlashAttention-2 style online softmax) with grouped KV heads, a key padding mask
/// and an optional sliding window. Memory per thread is a fixed scratch of a few 64 x 64 tiles
/// (<see cref="ScratchBytesPerThread"/>), independent of the sequence length.
/// </summary>
public static partial class Attention
{
    /// <summary>Query and key tile edge. 64 x 64 floats = 16 KiB per score tile, two of them plus the q/dO tiles fit in L2.</summary>
    internal const int Tile = 64;

    /// <summary>
    /// Forward calls with at most this many query rows take the per-row path (dot products vectorised over HS)
    /// instead of the tiles, whose score kernel is vectorised over queries and would waste most lanes.
    /// </summary>
    internal const int RowPathMaxTq = 8;

    /// <summary>Row path: key ranges are split until there are about this many parts (enough for 8 threads).</summary>
    private const int RowPathParts = 8;

    /// <summary>Row path: the fewest keys worth a split of their own (one key tile).</summary>
    private const int RowPathMinSplitKeys = Tile;

    /// <summary>Row path: flops (4·NH·Tq·Tk·HS) from which a call takes every thread (about 64 keys at 9 x 64 heads).</summary>
    private const long RowPathParallelFlops = 1L << 17;

    [ThreadStatic] private static Gemm.AlignedBuffer? t_rowPartials;   // the calling thread's split results

    /// <summary>
    /// out_i = Σ_j softmax_j(scale · q_i·k_j) v_j over the keys visible to query i; lse_i = log Σ_j exp(scale · q_i·k_j).
    /// A query with no visible key gets output 0 and lse = -∞.
    /// </summary>
    /// <param name="q">Queries [B, Tq, NH*HS] (the q projection output as is, after RoPE).</param>
    /// <param name="k">Keys [B, Tk, NKV*HS].</param>
    /// <param name="v">Values [B, Tk, NKV*HS].</param>
    /// <param name="keyMask">[B, Tk]: 0 marks a padding key nobody may see; empty means every key is real.</param>
    /// <param name="output">[B, Tq, NH*HS], overwritten.</param>
    /// <param name="lse">[B, NH, Tq] log-sum-exp of the scaled scores per query row, overwritten (kept for the backward).</param>
    /// <param name="B">Batch size.</param>
    /// <param name="Tq">Query positions; the queries are the last Tq of the Tk positions.</param>
    /// <param name="Tk">Key positions (Tk &gt;= Tq).</param>
    /// <param name="NH">Query heads.</param>
    /// <param name="NKV">Key/value heads; NH % NKV == 0.</param>
    /// <param name="HS">Head size.</param>
    /// <param name="scale">Score scale, usually 1/sqrt(HS).</param>
    /// <param name="slidingWindow">0 for full causal attention, else each query sees only its last slidingWindow positions (itself included).</param>
    /// <param name="softCap">0 for none, else each scaled score s becomes softCap·tanh(s/softCap) before the softmax (Gemma 2).</param>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<byte> keyMask,
        Span<float> output, Span<float> lse, int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0, float softCap = 0f)
        => Forward(q, k, v, keyMask, [], output, lse, B, Tq, Tk, NH, NKV, HS, scale, slidingWindow, softCap);

    /// <summary>
    /// <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, int, float, int, float)"/>
    /// with segment ids: query i also sees key j only when both lie in the same segment (packed samples do not attend
    /// to each other).
    /// </summary>
    /// <param name="segmentIds">[B, Tk] segment id of every key position, non-decreasing along each row; empty: one segment per row.</param>
    public static unsafe void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<byte> keyMask,
        ReadOnlySpan<int> segmentIds, Span<float> output, Span<float> lse, int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0,
        float softCap = 0f)
    {
        CheckShapes(q.Length, k.Length, v.Length, keyMask.Length, output.Length, lse.Length, -1, B, Tq, Tk, NH, NKV, HS, slidingWindow);
        CheckSoftCap(softCap);
        CheckSegments(segmentIds, B, Tk);
        if (B == 0 || Tq == 0) return;
        SimdLevel level = Simd.Level;
        fixed (float* pq = q, pk = k, pv = v, po = output, plse = lse)
        fixed (byte* pm = keyMask)
        fixed (int* ps = segmentIds)
        {
            var work = new ForwardWork
            {
                Q = pq, K = pk, V = pv, Mask = keyMask.IsEmpty ? null : pm, Seg = segmentIds.IsEmpty ? null : ps, Out = po, Lse = plse,
                B = B, Tq = Tq, Tk = Tk, NH = NH, NKV = NKV, HS = HS, Scale = scale, Window = slidingWindow, Cap = softCap,
                ScoreLevel = level, RowLevel = RowLevelFor(level, HS),
                RowPath = Tq <= RowPathMaxTq && NH / NKV <= Tile, QueryTiles = (Tq + Tile - 1) / Tile,
            };
            if (!work.RowPath)
            {
                Threads.Run(ref work, B * NH * work.QueryTiles, Threads.ForFlops(4L * B * NH * Tq * Tk * HS));
                return;
            }
            // Row path (decoding): parts over (b, kv head, query row) and, when those are few, over key ranges too
            // (Splits, chosen from the shapes alone so results do not depend on the thread count). Decode attention
            // is bound by reading the cache, not by its flops: two threads pay from about a hundred keys.
            int rows = B * NKV * Tq;
            work.Splits = Math.Clamp(Math.Min(RowPathParts / rows, Tk / RowPathMinSplitKeys), 1, RowPathParts);
            int parts = rows * work.Splits;
            int threads = 4L * B * NH * Tq * Tk * HS >= RowPathParallelFlops ? Threads.Count : 1;
            if (work.Splits == 1)
            {
                Threads.Run(ref work, parts, threads);
                return;
            }
            var partials = t_rowPartials ??= new Gemm.AlignedBuffer();
            int G = NH / NKV;
            long oFloats = (long)parts * G * HS, mFloats = (long)parts * G;
            float* pp = partials.Ensure(oFloats + mFloats + 2 * mFloats + 2);
            work.PartO = pp;
            work.PartM = pp + oFloats;
            work.PartL = (double*)(((nint)(pp + oFloats + mFloats) + 7) & ~(nint)7);
            Threads.Run(ref work, parts, threads);
            CombineSplits(work, Scratch.For(HS).OAcc);
        }
    }

    /// <summary>
    /// Adds the gradients of the forward into dq, dk and dv (callers zero them). With P the attention probabilities
    /// (recomputed per tile from <paramref name="lse"/>), dP_ij = dOut_i·v_j, D_i = Σ_d dOut_id·out_id and
    /// dS_ij = P_ij (dP_ij − D_i): dq_i += scale Σ_j dS_ij k_j, dk_j += scale Σ_i dS_ij q_i, dv_j += Σ_i P_ij dOut_i.
    /// </summary>
    /// <param name="dOut">Gradient of the output [B, Tq, NH*HS].</param>
    /// <param name="q">Queries [B, Tq, NH*HS] as given to the forward.</param>
    /// <param name="k">Keys [B, Tk, NKV*HS].</param>
    /// <param name="v">Values [B, Tk, NKV*HS].</param>
    /// <param name="output">The forward's output [B, Tq, NH*HS].</param>
    /// <param name="lse">The forward's log-sum-exp [B, NH, Tq].</param>
    /// <param name="keyMask">[B, Tk] or empty, as given to the forward.</param>
    /// <param name="dq">[B, Tq, NH*HS], added into.</param>
    /// <param name="dk">[B, Tk, NKV*HS], added into.</param>
    /// <param name="dv">[B, Tk, NKV*HS], added into.</param>
    /// <param name="B">Batch size.</param>
    /// <param name="Tq">Query positions.</param>
    /// <param name="Tk">Key positions (Tk &gt;= Tq).</param>
    /// <param name="NH">Query heads.</param>
    /// <param name="NKV">Key/value heads; NH % NKV == 0.</param>
    /// <param name="HS">Head size.</param>
    /// <param name="scale">Score scale used in the forward.</param>
    /// <param name="slidingWindow">Sliding window used in the forward (0: none).</param>
    /// <param name="softCap">Soft-cap used in the forward (0: none).</param>
    /// <remarks>
    /// Parallel over (b, kv head): one part owns that kv head's dk/dv rows and the dq rows of its G query heads, so
    /// there are no races and the result does not depend on the thread count.
    /// </remarks>
    public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> output, ReadOnlySpan<float> lse, ReadOnlySpan<byte> keyMask, Span<float> dq, Span<float> dk, Span<float> dv,
        int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0, float softCap = 0f)
        => Backward(dOut, q, k, v, output, lse, keyMask, [], dq, dk, dv, B, Tq, Tk, NH, NKV, HS, scale, slidingWindow, softCap);

    /// <summary>The backward of the forward with segment ids (same ids as given to the forward).</summary>
    /// <param name="segmentIds">[B, Tk] non-decreasing per row, or empty; as given to the forward.</param>
    public static unsafe void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> output, ReadOnlySpan<float> lse, ReadOnlySpan<byte> keyMask, ReadOnlySpan<int> segmentIds,
        Span<float> dq, Span<float> dk, Span<float> dv,
        int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0, float softCap = 0f)
    {
        CheckShapes(q.Length, k.Length, v.Length, keyMask.Length, output.Length, lse.Length, dOut.Length, B, Tq, Tk, NH, NKV, HS, slidingWindow);
        CheckSoftCap(softCap);
        CheckGradShapes(dq.Length, dk.Length, dv.Length, B, Tq, Tk, NH, NKV, HS);
        CheckSegments(segmentIds, B, Tk);
        if (B == 0 || Tq == 0) return;
        SimdLevel level = Simd.Level;
        fixed (float* pdo = dOut, pq = q, pk = k, pv = v, po = output, plse = lse, pdq = dq, pdk = dk, pdv = dv)
        fixed (byte* pm = keyMask)
        fixed (int* ps = segmentIds)
        {
            var work = new BackwardWork
            {
                DOut = pdo, Q = pq, K = pk, V = pv, Out = po, Lse = plse, Mask = keyMask.IsEmpty ? null : pm,
                Seg = segmentIds.IsEmpty ? null : ps,
                DQ = pdq, DK = pdk, DV = pdv,
                B = B, Tq = Tq, Tk = Tk, NH = NH, NKV = NKV, HS = HS, Scale = scale, Window = slidingWindow, Cap = softCap,
                ScoreLevel = level, RowLevel = RowLevelFor(level, HS),
                Chunks = segmentIds.IsEmpty ? 1 : Math.Max(1, (Tq + BackwardChunk - 1) / BackwardChunk),
            };
            Threads.Run(ref work, B * NKV * work.Chunks, Threads.ForFlops(10L * B * NH * Tq * Tk * HS));
        }
    }

    /// <summary>Bytes of scratch one thread holds for head size <paramref name="HS"/> (independent of T; allocated once per thread and reused).</summary>
    public static long ScratchBytesPerThread(int HS) => (long)Scratch.FloatCount(HS) * sizeof(float) + Tile * sizeof(double);

    /// <summary>The widest level not above <paramref name="level"/> whose vector width divides HS (for kernels vectorised over HS).</summary>
    private static SimdLevel RowLevelFor(SimdLevel level, int HS)
    {
        if (level >= SimdLevel.V512 && HS % 16 == 0) return SimdLevel.V512;
        if (level >= SimdLevel.V256 && HS % 8 == 0) return SimdLevel.V256;
        if (level >= SimdLevel.V128 && HS % 4 == 0) return SimdLevel.V128;
        return SimdLevel.Scalar;
    }

    private static void CheckShapes(int qLen, int kLen, int vLen, int maskLen, int outLen, int lseLen, int dOutLen,
        int B, int Tq, int Tk, int NH, int NKV, int HS, int slidingWindow)
    {
        if (B < 0 || Tq < 0 || Tk < 0 || NH < 1 || NKV < 1 || HS < 1)
            throw new ArgumentException($"Attention dimensions must be B, Tq, Tk >= 0 and NH, NKV, HS >= 1, got B={B}, Tq={Tq}, Tk={Tk}, NH={NH}, NKV={NKV}, HS={HS}.");
        if (NH % NKV != 0)
            throw new ArgumentException($"Attention needs NH % NKV == 0 (each kv head serves NH/NKV query heads), got NH={NH}, NKV={NKV}.");
        if (Tq > Tk)
            throw new ArgumentException($"Attention needs Tq <= Tk (queries are the last Tq of Tk positions), got q [B={B}, Tq={Tq}, NH*HS={NH}*{HS}] and k [B={B}, Tk={Tk}, NKV*HS={NKV}*{HS}].");
        if (slidingWindow < 0)
            throw new ArgumentException($"Attention slidingWindow must be 0 (off) or positive, got {slidingWindow}.", nameof(slidingWindow));
        long qNeed = (long)B * Tq * NH * HS, kNeed = (long)B * Tk * NKV * HS;
        Check(qLen, qNeed, "q", Layout.Q, B, Tq, Tk, NH, NKV, HS);
        Check(kLen, kNeed, "k", Layout.K, B, Tq, Tk, NH, NKV, HS);
        Check(vLen, kNeed, "v", Layout.K, B, Tq, Tk, NH, NKV, HS);
        Check(outLen, qNeed, "output", Layout.Q, B, Tq, Tk, NH, NKV, HS);
        Check(lseLen, (long)B * NH * Tq, "lse", Layout.Lse, B, Tq, Tk, NH, NKV, HS);
        if (maskLen != 0) Check(maskLen, (long)B * Tk, "keyMask", Layout.Mask, B, Tq, Tk, NH, NKV, HS);
        if (dOutLen >= 0) Check(dOutLen, qNeed, "dOut", Layout.Q, B, Tq, Tk, NH, NKV, HS);
    }

    private static void CheckSoftCap(float softCap)
    {
        if (!(softCap >= 0) || float.IsInfinity(softCap))
            throw new ArgumentException($"Attention softCap must be 0 (off) or a positive finite number, got {softCap}.", nameof(softCap));
    }

    /// <summary>Soft-caps rows [0, nk) of a score tile (the first n columns of each), in place.</summary>
    private static unsafe void CapTile(float* st, int nk, int n, float cap, SimdLevel level)
    {
        for (int r = 0; r < nk; r++) SoftCap.Apply(st + r * Tile, st + r * Tile, n, cap, level);
    }

    // O(B·Tk) per call, nothing next to the attention itself; the tile skipping relies on the order.
    private static void CheckSegments(ReadOnlySpan<int> segmentIds, int B, int Tk)
    {
        if (segmentIds.IsEmpty) return;
        if (segmentIds.Length != (long)B * Tk)
            throw new ArgumentException($"Attention: segmentIds has {segmentIds.Length} elements but its shape [B={B}, Tk={Tk}] needs {(long)B * Tk} (or empty for one segment per row).", nameof(segmentIds));
        for (int b = 0; b < B; b++)
        {
            var row = segmentIds.Slice(b * Tk, Tk);
            for (int j = 1; j < Tk; j++)
                if (row[j] < row[j - 1])
                    throw new ArgumentException($"Attention: segmentIds must be non-decreasing along each row (each packed sample one contiguous run), but row {b} has {row[j - 1]} at position {j - 1} and {row[j]} at {j}.", nameof(segmentIds));
        }
    }

    /// <summary>First position of the segment that holds position p (0 without segments).</summary>
    private static unsafe int SegmentStart(int* segRow, int p)
    {
        if (segRow == null) return 0;
        int id = segRow[p];
        while (p > 0 && segRow[p - 1] == id) p--;
        return p;
    }

    private static void CheckGradShapes(int dqLen, int dkLen, int dvLen, int B, int Tq, int Tk, int NH, int NKV, int HS)
    {
        long qNeed = (long)B * Tq * NH * HS, kNeed = (long)B * Tk * NKV * HS;
        Check(dqLen, qNeed, "dq", Layout.Q, B, Tq, Tk, NH, NKV, HS);
        Check(dkLen, kNeed, "dk", Layout.K, B, Tq, Tk, NH, NKV, HS);
        Check(dvLen, kNeed, "dv", Layout.K, B, Tq, Tk, NH, NKV, HS);
    }

    private enum Layout { Q, K, Lse, Mask }

    // The message is built only when a check fails: no strings on the hot path.
    private static void Check(long actual, long expected, string name, Layout layout, int B, int Tq, int Tk, int NH, int NKV, int HS)
    {
        if (actual == expected) return;
        string qShape = $"[B={B}, Tq={Tq}, NH*HS={NH}*{HS}]", kShape = $"[B={B}, Tk={Tk}, NKV*HS={NKV}*{HS}]";
        string shape = layout switch
        {
            Layout.Q => qShape,
            Layout.K => kShape,
            Layout.Lse => $"[B={B}, NH={NH}, Tq={Tq}]",
            _ => $"[B={B}, Tk={Tk}] (or empty for no padding)",
        };
        throw new ArgumentException(
            $"Attention: {name} has {actual} elements but its shape {shape} needs {expected} " +
            $"(q/output/dq are {qShape}, k/v/dk/dv are {kShape}). Pass tensors of the stated shapes or fix the dimensions.", name);
    }

    /// <summary>
    /// One thread's tiles, allocated on first use on that thread and reused by every later call (no allocation on
    /// the hot path). Pinned and 64-byte aligned so the kernels work on raw pointers.
    /// </summary>
    private sealed unsafe class Scratch
    {
        [ThreadStatic] private static Scratch? t_scratch;

        public readonly int HS;
        public readonly float* Qt;     // [HS, Tile]  scaled query tile, transposed
        public readonly float* DOt;    // [HS, Tile]  dOut tile, transposed (backward)
        public readonly float* St;     // [Tile, Tile] scores / probabilities, keys x queries
        public readonly float* DPt;    // [Tile, Tile] dP / dS, keys x queries (backward)
        public readonly float* OAcc;   // [Tile, HS]  unnormalised output rows (forward)
        public readonly float* M;      // [Tile] running max per query (forward); safe lse per query (backward)
        public readonly float* Alpha;  // [Tile] rescale factor per query (forward); D per query (backward)
        public readonly float* ColSum; // [Tile] Σ_j p per query in this tile; the row path's lane maxima
        public readonly double* L;     // [Tile] running softmax denominators in double
        private readonly float[] _floats;
        private readonly double[] _doubles;

        private Scratch(int hs)
        {
            HS = hs;
            _floats = GC.AllocateArray<float>(FloatCount(hs) + 16, pinned: true);
            _doubles = GC.AllocateArray<double>(Tile, pinned: true);
            float* p = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_floats));
            p = (float*)(((nint)p + 63) & ~(nint)63);
            Qt = p; p += hs * Tile;
            DOt = p; p += hs * Tile;
            OAcc = p; p += hs * Tile;
            St = p; p += Tile * Tile;
            DPt = p; p += Tile * Tile;
            M = p; p += Tile;
            Alpha = p; p += Tile;
            ColSum = p;
            L = (double*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_doubles));
        }

        public static int FloatCount(int hs) => 3 * hs * Tile + 2 * Tile * Tile + 3 * Tile;

        public static Scratch For(int hs)
        {
            var s = t_scratch;
            if (s is null || s.HS < hs) t_scratch = s = new Scratch(hs);
            return s;
        }
    }
}
