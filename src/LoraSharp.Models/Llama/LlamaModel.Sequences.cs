// Sequence-level objectives (DPO, IPO, ORPO): the loss is a function of each packed sample's log-probability
//   log p(sample) = Σ_targets log softmax(logits)[target] = −Σ CE   over the sample's target (non-ignored) positions.
// One training forward gives every position's CE and, with scale 1, its gradient with respect to the final hidden
// state; the caller's function turns the per-sample sums into dL/d log p(sample); each position's row of dL/dXn is
// multiplied by −dL/d log p of its sample (a row of dXn depends only on its own position's CE), and the usual
// backward runs. So a sequence-level step costs one forward and one backward like a token-level step, plus one more
// output-projection forward for the per-position losses. AdaptersOff gives the reference model of DPO: the same
// weights with every adapter switched off, no second copy in memory.
// Not here: full fine-tuning (the output projection's own gradient is accumulated inside the fused cross-entropy
// with one scale; refused with a clear error), and the losses themselves (Training.Preference).
using LoraSharp.Core.Kernels;

namespace LoraSharp.Models.Llama;

/// <summary>Turns per-sample log-probabilities (and their target counts) into dL/d log p per sample.</summary>
public delegate void SequenceLossGradient(ReadOnlySpan<double> logProbs, ReadOnlySpan<int> targetCounts, Span<double> gradient);

public sealed partial class LlamaModel
{
    /// <summary>Switches every adapter off until the returned handle is disposed (the base model: DPO's reference).</summary>
    public IDisposable AdaptersOff()
    {
        var switched = new List<Linear>();
        foreach (var layer in Layers)
            foreach (var p in layer.Projections)
                if (!p.AdaptersDisabled)
                {
                    p.AdaptersDisabled = true;
                    switched.Add(p);
                }
        return new Restore(switched);
    }

    private sealed class Restore(List<Linear> switched) : IDisposable
    {
        public void Dispose()
        {
            foreach (var p in switched) p.AdaptersDisabled = false;
            switched.Clear();
        }
    }

    /// <summary>
    /// The samples of <paramref name="batch"/> in order (row by row; each packed run of a sequence id, or each row):
    /// <paramref name="sampleOf"/>[position] = its sample's index. Returns the number of samples.
    /// </summary>
    public static int SampleIndex(Batch batch, Span<int> sampleOf)
    {
        int B = batch.B, T = batch.T, n = -1;
        var ids = batch.SequenceIds;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                if (t == 0 || (ids != null && ids[b * T + t] != ids[b * T + t - 1])) n++;
                sampleOf[b * T + t] = n;
            }
        return n + 1;
    }

    /// <summary>
    /// log p of every sample of <paramref name="batch"/> (evaluation forward: no dropout, no noise) and the number of
    /// target positions each sums over.
    /// </summary>
    public double[] SequenceLogProbs(Batch batch, out int[] targetCounts)
    {
        var losses = PositionLosses(batch, out _);
        return SumPerSample(batch, losses, out targetCounts);
    }

    private double[] SumPerSample(Batch batch, ReadOnlySpan<float> losses, out int[] targetCounts)
    {
        var sampleOf = new int[batch.B * batch.T];
        int n = SampleIndex(batch, sampleOf);
        var targets = new int[batch.B * batch.T];
        batch.ShiftedTargets(targets);
        var sums = new double[n];
        targetCounts = new int[n];
        for (int m = 0; m < sampleOf.Length; m++)
        {
            if (targets[m] == Batch.IgnoreIndex) continue;
            sums[sampleOf[m]] -= losses[m];
            targetCounts[sampleOf[m]]++;
        }
        return sums;
    }

    /// <summary>
    /// Training forward and backward of a loss that depends on the samples' log-probabilities only: calls
    /// <paramref name="lossGradient"/> with log p and the target count of every sample, then adds
    /// dL/dθ = Σ_samples dL/d log p · d log p/dθ into the gradients. Returns the samples' log p.
    /// </summary>
    public double[] ForwardBackwardSequences(Batch batch, ulong dropoutSeed, SequenceLossGradient lossGradient)
    {
        ArgumentNullException.ThrowIfNull(lossGradient);
        if (GradEmbedding != null || GradOutput != null)
            throw new Core.UserErrorException("Sequence-level objectives (dpo, orpo) train adapters; they do not support full fine-tuning or modules_to_save.");
        var acts = Prepare(batch);
        var c = Config;
        int M = acts.M, C = c.HiddenSize, L = Layers.Length;
        AddNeftuneNoise(batch, acts.X[0], C, _neftuneNoiseAlpha, dropoutSeed);
        for (int l = 0; l < L; l++) LayerForward(l, acts, training: true, dropoutSeed);
        FinalNormForward(acts);

        var losses = new float[M];
        CrossEntropy.RowLosses(acts.XnF, Output, acts.Targets, losses, CeWorkspace(), M, C, out _, Config.LogitSoftCap);
        var dXn = acts.DXn;
        dXn.Clear();
        CrossEntropy.ForwardBackward(acts.XnF, Output, acts.Targets, dXn, 1f, CeWorkspace(), M, C, out _, Config.LogitSoftCap);

        var logps = SumPerSample(batch, losses, out var counts);
        var grad = new double[logps.Length];
        lossGradient(logps, counts, grad);
        var sampleOf = new int[M];
        SampleIndex(batch, sampleOf);
        for (int m = 0; m < M; m++)
        {
            // d CE_m / dXn is in row m; log p = −Σ CE, so dL/dCE_m = −dL/d log p.
            float w = (float)-grad[sampleOf[m]];
            System.Numerics.Tensors.TensorPrimitives.Multiply(dXn.Slice(m * C, C), w, dXn.Slice(m * C, C));
        }
        int lowest = LowestTrainableLayer();
        if (lowest <= L) BackwardBelowHead(acts, batch, lowest, dropoutSeed);
        return logps;
    }
}
