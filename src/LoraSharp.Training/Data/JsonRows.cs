// Reads dataset rows from a JSON file: either one JSON array of rows ("[{...}, {...}]", Hugging Face
// load_dataset("json") with a list) or JSON Lines (one row per line, blank lines skipped). A UTF-8 BOM is
// allowed. Errors name the file and the 1-based line (and row). It does not stream: a file is read whole.
using System.Text.Json;

namespace LoraSharp.Training.Data;

/// <summary>Rows of a JSON array or JSONL dataset file.</summary>
public static class JsonRows
{
    private static readonly JsonDocumentOptions s_options = new() { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 256 };

    /// <summary>Reads every row of <paramref name="path"/>; each must be a JSON object.</summary>
    public static List<DatasetRow> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) throw new DatasetException("is a folder; a JSON dataset must be one .json or .jsonl file.", path);
        if (!File.Exists(path)) throw new DatasetException("the dataset file does not exist.", path);
        byte[] bytes = File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    /// <summary>Parses rows from UTF-8 bytes; <paramref name="source"/> names them in errors.</summary>
    public static List<DatasetRow> Parse(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        // JsonDocument checks string contents only when they are read; find bad UTF-8 here, with its line.
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            System.Text.Unicode.Utf8.ToUtf16(bytes, new char[bytes.Length], out int valid, out _, replaceInvalidSequences: false);
            throw new DatasetException("the file is not valid UTF-8 text; re-save it as UTF-8.", source, line: LineOf(bytes, valid));
        }
        int first = 0;
        while (first < bytes.Length && bytes[first] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') first++;
        if (first == bytes.Length) return [];
        var rows = bytes[first] == (byte)'[' ? ParseArray(bytes, source) : ParseLines(bytes, source);
        foreach (var r in rows)
        {
            if (r.Value.ValueKind != JsonValueKind.Object)
                throw new DatasetException($"a row must be a JSON object such as {{\"instruction\": \"...\", \"output\": \"...\"}}, not {Kind(r.Value.ValueKind)}.", source, r.Number, r.Line);
            if (Formats.Json.JsonStrings.FirstInvalid(r.Value) is { } bad)
                throw new DatasetException($"{bad} is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair); fix or remove it.", source, r.Number, r.Line);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in r.Value.EnumerateObject())
                if (!names.Add(p.Name))
                    throw new DatasetException($"field \"{p.Name}\" appears twice in the row; keep one.", source, r.Number, r.Line);
        }
        return rows;
    }

    private static List<DatasetRow> ParseArray(ReadOnlySpan<byte> bytes, string source)
    {
        var rows = new List<DatasetRow>();
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 256 });
        int lineAt = 0, line = 1; // newlines are counted incrementally: rows come in file order
        try
        {
            reader.Read(); // StartArray
            while (true)
            {
                if (!reader.Read()) throw new DatasetException("the JSON array is not closed with ']'.", source, line: LineOf(bytes, bytes.Length));
                if (reader.TokenType == JsonTokenType.EndArray) break;
                int at = (int)reader.TokenStartIndex;
                line += bytes[lineAt..at].Count((byte)'\n');
                lineAt = at;
                using var doc = JsonDocument.ParseValue(ref reader);
                rows.Add(new DatasetRow(rows.Count + 1, line, doc.RootElement.Clone()));
            }
            if (reader.Read())
                throw new DatasetException("unexpected text after the closing ']' of the JSON array.", source, line: LineOf(bytes, (int)reader.TokenStartIndex));
        }
        catch (JsonException e)
        {
            throw new DatasetException($"invalid JSON: {Clean(e)}. Fix the JSON, or give one row per line (JSONL).",
                source, rows.Count + 1, (int)(e.LineNumber ?? 0) + 1, e);
        }
        return rows;
    }

    private static List<DatasetRow> ParseLines(ReadOnlySpan<byte> bytes, string source)
    {
        var rows = new List<DatasetRow>();
        int line = 0, start = 0;
        while (start <= bytes.Length)
        {
            int nl = bytes[start..].IndexOf((byte)'\n');
            int end = nl < 0 ? bytes.Length : start + nl;
            line++;
            var text = bytes[start..end];
            if (!text.Trim((ReadOnlySpan<byte>)[(byte)' ', (byte)'\t', (byte)'\r']).IsEmpty)
            {
                try
                {
                    using var doc = JsonDocument.Parse(text.ToArray(), s_options);
                    rows.Add(new DatasetRow(rows.Count + 1, line, doc.RootElement.Clone()));
                }
                catch (JsonException e)
                {
                    string hint = rows.Count == 0 && line == 1
                        ? " A JSON dataset is either one array of rows ([{...}, {...}]) or JSON Lines (one complete object per line)."
                        : "";
                    throw new DatasetException($"invalid JSON: {Clean(e)}.{hint}", source, rows.Count + 1, line, e);
                }
            }
            if (nl < 0) break;
            start = end + 1;
        }
        return rows;
    }

    private static int LineOf(ReadOnlySpan<byte> bytes, int offset) => bytes[..Math.Min(offset, bytes.Length)].Count((byte)'\n') + 1;

    private static string Clean(JsonException e)
    {
        // System.Text.Json appends "Path: $ | LineNumber: 0 | BytePositionInLine: 5."; we report the line ourselves.
        string m = e.Message;
        int cut = m.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0) cut = m.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        string core = (cut > 0 ? m[..cut] : m).TrimEnd('.', ' ');
        return e.BytePositionInLine is long col ? $"{core} at byte {col + 1} of the line" : core;
    }

    internal static string Kind(JsonValueKind k) => k switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "an object",
    };

    /// <summary>The row's fields that hold non-empty (not all-whitespace) strings, in file order (webui's rule).</summary>
    internal static List<(string Name, string Value)> StringFields(JsonElement row)
    {
        var fields = new List<(string, string)>();
        foreach (var p in row.EnumerateObject())
            if (p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { } s && !string.IsNullOrWhiteSpace(s))
                fields.Add((p.Name, s));
        return fields;
    }

    internal static string Describe(JsonElement row)
    {
        var names = row.EnumerateObject().Select(p => p.Value.ValueKind == JsonValueKind.String ? p.Name : $"{p.Name} ({Kind(p.Value.ValueKind)})");
        string list = string.Join(", ", names);
        return list.Length == 0 ? "no fields" : "fields " + list;
    }
}
