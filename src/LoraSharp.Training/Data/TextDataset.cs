// Text datasets: JSON array or JSONL rows {"text": "..."} (other fields ignored), tokenized without BOS, joined
// into one stream with EOS after every row (the model learns where documents end), and cut into chunks of
// cutoff_len tokens (BOS first when the tokenizer adds one) starting every `stride` tokens, like Hugging Face's
// run_clm group_texts with a stride. Chunks cross row boundaries on purpose (that is what concatenation is for);
// every token is trained. The last chunk may be shorter.
using System.Text.Json;
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Builds samples from {"text": ...} rows.</summary>
public static class TextDataset
{
    /// <summary>Reads <paramref name="path"/> (JSON array or JSONL) and chunks the concatenated texts.</summary>
    public static BuiltDataset Build(string path, Tokenizer tokenizer, TextOptions options) =>
        Build(JsonRows.Read(path), path, tokenizer, options);

    /// <summary>Chunks already-read rows; <paramref name="source"/> names them in errors.</summary>
    public static BuiltDataset Build(IReadOnlyList<DatasetRow> rows, string source, Tokenizer tokenizer, TextOptions options)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        SampleEncoder.CheckCutoff(options.CutoffLength, options.ContextLength);
        int bos = tokenizer.AddBos && tokenizer.BosTokenId >= 0 ? tokenizer.BosTokenId : -1;
        int window = options.CutoffLength - (bos >= 0 ? 1 : 0);
        int stride = options.Stride == 0 ? window : options.Stride;
        if (stride < 1 || stride > window)
            throw new ArgumentOutOfRangeException(nameof(options), $"stride is {options.Stride}; it must be between 1 and {window} (the text tokens of a chunk), or 0 for {window}.");
        int eos = tokenizer.EosTokenId;
        var stream = new List<int>();
        foreach (var row in rows)
        {
            if (!row.Value.TryGetProperty(options.TextField, out var t) || t.ValueKind != JsonValueKind.String)
                throw new DatasetException($"a text row needs a string field \"{options.TextField}\"; this row has {JsonRows.Describe(row.Value)}.", source, row.Number, row.Line);
            string text = t.GetString()!;
            if (text.Length == 0) continue;
            stream.AddRange(tokenizer.EncodeToIds(text, addSpecialTokens: false, options.ParseSpecialTokens));
            if (eos >= 0) stream.Add(eos);
        }
        var enc = new SampleEncoder(tokenizer, options.CutoffLength, ExcessLength.Truncate);
        for (int i = 0; i < stream.Count; i += stride)
        {
            int end = Math.Min(i + window, stream.Count);
            int[] ids = bos >= 0 ? [bos, .. stream.GetRange(i, end - i)] : stream.GetRange(i, end - i).ToArray();
            enc.Add(ids, (int[])ids.Clone());
            if (end == stream.Count) break;
        }
        return enc.Finish(source, rows.Count, new Dictionary<string, string> { ["template_type"] = "text" });
    }
}
