// One tokenized training sequence: input ids and unshifted labels of the same length (Hugging Face convention;
// the model shifts). It does not carry padding or an attention mask: the Batcher adds those.
using LoraSharp.Models.Llama;

namespace LoraSharp.Training.Data;

/// <summary>A tokenized sequence and its labels (-100 = this position is not trained).</summary>
/// <param name="InputIds">Token ids, BOS first when the tokenizer adds one.</param>
/// <param name="Labels">Same length as <paramref name="InputIds"/>: the id itself where the token is a target, -100
/// (<see cref="Batch.IgnoreIndex"/>) where it is not. Labels are unshifted: the model predicts labels[t] from ids[..t].</param>
public sealed record TrainingSample(int[] InputIds, int[] Labels)
{
    /// <summary>Number of tokens.</summary>
    public int Length => InputIds.Length;

    /// <summary>Positions that count in the loss after the causal shift (labels[1..] that are not -100).</summary>
    public int TrainedTokenCount
    {
        get
        {
            int n = 0;
            for (int t = 1; t < Labels.Length; t++) if (Labels[t] != Batch.IgnoreIndex) n++;
            return n;
        }
    }

    /// <summary>A sample trained on every token.</summary>
    public static TrainingSample AllTrained(int[] ids) => new(ids, (int[])ids.Clone());

    /// <summary>Checks that ids and labels have the same length.</summary>
    internal void Validate(int index)
    {
        if (InputIds.Length != Labels.Length)
            throw new ArgumentException($"Sample {index}: input_ids has {InputIds.Length} tokens but labels has {Labels.Length}; they must match.");
    }
}
