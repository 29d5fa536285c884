// Shared steps of every dataset builder: tokenize with character offsets (dropping a doubled BOS when a template
// writes <s> and the tokenizer adds one too, as webui does), label tokens from character spans, apply the cutoff
// (truncate or drop), and count what happened. It does not read files.
using LoraSharp.Models.Llama;
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Tokenization, labelling and length handling shared by the builders.</summary>
internal sealed class SampleEncoder(Tokenizer tokenizer, int cutoffLength, ExcessLength excess)
{
    public readonly List<TrainingSample> Samples = [];
    public int Truncated, DroppedTooLong, DroppedNoTrained;

    /// <summary>Tokens of <paramref name="text"/> with offsets; a BOS BOS start loses one BOS.</summary>
    public List<EncodedToken> Encode(string text, bool addSpecialTokens, bool parseSpecialTokens)
    {
        var tokens = new List<EncodedToken>(tokenizer.EncodeToTokens(text, addSpecialTokens, parseSpecialTokens));
        int bos = tokenizer.BosTokenId;
        if (bos >= 0 && tokens.Count >= 2 && tokens[0].Id == bos && tokens[1].Id == bos) tokens.RemoveAt(0);
        return tokens;
    }

    /// <summary>Labels: the id where <paramref name="trained"/> says the token is a target, -100 elsewhere.</summary>
    public static int[] Label(List<EncodedToken> tokens, Func<EncodedToken, bool> trained)
    {
        var labels = new int[tokens.Count];
        for (int i = 0; i < labels.Length; i++) labels[i] = trained(tokens[i]) ? tokens[i].Id : Batch.IgnoreIndex;
        return labels;
    }

    /// <summary>Applies the cutoff and keeps the sample when some token is still trained.</summary>
    public void Add(int[] ids, int[] labels)
    {
        if (ids.Length > cutoffLength)
        {
            if (excess == ExcessLength.Drop) { DroppedTooLong++; return; }
            ids = ids[..cutoffLength];
            labels = labels[..cutoffLength];
            Truncated++;
        }
        var sample = new TrainingSample(ids, labels);
        if (sample.TrainedTokenCount == 0) { DroppedNoTrained++; return; }
        Samples.Add(sample);
    }

    /// <summary>The build result; throws when nothing is left, naming what filtered the rows out.</summary>
    public BuiltDataset Finish(string source, int rows, IReadOnlyDictionary<string, string> template,
        int skippedShort = 0, int rowsWithoutMarker = 0, string? shortBlockHint = null)
    {
        long tokens = 0, trained = 0;
        foreach (var s in Samples) { tokens += s.Length; trained += s.TrainedTokenCount; }
        var stats = new DatasetStats
        {
            Rows = rows, Samples = Samples.Count, Tokens = tokens, TrainedTokens = trained, Truncated = Truncated,
            DroppedTooLong = DroppedTooLong, DroppedNoTrainedTokens = DroppedNoTrained, SkippedShortBlocks = skippedShort,
            RowsWithoutMarker = rowsWithoutMarker,
        };
        if (Samples.Count == 0)
        {
            var why = new List<string>();
            if (rows == 0) why.Add("the file holds no rows or text");
            if (skippedShort > 0) why.Add($"{skippedShort} block(s) were empty or not longer than min_chars{shortBlockHint}");
            if (DroppedTooLong > 0) why.Add($"{DroppedTooLong} sample(s) were longer than cutoff_len {cutoffLength} and excess length is 'drop' (raise cutoff_len or use 'truncate')");
            if (DroppedNoTrained > 0) why.Add($"{DroppedNoTrained} sample(s) had no trained token left within cutoff_len {cutoffLength} (a train_only_after marker or the assistant turns lie past the cutoff, or the sample is a single token)");
            throw new DatasetException($"the dataset is empty after filtering ({rows} row(s) read): {string.Join("; ", why)}.", source);
        }
        return new BuiltDataset(Samples, stats, template);
    }

    /// <summary>Checks cutoff_len against the model's context.</summary>
    public static void CheckCutoff(int cutoffLength, int? contextLength)
    {
        if (cutoffLength < 2)
            throw new ArgumentOutOfRangeException(nameof(cutoffLength), $"cutoff_len is {cutoffLength}; it must be at least 2 tokens (one input, one target).");
        if (contextLength is int ctx && cutoffLength > ctx)
            throw new DatasetException(
                $"cutoff_len {cutoffLength} is longer than the model's context of {ctx} tokens (max_position_embeddings); set cutoff_len to {ctx} or less.");
    }
}
