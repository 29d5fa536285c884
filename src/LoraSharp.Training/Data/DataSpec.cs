// Everything that decides the training data, in one record (the data part of training_parameters.json), so a CLI
// or a config file fills one object and TrainingData.Prepare does the rest. Names are webui's in PascalCase.
namespace LoraSharp.Training.Data;

/// <summary>What data to train and evaluate on, and how to cut it.</summary>
public sealed record DataSpec
{
    /// <summary>The training data: a .txt file or folder (raw text), or a .json/.jsonl file.</summary>
    public required string DatasetPath { get; init; }

    /// <summary>The kind; null detects it (<see cref="DatasetDetector"/>).</summary>
    public DatasetKind? Kind { get; init; }

    /// <summary>format: the format file for formatted datasets (a path, or a name looked up in the formats folder).</summary>
    public string? Format { get; init; }

    /// <summary>chat_template for chat datasets: a built-in name (chatml, llama2, llama3, mistral, alpaca, zephyr, phi3), a
    /// .jinja file, or an inline Jinja template; null: the model's own template (<see cref="ModelChatTemplate"/>), else chatml.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>The chat template the model ships (tokenizer_config.json / GGUF), used when <see cref="ChatTemplate"/> is null.</summary>
    public Tokenizers.Chat.ModelChatTemplate? ModelChatTemplate { get; init; }

    /// <summary>train_on_inputs (chat): train on every token, not only the assistant replies.</summary>
    public bool TrainOnInputs { get; init; }

    /// <summary>eval_dataset: a separate validation file of the same kind; null: none (or a split).</summary>
    public string? EvalDatasetPath { get; init; }

    /// <summary>Share of the training samples held out for validation when there is no eval file; 0: none.</summary>
    public double EvalFraction { get; init; }

    /// <summary>Seed of the validation split.</summary>
    public ulong Seed { get; init; }

    /// <summary>cutoff_len.</summary>
    public int CutoffLength { get; init; } = 256;

    /// <summary>The model's context (max_position_embeddings); a longer cutoff is refused.</summary>
    public int? ContextLength { get; init; }

    /// <summary>overlap_len (raw text).</summary>
    public int OverlapLength { get; init; } = 128;

    /// <summary>newline_favor_len (raw text).</summary>
    public int NewlineFavorLength { get; init; } = 128;

    /// <summary>hard_cut_string (raw text).</summary>
    public string HardCutString { get; init; } = "\\n\\n\\n";

    /// <summary>min_chars (raw text).</summary>
    public int MinChars { get; init; }

    /// <summary>Stride of text datasets; 0: no overlap.</summary>
    public int Stride { get; init; }

    /// <summary>add_eos_token (raw text and formatted).</summary>
    public bool AddEosToken { get; init; }

    /// <summary>train_only_after (formatted).</summary>
    public string TrainOnlyAfter { get; init; } = "";

    /// <summary>Samples longer than the cutoff: truncate or drop (formatted and chat).</summary>
    public ExcessLength ExcessLength { get; init; } = ExcessLength.Truncate;

    /// <summary>Pack short samples into cutoff-length sequences (see <see cref="Packing"/> for the attention caveat).</summary>
    public bool Pack { get; init; }
}
