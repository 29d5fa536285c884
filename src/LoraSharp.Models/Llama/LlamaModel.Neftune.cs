// NEFTune (Jain et al. 2023, "NEFTune: Noisy Embeddings Improve Instruction Finetuning"): while training, the input
// embeddings get uniform noise  x += U(-1, 1) · alpha / √(L·d),  L the sequence length, d the hidden size, as
// transformers' neftune_post_forward_hook does. Training forward only: evaluation, generation and Loss see clean
// embeddings. L is each packed sample's own length (a row's T when a batch is not packed), which is what one
// unpadded sample run alone gives in transformers. The noise is a counter-based stream of the micro-batch's dropout
// seed, so a resumed run repeats it exactly. Not here: the noise of a sample padded into a longer batch (transformers
// then uses the padded length), which packed batches never have.
using LoraSharp.Core.Kernels;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>NEFTune's alpha: uniform embedding noise of size alpha/√(L·d) in the training forward; 0 = off.</summary>
    public double NeftuneNoiseAlpha
    {
        get => _neftuneNoiseAlpha;
        set
        {
            if (!(value >= 0) || !double.IsFinite(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "neftune_noise_alpha must be a finite number >= 0 (0 = off).");
            _neftuneNoiseAlpha = value;
        }
    }

    private double _neftuneNoiseAlpha;

    /// <summary>Adds NEFTune noise to the embeddings x [B·T, C] of <paramref name="batch"/> (nothing when alpha is 0).</summary>
    public static void AddNeftuneNoise(Batch batch, Span<float> x, int C, double alpha, ulong seed)
    {
        if (alpha <= 0) return;
        var rng = new CounterRng(seed ^ 0x4E454654554E4531UL);   // "NEFTUNE1": a stream apart from dropout's
        int B = batch.B, T = batch.T;
        var ids = batch.SequenceIds;
        for (int b = 0; b < B; b++)
        {
            int start = 0;
            for (int t = 1; t <= T; t++)
            {
                if (t < T && (ids == null || ids[b * T + t] == ids[b * T + t - 1])) continue;
                // positions start..t-1 are one sample of length L = t - start
                float mag = (float)(alpha / Math.Sqrt((double)(t - start) * C));
                for (int i = (b * T + start) * C, end = (b * T + t) * C; i < end; i++)
                    x[i] += (float)(rng.Next((ulong)i) * (2.0 / 4294967296.0) - 1.0) * mag;
                start = t;
            }
        }
    }
}
