// The scalar twins of Attention.Forward/Backward: same signatures, same visibility rules, but each (b, h) builds
// its full [Tq, Tk] score matrix in double. Slow and memory-hungry on purpose: this is what tests trust.
// The backward recomputes everything from q, k, v (it checks but does not read output and lse) and takes
// D_i = Σ_j P_ij dP_ij, so a test comparing it with the fast kernel also checks the FlashAttention-2 identity
// D_i = dOut_i·out_i that the fast kernel relies on. A soft-cap (softCap > 0) replaces each visible score s by
// cap·tanh(s/cap) (Math.Tanh in double) and multiplies dS by 1 − tanh²(s/cap).
namespace LoraSharp.Core.Kernels;

public static partial class Attention
{
    /// <summary>Plain scalar attention that materialises the score matrix, accumulating in double. Tests compare the fast kernels to these.</summary>
    public static class Reference
    {
        /// <summary>Same contract as <see cref="Attention.Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{byte}, Span{float}, Span{float}, int, int, int, int, int, int, float, int)"/>.</summary>
        public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<byte> keyMask,
            Span<float> output, Span<float> lse, int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0, float softCap = 0f)
            => Forward(q, k, v, keyMask, [], output, lse, B, Tq, Tk, NH, NKV, HS, scale, slidingWindow, softCap);

