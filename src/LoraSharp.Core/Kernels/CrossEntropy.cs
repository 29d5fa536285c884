// Output projection (lm_head) fused with cross-entropy, chunked over rows so the full [N, V] logits are never
// held (legend: N rows = B*T tokens, C channels, V vocabulary; W = lm_head [V, C]). Targets are already shifted:
// target[n] is the token after row n, or -100 (ignored, like torch's ignore_index).
// For each chunk of up to ChunkRows consecutive counted rows:
//   logits = h[chunk] · Wᵀ                                   (MatMul.Forward)
//   loss_n = logsumexp(logits_n) - logits_n[target_n]       (max-shifted, sum of exp in double)
//   g_n    = gradScale * (softmax(logits_n) - onehot(target_n))  written over the logits block
//   dh[chunk] += g · W                                      (MatMul.BackwardInput)
//   dW        += gᵀ · h[chunk]                              (MatMul.BackwardWeight; full fine-tuning only)
// Ignored rows are skipped entirely (no matmul, dh untouched). The loss sum is accumulated in double in row order,
// so it is identical for any thread count. gradScale is usually 1/count of the whole batch (mean reduction).
// With a logit soft-cap (Gemma 2's final_logit_softcapping, cap > 0) each logits row is first capped in place,
// z = cap·tanh(logits/cap) (SoftCap), the loss is taken over z, and the gradient is carried back through the cap:
// g_n = gradScale · (softmax(z_n) − onehot) ∘ (1 − (z_n/cap)²). cap = 0 takes exactly the uncapped code.
// Not here: label smoothing, z-loss.
using System.Runtime.CompilerServices;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>Fused lm_head projection and cross-entropy loss with its gradient.</summary>
public static unsafe class CrossEntropy
{
    /// <summary>The target value of rows that do not count (torch ignore_index).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Sum of the losses of counted rows; adds gradScale * dLoss/dh into dh (unless dh is empty).</summary>
    /// <param name="h">Final normed hidden states [N, C].</param>
    /// <param name="wOut">lm_head weight [V, C], packed.</param>
    /// <param name="targets">Next-token ids [N], or -100 to ignore a row.</param>
    /// <param name="dh">Gradient of h [N, C], added into for counted rows; empty for a forward-only pass.</param>
    /// <param name="gradScale">Factor on the gradient (e.g. 1 / total counted rows).</param>
    /// <param name="ws">Scratch sized [chunkRows, V].</param>
    /// <param name="N">Rows.</param>
    /// <param name="C">Channels.</param>
    /// <param name="count">Rows whose target is not -100.</param>
    /// <param name="logitSoftCap">Final logit soft-cap (cap·tanh(logits/cap) before the softmax); 0 = none.</param>
    /// <returns>Sum over counted rows of -log softmax(logits)[target].</returns>
    public static double ForwardBackward(ReadOnlySpan<float> h, PackedWeight wOut, ReadOnlySpan<int> targets, Span<float> dh, float gradScale,
        CrossEntropyWorkspace ws, int N, int C, out int count, float logitSoftCap = 0f)
    {
        ArgumentNullException.ThrowIfNull(wOut);
        return Run(h, wOut, default, targets, dh, gradScale, ws, N, C, out count, default, default, logitSoftCap);
    }

    /// <summary>
    /// <see cref="ForwardBackward"/> plus the weight gradient for full fine-tuning: dWOut += gradScale * (softmax - onehot)ᵀ · h.
    /// The matmuls use <paramref name="wOut"/> when it is not null, else <paramref name="wOutF32"/> (a trained head changes
    /// every step, so packing it would be wasted).
    /// </summary>
    /// <param name="h">Hidden states [N, C].</param>
    /// <param name="wOut">lm_head packed [V, C], or null to use <paramref name="wOutF32"/>.</param>
    /// <param name="targets">Next-token ids [N] or -100.</param>
    /// <param name="dh">Gradient of h [N, C] (added into) or empty.</param>
    /// <param name="gradScale">Factor on the gradients.</param>
    /// <param name="ws">Scratch.</param>
    /// <param name="N">Rows.</param>
    /// <param name="C">Channels.</param>
    /// <param name="count">Counted rows.</param>
    /// <param name="dWOut">lm_head gradient [V, C], added into.</param>
    /// <param name="wOutF32">lm_head [V, C] unpacked; required when <paramref name="wOut"/> is null, otherwise may be empty.</param>
    /// <param name="logitSoftCap">Final logit soft-cap; 0 = none.</param>
    /// <returns>Sum of the losses of counted rows.</returns>
    public static double ForwardBackwardWithWeightGrad(ReadOnlySpan<float> h, PackedWeight? wOut, ReadOnlySpan<int> targets, Span<float> dh,
        float gradScale, CrossEntropyWorkspace ws, int N, int C, out int count, Span<float> dWOut, ReadOnlySpan<float> wOutF32, float logitSoftCap = 0f)
    {
        ArgumentNullException.ThrowIfNull(ws);
        Elementwise.CheckLength(dWOut.Length, ws.V, C, "dWOut");
        if (wOut is null) Elementwise.CheckLength(wOutF32.Length, ws.V, C, "wOutF32");
        return Run(h, wOut, wOutF32, targets, dh, gradScale, ws, N, C, out count, default, dWOut, logitSoftCap);
    }

