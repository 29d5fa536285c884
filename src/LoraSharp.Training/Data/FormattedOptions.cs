// Options of formatted (format-file) datasets, named after text-generation-webui's training tab.
namespace LoraSharp.Training.Data;

/// <summary>Options of <see cref="FormattedDataset"/>.</summary>
public sealed record FormattedOptions
{
    /// <summary>cutoff_len: the longest sample in tokens (webui default 256).</summary>
    public int CutoffLength { get; init; } = 256;

    /// <summary>The model's context (max_position_embeddings); a longer cutoff is refused. Null: not checked.</summary>
    public int? ContextLength { get; init; }

    /// <summary>train_only_after: tokens before the end of this marker are not trained (labels -100). Empty: train on all.
    /// A row whose text lacks the marker is trained on every token (webui) and counted in <see cref="DatasetStats.RowsWithoutMarker"/>.</summary>
    public string TrainOnlyAfter { get; init; } = "";

    /// <summary>add_eos_token: append EOS to each sample (unless it already ends with one).</summary>
    public bool AddEosToken { get; init; }

    /// <summary>What to do with samples longer than the cutoff.</summary>
    public ExcessLength ExcessLength { get; init; } = ExcessLength.Truncate;

    /// <summary>Match special tokens written in the template (&lt;|im_start|&gt;, &lt;s&gt;) as such (Hugging Face does).</summary>
    public bool ParseSpecialTokens { get; init; } = true;
}
