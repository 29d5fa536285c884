// Which exceptions are the user's to fix (a missing file, bad data, a bad setting, a job already running) and so
// may be shown as they are, and which are bugs that deserve a log entry instead. Shared by the CLI and the web UI.
// Not here: how either front end presents them.
namespace LoraSharp.App;

/// <summary>Classifies exceptions as user errors (message shown) or unexpected failures.</summary>
public static class UserErrors
{
    /// <summary>True when <paramref name="e"/> describes a problem the user caused and its message says how to fix it.</summary>
    public static bool IsExpected(Exception e) =>
        e is IOException or InvalidDataException or ArgumentException or NotSupportedException or FormatException
            or UnauthorizedAccessException or InvalidOperationException or Training.Data.DatasetException
            or Training.TrainingDivergedException;
}
