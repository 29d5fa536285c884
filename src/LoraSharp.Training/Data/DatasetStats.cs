// Counts gathered while building a dataset, for the summary printed before training and for the message of the
// "empty after filtering" error. Plain numbers, no behaviour.
namespace LoraSharp.Training.Data;

/// <summary>What a dataset build read, kept and left out.</summary>
public sealed record DatasetStats
{
    /// <summary>Rows read (formatted/chat/text datasets) or hard-cut blocks found (raw text).</summary>
    public int Rows { get; init; }

    /// <summary>Samples produced.</summary>
    public int Samples { get; init; }

    /// <summary>Tokens in all samples.</summary>
    public long Tokens { get; init; }

    /// <summary>Tokens that count in the loss (after the shift).</summary>
    public long TrainedTokens { get; init; }

    /// <summary>Samples cut to the cutoff length.</summary>
    public int Truncated { get; init; }

    /// <summary>Samples left out because they were longer than the cutoff (excess length "drop").</summary>
    public int DroppedTooLong { get; init; }

    /// <summary>Samples left out because no token in them is trained (e.g. the train_only_after marker lies past the cutoff).</summary>
    public int DroppedNoTrainedTokens { get; init; }

    /// <summary>Raw-text blocks skipped because they were empty or not longer than min_chars.</summary>
    public int SkippedShortBlocks { get; init; }

    /// <summary>Formatted rows whose rendered text did not contain the train_only_after marker (trained on every token, as webui does).</summary>
    public int RowsWithoutMarker { get; init; }
}
