// The one exception type for malformed model files: it names the file, the item (tensor, key, field) and what is
// wrong, so a user can fix the file or the command. A UserErrorException: front ends show its message as it is.
namespace LoraSharp.Formats;

/// <summary>A model, adapter or config file is malformed or unsupported.</summary>
public sealed class ModelFormatException : Core.UserErrorException
{
    /// <summary>The file that was being read.</summary>
    public string FilePath { get; }

    /// <summary>The tensor, key or field at fault (null when the problem is the file as a whole).</summary>
    public string? Item { get; }

    /// <summary>Creates the exception; the message reads "file: item: problem".</summary>
    public ModelFormatException(string filePath, string? item, string problem, Exception? inner = null)
        : base(item == null ? $"{filePath}: {problem}" : $"{filePath}: {item}: {problem}", inner)
    {
        FilePath = filePath;
        Item = item;
    }
}
