// The error every dataset reader and builder throws for bad input: it names the file, the row (1-based) and the
// line (1-based) where known, and its message says how to fix the problem. It is not used for programming errors
// (null arguments, out-of-range options passed by code), which stay ArgumentExceptions.
namespace LoraSharp.Training.Data;

/// <summary>A dataset or format file that cannot be used, with the place where the problem is.</summary>
public sealed class DatasetException : Core.UserErrorException
{
    /// <summary>Creates the exception; the message is prefixed with "file, row R, line L: ".</summary>
    public DatasetException(string message, string? filePath = null, int? row = null, int? line = null, Exception? inner = null)
        : base(Prefix(filePath, row, line) + message, inner)
    {
        FilePath = filePath;
        Row = row;
        Line = line;
    }

    /// <summary>The file, when the problem is in one.</summary>
    public string? FilePath { get; }

    /// <summary>The 1-based row (JSON array element or JSONL record), when known.</summary>
    public int? Row { get; }

    /// <summary>The 1-based line in the file, when known.</summary>
    public int? Line { get; }

    private static string Prefix(string? file, int? row, int? line)
    {
        var parts = new List<string>(3);
        if (file is not null) parts.Add(file);
        if (row is not null) parts.Add($"row {row}");
        if (line is not null) parts.Add($"line {line}");
        return parts.Count == 0 ? "" : string.Join(", ", parts) + ": ";
    }
}
