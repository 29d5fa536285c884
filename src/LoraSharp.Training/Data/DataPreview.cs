// Writes what the model sees for the first N samples: the decoded text, the ids, the pieces, which tokens are
// trained and the trained text, as JSON (default) or as plain text when the path ends in ".txt" (trained spans
// shown between ⟦ and ⟧). The file is written to a temporary name and renamed, so it is complete or absent.
// It does not show padding (that is added per batch).
using System.Text;
using System.Text.Json;
using LoraSharp.Models.Llama;
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>A human-readable sample of the tokenized training data.</summary>
public static class DataPreview
{
    /// <summary>Writes the first <paramref name="count"/> samples to <paramref name="path"/>.</summary>
    /// <param name="path">Output file (.json, or .txt for a plain-text view).</param>
    /// <param name="samples">The samples, e.g. <see cref="BuiltDataset.Samples"/>.</param>
    /// <param name="tokenizer">The tokenizer that made them (for decoding).</param>
    /// <param name="count">How many samples to show.</param>
    public static void Write(string path, IReadOnlyList<TrainingSample> samples, Tokenizer tokenizer, int count = 10)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"count is {count}; it must be 0 or more.");
        int n = Math.Min(count, samples.Count);
        byte[] content = path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) ? Text(samples, tokenizer, n) : Json(samples, tokenizer, n);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        Formats.Durable.WriteFile(full, s => s.Write(content));
    }

    /// <summary>The trained runs of a sample as (start, end) token ranges; a token is trained when its label is not -100.</summary>
    public static List<(int Start, int End)> TrainedRuns(TrainingSample sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var runs = new List<(int, int)>();
        int t = 0;
        while (t < sample.Length)
        {
            if (sample.Labels[t] == Batch.IgnoreIndex) { t++; continue; }
            int s = t;
            while (t < sample.Length && sample.Labels[t] != Batch.IgnoreIndex) t++;
            runs.Add((s, t));
        }
        return runs;
    }

    private static byte[] Json(IReadOnlyList<TrainingSample> samples, Tokenizer tok, int n)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("note", "Labels are unshifted: a token marked trained is a target predicted from the tokens before it; the first token is never a target. Padding is added per batch and not shown.");
            w.WriteNumber("samples_total", samples.Count);
            w.WriteNumber("samples_shown", n);
            w.WriteStartArray("samples");
            for (int i = 0; i < n; i++)
            {
                var s = samples[i];
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteNumber("length", s.Length);
                w.WriteNumber("trained_tokens", s.TrainedTokenCount);
                w.WriteString("text", tok.Decode(s.InputIds));
                w.WriteStartArray("trained_text");
                foreach (var (a, b) in TrainedRuns(s)) w.WriteStringValue(tok.Decode(s.InputIds[a..b]));
                w.WriteEndArray();
                w.WriteStartArray("tokens");
                for (int t = 0; t < s.Length; t++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", s.InputIds[t]);
                    w.WriteString("piece", tok.IdToToken(s.InputIds[t]) ?? "");
                    w.WriteBoolean("trained", s.Labels[t] != Batch.IgnoreIndex);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static byte[] Text(IReadOnlyList<TrainingSample> samples, Tokenizer tok, int n)
    {
        var sb = new StringBuilder();
        sb.Append($"{n} of {samples.Count} samples. Trained tokens are shown between ⟦ and ⟧; padding is added per batch and not shown.\n");
        for (int i = 0; i < n; i++)
        {
            var s = samples[i];
            sb.Append($"\n=== sample {i}: {s.Length} tokens, {s.TrainedTokenCount} trained ===\n");
            int t = 0;
            foreach (var (a, b) in TrainedRuns(s))
            {
                if (a > t) sb.Append(tok.Decode(s.InputIds[t..a]));
                sb.Append('⟦').Append(tok.Decode(s.InputIds[a..b])).Append('⟧');
                t = b;
            }
            if (t < s.Length) sb.Append(tok.Decode(s.InputIds[t..]));
            sb.Append("\n--- ids ---\n").Append(string.Join(' ', s.InputIds));
            sb.Append("\n--- pieces (* = trained) ---\n");
            for (int k = 0; k < s.Length; k++)
            {
                if (k > 0) sb.Append(' ');
                sb.Append(tok.IdToToken(s.InputIds[k])).Append(s.Labels[k] != Batch.IgnoreIndex ? "*" : "");
            }
            sb.Append('\n');
        }
        return new UTF8Encoding(false).GetBytes(sb.ToString());
    }
}
