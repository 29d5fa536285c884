// Options of chat datasets.
namespace LoraSharp.Training.Data;

/// <summary>Options of <see cref="ChatDataset"/>.</summary>
public sealed record ChatOptions
{
    /// <summary>cutoff_len: the longest sample in tokens.</summary>
    public int CutoffLength { get; init; } = 256;

    /// <summary>The model's context (max_position_embeddings); a longer cutoff is refused. Null: not checked.</summary>
    public int? ContextLength { get; init; }

    /// <summary>What to do with conversations longer than the cutoff.</summary>
    public ExcessLength ExcessLength { get; init; } = ExcessLength.Truncate;

    /// <summary>Let the tokenizer add BOS (a doubled BOS, when the template writes one too, is dropped).</summary>
    public bool AddSpecialTokens { get; init; } = true;

    /// <summary>train_on_inputs: train on every token (system, user, headers too), not only the assistant spans.</summary>
    public bool TrainOnInputs { get; init; }
}
