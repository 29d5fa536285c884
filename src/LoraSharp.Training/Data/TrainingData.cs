// One call from a DataSpec to training and validation samples: detect the kind, load the format file or chat
// template, build, split off validation or build the eval file, pack if asked. It does not batch (Batcher) or
// write the preview (DataPreview), which need the micro-batch size and the output folder.
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Prepares training data from a <see cref="DataSpec"/>.</summary>
public static class TrainingData
{
    /// <summary>Builds the samples the spec describes.</summary>
    /// <param name="spec">The data settings.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="formatsFolder">Where format names (e.g. "alpaca") are looked up; null: only paths work.</param>
    /// <param name="chatFormatter">Overrides <see cref="DataSpec.ChatTemplate"/> for chat datasets.</param>
    public static PreparedData Prepare(DataSpec spec, Tokenizer tokenizer, string? formatsFolder = null, IChatFormatter? chatFormatter = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (spec.EvalDatasetPath is not null && spec.EvalFraction > 0)
            throw new DatasetException("Give either an eval dataset file or an eval fraction, not both.");
        var kind = spec.Kind ?? DatasetDetector.Detect(spec.DatasetPath);
        FormatFile? format = null;
        if (kind == DatasetKind.Formatted)
        {
            if (string.IsNullOrWhiteSpace(spec.Format))
                throw new DatasetException($"{spec.DatasetPath} is a formatted dataset and needs a format file (e.g. alpaca, ChatML, vicuna, or a path to a *-format.json).");
            format = FormatFile.Resolve(spec.Format, formatsFolder);
        }
        else if (!string.IsNullOrWhiteSpace(spec.Format))
            throw new DatasetException($"A format file ({spec.Format}) was given but {spec.DatasetPath} is a {kind} dataset; format files apply to formatted datasets only.");
        IChatFormatter? chat = kind == DatasetKind.Chat
            ? chatFormatter ?? (spec.ChatTemplate is null ? new ChatMLFormatter() : ChatTemplateFormatter.FromName(spec.ChatTemplate, tokenizer))
            : null;

        var train = Build(spec.DatasetPath, kind, spec, tokenizer, format, chat);
        IReadOnlyList<TrainingSample> trainSamples = train.Samples, evalSamples = [];
        if (spec.EvalDatasetPath is not null) evalSamples = Build(spec.EvalDatasetPath, kind, spec, tokenizer, format, chat).Samples;
        else if (spec.EvalFraction > 0 && trainSamples.Count < 2)
            throw new DatasetException($"holds {trainSamples.Count} sample(s), too few to hold out a validation share of {spec.EvalFraction:0.##}; give more data, a separate eval dataset, or eval_split 0.", spec.DatasetPath);
        else if (spec.EvalFraction > 0) (trainSamples, evalSamples) = DatasetSplit.Split(trainSamples, spec.EvalFraction, spec.Seed);
        if (spec.Pack)
        {
            int eos = tokenizer.EosTokenId;
            trainSamples = Packing.Pack(trainSamples, spec.CutoffLength, eos);
            if (evalSamples.Count > 0) evalSamples = Packing.Pack(evalSamples, spec.CutoffLength, eos);
        }
        return new PreparedData(kind, trainSamples, evalSamples, train.Stats, train.Template);
    }

    private static BuiltDataset Build(string path, DatasetKind kind, DataSpec s, Tokenizer tok, FormatFile? format, IChatFormatter? chat) => kind switch
    {
        DatasetKind.RawText => RawTextDataset.Build(path, tok, new RawTextOptions
        {
            CutoffLength = s.CutoffLength, ContextLength = s.ContextLength, OverlapLength = s.OverlapLength,
            NewlineFavorLength = s.NewlineFavorLength, HardCutString = s.HardCutString, MinChars = s.MinChars, AddEosToken = s.AddEosToken,
        }),
        DatasetKind.Formatted => FormattedDataset.Build(path, format!, tok, new FormattedOptions
        {
            CutoffLength = s.CutoffLength, ContextLength = s.ContextLength, TrainOnlyAfter = s.TrainOnlyAfter,
            AddEosToken = s.AddEosToken, ExcessLength = s.ExcessLength,
        }),
        DatasetKind.Chat => ChatDataset.Build(path, chat!, tok, new ChatOptions
        {
            CutoffLength = s.CutoffLength, ContextLength = s.ContextLength, ExcessLength = s.ExcessLength,
        }),
        DatasetKind.Text => TextDataset.Build(path, tok, new TextOptions
        {
            CutoffLength = s.CutoffLength, ContextLength = s.ContextLength, Stride = s.Stride,
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown dataset kind."),
    };
}
