// Packs short samples into sequences of at most cutoff_len tokens, greedily in the given order, with EOS between
// samples that do not already end in one. Labels are kept, except that the first token of every packed sample
// after the first and any EOS inserted here are not trained, so the trained targets equal the unpacked ones.
// Caveat: the model's attention mask is per sequence, so a packed sample attends to the samples packed before it
// (as Hugging Face's ConstantLengthDataset and most trainers do), and its position ids continue from theirs instead
// of starting at 0; separate attention and positions per sample are not offered.
using LoraSharp.Models.Llama;

namespace LoraSharp.Training.Data;

/// <summary>Packs samples into longer sequences.</summary>
public static class Packing
{
    /// <summary>Packs <paramref name="samples"/>; each must be at most <paramref name="cutoffLength"/> tokens.</summary>
    /// <param name="samples">Samples in packing order (shuffle first to mix sources).</param>
    /// <param name="cutoffLength">Longest packed sequence.</param>
    /// <param name="eosId">Separator inserted between samples that do not end in it; -1: no separator.</param>
    public static List<TrainingSample> Pack(IReadOnlyList<TrainingSample> samples, int cutoffLength, int eosId)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (cutoffLength < 2) throw new ArgumentOutOfRangeException(nameof(cutoffLength), $"cutoff_len is {cutoffLength}; it must be at least 2.");
        var packed = new List<TrainingSample>();
        var ids = new List<int>(cutoffLength);
        var labels = new List<int>(cutoffLength);
        for (int s = 0; s < samples.Count; s++)
        {
            var sample = samples[s];
            sample.Validate(s);
            if (sample.Length > cutoffLength)
                throw new ArgumentException($"Sample {s} has {sample.Length} tokens, more than cutoff_len {cutoffLength}; truncate or drop long samples before packing.", nameof(samples));
            if (sample.Length == 0) continue;
            bool sep = ids.Count > 0 && eosId >= 0 && ids[^1] != eosId;
            if (ids.Count > 0 && ids.Count + (sep ? 1 : 0) + sample.Length > cutoffLength)
            {
                packed.Add(new TrainingSample([.. ids], [.. labels]));
                ids.Clear();
                labels.Clear();
                sep = false;
            }
            if (sep) { ids.Add(eosId); labels.Add(Batch.IgnoreIndex); }
            int first = ids.Count;
            ids.AddRange(sample.InputIds);
            labels.AddRange(sample.Labels);
            if (first > 0) labels[first] = Batch.IgnoreIndex;
        }
        if (ids.Count > 0) packed.Add(new TrainingSample([.. ids], [.. labels]));
        return packed;
    }
}