    /// <summary>Per-row losses for evaluation (perplexity); no gradients. Ignored rows get 0.</summary>
    /// <param name="h">Hidden states [N, C].</param>
    /// <param name="wOut">lm_head packed [V, C].</param>
    /// <param name="targets">Next-token ids [N] or -100.</param>
    /// <param name="losses">Per-row loss [N], written.</param>
    /// <param name="ws">Scratch.</param>
    /// <param name="N">Rows.</param>
    /// <param name="C">Channels.</param>
    /// <param name="count">Counted rows.</param>
    /// <param name="logitSoftCap">Final logit soft-cap; 0 = none.</param>
    /// <returns>Sum of the losses of counted rows.</returns>
    public static double RowLosses(ReadOnlySpan<float> h, PackedWeight wOut, ReadOnlySpan<int> targets, Span<float> losses,
        CrossEntropyWorkspace ws, int N, int C, out int count, float logitSoftCap = 0f)
    {
        ArgumentNullException.ThrowIfNull(wOut);
        Elementwise.CheckLength(losses.Length, N, "losses");
        return Run(h, wOut, default, targets, default, 0f, ws, N, C, out count, losses, default, logitSoftCap);
    }

    private static void CheckCap(float cap)
    {
        if (!(cap >= 0) || float.IsInfinity(cap))
            throw new ArgumentOutOfRangeException("logitSoftCap", cap, "The final logit soft-cap must be 0 (none) or a positive finite number.");
    }

    private static void Check(int h, int V, int wK, ReadOnlySpan<int> targets, int dh, int N, int C)
    {
        Elementwise.CheckDims(N, C);
        if (wK != C) throw new ArgumentException($"lm_head has {wK} input features but the hidden states have C = {C}.", "wOut");
        Elementwise.CheckLength(h, N, C, "h");
        Elementwise.CheckLength(targets.Length, N, "targets");
        if (dh != 0) Elementwise.CheckLength(dh, N, C, "dh", " (or empty for forward only)");
        for (int n = 0; n < N; n++)
            if (targets[n] != IgnoreIndex && (uint)targets[n] >= (uint)V)
                throw new ArgumentException(
                    $"targets[{n}] = {targets[n]} is outside the vocabulary [0, {V}) and is not the ignore index {IgnoreIndex}.", nameof(targets));
    }

    private static double Run(ReadOnlySpan<float> h, PackedWeight? wPacked, ReadOnlySpan<float> wF32, ReadOnlySpan<int> targets,
        Span<float> dh, float gradScale, CrossEntropyWorkspace ws, int N, int C, out int count, Span<float> losses, Span<float> dW, float cap)
    {
        ArgumentNullException.ThrowIfNull(ws);
        CheckCap(cap);
        int V = ws.V;
        if (wPacked is not null && wPacked.N != V)
            throw new ArgumentException($"lm_head has {wPacked.N} rows but the workspace was built for V = {V}.", nameof(ws));
        Check(h.Length, V, wPacked?.K ?? C, targets, dh.Length, N, C);
        bool grad = dh.Length != 0 || dW.Length != 0;
        var level = Simd.Level;
        double total = 0;
        count = 0;
        if (losses.Length != 0) losses.Clear();
        int n = 0;
        while (n < N)
        {
            if (targets[n] == IgnoreIndex) { n++; continue; }
            int start = n;
            while (n < N && n - start < ws.ChunkRows && targets[n] != IgnoreIndex) n++;
            int rows = n - start;
            var hChunk = h.Slice(start * C, rows * C);
            var logits = ws.Logits.AsSpan(0, rows * V);
            if (wPacked is not null) MatMul.Forward(hChunk, wPacked, logits, rows);
            else MatMul.Forward(hChunk, wF32, logits, rows, C, V);

            fixed (float* pl = logits)
            fixed (int* pt = targets)
            fixed (double* pr = ws.RowLoss)
            {
                var work = new RowWork { Logits = pl, Targets = pt + start, RowLoss = pr, Rows = rows, V = V, GradScale = gradScale, Grad = grad, Level = level, Cap = cap };
                Threads.Run(ref work, Elementwise.Parts((long)rows * V, rows));
            }
            for (int r = 0; r < rows; r++)
            {
                total += ws.RowLoss[r];
                if (losses.Length != 0) losses[start + r] = (float)ws.RowLoss[r];
            }
            count += rows;

            if (dh.Length != 0)
            {
                var dhChunk = dh.Slice(start * C, rows * C);
                if (wPacked is not null) MatMul.BackwardInput(logits, wPacked, dhChunk, rows);
                else MatMul.BackwardInput(logits, wF32, dhChunk, rows, V, C);
            }
            if (dW.Length != 0) MatMul.BackwardWeight(logits, hChunk, dW, rows, V, C);
        }
        return total;
    }

