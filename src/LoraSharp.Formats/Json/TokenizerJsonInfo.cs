// A summary of a Hugging Face tokenizer.json for listings: the model type ("BPE", "Unigram", "WordPiece", ...) and
// vocabulary size (model vocab entries plus added tokens with ids beyond them). Does not build a tokenizer.
using System.Text.Json;

namespace LoraSharp.Formats.Json;

/// <summary>Type and vocabulary size of a tokenizer.json.</summary>
/// <param name="ModelType">model.type.</param>
/// <param name="VocabSize">Number of distinct token ids (model vocab and added tokens).</param>
/// <param name="ByteFallback">model.byte_fallback.</param>
public sealed record TokenizerJsonInfo(string ModelType, int VocabSize, bool ByteFallback)
{
    /// <summary>Reads the summary from <paramref name="path"/>.</summary>
    public static TokenizerJsonInfo Read(string path)
    {
        using var doc = JsonFields.ParseFile(path);
        var root = new JsonFields(doc.RootElement, path);
        var model = root.Child("model") ?? throw new ModelFormatException(path, "model", "is missing.");
        string type = model.String("type") ?? "BPE";
        var ids = new HashSet<long>();
        if (model.TryGet("vocab", out var vocab))
        {
            if (vocab.ValueKind == JsonValueKind.Object)
                foreach (var p in vocab.EnumerateObject()) ids.Add(p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out long id) ? id : ids.Count);
            else if (vocab.ValueKind == JsonValueKind.Array) // Unigram: [[piece, score], ...]
                for (int i = 0; i < vocab.GetArrayLength(); i++) ids.Add(i);
        }
        if (root.TryGet("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var t in added.EnumerateArray())
                if (t.ValueKind == JsonValueKind.Object && t.TryGetProperty("id", out var id) && id.TryGetInt64(out long v)) ids.Add(v);
        return new TokenizerJsonInfo(type, ids.Count, model.Bool("byte_fallback") ?? false);
    }
}
