// `lorasharp bench <what>`: runs a benchmark from LoraSharp.Bench on this machine and prints its ratios.
// Each subcommand is one row of Benchmarks; adding a benchmark is a one-line change. Not here: the measuring.
using System.CommandLine;
using LoraSharp.Bench;

namespace LoraSharp.Cli.Commands;

internal static class BenchCommand
{
    /// <summary>(subcommand, description, run): run gets the output writer and returns the exit code.</summary>
    private static readonly (string Name, string Description, Func<TextWriter, int> Run)[] Benchmarks =
    [
        ("kernels", "Measure the fp32 FMA peak, memory bandwidth and each kernel's throughput as a fraction of them.", KernelsBench.Run),
    ];

    public static Command Create()
    {
        var command = new Command("bench", "Run a benchmark on this machine and print its speed relative to the machine's peaks.");
        foreach (var (name, description, run) in Benchmarks)
        {
            var sub = new Command(name, description);
            sub.SetAction(parse => run(parse.InvocationConfiguration.Output));
            command.Subcommands.Add(sub);
        }
        return command;
    }
}