    // One row: loss = m + log(sum exp(x - m)) - x[target]; with grad, the row becomes gradScale * (softmax - onehot).
    private struct RowWork : IParallelWork
    {
        public float* Logits;
        public int* Targets;
        public double* RowLoss;
        public int Rows, V;
        public float GradScale, Cap;
        public bool Grad;
        public SimdLevel Level;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (r0, r1) = Threads.Split(Rows, part, parts);
            if (Cap > 0)
            {
                for (int r = r0; r < r1; r++) CappedRow(r);
                return;
            }
            for (int r = r0; r < r1; r++)
            {
                float* x = Logits + (long)r * V;
                int t = Targets[r];
                float xt = x[t];
                float m = Softmax.Max(x, V, Level);
                double s = Softmax.ExpSum(x, x, m, V, Level);
                RowLoss[r] = m + Math.Log(s) - xt;
                if (Grad)
                {
                    Softmax.Scale(x, (float)(GradScale / s), V, Level);
                    x[t] -= GradScale;
                }
            }
        }

        // The soft-capped row: z = cap·tanh(x/cap) in place, loss over z; the gradient is taken through the cap
        // (exp is computed twice rather than holding a second [rows, V] block: next to the C-deep matmul it is small).
        private readonly void CappedRow(int r)
        {
            float* x = Logits + (long)r * V;
            int t = Targets[r];
            SoftCap.Apply(x, x, V, Cap, Level);
            float zt = x[t];
            float m = Softmax.Max(x, V, Level);
            double s = SoftCap.ExpSum(x, m, V, Level);
            RowLoss[r] = m + Math.Log(s) - zt;
            if (Grad)
            {
                SoftCap.SoftmaxGrad(x, m, (float)(GradScale / s), Cap, V, Level);
                x[t] -= GradScale * SoftCap.GradFactor(zt, Cap);
            }
        }
    }

    /// <summary>Naive unfused twins: the full [N, V] logits at once, log-softmax in double, one row at a time.</summary>
    public static class Reference
    {
        /// <summary>Unfused <see cref="CrossEntropy.ForwardBackward"/> (allocates; for tests).</summary>
        public static double ForwardBackward(ReadOnlySpan<float> h, PackedWeight wOut, ReadOnlySpan<int> targets, Span<float> dh, float gradScale,
            CrossEntropyWorkspace ws, int N, int C, out int count, float logitSoftCap = 0f)
            => Naive(h, wOut, targets, dh, gradScale, ws, N, C, out count, default, logitSoftCap);

        /// <summary>Unfused <see cref="CrossEntropy.RowLosses"/>.</summary>
        public static double RowLosses(ReadOnlySpan<float> h, PackedWeight wOut, ReadOnlySpan<int> targets, Span<float> losses,
            CrossEntropyWorkspace ws, int N, int C, out int count, float logitSoftCap = 0f)
        {
            Elementwise.CheckLength(losses.Length, N, "losses");
            return Naive(h, wOut, targets, default, 0f, ws, N, C, out count, losses, logitSoftCap);
        }

        private static double Naive(ReadOnlySpan<float> h, PackedWeight wOut, ReadOnlySpan<int> targets, Span<float> dh, float gradScale,
            CrossEntropyWorkspace ws, int N, int C, out int count, Span<float> losses, float cap)
        {
            ArgumentNullException.ThrowIfNull(wOut);
            ArgumentNullException.ThrowIfNull(ws);
            int V = wOut.N;
            Check(h.Length, V, wOut.K, targets, dh.Length, N, C);
            var logits = new float[(long)N * V];
            if (N > 0) MatMul.Forward(h, wOut, logits, N);
            var g = new float[V];
            var z = new double[V];
            double total = 0;
            count = 0;
            for (int n = 0; n < N; n++)
            {
                if (losses.Length != 0) losses[n] = 0;
                if (targets[n] == IgnoreIndex) continue;
                var row = logits.AsSpan(n * V, V);
                // The capped logits in double (cap·tanh(x/cap), derivative 1 − tanh²); the raw logits without a cap.
                for (int v = 0; v < V; v++) z[v] = cap > 0 ? cap * Math.Tanh(row[v] / (double)cap) : row[v];
                double m = double.NegativeInfinity;
                for (int v = 0; v < V; v++) m = Math.Max(m, z[v]);
                double s = 0;
                for (int v = 0; v < V; v++) s += Math.Exp(z[v] - m);
                double lse = m + Math.Log(s);
                double loss = lse - z[targets[n]];
                total += loss;
                count++;
                if (losses.Length != 0) losses[n] = (float)loss;
                if (dh.Length == 0) continue;
                for (int v = 0; v < V; v++)
                {
                    double f = cap > 0 ? 1 - (z[v] / cap) * (z[v] / cap) : 1;
                    g[v] = (float)(gradScale * (Math.Exp(z[v] - lse) - (v == targets[n] ? 1 : 0)) * f);
                }
                MatMul.BackwardInput(g, wOut, dh.Slice(n * C, C), 1);
            }
            return total;
        }
    }
}
