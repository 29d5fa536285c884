// The commands of lorasharp-fuzz other than `instrument` (see Program.cs).
using System.Diagnostics;

namespace LoraSharp.Fuzz;

internal static class Commands
{
    public static int List()
    {
        foreach (var t in Targets.All) Console.WriteLine($"{t.Name,-18} {t.Parser}");
        return 0;
    }

    public static int Run(string[] args)
    {
        if (args.Length < 2) throw new ArgumentException("run needs a target name or 'all'.");
        long inputs = 1_000_000;
        ulong seed = 1;
        int hang = 10_000;
        string findings = Path.GetFullPath("fuzz-findings");
        for (int i = 2; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--inputs": inputs = long.Parse(Value().Replace("_", ""), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--seed": seed = ulong.Parse(Value(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--hang-ms": hang = int.Parse(Value(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--findings": findings = Path.GetFullPath(Value()); break;
                default: throw new ArgumentException($"unknown option {args[i]}.");
            }
        }
        var targets = args[1] == "all" ? Targets.All : args[1].Split(',').Select(Targets.Find).ToList();
        using var coverage = new Coverage();
        var reports = new List<FuzzReport>();
        var total = Stopwatch.StartNew();
        foreach (var t in targets)
        {
            var report = FuzzEngine.Run(t, new FuzzOptions
            {
                Inputs = inputs, Seed = seed, HangMilliseconds = hang, FindingsFolder = findings, Log = s => Console.Error.WriteLine(s),
            }, coverage);
            reports.Add(report);
            Console.WriteLine(report);
            foreach (var f in report.Findings) Console.WriteLine("  " + f.ToString().Split('\n')[0]);
            if (report.Hung) break;
        }
        int bad = reports.Sum(r => r.Findings.Count);
        Console.WriteLine($"{reports.Count} targets, {reports.Sum(r => r.Inputs):N0} inputs in {total.Elapsed.TotalSeconds:F0} s, {bad} findings" +
            (bad > 0 ? $" (inputs in {findings})" : "") + (coverage.Edges == 0 ? "; coverage off (run `instrument` on the build output for coverage guidance)" : $"; {coverage.Edges} edges"));
        return bad == 0 ? 0 : 1;
    }

    public static int WriteSeeds(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("seeds needs a target and a folder.");
        var target = Targets.Find(args[1]);
        Directory.CreateDirectory(args[2]);
        var seeds = target.Seeds();
        for (int i = 0; i < seeds.Count; i++) File.WriteAllBytes(Path.Combine(args[2], $"seed-{i}.bin"), seeds[i]);
        Console.WriteLine($"{seeds.Count} seeds of {target.Name} written to {args[2]}");
        return 0;
    }

    public static int Repro(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("repro needs a target and at least one file.");
        var target = Targets.Find(args[1]);
        using var ws = new FuzzWorkspace(target.Name);
        int bad = 0;
        foreach (var file in args[2..])
        {
            var input = File.ReadAllBytes(file);
            var finding = FuzzEngine.RunOne(target, input, ws, out bool parsed, out long allocated);
            if (finding != null) bad++;
            string outcome = finding != null ? finding.ToString() : parsed ? "parsed" : "rejected cleanly: " + Rejection(target, input, ws);
            Console.WriteLine($"{file}: {outcome} ({allocated:N0} bytes allocated)");
        }
        return bad == 0 ? 0 : 1;
    }

    private static string Rejection(FuzzTarget target, byte[] input, FuzzWorkspace ws)
    {
        try { target.Run(input, ws); return "(parsed on the second run)"; }
        catch (Exception e) { return $"{e.GetType().Name}: {e.Message}"; }
    }

    public static int Afl(string[] args)
    {
        if (args.Length < 2) throw new ArgumentException("afl needs a target name.");
        var target = Targets.Find(args[1]);
        var ws = new FuzzWorkspace(target.Name);
        SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
        {
            using var ms = new MemoryStream();
            stream.CopyTo(ms);
            // AFL counts an unhandled exception as a crash: rethrow everything that is not a clean rejection.
            var finding = FuzzEngine.RunOne(target, ms.ToArray(), ws, out _, out _);
            if (finding != null) throw new InvalidOperationException(finding.ToString());
        });
        return 0;
    }
}
