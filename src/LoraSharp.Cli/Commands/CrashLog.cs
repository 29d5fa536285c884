// Where the CLI keeps the stack trace of an unexpected error: LORASHARP_LOG_DIR, else $XDG_STATE_HOME/lorasharp/logs,
// else ~/.local/state/lorasharp/logs (the temp folder when there is no home), one file per error.
namespace LoraSharp.Cli.Commands;

internal static class CrashLog
{
    /// <summary>The folder that holds the logs.</summary>
    public static string Folder()
    {
        if (Environment.GetEnvironmentVariable("LORASHARP_LOG_DIR") is { Length: > 0 } dir) return dir;
        string? state = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        if (string.IsNullOrEmpty(state))
        {
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            state = string.IsNullOrEmpty(home) ? Path.GetTempPath() : Path.Combine(home, ".local", "state");
        }
        return Path.Combine(state, "lorasharp", "logs");
    }

    /// <summary>Writes <paramref name="e"/> with the command line and runtime to a new log file; its path, or null when writing failed.</summary>
    public static string? Write(Exception e)
    {
        try
        {
            string folder = Folder();
            Directory.CreateDirectory(folder);
            string path = Path.Combine(folder, $"error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.log");
            File.WriteAllText(path,
                $"time: {DateTimeOffset.UtcNow:u}{Environment.NewLine}" +
                $"command: lorasharp {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}{Environment.NewLine}" +
                $"runtime: {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription} on {System.Runtime.InteropServices.RuntimeInformation.OSDescription}{Environment.NewLine}" +
                $"version: {typeof(CrashLog).Assembly.GetName().Version}{Environment.NewLine}{Environment.NewLine}{e}{Environment.NewLine}");
            return path;
        }
        catch (Exception)
        {
            return null;
        }
    }
}
