// Guesses the dataset kind from a path, for a CLI that takes one --dataset option: a folder or a .txt file is raw
// text; a JSON file whose first row has "messages" or "conversations" is chat; one whose first row's only non-empty
// text field is "text" is a text dataset; any other JSON is formatted (and needs a format file). It reads the whole
// file once (rows are small next to training); an explicit kind from the user should win over this guess.
namespace LoraSharp.Training.Data;

/// <summary>Dataset kind detection.</summary>
public static class DatasetDetector
{
    /// <summary>The kind of the dataset at <paramref name="path"/>.</summary>
    public static DatasetKind Detect(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path) || path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)) return DatasetKind.RawText;
        var rows = JsonRows.Read(path);
        if (rows.Count == 0) throw new DatasetException("the dataset file holds no rows.", path);
        var first = rows[0].Value;
        if (first.TryGetProperty("messages", out _) || first.TryGetProperty("conversations", out _)) return DatasetKind.Chat;
        var fields = JsonRows.StringFields(first);
        return fields.Count == 1 && fields[0].Name == "text" ? DatasetKind.Text : DatasetKind.Formatted;
    }
}
