// Attention backward (FlashAttention-2 recomputation): one part per (b, kv head). Key tiles are visited as in the
// forward (none before the segment of a query tile's first query). A part owns the dk/dv rows of
// its kv head and the dq rows of the G query heads that read it, so parts never write the same memory and the
// additions happen in one fixed order whatever the thread count. Per (query head, query tile) it transposes
// scale·Q and dOut once, takes D_c = Σ_d dOut·out (double) and the saved lse, then per visible key tile:
//   Sᵀ  = K_tile · (scale·Q)ᵀ, masked          Pᵀ  = exp(Sᵀ − lse)
//   dPᵀ = V_tile · dOutᵀ                        dSᵀ = scale · Pᵀ ∘ (dPᵀ − D)
//   dv_j += Σ_c Pᵀ[j,c] dOut_c    dk_j += Σ_c dSᵀ[j,c] q_c    dq_c += Σ_j dSᵀ[j,c] k_j
// With a soft-cap, Sᵀ is capped before the mask (as in the forward) and dSᵀ gets the factor 1 − (Sᵀ/cap)²
// (d tanh; 0 where masked).
// With segment ids a row is also split into chunks of whole segments (about BackwardChunk query positions each,
// a count that depends on the ids, never on the thread count): segments never see each other, so each chunk owns
// its dq/dk/dv rows and a packed row (B = 1) still gives the threads B·NKV·chunks parts.
// Limitation: without segments there are B·NKV parts, so fewer parts than threads leaves threads idle (fine for
// 2 cores and the shapes of LoRA training; a split over key tiles with per-part dq buffers would lift it).
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

public static partial class Attention
{
    private unsafe struct BackwardWork : IParallelWork
    {
        public float* DOut, Q, K, V, Out, Lse, DQ, DK, DV;
        public byte* Mask;
        public int* Seg;   // [B, Tk] segment ids or null
        public int B, Tq, Tk, NH, NKV, HS, Window, Chunks;
        public float Scale, Cap;   // Cap: soft-cap, 0 = none
        public SimdLevel ScoreLevel, RowLevel;

        public void Execute(int part, int parts)
        {
            var s = Scratch.For(HS);
            int chunk = part % Chunks, bk = part / Chunks;
            int b = bk / NKV, kvh = bk % NKV;
            int qStart = 0, qEnd = Tq;
            if (Chunks > 1)
            {
                qStart = ChunkStart(b, chunk);
                qEnd = ChunkStart(b, chunk + 1);
                if (qStart >= qEnd) return;
            }
            switch (ScoreLevel)
            {
                case SimdLevel.V512: BackwardKvHead<V512, Vector512<float>>(in this, s, b, kvh, qStart, qEnd); break;
                case SimdLevel.V256: BackwardKvHead<V256, Vector256<float>>(in this, s, b, kvh, qStart, qEnd); break;
                case SimdLevel.V128: BackwardKvHead<V128, Vector128<float>>(in this, s, b, kvh, qStart, qEnd); break;
                default: BackwardKvHead<Scalar, float>(in this, s, b, kvh, qStart, qEnd); break;
            }
        }

        /// <summary>
        /// First query of chunk c of row b: the start of the segment holding the c-th nominal boundary (c·Tq/Chunks),
        /// so chunks hold whole segments, never overlap and cover every query (some may be empty).
        /// </summary>
        private readonly int ChunkStart(int b, int c)
        {
            if (c == 0) return 0;
            if (c >= Chunks) return Tq;
            int off = Tk - Tq;
            int start = SegmentStart(Seg + (long)b * Tk, off + (int)((long)c * Tq / Chunks)) - off;
            return Math.Max(start, 0);
        }
    }

    /// <summary>Query positions per backward chunk of a segmented row (4 query tiles: enough parts for B = 1, little per-part overhead).</summary>
    internal const int BackwardChunk = 4 * Tile;

    private static unsafe void BackwardKvHead<TO, TV>(in BackwardWork w, Scratch s, int b, int kvh, int qStart, int qEnd)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int HS = w.HS, Tq = w.Tq, Tk = w.Tk, window = w.Window, G = w.NH / w.NKV;
        int W = TO.Count;
        int ldq = w.NH * HS, ldk = w.NKV * HS, off = Tk - Tq;
        float* k0 = w.K + (long)b * Tk * ldk + kvh * HS;
        float* v0 = w.V + (long)b * Tk * ldk + kvh * HS;
        float* dk0 = w.DK + (long)b * Tk * ldk + kvh * HS;
        float* dv0 = w.DV + (long)b * Tk * ldk + kvh * HS;
        byte* maskRow = w.Mask == null ? null : w.Mask + (long)b * Tk;
        int* segRow = w.Seg == null ? null : w.Seg + (long)b * Tk;
        float* qt = s.Qt, dOt = s.DOt, st = s.St, dpt = s.DPt, lseSafe = s.M, dRow = s.Alpha;
        float scale = w.Scale;

