// Attention forward: one part per (b, h, query tile of 64 rows), or per (b, kv head, query row) when Tq is small;
// parts write disjoint rows of output and lse, so any thread count gives the same bits.
// Per query tile, over the key tiles it can see (future tiles, tiles wholly outside the window and tiles wholly in
// segments before the first query's are never visited, wholly padded tiles are skipped):
//   Sᵀ = K_tile · (scale·Q_tile)ᵀ       [keys x queries], vectorised over queries
//   mask (-∞), then per query c:  m' = max(m, max_j Sᵀ[j,c]),  α = exp(m − m'),  Pᵀ = exp(Sᵀ − m'),
//   l = α·l + Σ_j Pᵀ[j,c] (double),  O[c,:] = α·O[c,:] + Σ_j Pᵀ[j,c]·v_j
// and at the end out = O / l, lse = m + log l (0 and -∞ for a query that saw nothing).
// With a soft-cap, Sᵀ = cap·tanh(Sᵀ/cap) right after the product, before the mask.
// Computing the transposed score tile keeps the online-softmax bookkeeping vectorised (max and sum run down
// the columns) and lets the query tile be transposed once instead of every key tile.
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

public static partial class Attention
{
    private unsafe struct ForwardWork : IParallelWork
    {
        public float* Q, K, V, Out, Lse;
        public byte* Mask;
        public int* Seg;   // [B, Tk] segment ids or null
        public int B, Tq, Tk, NH, NKV, HS, Window, QueryTiles;
        public int Splits;                  // row path: key ranges per (b, kv head, query row), combined by CombineSplits
        public float* PartO, PartM;         // row path with Splits > 1: per part, G unnormalised output rows and maxima
        public double* PartL;               //   and G softmax denominators
        public float Scale, Cap;   // Cap: soft-cap, 0 = none
        public SimdLevel ScoreLevel, RowLevel;
        public bool RowPath;

        public void Execute(int part, int parts)
        {
            var s = Scratch.For(HS);
            if (RowPath)
            {
                int row = part / Splits, i = row / (B * NKV), bk = row % (B * NKV);
                switch (RowLevel)
                {
                    case SimdLevel.V512: ForwardRowGroup<V512, Vector512<float>>(in this, s, bk / NKV, bk % NKV, i, part); break;
                    case SimdLevel.V256: ForwardRowGroup<V256, Vector256<float>>(in this, s, bk / NKV, bk % NKV, i, part); break;
                    case SimdLevel.V128: ForwardRowGroup<V128, Vector128<float>>(in this, s, bk / NKV, bk % NKV, i, part); break;
                    default: ForwardRowGroup<Scalar, float>(in this, s, bk / NKV, bk % NKV, i, part); break;
                }
                return;
            }
            // Costliest (last) query tiles of every head first, then the next: the round-robin static split then
            // hands each thread the same mix of long and short tiles (tile-major in order, the causal triangle
            // gave one of 2 threads ~10% more work).
            int t = QueryTiles - 1 - part / (B * NH), bh2 = part % (B * NH);
            switch (ScoreLevel)
            {
                case SimdLevel.V512: ForwardTile<V512, Vector512<float>>(in this, s, bh2 / NH, bh2 % NH, t * Tile); break;
                case SimdLevel.V256: ForwardTile<V256, Vector256<float>>(in this, s, bh2 / NH, bh2 % NH, t * Tile); break;
                case SimdLevel.V128: ForwardTile<V128, Vector128<float>>(in this, s, bh2 / NH, bh2 % NH, t * Tile); break;
                default: ForwardTile<Scalar, float>(in this, s, bh2 / NH, bh2 % NH, t * Tile); break;
            }
        }
    }

