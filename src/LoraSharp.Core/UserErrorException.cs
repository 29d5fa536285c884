// The one exception type for problems the user causes and can fix: a bad setting, a file that is missing or not in
// the format it claims, data that does not fit. Its message says what is wrong, where and how to fix it, and front
// ends show it as it is (the CLI prints it, exit code 1; the web UI answers 400). Every other exception is a bug: the
// CLI prints one line and the path of a log with the stack trace (exit code 70), the web UI logs it and answers 500.
// The format-specific exceptions (ModelFormatException, DatasetException, ...) derive from it.
namespace LoraSharp.Core;

/// <summary>A problem in the user's input or settings, with a message that says how to fix it.</summary>
public class UserErrorException : Exception
{
    /// <summary>An error with a message for the user.</summary>
    public UserErrorException(string message) : base(message) { }

    /// <summary>An error with a message for the user and the exception that revealed it.</summary>
    public UserErrorException(string message, Exception? inner) : base(message, inner) { }
}
