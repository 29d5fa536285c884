// Options of raw-text datasets, named after text-generation-webui's training tab ("Raw text file" section).
namespace LoraSharp.Training.Data;

/// <summary>Options of <see cref="RawTextDataset"/>.</summary>
public sealed record RawTextOptions
{
    /// <summary>cutoff_len: tokens per chunk, BOS included (webui default 256).</summary>
    public int CutoffLength { get; init; } = 256;

    /// <summary>The model's context (max_position_embeddings); a longer cutoff is refused. Null: not checked.</summary>
    public int? ContextLength { get; init; }

    /// <summary>overlap_len: tokens shared by consecutive chunks; chunks start every cutoff_len - overlap_len tokens (webui default 128).</summary>
    public int OverlapLength { get; init; } = 128;

    /// <summary>newline_favor_len: a chunk drops its text before the first newline when that newline lies within this many
    /// characters of its start, and its text after the last newline when that lies within this many characters of its end
    /// (webui's cut_chunk_for_newline; default 128; 0 turns it off).</summary>
    public int NewlineFavorLength { get; init; } = 128;

    /// <summary>hard_cut_string: the text is split at this string first and no chunk spans it; "\n" written as two
    /// characters (backslash, n) means a newline, as in webui's text box (default three newlines). Empty: no hard cuts.</summary>
    public string HardCutString { get; init; } = "\\n\\n\\n";

    /// <summary>min_chars: hard-cut blocks whose trimmed text has this many characters or fewer are ignored (webui's
    /// "Ignore small blocks"; default 0, which skips only blank blocks).</summary>
    public int MinChars { get; init; }

    /// <summary>add_eos_token: end each hard-cut block with EOS (the chunk holding the block's end then ends with EOS).</summary>
    public bool AddEosToken { get; init; }

    /// <summary>Match special tokens written in the text (&lt;s&gt;) as such. Off by default: raw text is plain text.</summary>
    public bool ParseSpecialTokens { get; init; }
}