    private static unsafe void ForwardTile<TO, TV>(in ForwardWork w, Scratch s, int b, int h, int i0)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int HS = w.HS, Tq = w.Tq, Tk = w.Tk, window = w.Window;
        int W = TO.Count;
        int nq = Math.Min(Tile, Tq - i0), nqp = RoundUp(nq, 4 * W);
        int ldq = w.NH * HS, ldk = w.NKV * HS, kvh = h / (w.NH / w.NKV), off = Tk - Tq;
        float* q0 = w.Q + ((long)b * Tq + i0) * ldq + h * HS;
        float* k0 = w.K + (long)b * Tk * ldk + kvh * HS;
        float* v0 = w.V + (long)b * Tk * ldk + kvh * HS;
        byte* maskRow = w.Mask == null ? null : w.Mask + (long)b * Tk;
        int* segRow = w.Seg == null ? null : w.Seg + (long)b * Tk;
        float* qt = s.Qt, st = s.St, o = s.OAcc, m = s.M, alpha = s.Alpha, colSum = s.ColSum;
        double* l = s.L;
        float scale = w.Scale;

        for (int c = 0; c < nq; c++)
        {
            float* qr = q0 + (long)c * ldq;
            for (int d = 0; d < HS; d++) qt[d * Tile + c] = scale * qr[d];
        }
        for (int d = 0; d < HS; d++)
            for (int c = nq; c < nqp; c++) qt[d * Tile + c] = 0f;
        for (int c = 0; c < nqp; c++) { m[c] = float.NegativeInfinity; l[c] = 0; }
        new Span<float>(o, nq * HS).Clear();

        int pFirst = off + i0, pLast = off + i0 + nq - 1;
        // Keys before the first query's segment are invisible to the whole tile (block-diagonal causal): never visited.
        int jmin = Math.Max(window > 0 ? Math.Max(0, pFirst - window + 1) : 0, SegmentStart(segRow, pFirst));
        for (int j0 = jmin; j0 <= pLast; j0 += Tile)
        {
            int nk = Math.Min(Tile, pLast + 1 - j0);
            if (AllMasked(maskRow, j0, nk)) continue;
            Abt<TO, TV>(k0 + (long)j0 * ldk, ldk, nk, qt, Tile, nqp, HS, st, Tile);
            if (w.Cap > 0) CapTile(st, nk, nqp, w.Cap, w.ScoreLevel);
            MaskTile(st, nk, nqp, j0, i0, off, window, maskRow, segRow, Tk);
            OnlineSoftmax<TO, TV>(st, nk, nqp, m, alpha, colSum);
            for (int c = 0; c < nq; c++) l[c] = l[c] * alpha[c] + colSum[c];
            AccRows(w.RowLevel, st, 1, Tile, nq, nk, v0 + (long)j0 * ldk, ldk, o, HS, alpha, HS, endShift: off + i0 - j0);
        }

