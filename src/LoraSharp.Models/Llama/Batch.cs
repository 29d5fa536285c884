// A batch of token sequences for training or evaluation, Hugging Face style: input ids, attention mask and
// unshifted labels (-100 = ignored), all [B, T] row-major.
namespace LoraSharp.Models.Llama;

/// <summary>Token ids, attention mask and labels for B sequences of T positions.</summary>
public sealed class Batch
{
    /// <summary>Label value that excludes a position from the loss (PyTorch ignore_index).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Creates a batch; labels default to the input ids where the mask is 1, -100 elsewhere.</summary>
    public Batch(int B, int T, int[] inputIds, byte[]? attentionMask = null, int[]? labels = null)
    {
        if (B <= 0 || T <= 0) throw new ArgumentException($"Batch shape [{B}, {T}] must be positive.");
        if (inputIds.Length != B * T) throw new ArgumentException($"input_ids has {inputIds.Length} ids but the batch is [{B}, {T}].");
        attentionMask ??= Enumerable.Repeat((byte)1, B * T).ToArray();
        if (attentionMask.Length != B * T) throw new ArgumentException($"attention_mask has {attentionMask.Length} entries but the batch is [{B}, {T}].");
        if (labels == null)
        {
            labels = new int[B * T];
            for (int i = 0; i < labels.Length; i++) labels[i] = attentionMask[i] != 0 ? inputIds[i] : IgnoreIndex;
        }
        if (labels.Length != B * T) throw new ArgumentException($"labels has {labels.Length} entries but the batch is [{B}, {T}].");
        this.B = B;
        this.T = T;
        InputIds = inputIds;
        AttentionMask = attentionMask;
        Labels = labels;
    }

    /// <summary>Sequences.</summary>
    public int B { get; }

    /// <summary>Positions per sequence.</summary>
    public int T { get; }

    /// <summary>[B, T] token ids.</summary>
    public int[] InputIds { get; }

    /// <summary>[B, T] 1 for real tokens, 0 for padding.</summary>
    public byte[] AttentionMask { get; }

    /// <summary>[B, T] unshifted labels; -100 = ignored.</summary>
    public int[] Labels { get; }

    /// <summary>Targets after the causal shift: target[b, t] = labels[b, t+1], and -100 at t = T-1.</summary>
    public void ShiftedTargets(Span<int> targets)
    {
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T - 1; t++) targets[b * T + t] = Labels[b * T + t + 1];
            targets[b * T + T - 1] = IgnoreIndex;
        }
    }

    /// <summary>Number of positions that count in the loss (after the shift).</summary>
    public int TargetCount
    {
        get
        {
            int n = 0;
            for (int b = 0; b < B; b++)
                for (int t = 1; t < T; t++)
                    if (Labels[b * T + t] != IgnoreIndex) n++;
            return n;
        }
    }
}
