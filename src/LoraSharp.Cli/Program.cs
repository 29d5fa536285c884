// Entry point of the `lorasharp` command.
namespace LoraSharp.Cli;

internal static class Program
{
    private static int Main(string[] args) => CliApp.Run(args);
}
