// Formatted datasets (webui "Formatted Dataset"): JSON array or JSONL rows, each rendered to text by a format file,
// tokenized with BOS as the tokenizer adds it, optionally EOS appended, and trained either on every token or only
// on tokens that start at or after the end of the train_only_after marker. The marker is found in the rendered text
// and turned into token positions through the tokenizer's character offsets (webui instead tokenizes the two halves
// separately, which can tokenize the seam differently from the whole text the model later sees).
// A token straddling the marker's end is not trained.
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Builds samples from a JSON dataset and a format file.</summary>
public static class FormattedDataset
{
    /// <summary>Reads <paramref name="path"/> (JSON array or JSONL) and renders every row with <paramref name="format"/>.</summary>
    public static BuiltDataset Build(string path, FormatFile format, Tokenizer tokenizer, FormattedOptions options)
    {
        ArgumentNullException.ThrowIfNull(format);
        return Build(JsonRows.Read(path), path, format, tokenizer, options);
    }

    /// <summary>Renders already-read rows; <paramref name="source"/> names them in errors.</summary>
    public static BuiltDataset Build(IReadOnlyList<DatasetRow> rows, string source, FormatFile format, Tokenizer tokenizer, FormattedOptions options)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        SampleEncoder.CheckCutoff(options.CutoffLength, options.ContextLength);
        if (options.AddEosToken && tokenizer.EosTokenId < 0)
            throw new DatasetException("add_eos_token is set but the tokenizer has no EOS token; turn add_eos_token off.");
        var enc = new SampleEncoder(tokenizer, options.CutoffLength, options.ExcessLength);
        string marker = options.TrainOnlyAfter ?? "";
        int withoutMarker = 0;
        foreach (var row in rows)
        {
            string text = format.Render(row, source);
            var tokens = enc.Encode(text, addSpecialTokens: true, options.ParseSpecialTokens);
            int trainFrom = 0;
            if (marker.Length > 0)
            {
                int at = text.IndexOf(marker, StringComparison.Ordinal);
                if (at < 0) withoutMarker++;
                else trainFrom = at + marker.Length;
            }
            int[] labels = SampleEncoder.Label(tokens, t => t.Index >= trainFrom);
            int[] ids = tokens.Select(t => t.Id).ToArray();
            if (options.AddEosToken && (ids.Length == 0 || ids[^1] != tokenizer.EosTokenId))
            {
                ids = [.. ids, tokenizer.EosTokenId];
                labels = [.. labels, tokenizer.EosTokenId];
            }
            enc.Add(ids, labels);
        }
        return enc.Finish(source, rows.Count, format.TrainingPrompt(), rowsWithoutMarker: withoutMarker);
    }
}
