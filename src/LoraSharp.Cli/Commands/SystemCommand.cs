// `lorasharp system`: what LoraSharp sees of this machine (vector width, threads, memory).
using System.CommandLine;
using LoraSharp.App;

namespace LoraSharp.Cli.Commands;

internal static class SystemCommand
{
    public static Command Create()
    {
        var command = new Command("system", "Show the runtime, vector width, compute threads and memory LoraSharp will use.");
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            foreach (var (name, value) in SystemInfo.Describe()) output.WriteLine($"{name,-16} {value}");
            return 0;
        });
        return command;
    }
}
