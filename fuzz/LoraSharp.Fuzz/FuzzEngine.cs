// The in-process fuzz loop for one target: seeds first, then mutations of corpus inputs (the corpus grows with
// inputs that reach new coverage when the assemblies are instrumented). Every input is checked for
//   crash       an exception that is not one of the target's documented rejection types (exact type);
//   allocation  more managed bytes allocated on the calling thread than AllocPerByte x input length + AllocFixed;
//   hang        one input running longer than HangMilliseconds (a watchdog thread notices; the stuck thread is left).
// A process-killing failure (stack overflow) leaves the killing input in the workspace folder, whose path is printed
// at the start. Findings are written to FindingsFolder as <target>-<kind>-<n>.bin with a .txt beside it.
using System.Diagnostics;

namespace LoraSharp.Fuzz;

/// <summary>What one input did wrong.</summary>
public sealed record FuzzFinding(string Target, string Kind, byte[] Input, string Detail)
{
    /// <inheritdoc />
    public override string ToString() => $"{Target}: {Kind}: {Detail}";
}

/// <summary>Counts and findings of one run.</summary>
public sealed record FuzzReport(string Target, long Inputs, long Parsed, long Rejected, int CorpusSize, int Edges,
    long MaxAllocated, TimeSpan Elapsed, IReadOnlyList<FuzzFinding> Findings, bool Hung)
{
    /// <summary>One line for the console and the docs.</summary>
    public override string ToString() =>
        $"{Target,-18} {Inputs,10:N0} inputs {Elapsed.TotalSeconds,7:F1} s {Inputs / Math.Max(1e-9, Elapsed.TotalSeconds),9:N0}/s  " +
        $"parsed {Parsed:N0} rejected {Rejected:N0}  corpus {CorpusSize} edges {Edges}  max alloc {MaxAllocated / 1024.0:N0} KiB  " +
        $"findings {Findings.Count}{(Hung ? " (HANG)" : "")}";
}

/// <summary>Settings of a run.</summary>
public sealed record FuzzOptions
{
    /// <summary>Inputs to run, seeds included.</summary>
    public long Inputs { get; init; } = 10_000;

    /// <summary>Seed of the mutator.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>An input running longer than this is a hang.</summary>
    public int HangMilliseconds { get; init; } = 10_000;

    /// <summary>Where findings are written; null: not written.</summary>
    public string? FindingsFolder { get; init; }

    /// <summary>Stop after this many findings.</summary>
    public int MaxFindings { get; init; } = 20;

    /// <summary>Most inputs kept in the corpus.</summary>
    public int MaxCorpus { get; init; } = 4096;

    /// <summary>Progress lines (every ~10 s); null: silent.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>Runs targets.</summary>
public static class FuzzEngine
{
    /// <summary>Fuzzes <paramref name="target"/>; <paramref name="coverage"/> null makes a private map.</summary>
    public static FuzzReport Run(FuzzTarget target, FuzzOptions options, Coverage? coverage = null)
    {
        FuzzReport? report = null;
        Exception? failure = null;
        var state = new RunState();
        var thread = new Thread(() =>
        {
            try { report = Loop(target, options, coverage, state); }
            catch (Exception e) { failure = e; }
        }, 16 << 20) { IsBackground = true, Name = "fuzz " + target.Name };
        thread.Start();
        while (!thread.Join(100))
        {
            long started = Volatile.Read(ref state.InputStartedTicks);
            if (started != 0 && Stopwatch.GetElapsedTime(started).TotalMilliseconds > options.HangMilliseconds)
            {
                var input = Volatile.Read(ref state.Current) ?? [];
                var hang = new FuzzFinding(target.Name, "hang", input, $"one input ran for more than {options.HangMilliseconds} ms ({input.Length} bytes)");
                Save(options, hang, 0);
                return new FuzzReport(target.Name, state.Inputs, 0, 0, 0, 0, 0, TimeSpan.Zero, [hang], Hung: true);
            }
        }
        if (failure != null) throw new InvalidOperationException($"fuzzing {target.Name} failed outside the target: {failure.Message}", failure);
        return report!;
    }

