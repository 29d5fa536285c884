// A batch of token sequences for training or evaluation, Hugging Face style: input ids, attention mask and
// unshifted labels (-100 = ignored), all [B, T] row-major. Optionally packed: sequence ids [B, T] say which sample
// each position belongs to (one contiguous run per sample); a sample then attends only to itself, its position ids
// restart at 0, and its last token has no target (the next token belongs to another sample). Everything packed
// is derived from the sequence ids, the one record of where samples start.
namespace LoraSharp.Models.Llama;

/// <summary>Token ids, attention mask and labels for B sequences of T positions.</summary>
public sealed class Batch
{
    /// <summary>Label value that excludes a position from the loss (PyTorch ignore_index).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Creates a batch; labels default to the input ids where the mask is 1, -100 elsewhere.</summary>
    /// <param name="B">Rows.</param>
    /// <param name="T">Positions per row.</param>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 for real tokens, 0 for padding; null: all real.</param>
    /// <param name="labels">[B, T] unshifted labels; null: the ids where the mask is 1.</param>
    /// <param name="sequenceIds">[B, T] packed-sample id of every position, non-decreasing along each row; null: one sample per row.</param>
    public Batch(int B, int T, int[] inputIds, byte[]? attentionMask = null, int[]? labels = null, int[]? sequenceIds = null)
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
        if (sequenceIds != null)
        {
            if (sequenceIds.Length != B * T) throw new ArgumentException($"sequence_ids has {sequenceIds.Length} entries but the batch is [{B}, {T}].");
            for (int b = 0; b < B; b++)
                for (int t = 1; t < T; t++)
                    if (sequenceIds[b * T + t] < sequenceIds[b * T + t - 1])
                        throw new ArgumentException($"sequence_ids must be non-decreasing along a row (each packed sample one contiguous run), but row {b} has {sequenceIds[b * T + t - 1]} then {sequenceIds[b * T + t]} at position {t}.");
        }
        SequenceIds = sequenceIds;
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

    /// <summary>
    /// [B, T] packed-sample id of every position (non-decreasing along a row), or null when each row is one sample.
    /// Attention, position ids and the shifted targets all follow from it.
    /// </summary>
    public int[]? SequenceIds { get; }

    /// <summary>True when rows hold several samples (<see cref="SequenceIds"/> is set).</summary>
    public bool IsPacked => SequenceIds != null;

    /// <summary>Position ids [B, T]: 0..T-1 per row, or restarting at 0 where each packed sample starts.</summary>
    public void PositionIds(Span<int> positions)
    {
        for (int b = 0; b < B; b++)
        {
            int p = 0;
            for (int t = 0; t < T; t++, p++)
            {
                if (SequenceIds != null && t > 0 && SequenceIds[b * T + t] != SequenceIds[b * T + t - 1]) p = 0;
                positions[b * T + t] = p;
            }
        }
    }

    /// <summary>The longest packed sample (T without sequence ids): the largest position id + 1.</summary>
    public int LongestSequence
    {
        get
        {
            if (SequenceIds == null) return T;
            int longest = 0;
            for (int b = 0; b < B; b++)
            {
                int start = 0;
                for (int t = 1; t <= T; t++)
                    if (t == T || SequenceIds[b * T + t] != SequenceIds[b * T + t - 1])
                    {
                        longest = Math.Max(longest, t - start);
                        start = t;
                    }
            }
            return longest;
        }
    }

    /// <summary>
    /// Targets after the causal shift: target[b, t] = labels[b, t+1], and -100 at t = T-1 and at the last token of
    /// every packed sample (its next token starts another sample).
    /// </summary>
    public void ShiftedTargets(Span<int> targets)
    {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) targets[b * T + t] = Target(b, t);
    }

    /// <summary>Number of positions that count in the loss (after the shift): the non-ignored entries of <see cref="ShiftedTargets"/>.</summary>
    public int TargetCount
    {
        get
        {
            int n = 0;
            for (int b = 0; b < B; b++)
                for (int t = 0; t < T; t++)
                    if (Target(b, t) != IgnoreIndex) n++;
            return n;
        }
    }

    // The one definition of the shifted target, shared by ShiftedTargets and TargetCount so they always agree.
    private int Target(int b, int t)
    {
        int i = b * T + t;
        if (t == T - 1) return IgnoreIndex;
        if (SequenceIds != null && SequenceIds[i + 1] != SequenceIds[i]) return IgnoreIndex;
        return Labels[i + 1];
    }
}
