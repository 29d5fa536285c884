// `lorasharp bench kernels`: the machine's peaks, then every kernel benchmark as a ratio of them, then a summary.
// Sections run in order; a new kernel family adds one line to Sections. Not here: command-line parsing (the CLI).
using System.Diagnostics;
using LoraSharp.Core;
using LoraSharp.Core.Threading;

namespace LoraSharp.Bench;

/// <summary>What every kernel section gets: the measured peaks and where to print.</summary>
/// <param name="FmaPeakGFlops">fp32 FMA peak over all compute threads.</param>
/// <param name="Bandwidth">Memory bandwidth.</param>
/// <param name="Output">Where lines go.</param>
/// <param name="Summary">Lines each section adds for the summary at the end.</param>
public sealed record KernelsBenchContext(double FmaPeakGFlops, Bandwidth Bandwidth, TextWriter Output, List<string> Summary);

/// <summary>Runs the kernel benchmarks.</summary>
public static class KernelsBench
{
    /// <summary>Kernel sections, in order. To add one: one line (name, method taking the context).</summary>
    public static readonly (string Name, Action<KernelsBenchContext> Run)[] Sections =
    [
        ("matmul", MatMulSection),
        ("stored-weight matmul", c => StoredMatMulBench.Run(c.Output)),
        ("elementwise", c => ElementwiseBench.Run(c.Output)),
        ("attention", c => AttentionBench.Run(c.Output)),
    ];

    /// <summary>Measures peaks and runs every section (or only the one named <paramref name="only"/>); returns 0.</summary>
    public static int Run(TextWriter output) => Run(output, null);

    /// <inheritdoc cref="Run(TextWriter)"/>
    public static int Run(TextWriter output, string? only)
    {
        var clock = Stopwatch.StartNew();
        output.WriteLine(BenchInfo.Header());
        output.WriteLine($"Kernel benchmarks: {Threads.Count} threads, SIMD {Simd.Level}. Shared machines give noisy numbers: run twice.");
        var fma = Peak.MeasureFma();
        double peak = fma.WallGFlops;
        output.WriteLine($"fp32 FMA peak      {peak,8:0.0} GFLOP/s ({fma.CpuGFlops:0.0} per CPU-second; re-measured before each matmul shape)");
        var bw = Peak.MeasureBandwidth();
        output.WriteLine($"memory bandwidth   {bw.ReadGBps,8:0.0} GB/s read, {bw.CopyGBps:0.0} GB/s copy (read + write, {bw.Bytes >> 20} MiB buffers)");
        var context = new KernelsBenchContext(peak, bw, output, []);
        foreach (var (name, run) in Sections.Where(s => only == null || s.Name == only))
        {
            output.WriteLine();
            output.WriteLine($"[{name}]");
            run(context);
        }
        output.WriteLine();
        output.WriteLine("Summary");
        foreach (var line in context.Summary) output.WriteLine("  " + line);
        output.WriteLine($"  total time {clock.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }

    private static void MatMulSection(KernelsBenchContext c)
    {
        var results = MatMulBench.Run(c.Output);
        foreach (var layout in results.Where(r => r.Targeted).Select(r => r.Layout).Distinct())
        {
            var rs = results.Where(r => r.Targeted && r.Layout == layout).ToList();
            double min = rs.Min(r => r.OfPeak), cpuMin = rs.Min(r => r.OfCpuPeak);
            double geo = Math.Exp(rs.Average(r => Math.Log(r.OfPeak)));
            string verdict = min >= MatMulBench.Target ? "meets" : "misses";
            c.Summary.Add($"matmul {layout,-16} worst {100 * min:0.0}%, geomean {100 * geo:0.0}% of peak ({verdict} the " +
                $"{100 * MatMulBench.Target:0}% target); by CPU time worst {100 * cpuMin:0.0}%");
        }
        foreach (var r in results.Where(r => !r.Targeted))
            c.Summary.Add($"matmul {r.Layout,-22} M={r.M} K={r.K} N={r.N}: {r.GFlops:0.0} GFLOP/s");
    }
}
