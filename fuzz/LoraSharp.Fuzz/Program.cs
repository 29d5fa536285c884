// lorasharp-fuzz: the parsers' fuzz harness (see fuzz/README.md and docs/reliability.md).
//   list                                   the targets
//   run <target|all> [--inputs N] [--seed S] [--hang-ms M] [--findings DIR]
//                                          in-process mutation fuzzing (coverage-guided once instrumented)
//   repro <target> <file>...               runs saved inputs once each and prints what happened
//   seeds <target> <dir>                  writes the target's seed inputs (afl-fuzz's -i folder)
//   instrument [DIR]                       rewrites DIR's LoraSharp.*.dll with SharpFuzz's AFL instrumentation
//   afl <target>                           the target behind SharpFuzz's AFL fork server (run under afl-fuzz)
// Main touches no LoraSharp type itself: `instrument` must rewrite those assemblies before anything loads them.
using System.Runtime.CompilerServices;

namespace LoraSharp.Fuzz;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.WriteLine("usage: lorasharp-fuzz list | run <target|all> [--inputs N] [--seed S] [--hang-ms M] [--findings DIR] | repro <target> <file>... | seeds <target> <dir> | instrument [DIR] | afl <target>");
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            return args[0] switch
            {
                "instrument" => Instrument(args.Length > 1 ? args[1] : AppContext.BaseDirectory),
                "afl" => Commands.Afl(args),
                "list" => Commands.List(),
                "run" => Commands.Run(args),
                "repro" => Commands.Repro(args),
                "seeds" => Commands.WriteSeeds(args),
                _ => throw new ArgumentException($"unknown command '{args[0]}'; use list, run, repro, seeds, instrument or afl."),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Instrument(string dir)
    {
        var dlls = Directory.GetFiles(dir, "LoraSharp.*.dll").Where(f => !Path.GetFileName(f).Contains("TestSupport", StringComparison.Ordinal)).Order().ToList();
        if (dlls.Count == 0) throw new ArgumentException($"no LoraSharp.*.dll in {dir}.");
        foreach (var dll in dlls)
        {
            SharpFuzz.Fuzzer.Instrument(dll, type => type.StartsWith("LoraSharp.", StringComparison.Ordinal), SharpFuzz.Options.Value);
            Console.WriteLine($"instrumented {dll}");
        }
        return 0;
    }
}
