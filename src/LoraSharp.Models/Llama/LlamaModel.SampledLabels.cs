// Labels drawn from the model's own next-token distribution, for Sophia-G's Gauss-Newton-Bartlett Hessian estimate
// (Liu et al. 2023): at every position whose shifted target counts in the batch's loss, ŷ ~ softmax(logits), so the
// gradient of the cross-entropy on ŷ is the GNB estimator's ĝ. The forward runs without dropout; logits are made
// in small row chunks (at most ~4 MB live), never [M, V] at once. Each row's draw depends only on (seed, row), so the
// result does not depend on the chunking or the thread count.
// The logits are made as Logits() makes them: the output projection of the final norm, then gemma2's final soft-cap
// (the distribution the loss is taken on).
// Not here: the backward on the sampled labels (ForwardBackward) and the Hessian EMA (Core's Sophia).
using LoraSharp.Core.Kernels;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>
    /// A copy of <paramref name="batch"/> (same ids, mask and packing) whose labels are tokens sampled from the model's
    /// softmax at the positions whose shifted target counts in <paramref name="batch"/>'s loss, −100 elsewhere; so its
    /// <see cref="Batch.TargetCount"/> equals the original's.
    /// </summary>
    public Batch WithSampledLabels(Batch batch, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var acts = Prepare(batch);
        ForwardLayers(acts, training: false, dropoutSeed: 0);
        FinalNormForward(acts);
        int M = acts.M, V = Config.VocabSize, C = Config.HiddenSize, T = batch.T;
        var targets = acts.Targets;
        var labels = new int[M];
        Array.Fill(labels, Batch.IgnoreIndex);
        int chunk = Math.Clamp((1 << 20) / V, 1, 64);
        var logits = new float[chunk * V];
        var xn = acts.XnF;
        for (int m0 = 0; m0 < M; m0 += chunk)
        {
            int rows = Math.Min(chunk, M - m0);
            bool any = false;
            for (int r = 0; r < rows && !any; r++) any = targets[m0 + r] != Batch.IgnoreIndex;
            if (!any) continue;
            MatMul.Forward(xn.Slice(m0 * C, rows * C), Output, logits.AsSpan(0, rows * V), rows);
            if (Config.LogitSoftCap > 0) SoftCap.Forward(logits.AsSpan(0, rows * V), logits.AsSpan(0, rows * V), Config.LogitSoftCap);
            for (int r = 0; r < rows; r++)
            {
                int m = m0 + r;
                if (targets[m] == Batch.IgnoreIndex) continue;
                // target(b, t) = labels[b, t + 1]; a counted target is never at t = T − 1 (Batch.ShiftedTargets).
                if (m % T == T - 1) throw new InvalidOperationException("A counted target at the last position of a row.");
                labels[m + 1] = SampleRow(logits.AsSpan(r * V, V), Uniform(seed, (ulong)m));
            }
        }
        return new Batch(batch.B, batch.T, batch.InputIds, batch.AttentionMask, labels, batch.SequenceIds);
    }

    /// <summary>
    /// The token i with Σ_{j&lt;i} p_j ≤ u·Σp &lt; Σ_{j≤i} p_j, p = exp(logit − max) summed in double (inverse CDF).
    /// </summary>
    public static int SampleRow(ReadOnlySpan<float> logits, double u)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits) if (l > max) max = l;
        double sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - max);
        double target = u * sum, acc = 0;
        int last = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double p = Math.Exp(logits[i] - max);
            if (p <= 0) continue;
            acc += p;
            last = i;
            if (target < acc) return i;
        }
        return last;   // rounding left u·Σp at the very top: the last token with any mass
    }

    // SplitMix64 of (seed, row) to a double in [0, 1) with 53 random bits.
    private static double Uniform(ulong seed, ulong row)
    {
        ulong z = seed + (row + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