    /// <summary>Runs one input and classifies it: null when parsed or rejected cleanly, else the finding.</summary>
    public static FuzzFinding? RunOne(FuzzTarget target, byte[] input, FuzzWorkspace workspace, out bool parsed, out long allocated)
    {
        parsed = false;
        long before = GC.GetAllocatedBytesForCurrentThread();
        Exception? error = null;
        try
        {
            target.Run(input, workspace);
            parsed = true;
        }
        catch (Exception e)
        {
            error = e;
        }
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (error != null && !target.IsRejection(error))
            return new FuzzFinding(target.Name, "crash", input, $"{error.GetType().FullName}: {error.Message}\n{error.StackTrace}");
        long bound = target.AllocPerByte * input.Length + target.AllocFixed;
        if (allocated > bound)
            return new FuzzFinding(target.Name, "alloc", input,
                $"allocated {allocated:N0} bytes for a {input.Length:N0}-byte input (bound {target.AllocPerByte} x {input.Length:N0} + {target.AllocFixed:N0} = {bound:N0}); outcome: {(error == null ? "parsed" : error.GetType().Name + ": " + error.Message)}");
        return null;
    }

    private sealed class RunState
    {
        public long InputStartedTicks;
        public byte[]? Current;
        public long Inputs;
    }

    private static FuzzReport Loop(FuzzTarget target, FuzzOptions o, Coverage? sharedCoverage, RunState state)
    {
        var seeds = target.Seeds().Where(s => s.Length <= target.MaxLength).ToList();
        if (seeds.Count == 0) throw new InvalidOperationException($"target {target.Name} has no seeds of at most {target.MaxLength} bytes.");
        var coverage = sharedCoverage ?? new Coverage();
        coverage.ForgetSeen();
        using var ws = new FuzzWorkspace(target.Name);
        var mutator = new Mutator(o.Seed, target.Dictionary, target.MaxLength);
        var corpus = new List<byte[]>(seeds);
        var findings = new List<FuzzFinding>();
        var signatures = new HashSet<string>(StringComparer.Ordinal);
        long parsedCount = 0, rejected = 0, maxAlloc = 0;
        var clock = Stopwatch.StartNew();
        var nextLog = TimeSpan.FromSeconds(10);
        o.Log?.Invoke($"{target.Name}: {seeds.Count} seeds, workspace {ws.Root} (holds the last input if the process dies)");
        try
        {
            for (long i = 0; i < o.Inputs; i++)
            {
                byte[] input = i < seeds.Count ? seeds[(int)i] : mutator.Mutate(corpus[mutator.Below(corpus.Count)], corpus[mutator.Below(corpus.Count)]);
                Volatile.Write(ref state.Current, input);
                coverage.Reset();
                Volatile.Write(ref state.InputStartedTicks, Stopwatch.GetTimestamp());
                var finding = RunOne(target, input, ws, out bool parsed, out long allocated);
                Volatile.Write(ref state.InputStartedTicks, 0);
                state.Inputs = i + 1;
                if (parsed) parsedCount++; else rejected++;
                maxAlloc = Math.Max(maxAlloc, allocated);
                if (coverage.Update() && i >= seeds.Count && corpus.Count < o.MaxCorpus) corpus.Add(input);
                if (finding != null)
                {
                    // One finding per distinct (kind, exception, first frame) so a shallow bug does not flood the folder.
                    string sig = finding.Kind + "|" + string.Join("|", finding.Detail.Split('\n').Where(l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).Take(1).Prepend(finding.Detail.Split(':')[0]));
                    if (signatures.Add(sig))
                    {
                        findings.Add(finding);
                        Save(o, finding, findings.Count);
                        o.Log?.Invoke($"FINDING {finding.Kind} at input {i}: {finding.Detail.Split('\n')[0]}");
                        if (findings.Count >= o.MaxFindings) break;
                    }
                }
                if (o.Log != null && clock.Elapsed > nextLog)
                {
                    nextLog += TimeSpan.FromSeconds(10);
                    o.Log($"{target.Name}: {i + 1:N0} inputs, {(i + 1) / clock.Elapsed.TotalSeconds:N0}/s, corpus {corpus.Count}, edges {coverage.Edges}");
                }
            }
        }
        finally
        {
            if (sharedCoverage == null) coverage.Dispose();
        }
        return new FuzzReport(target.Name, state.Inputs, parsedCount, rejected, corpus.Count, coverage.Edges, maxAlloc, clock.Elapsed, findings, Hung: false);
    }

    private static void Save(FuzzOptions o, FuzzFinding f, int n)
    {
        if (o.FindingsFolder == null) return;
        Directory.CreateDirectory(o.FindingsFolder);
        string stem = Path.Combine(o.FindingsFolder, $"{f.Target}-{f.Kind}-{n}");
        File.WriteAllBytes(stem + ".bin", f.Input);
        File.WriteAllText(stem + ".txt", f.Detail + "\n");
    }
}
