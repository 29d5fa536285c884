// What happens to a sample longer than the cutoff length.
namespace LoraSharp.Training.Data;

/// <summary>Handling of samples longer than the cutoff length.</summary>
public enum ExcessLength
{
    /// <summary>Keep the first cutoff tokens (text-generation-webui's behaviour: the tokenizer truncates).</summary>
    Truncate,

    /// <summary>Leave the sample out (counted in <see cref="DatasetStats.DroppedTooLong"/>).</summary>
    Drop,
}