        float* lseRow = w.Lse + ((long)b * w.NH + h) * Tq + i0;
        float* out0 = w.Out + ((long)b * Tq + i0) * ldq + h * HS;
        for (int c = 0; c < nq; c++) Finish(o + c * HS, l[c], m[c], out0 + (long)c * ldq, lseRow + c, HS);
    }

    /// <summary>
    /// One key tile of the online softmax, per query column c &lt; N: new running max, α = exp(m_old − m_new),
    /// Pᵀ = exp(Sᵀ − m_new) in place, and the column sums of Pᵀ. A column that has seen only -∞ keeps m = -∞ and
    /// gets P = 0, α = 0 (the max subtracted is then 0, so no -∞ − -∞ = NaN).
    /// </summary>
    private static unsafe void OnlineSoftmax<TO, TV>(float* st, int nk, int N, float* m, float* alpha, float* colSum)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count;
        for (int c = 0; c < N; c += W)
        {
            TV mOld = TO.Load(m + c);
            TV t0 = TO.NegInf, t1 = TO.NegInf;
            int r = 0;
            for (; r + 2 <= nk; r += 2)
            {
                t0 = TO.Max(t0, TO.Load(st + r * Tile + c));
                t1 = TO.Max(t1, TO.Load(st + (r + 1) * Tile + c));
            }
            if (r < nk) t0 = TO.Max(t0, TO.Load(st + r * Tile + c));
            TV mNew = TO.Max(mOld, TO.Max(t0, t1));
            TV mSafe = TO.NegInfToZero(mNew);
            TO.Store(alpha + c, TO.Exp(TO.Sub(mOld, mSafe)));
            TV sum0 = TO.Zero, sum1 = TO.Zero;
            r = 0;
            for (; r + 2 <= nk; r += 2)
            {
                float* p0 = st + r * Tile + c, p1 = p0 + Tile;
                TV e0 = TO.Exp(TO.Sub(TO.Load(p0), mSafe)), e1 = TO.Exp(TO.Sub(TO.Load(p1), mSafe));
                TO.Store(p0, e0); TO.Store(p1, e1);
                sum0 = TO.Add(sum0, e0); sum1 = TO.Add(sum1, e1);
            }
            if (r < nk)
            {
                float* p0 = st + r * Tile + c;
                TV e0 = TO.Exp(TO.Sub(TO.Load(p0), mSafe));
                TO.Store(p0, e0);
                sum0 = TO.Add(sum0, e0);
            }
            TO.Store(colSum + c, TO.Add(sum0, sum1));
            TO.Store(m + c, mNew);
        }
    }

    /// <summary>Writes out = O / l and lse = m + log l for one query (0 and -∞ when it saw no key).</summary>
    private static unsafe void Finish(float* o, double l, float m, float* output, float* lse, int HS)
    {
        if (l > 0)
        {
            float inv = (float)(1.0 / l);
            for (int d = 0; d < HS; d++) output[d] = o[d] * inv;
            *lse = (float)(m + Math.Log(l));
        }
        else
        {
            for (int d = 0; d < HS; d++) output[d] = 0f;
            *lse = float.NegativeInfinity;
        }
    }

    /// <summary>
    /// One query row of the G query heads that share kv head <paramref name="kvh"/> (decoding, small Tq): each key and
    /// value row is loaded once for the G heads. Per key tile: the G x nk scores by dot products vectorised over HS,
    /// the soft-cap and the mask, then per head the running max, exp and sum vectorised over the keys, and
    /// O = α·O + P·V with eight accumulator chains (two key parities x four vectors of HS).
    /// With w.Splits &gt; 1 the part covers split part % Splits of the visible keys and leaves its unnormalised rows,
    /// maxima and denominators for <see cref="CombineSplits"/> (flash-decoding: a long cache over few kv heads still
    /// gives every thread work).
    /// </summary>
    private static unsafe void ForwardRowGroup<TO, TV>(in ForwardWork w, Scratch s, int b, int kvh, int i, int part)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int HS = w.HS, Tq = w.Tq, Tk = w.Tk, window = w.Window, W = TO.Count;
        int G = w.NH / w.NKV, ldq = w.NH * HS, ldk = w.NKV * HS;
        float* q0 = w.Q + ((long)b * Tq + i) * ldq + kvh * G * HS;
        float* k0 = w.K + (long)b * Tk * ldk + kvh * HS;
        float* v0 = w.V + (long)b * Tk * ldk + kvh * HS;
        byte* maskRow = w.Mask == null ? null : w.Mask + (long)b * Tk;
        float* qs = s.Qt, sc = s.St, o = s.OAcc, m = s.M, alpha = s.Alpha;
        double* l = s.L;
        float scale = w.Scale, cap = w.Cap;
        for (int e = 0; e < G * HS; e++) qs[e] = scale * q0[e];   // the G heads' rows are adjacent in q
        new Span<float>(o, G * HS).Clear();
        for (int g = 0; g < G; g++) { m[g] = float.NegativeInfinity; l[g] = 0; }
        int p = Tk - Tq + i;
        // Keys of earlier segments are skipped; every key in [segment start, p] lies in query i's segment.
        int jmin = Math.Max(window > 0 ? Math.Max(0, p - window + 1) : 0, SegmentStart(w.Seg == null ? null : w.Seg + (long)b * Tk, p));
        int split = part % w.Splits, visible = p + 1 - jmin;
        int jend = jmin + (int)((long)visible * (split + 1) / w.Splits);   // this part's keys: [jstart, jend)
        int jstart = jmin + (int)((long)visible * split / w.Splits);
        for (int j0 = jstart; j0 < jend; j0 += Tile)
        {
            int nk = Math.Min(Tile, jend - j0), nkp = RoundUp(nk, W);
            if (AllMasked(maskRow, j0, nk)) continue;
            int r4 = 0;
            for (; r4 + 4 <= nk; r4 += 4)   // four keys at a time: one reduction tree for four dot products
            {
                float* kr = k0 + (long)(j0 + r4) * ldk;
                for (int g = 0; g < G; g++)
                {
                    float* qg = qs + g * HS;
                    TO.Sum4(DotLanes<TO, TV>(qg, kr, HS), DotLanes<TO, TV>(qg, kr + ldk, HS), DotLanes<TO, TV>(qg, kr + 2 * ldk, HS),
                        DotLanes<TO, TV>(qg, kr + 3 * ldk, HS), sc + g * Tile + r4);
                }
            }
            for (; r4 < nk; r4++)
            {
                float* kr = k0 + (long)(j0 + r4) * ldk;
                for (int g = 0; g < G; g++) sc[g * Tile + r4] = Dot<TO, TV>(qs + g * HS, kr, HS);
            }
            for (int g = 0; g < G; g++)
            {
                float* row = sc + g * Tile;
                if (cap > 0) SoftCap.Apply(row, row, nk, cap, w.RowLevel);
                if (maskRow != null)
                    for (int r = 0; r < nk; r++) if (maskRow[j0 + r] == 0) row[r] = float.NegativeInfinity;
                for (int r = nk; r < nkp; r++) row[r] = float.NegativeInfinity;   // lanes past the last key: p = 0
                TV t = TO.NegInf;
                for (int r = 0; r < nkp; r += W) t = TO.Max(t, TO.Load(row + r));
                TO.Store(s.ColSum, t);
                float mNew = m[g];
                for (int c = 0; c < W; c++) mNew = Math.Max(mNew, s.ColSum[c]);
                // 0 while nothing was seen (no -∞ − -∞); then α = 0 and every p = 0, so O and l stay 0.
                float mSafe = float.IsNegativeInfinity(mNew) ? 0f : mNew;
                alpha[g] = MathF.Exp(m[g] - mSafe);
                TV ms = TO.Splat(mSafe), sum = TO.Zero;
                for (int r = 0; r < nkp; r += W)
                {
                    TV e = TO.Exp(TO.Sub(TO.Load(row + r), ms));
                    TO.Store(row + r, e);
                    sum = TO.Add(sum, e);
                }
                l[g] = l[g] * alpha[g] + TO.Sum(sum);
                m[g] = mNew;
            }
            AccGroup<TO, TV>(sc, G, nk, v0 + (long)j0 * ldk, ldk, o, alpha, HS);
        }
        if (w.Splits > 1)
        {
            new Span<float>(o, G * HS).CopyTo(new Span<float>(w.PartO + (long)part * G * HS, G * HS));
            for (int g = 0; g < G; g++) { w.PartM[(long)part * G + g] = m[g]; w.PartL[(long)part * G + g] = l[g]; }
            return;
        }
        float* out0 = w.Out + ((long)b * Tq + i) * ldq + kvh * G * HS;
        float* lse0 = w.Lse + ((long)b * w.NH + kvh * G) * Tq + i;
        for (int g = 0; g < G; g++) Finish(o + g * HS, l[g], m[g], out0 + g * HS, lse0 + (long)g * Tq, HS);
    }

    /// <summary>
    /// Joins the key splits of the row path, in split order: M = max_s m_s, l = Σ_s l_s·e^(m_s − M),
    /// O = Σ_s O_s·e^(m_s − M), then out = O / l and lse = M + log l as <see cref="Finish"/> writes them.
    /// </summary>
    private static unsafe void CombineSplits(in ForwardWork w, float* o)
    {
        int G = w.NH / w.NKV, HS = w.HS, S = w.Splits, ldq = w.NH * HS;
        int rows = w.B * w.NKV * w.Tq;
        for (int row = 0; row < rows; row++)
        {
            int i = row / (w.B * w.NKV), bk = row % (w.B * w.NKV), b = bk / w.NKV, kvh = bk % w.NKV;
            for (int g = 0; g < G; g++)
            {
                float mMax = float.NegativeInfinity;
                for (int sp = 0; sp < S; sp++) mMax = Math.Max(mMax, w.PartM[((long)row * S + sp) * G + g]);
                float mSafe = float.IsNegativeInfinity(mMax) ? 0f : mMax;
                new Span<float>(o, HS).Clear();
                double l = 0;
                for (int sp = 0; sp < S; sp++)
                {
                    long at = ((long)row * S + sp) * G + g;
                    float f = MathF.Exp(w.PartM[at] - mSafe);   // 0 for a split that saw no key
                    l += w.PartL[at] * f;
                    float* os = w.PartO + at * HS;
                    for (int d = 0; d < HS; d++) o[d] += f * os[d];
                }
                Finish(o, l, mMax, w.Out + ((long)b * w.Tq + i) * ldq + (kvh * G + g) * HS, w.Lse + ((long)b * w.NH + kvh * G + g) * w.Tq + i, HS);
            }
        }
    }

    /// <summary>
    /// O[g, :] = α_g·O[g, :] + Σ_{r&lt;nk} P[g·Tile + r] · V[r·ldv, :] for g &lt; G. Four vectors of HS at a time, each with
    /// two chains (even and odd keys), so eight independent fma chains hide the fma latency.
    /// </summary>
    private static unsafe void AccGroup<TO, TV>(float* P, int G, int nk, float* V, int ldv, float* O, float* alpha, int HS)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int W = TO.Count, nv = HS / W;
        for (int g = 0; g < G; g++)
        {
            float* pg = P + g * Tile, og = O + g * HS;
            TV a = TO.Splat(alpha[g]);
            int vi = 0;
            for (; vi + 4 <= nv; vi += 4)
            {
                float* x = V + vi * W, c = og + vi * W;
                TV e0 = TO.Mul(TO.Load(c), a), e1 = TO.Mul(TO.Load(c + W), a), e2 = TO.Mul(TO.Load(c + 2 * W), a), e3 = TO.Mul(TO.Load(c + 3 * W), a);
                TV d0 = TO.Zero, d1 = TO.Zero, d2 = TO.Zero, d3 = TO.Zero;
                int r = 0;
                for (; r + 2 <= nk; r += 2, x += 2 * ldv)
                {
                    TV pe = TO.Splat(pg[r]), po = TO.Splat(pg[r + 1]);
                    e0 = TO.Fma(pe, TO.Load(x), e0);
                    e1 = TO.Fma(pe, TO.Load(x + W), e1);
                    e2 = TO.Fma(pe, TO.Load(x + 2 * W), e2);
                    e3 = TO.Fma(pe, TO.Load(x + 3 * W), e3);
                    d0 = TO.Fma(po, TO.Load(x + ldv), d0);
                    d1 = TO.Fma(po, TO.Load(x + ldv + W), d1);
                    d2 = TO.Fma(po, TO.Load(x + ldv + 2 * W), d2);
                    d3 = TO.Fma(po, TO.Load(x + ldv + 3 * W), d3);
                }
                if (r < nk)
                {
                    TV pe = TO.Splat(pg[r]);
                    e0 = TO.Fma(pe, TO.Load(x), e0);
                    e1 = TO.Fma(pe, TO.Load(x + W), e1);
                    e2 = TO.Fma(pe, TO.Load(x + 2 * W), e2);
                    e3 = TO.Fma(pe, TO.Load(x + 3 * W), e3);
                }
                TO.Store(c, TO.Add(e0, d0));
                TO.Store(c + W, TO.Add(e1, d1));
                TO.Store(c + 2 * W, TO.Add(e2, d2));
                TO.Store(c + 3 * W, TO.Add(e3, d3));
            }
            for (; vi < nv; vi++)
            {
                float* x = V + vi * W, c = og + vi * W;
                TV e0 = TO.Mul(TO.Load(c), a), d0 = TO.Zero;
                int r = 0;
                for (; r + 2 <= nk; r += 2, x += 2 * ldv)
                {
                    e0 = TO.Fma(TO.Splat(pg[r]), TO.Load(x), e0);
                    d0 = TO.Fma(TO.Splat(pg[r + 1]), TO.Load(x + ldv), d0);
                }
                if (r < nk) e0 = TO.Fma(TO.Splat(pg[r]), TO.Load(x), e0);
                TO.Store(c, TO.Add(e0, d0));
            }
        }
    }
}
