// Runs a command's body and turns errors into exit codes: a user error (UserErrors.IsExpected: bad option, missing
// or malformed file, bad data) prints one clear line and exits 1; Ctrl+C exits 130; anything else is a bug: one line
// naming it and a log file holding the stack trace, exit code 70 (EX_SOFTWARE), so scripts can tell the two apart.
namespace LoraSharp.Cli.Commands;

internal static class CommandRunner
{
    /// <summary>The exit code of a user error.</summary>
    public const int UserError = 1;

    /// <summary>The exit code of an unexpected failure (a bug), BSD sysexits' EX_SOFTWARE.</summary>
    public const int InternalError = 70;

    public static int Run(TextWriter error, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (App.UserErrors.IsExpected(e))
        {
            error.WriteLine($"error: {App.UserErrors.Unwrap(e).Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("stopped.");
            return 130;
        }
        catch (Exception e)
        {
            string? log = CrashLog.Write(e);
            error.WriteLine($"internal error ({e.GetType().Name}): {e.Message}");
            error.WriteLine(log != null
                ? $"This is a bug in LoraSharp, not in your input. The stack trace is in {log}; please report it with that file."
                : $"This is a bug in LoraSharp, not in your input; the stack trace could not be written to a log, so here it is:{Environment.NewLine}{e}");
            return InternalError;
        }
    }
}
