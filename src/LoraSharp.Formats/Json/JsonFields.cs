// Typed field access on a JSON object with errors that name the file and the field. Shared by the config readers.
using System.Text.Json;

namespace LoraSharp.Formats.Json;

/// <summary>Reads optional typed fields of a JSON object, throwing <see cref="ModelFormatException"/> on a wrong type.</summary>
internal readonly struct JsonFields(JsonElement obj, string file, string prefix = "")
{
    public JsonElement Object => obj;

    public bool TryGet(string name, out JsonElement e)
    {
        if (obj.TryGetProperty(name, out e) && e.ValueKind != JsonValueKind.Null) return true;
        e = default;
        return false;
    }

    private ModelFormatException Wrong(string name, string expected, JsonElement e)
        => new(file, prefix + name, $"must be {expected}, found {e.ValueKind} {Short(e)}.");

    private static string Short(JsonElement e)
    {
        string s = e.GetRawText();
        return s.Length > 60 ? s[..60] + "..." : s;
    }

    public string? String(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString() : throw Wrong(name, "a string", e);
    }

    public int? Int(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v)) return v;
        // Some exporters write integral floats ("4096.0").
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
        throw Wrong(name, "an integer", e);
    }

    public double? Double(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw Wrong(name, "a number", e);
    }

    public bool? Bool(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw Wrong(name, "true or false", e);
    }

    /// <summary>An int or a list of ints (eos_token_id may be either).</summary>
    public int[]? IntOrInts(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number) return [Int(name)!.Value];
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(name, "an integer or a list of integers", e);
        var list = new List<int>();
        foreach (var x in e.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt32(out int v)) throw Wrong(name, "a list of integers", e);
            list.Add(v);
        }
        return [.. list];
    }

    /// <summary>A list of numbers (LongRoPE's short_factor / long_factor).</summary>
    public double[]? Doubles(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(name, "a list of numbers", e);
        var list = new List<double>();
        foreach (var x in e.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number) throw Wrong(name, "a list of numbers", e);
            list.Add(x.GetDouble());
        }
        return [.. list];
    }

    /// <summary>A string or a list of strings.</summary>
    public string[]? StringOrStrings(string name)
    {
        if (!TryGet(name, out var e)) return null;
        if (e.ValueKind == JsonValueKind.String) return [e.GetString()!];
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(name, "a string or a list of strings", e);
        var list = new List<string>();
        foreach (var x in e.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.String) throw Wrong(name, "a list of strings", e);
            list.Add(x.GetString()!);
        }
        return [.. list];
    }

    public JsonFields? Child(string name)
    {
        if (!TryGet(name, out var e)) return null;
        return e.ValueKind == JsonValueKind.Object ? new JsonFields(e, file, prefix + name + ".") : throw Wrong(name, "an object", e);
    }

    public static JsonDocument ParseFile(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new ModelFormatException(path, null, "is not valid UTF-8 text.");
        try
        {
            var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new ModelFormatException(path, null, "must hold a JSON object.");
            }
            if (JsonStrings.FirstInvalid(doc.RootElement) is { } bad)
            {
                doc.Dispose();
                throw new ModelFormatException(path, bad, "is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair).");
            }
            return doc;
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null, $"is not valid JSON ({e.Message}).", e);
        }
    }
}
