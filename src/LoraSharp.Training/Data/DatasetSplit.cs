// Splits samples into training and validation sets by a seeded shuffle: the validation set is a fixed fraction,
// chosen the same way for the same seed on every machine. It does not read a separate validation file (build that
// file with the same builder instead).
namespace LoraSharp.Training.Data;

/// <summary>Seeded train/validation split.</summary>
public static class DatasetSplit
{
    /// <summary>
    /// Moves round(fraction × n) samples (at least 1, and leaving at least 1) chosen by a seeded shuffle into the
    /// validation set; both sets keep the original order.
    /// </summary>
    /// <param name="samples">All samples.</param>
    /// <param name="fraction">Share for validation, in (0, 1).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    public static (List<TrainingSample> Train, List<TrainingSample> Eval) Split(IReadOnlyList<TrainingSample> samples, double fraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (!(fraction > 0 && fraction < 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), $"The validation fraction is {fraction}; it must be between 0 and 1 (e.g. 0.1), exclusive.");
        if (samples.Count < 2)
            throw new DatasetException($"Cannot split {samples.Count} sample(s) into training and validation sets; give more data or a separate validation file.");
        int nEval = Math.Clamp((int)Math.Round(fraction * samples.Count, MidpointRounding.AwayFromZero), 1, samples.Count - 1);
        var order = new int[samples.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        new DataRng(seed).Shuffle(order);
        var isEval = new bool[samples.Count];
        for (int i = 0; i < nEval; i++) isEval[order[i]] = true;
        var train = new List<TrainingSample>(samples.Count - nEval);
        var eval = new List<TrainingSample>(nEval);
        for (int i = 0; i < samples.Count; i++) (isEval[i] ? eval : train).Add(samples[i]);
        return (train, eval);
    }
}
