// One preference pair as token ids: the prompt and the two responses. Each sequence the model sees is
// prompt + response; only the response's tokens are targets (the prompt is labelled −100), as TRL's DPOTrainer does.
// Pairs are batched packed: one row holding chosen₀, rejected₀, chosen₁, rejected₁, ..., each its own sample (its own
// positions and attention), so log p of every sequence is what it is run alone, with no pad token computed.
using LoraSharp.Models.Llama;

namespace LoraSharp.Training.Preference;

/// <summary>Prompt, chosen and rejected token ids (the prompt includes BOS; responses include EOS when used).</summary>
public sealed record PreferencePair(int[] Prompt, int[] Chosen, int[] Rejected)
{
    /// <summary>A pair from token ids (copied).</summary>
    public static PreferencePair FromTokens(int[] prompt, int[] chosen, int[] rejected)
    {
        if (chosen.Length == 0 || rejected.Length == 0) throw new ArgumentException("A preference pair needs non-empty chosen and rejected responses.");
        if (prompt.Length == 0) throw new ArgumentException("A preference pair needs a non-empty prompt (at least BOS).");
        return new PreferencePair((int[])prompt.Clone(), (int[])chosen.Clone(), (int[])rejected.Clone());
    }

    /// <summary>Length of the longer sequence (prompt + response).</summary>
    public int LongestSequence => Prompt.Length + Math.Max(Chosen.Length, Rejected.Length);

    /// <summary>Tokens of both sequences.</summary>
    public int TokenCount => 2 * Prompt.Length + Chosen.Length + Rejected.Length;

    /// <summary>One packed row: chosen₀, rejected₀, chosen₁, ... (sample 2i is pair i's chosen, 2i+1 its rejected).</summary>
    public static Batch PackedBatch(IReadOnlyList<PreferencePair> pairs)
    {
        if (pairs.Count == 0) throw new ArgumentException("No preference pairs to batch.");
        int T = pairs.Sum(p => p.TokenCount);
        var ids = new int[T];
        var labels = new int[T];
        var seq = new int[T];
        int at = 0, sample = 0;
        foreach (var p in pairs)
            foreach (var response in new[] { p.Chosen, p.Rejected })
            {
                for (int i = 0; i < p.Prompt.Length; i++, at++) { ids[at] = p.Prompt[i]; labels[at] = Batch.IgnoreIndex; seq[at] = sample; }
                for (int i = 0; i < response.Length; i++, at++) { ids[at] = response[i]; labels[at] = response[i]; seq[at] = sample; }
                sample++;
            }
        return new Batch(1, T, ids, null, labels, seq);
    }
}
