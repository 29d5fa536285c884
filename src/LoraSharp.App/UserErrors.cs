// Which exceptions are the user's to fix, and so are shown as they are, and which are bugs that deserve a stack trace
// in a log. The user's: UserErrorException (every validation and format error derives from it; Tokenizers' own
// TokenizerFormatException and JinjaException (a chat template that does not parse or render) too, since that assembly
// depends on nothing of ours) and the file system's answers about
// the user's files and disk (missing file, no permission, disk full: IOException, UnauthorizedAccessException).
// Everything else, ArgumentException and InvalidOperationException included, is a bug.
// Not here: how either front end presents them (CliErrorLog, the web's ErrorReporter).
using LoraSharp.Core;

namespace LoraSharp.App;

/// <summary>Classifies exceptions as user errors (message shown) or unexpected failures (logged with their trace).</summary>
public static class UserErrors
{
    /// <summary>True when <paramref name="e"/> describes a problem the user caused and its message says how to fix it.</summary>
    public static bool IsExpected(Exception e) =>
        Unwrap(e) is UserErrorException or Tokenizers.TokenizerFormatException or Tokenizers.Chat.Jinja.JinjaException or IOException or UnauthorizedAccessException;

    /// <summary>
    /// The exception that says what went wrong: a static initializer's failure (a bad LORASHARP_THREADS or
    /// LORASHARP_SIMD is read once, in one) and an AggregateException of one failure stand for their inner exception.
    /// </summary>
    public static Exception Unwrap(Exception e)
    {
        while (true)
        {
            if (e is TypeInitializationException { InnerException: { } inner }) e = inner;
            else if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
            else return e;
        }
    }
}
