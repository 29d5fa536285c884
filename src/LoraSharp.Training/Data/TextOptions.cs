// Options of "text" JSON datasets (rows {"text": ...}).
namespace LoraSharp.Training.Data;

/// <summary>Options of <see cref="TextDataset"/>.</summary>
public sealed record TextOptions
{
    /// <summary>cutoff_len: tokens per chunk, BOS included.</summary>
    public int CutoffLength { get; init; } = 256;

    /// <summary>The model's context (max_position_embeddings); a longer cutoff is refused. Null: not checked.</summary>
    public int? ContextLength { get; init; }

    /// <summary>Tokens between the starts of consecutive chunks; 0 means a full chunk (no overlap). At most the chunk's
    /// text tokens (cutoff_len, less one when the tokenizer adds BOS), so no token is skipped.</summary>
    public int Stride { get; init; }

    /// <summary>The field holding the text (default "text").</summary>
    public string TextField { get; init; } = "text";

    /// <summary>Match special tokens written in the text as such. Off by default.</summary>
    public bool ParseSpecialTokens { get; init; }
}