        for (int hh = 0; hh < G; hh++)
        {
            int h = kvh * G + hh;
            for (int i0 = qStart; i0 < qEnd; i0 += Tile)
            {
                int nq = Math.Min(Tile, qEnd - i0), nqp = RoundUp(nq, 4 * W);
                long rowBase = ((long)b * Tq + i0) * ldq + h * HS;
                float* q0 = w.Q + rowBase, dO0 = w.DOut + rowBase, out0 = w.Out + rowBase, dq0 = w.DQ + rowBase;
                float* lse0 = w.Lse + ((long)b * w.NH + h) * Tq + i0;
                for (int c = 0; c < nq; c++)
                {
                    float* qr = q0 + (long)c * ldq, gr = dO0 + (long)c * ldq, orow = out0 + (long)c * ldq;
                    double dsum = 0;
                    for (int d = 0; d < HS; d++)
                    {
                        qt[d * Tile + c] = scale * qr[d];
                        dOt[d * Tile + c] = gr[d];
                        dsum += (double)gr[d] * orow[d];
                    }
                    dRow[c] = (float)dsum;
                    float lv = lse0[c];
                    lseSafe[c] = float.IsNegativeInfinity(lv) ? float.PositiveInfinity : lv;   // no key seen: P = 0
                }
                for (int c = nq; c < nqp; c++)
                {
                    for (int d = 0; d < HS; d++) { qt[d * Tile + c] = 0f; dOt[d * Tile + c] = 0f; }
                    dRow[c] = 0f;
                    lseSafe[c] = float.PositiveInfinity;
                }

                int pFirst = off + i0, pLast = off + i0 + nq - 1;
                int jmin = Math.Max(window > 0 ? Math.Max(0, pFirst - window + 1) : 0, SegmentStart(segRow, pFirst));
                for (int j0 = jmin; j0 <= pLast; j0 += Tile)
                {
                    int nk = Math.Min(Tile, pLast + 1 - j0);
                    if (AllMasked(maskRow, j0, nk)) continue;
                    float* kt = k0 + (long)j0 * ldk, vt = v0 + (long)j0 * ldk;
                    Abt<TO, TV>(kt, ldk, nk, qt, Tile, nqp, HS, st, Tile);
                    if (w.Cap > 0) CapTile(st, nk, nqp, w.Cap, w.ScoreLevel);
                    MaskTile(st, nk, nqp, j0, i0, off, window, maskRow, segRow, Tk);
                    Abt<TO, TV>(vt, ldk, nk, dOt, Tile, nqp, HS, dpt, Tile);
                    if (w.Cap > 0) ProbsAndDScoresCapped<TO, TV>(st, dpt, nk, nqp, lseSafe, dRow, scale, w.Cap);
                    else ProbsAndDScores<TO, TV>(st, dpt, nk, nqp, lseSafe, dRow, scale);
                    int shift = off + i0 - j0;   // key r is visible to query c only if r <= c + shift
                    AccRows(w.RowLevel, st, Tile, 1, nk, nq, dO0, ldq, dv0 + (long)j0 * ldk, ldk, null, HS, startShift: shift);
                    AccRows(w.RowLevel, dpt, Tile, 1, nk, nq, q0, ldq, dk0 + (long)j0 * ldk, ldk, null, HS, startShift: shift);
                    AccRows(w.RowLevel, dpt, 1, Tile, nq, nk, kt, ldk, dq0, ldq, null, HS, endShift: shift);
                }
            }
        }
    }

    /// <summary>In place over a tile: Pᵀ = exp(Sᵀ − lse_c) into st, dSᵀ = scale·Pᵀ·(dPᵀ − D_c) into dpt.</summary>
    private static unsafe void ProbsAndDScores<TO, TV>(float* st, float* dpt, int nk, int N, float* lse, float* D, float scale)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        TV sc = TO.Splat(scale);
        for (int c = 0; c < N; c += W)
        {
            TV L = TO.Load(lse + c), d = TO.Load(D + c);
            for (int r = 0; r < nk; r++)
            {
                float* ps = st + r * Tile + c, pd = dpt + r * Tile + c;
                TV p = TO.Exp(TO.Sub(TO.Load(ps), L));
                TO.Store(ps, p);
                TO.Store(pd, TO.Mul(TO.Mul(p, sc), TO.Sub(TO.Load(pd), d)));
            }
        }
    }

    /// <summary>
    /// <see cref="ProbsAndDScores"/> over a soft-capped tile: dSᵀ also gets the cap's derivative 1 − (Sᵀ/cap)²,
    /// clamped at 0 so a masked (−∞) score gives 0, not 0·−∞.
    /// </summary>
    private static unsafe void ProbsAndDScoresCapped<TO, TV>(float* st, float* dpt, int nk, int N, float* lse, float* D, float scale, float cap)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        TV sc = TO.Splat(scale), inv = TO.Splat(1f / cap), one = TO.Splat(1f);
        for (int c = 0; c < N; c += W)
        {
            TV L = TO.Load(lse + c), d = TO.Load(D + c);
            for (int r = 0; r < nk; r++)
            {
                float* ps = st + r * Tile + c, pd = dpt + r * Tile + c;
                TV s = TO.Load(ps);
                TV p = TO.Exp(TO.Sub(s, L));
                TV t = TO.Mul(s, inv);
                TV f = TO.Max(TO.Sub(one, TO.Mul(t, t)), TO.Zero);
                TO.Store(ps, p);
                TO.Store(pd, TO.Mul(TO.Mul(TO.Mul(p, sc), TO.Sub(TO.Load(pd), d)), f));
            }
        }
    }
}