        /// <summary>Same contract as the fast forward with segment ids.</summary>
        public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<byte> keyMask,
            ReadOnlySpan<int> segmentIds, Span<float> output, Span<float> lse, int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0,
            float softCap = 0f)
        {
            CheckShapes(q.Length, k.Length, v.Length, keyMask.Length, output.Length, lse.Length, -1, B, Tq, Tk, NH, NKV, HS, slidingWindow);
            CheckSoftCap(softCap);
            CheckSegments(segmentIds, B, Tk);
            var P = new double[(long)Tq * Tk];
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                {
                    double[] rowLse = Probabilities(q, k, keyMask, segmentIds, P, null, b, h, Tq, Tk, NH, NKV, HS, scale, slidingWindow, softCap);
                    int kvh = h / (NH / NKV);
                    for (int i = 0; i < Tq; i++)
                    {
                        int o = ((b * Tq + i) * NH + h) * HS;
                        for (int d = 0; d < HS; d++)
                        {
                            double acc = 0;
                            for (int j = 0; j < Tk; j++)
                            {
                                double p = P[(long)i * Tk + j];
                                if (p != 0) acc += p * v[((b * Tk + j) * NKV + kvh) * HS + d];
                            }
                            output[o + d] = (float)acc;
                        }
                        lse[(b * NH + h) * Tq + i] = (float)rowLse[i];
                    }
                }
        }

        /// <summary>Same contract as the fast backward (adds into dq, dk, dv).</summary>
        public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
            ReadOnlySpan<float> output, ReadOnlySpan<float> lse, ReadOnlySpan<byte> keyMask, Span<float> dq, Span<float> dk, Span<float> dv,
            int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0, float softCap = 0f)
            => Backward(dOut, q, k, v, output, lse, keyMask, [], dq, dk, dv, B, Tq, Tk, NH, NKV, HS, scale, slidingWindow, softCap);

        /// <summary>Same contract as the fast backward with segment ids (adds into dq, dk, dv).</summary>
        public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
            ReadOnlySpan<float> output, ReadOnlySpan<float> lse, ReadOnlySpan<byte> keyMask, ReadOnlySpan<int> segmentIds,
            Span<float> dq, Span<float> dk, Span<float> dv,
            int B, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow = 0, float softCap = 0f)
        {
            CheckShapes(q.Length, k.Length, v.Length, keyMask.Length, output.Length, lse.Length, dOut.Length, B, Tq, Tk, NH, NKV, HS, slidingWindow);
            CheckSoftCap(softCap);
            CheckGradShapes(dq.Length, dk.Length, dv.Length, B, Tq, Tk, NH, NKV, HS);
            CheckSegments(segmentIds, B, Tk);
            var P = new double[(long)Tq * Tk];
            var dS = new double[(long)Tq * Tk];
            double[]? capFactor = softCap > 0 ? new double[(long)Tq * Tk] : null;
            var gq = new double[dq.Length];
            var gk = new double[dk.Length];
            var gv = new double[dv.Length];
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++)
                {
                    Probabilities(q, k, keyMask, segmentIds, P, capFactor, b, h, Tq, Tk, NH, NKV, HS, scale, slidingWindow, softCap);
                    int kvh = h / (NH / NKV);
                    for (int i = 0; i < Tq; i++)
                    {
                        int qo = ((b * Tq + i) * NH + h) * HS;
                        double D = 0;
                        for (int j = 0; j < Tk; j++)
                        {
                            double p = P[(long)i * Tk + j];
                            double dp = 0;
                            if (p != 0)
                            {
                                int vo = ((b * Tk + j) * NKV + kvh) * HS;
                                for (int d = 0; d < HS; d++) dp += (double)dOut[qo + d] * v[vo + d];
                                for (int d = 0; d < HS; d++) gv[vo + d] += p * dOut[qo + d];
                            }
                            dS[(long)i * Tk + j] = dp;   // dP for now
                            D += p * dp;
                        }
                        for (int j = 0; j < Tk; j++)
                        {
                            double p = P[(long)i * Tk + j];
                            double ds = p * (dS[(long)i * Tk + j] - D) * scale;
                            if (capFactor != null) ds *= capFactor[(long)i * Tk + j];
                            if (ds == 0) continue;
                            int ko = ((b * Tk + j) * NKV + kvh) * HS;
                            for (int d = 0; d < HS; d++)
                            {
                                gq[qo + d] += ds * k[ko + d];
                                gk[ko + d] += ds * q[qo + d];
                            }
                        }
                    }
                }
            for (int x = 0; x < gq.Length; x++) dq[x] = (float)(dq[x] + gq[x]);
            for (int x = 0; x < gk.Length; x++) dk[x] = (float)(dk[x] + gk[x]);
            for (int x = 0; x < gv.Length; x++) dv[x] = (float)(dv[x] + gv[x]);
        }

        /// <summary>True when key j is visible to query i (absolute position Tk − Tq + i) in batch row b.</summary>
        public static bool Visible(ReadOnlySpan<byte> keyMask, int b, int i, int j, int Tq, int Tk, int slidingWindow)
            => Visible(keyMask, [], b, i, j, Tq, Tk, slidingWindow);

        /// <summary>True when key j is visible to query i in batch row b, with segment ids (empty: one segment per row).</summary>
        public static bool Visible(ReadOnlySpan<byte> keyMask, ReadOnlySpan<int> segmentIds, int b, int i, int j, int Tq, int Tk, int slidingWindow)
        {
            int p = Tk - Tq + i;
            if (j > p) return false;
            if (!keyMask.IsEmpty && keyMask[b * Tk + j] == 0) return false;
            if (!segmentIds.IsEmpty && segmentIds[b * Tk + j] != segmentIds[b * Tk + p]) return false;
            return slidingWindow == 0 || p - j < slidingWindow;
        }

        /// <summary>
        /// Fills P [Tq, Tk] with the softmax probabilities of head (b, h) and returns each row's log-sum-exp (-∞ for an
        /// empty row); with a soft-cap, also capFactor [Tq, Tk] = 1 − tanh²(s/cap) when given.
        /// </summary>
        private static double[] Probabilities(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<byte> keyMask, ReadOnlySpan<int> segmentIds, double[] P,
            double[]? capFactor, int b, int h, int Tq, int Tk, int NH, int NKV, int HS, float scale, int slidingWindow, float softCap)
        {
            int kvh = h / (NH / NKV);
            var lse = new double[Tq];
            for (int i = 0; i < Tq; i++)
            {
                int qo = ((b * Tq + i) * NH + h) * HS;
                double max = double.NegativeInfinity;
                for (int j = 0; j < Tk; j++)
                {
                    double s = double.NegativeInfinity;
                    if (Visible(keyMask, segmentIds, b, i, j, Tq, Tk, slidingWindow))
                    {
                        int ko = ((b * Tk + j) * NKV + kvh) * HS;
                        double dot = 0;
                        for (int d = 0; d < HS; d++) dot += (double)q[qo + d] * k[ko + d];
                        s = scale * dot;
                        if (softCap > 0)
                        {
                            double t = Math.Tanh(s / softCap);
                            s = softCap * t;
                            if (capFactor != null) capFactor[(long)i * Tk + j] = 1 - t * t;
                        }
                    }
                    P[(long)i * Tk + j] = s;
                    if (s > max) max = s;
                }
                if (double.IsNegativeInfinity(max))
                {
                    for (int j = 0; j < Tk; j++) P[(long)i * Tk + j] = 0;
                    lse[i] = double.NegativeInfinity;
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < Tk; j++) sum += Math.Exp(P[(long)i * Tk + j] - max);
                for (int j = 0; j < Tk; j++) P[(long)i * Tk + j] = Math.Exp(P[(long)i * Tk + j] - max) / sum;
                lse[i] = max + Math.Log(sum);
            }
            return lse;
        }
    }
}
