// The four kinds of training data LoraSharp reads.
namespace LoraSharp.Training.Data;

/// <summary>Kinds of dataset, each with its builder.</summary>
public enum DatasetKind
{
    /// <summary>A .txt file or a folder of them: <see cref="RawTextDataset"/>.</summary>
    RawText,

    /// <summary>JSON rows rendered by a format file: <see cref="FormattedDataset"/>.</summary>
    Formatted,

    /// <summary>JSON rows with "messages" or "conversations": <see cref="ChatDataset"/>.</summary>
    Chat,

    /// <summary>JSON rows with only a "text" field: <see cref="TextDataset"/>.</summary>
    Text,
}
