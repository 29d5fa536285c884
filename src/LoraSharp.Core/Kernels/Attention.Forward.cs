// Attention forward: one part per (b, h, query tile of 64 rows), or per (b, h, query row) when Tq is small;
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
        public float Scale, Cap;   // Cap: soft-cap, 0 = none
        public SimdLevel ScoreLevel, RowLevel;
        public bool RowPath;

        public void Execute(int part, int parts)
        {
            var s = Scratch.For(HS);
            if (RowPath)
            {
                int i = part / (B * NH), bh = part % (B * NH);
                switch (RowLevel)
                {
                    case SimdLevel.V512: ForwardRow<V512, Vector512<float>>(in this, s, bh / NH, bh % NH, i); break;
                    case SimdLevel.V256: ForwardRow<V256, Vector256<float>>(in this, s, bh / NH, bh % NH, i); break;
                    case SimdLevel.V128: ForwardRow<V128, Vector128<float>>(in this, s, bh / NH, bh % NH, i); break;
                    default: ForwardRow<Scalar, float>(in this, s, bh / NH, bh % NH, i); break;
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
    /// One query row (decoding, small Tq): scores by dot products vectorised over HS, 64 keys at a time, the
    /// same online softmax in scalar form, and p·V vectorised over HS.
    /// </summary>
    private static unsafe void ForwardRow<TO, TV>(in ForwardWork w, Scratch s, int b, int h, int i)
        where TO : struct, IVec<TV> where TV : unmanaged
    {
        int HS = w.HS, Tq = w.Tq, Tk = w.Tk, window = w.Window;
        int ldq = w.NH * HS, ldk = w.NKV * HS, kvh = h / (w.NH / w.NKV);
        float* qi = w.Q + ((long)b * Tq + i) * ldq + h * HS;
        float* k0 = w.K + (long)b * Tk * ldk + kvh * HS;
        float* v0 = w.V + (long)b * Tk * ldk + kvh * HS;
        byte* maskRow = w.Mask == null ? null : w.Mask + (long)b * Tk;
        float* sc = s.Row, o = s.OAcc;
        float scale = w.Scale, cap = w.Cap;
        new Span<float>(o, HS).Clear();
        float m = float.NegativeInfinity;
        double l = 0;
        int p = Tk - Tq + i;
        // Keys of earlier segments are skipped; every key in [segment start, p] lies in query i's segment.
        int jmin = Math.Max(window > 0 ? Math.Max(0, p - window + 1) : 0, SegmentStart(w.Seg == null ? null : w.Seg + (long)b * Tk, p));
        for (int j0 = jmin; j0 <= p; j0 += Tile)
        {
            int nk = Math.Min(Tile, p + 1 - j0);
            float tileMax = float.NegativeInfinity;
            for (int r = 0; r < nk; r++)
            {
                int j = j0 + r;
                float x = maskRow != null && maskRow[j] == 0 ? float.NegativeInfinity : scale * Dot<TO, TV>(qi, k0 + (long)j * ldk, HS);
                if (cap > 0 && x != float.NegativeInfinity) x = SoftCap.Apply(x, cap);
                sc[r] = x;
                if (x > tileMax) tileMax = x;
            }
            if (float.IsNegativeInfinity(tileMax)) continue;
            float mNew = Math.Max(m, tileMax);
            float alpha = MathF.Exp(m - mNew);   // 0 while m is still -∞
            double sum = 0;
            for (int r = 0; r < nk; r++)
            {
                float e = MathF.Exp(sc[r] - mNew);
                sc[r] = e;
                sum += e;
            }
            l = l * alpha + sum;
            m = mNew;
            AccRows<TO, TV>(sc, 0, 1, 1, nk, v0 + (long)j0 * ldk, ldk, o, HS, &alpha, HS, NoBand, NoBand);
        }
        Finish(o, l, m, w.Out + ((long)b * Tq + i) * ldq + h * HS, w.Lse + ((long)b * w.NH + h) * Tq + i, HS);
    }
}
