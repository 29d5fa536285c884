// Runs a command's body and turns the errors users cause (missing files, bad data, bad options) into one clear
// line on stderr and exit code 1, instead of a stack trace. Programming errors still surface with their trace.
namespace LoraSharp.Cli.Commands;

internal static class CommandRunner
{
    public static int Run(TextWriter error, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (App.UserErrors.IsExpected(e))
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("stopped.");
            return 130;
        }
    }
}
