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
        IChatFormatter? chat = kind == DatasetKind.Chat ? chatFormatter ?? ResolveChatFormatter(spec, tokenizer) : null;

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

    /// <summary>
    /// The chat formatter of a spec: chat_template as a built-in name, a .jinja file or an inline Jinja template;
    /// without one, the model's own template; without that, ChatML.
    /// </summary>
    public static IChatFormatter ResolveChatFormatter(DataSpec spec, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(tokenizer);
        string? t = string.IsNullOrWhiteSpace(spec.ChatTemplate) ? null : spec.ChatTemplate.Trim();
        string? bos = tokenizer.IdToToken(tokenizer.BosTokenId), eos = tokenizer.IdToToken(tokenizer.EosTokenId);
        if (t == null)
        {
            if (spec.ModelChatTemplate is { } own) return new JinjaChatFormatter(own.Parse(), "model:" + own.Origin);
            return new ChatMLFormatter();
        }
        if (Tokenizers.Chat.ChatTemplate.Names.Contains(t.ToLowerInvariant().Replace("-", "").Replace("_", "")))
            return ChatTemplateFormatter.FromName(t, tokenizer);
        if (t.Contains("{{", StringComparison.Ordinal) || t.Contains("{%", StringComparison.Ordinal))
            return new JinjaChatFormatter(ParseJinja(t, "chat_template", bos, eos), "inline");
        if (File.Exists(t))
            return new JinjaChatFormatter(ParseJinja(File.ReadAllText(t), t, bos, eos), Path.GetFileName(t));
        throw new DatasetException($"chat_template '{t}' is neither a known template ({string.Join(", ", Tokenizers.Chat.ChatTemplate.Names)}), " +
            "nor an existing .jinja file, nor a Jinja template text. Leave it empty to use the model's own chat template.");
    }

    private static Tokenizers.Chat.JinjaChatTemplate ParseJinja(string source, string where, string? bos, string? eos)
    {
        try { return new Tokenizers.Chat.JinjaChatTemplate(source, bos, eos); }
        catch (Tokenizers.Chat.Jinja.JinjaException e) { throw new DatasetException($"chat_template {where}: {e.Message}", inner: e); }
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
            CutoffLength = s.CutoffLength, ContextLength = s.ContextLength, ExcessLength = s.ExcessLength, TrainOnInputs = s.TrainOnInputs,
        }),
        DatasetKind.Text => TextDataset.Build(path, tok, new TextOptions
        {
            CutoffLength = s.CutoffLength, ContextLength = s.ContextLength, Stride = s.Stride,
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown dataset kind."),
    };
}
