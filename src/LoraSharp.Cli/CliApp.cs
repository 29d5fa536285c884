// The `lorasharp` command tree. Each verb lives in Commands/<Verb>Command.cs and only parses options and
// presents results; the work is done by use cases in LoraSharp.App. Verbs are added here when they work.
using System.CommandLine;
using LoraSharp.Cli.Commands;

namespace LoraSharp.Cli;

/// <summary>Builds and runs the command line.</summary>
public static class CliApp
{
    /// <summary>The root command with every working verb.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("LoraSharp: LoRA fine-tuning for Llama-family models in pure C#, CPU first.");
        root.Subcommands.Add(SystemCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(PerplexityCommand.Create());
        root.Subcommands.Add(TokenizeCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(MakeDefaultModelCommand.Create());
        root.Subcommands.Add(MergeCommand.Create());
        root.Subcommands.Add(CombineCommand.Create());
        root.Subcommands.Add(ExtractCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(SweepCommand.Create());
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var parse = Build().Parse(args);
        // Verbs run their bodies under CommandRunner; this catches what escapes one anyway (bench, system, a new verb),
        // so every failure gets the same exit codes (1 user error, 70 bug) instead of System.CommandLine's trace dump.
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output != null) config.Output = output;
        if (error != null) config.Error = error;
        return CommandRunner.Run(config.Error, () => parse.Invoke(config));
    }
}
