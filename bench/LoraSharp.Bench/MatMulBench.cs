// GFLOP/s of each MatMul layout at the shapes of a Llama training step, as a fraction of the measured FMA peak:
// Forward (packed frozen W), BackwardInput (packed frozen W), BackwardWeight, and the LoRA skinny shapes with
// unpacked weights (rank 8). Each (layout, shape) runs at least 5 calls and about 0.25 s after two warm-up calls, in
// three rounds over all shapes, and reports its best call against the best FMA peak measured right before and right
// after that shape in any round (see Run for why).
// Not here: correctness (tests/LoraSharp.Core.Tests/Kernels/MatMulTests.cs).
using System.Diagnostics;
using LoraSharp.Core.Kernels;

namespace LoraSharp.Bench;

/// <summary>One measured (layout, shape).</summary>
/// <param name="Layout">forward, backward-input, backward-weight, or a lora-* layout with unpacked W.</param>
/// <param name="M">Rows (tokens).</param>
/// <param name="K">In features.</param>
/// <param name="N">Out features.</param>
/// <param name="GFlops">2·M·K·N / best wall time.</param>
/// <param name="CpuGFlops">2·M·K·N / mean process CPU time per call.</param>
/// <param name="Peak">The FMA peak measured just before this shape (the machine's share can change during a run).</param>
/// <param name="Targeted">Whether the 75%-of-peak target applies to this shape.</param>
public readonly record struct MatMulResult(string Layout, int M, int K, int N, double GFlops, double CpuGFlops, FmaPeak Peak, bool Targeted)
{
    /// <summary>Wall-clock fraction of the peak.</summary>
    public double OfPeak => GFlops / Peak.WallGFlops;

    /// <summary>CPU-time fraction of the CPU-time peak.</summary>
    public double OfCpuPeak => CpuGFlops / Peak.CpuGFlops;
}

/// <summary>Matmul throughput at training shapes.</summary>
public static class MatMulBench
{
    /// <summary>(M, K, N) shapes from issue 2: attention/MLP projections of small and 1B-class models and a 49k vocab head.</summary>
    public static readonly (int M, int K, int N)[] TargetShapes =
        [(2048, 288, 768), (2048, 576, 1536), (2048, 1536, 576), (2048, 2048, 5632), (2048, 576, 49152)];

    /// <summary>LoRA shapes (rank 8): X·Aᵀ is N = 8, H·Bᵀ is K = 8. These must not fall off a cliff; no target.</summary>
    public static readonly (int M, int K, int N)[] LoraShapes = [(2048, 576, 8), (2048, 8, 1536)];

    /// <summary>Target fraction of the FMA peak.</summary>
    public const double Target = 0.75;

    /// <summary>
    /// Measures every layout at every shape in <paramref name="rounds"/> rounds over all shapes, then prints one line
    /// each: the best GFLOP/s of any round against the best FMA peak measured around that shape in any round. The
    /// share of the CPU a shared machine gives us drifts over tens of seconds (the same shape measured 52% and 86% of
    /// peak a minute apart), so rounds spread each shape over the run and best-of-both compares like with like.
    /// </summary>
    public static List<MatMulResult> Run(TextWriter output, double secondsPerCase = 0.25, int rounds = 3)
    {
        var shapes = TargetShapes.Select(s => (s.M, s.K, s.N, Targeted: true))
            .Concat(LoraShapes.Select(s => (s.M, s.K, s.N, Targeted: false))).ToList();
        var best = new Dictionary<(string Layout, int M, int K, int N), (double Wall, double Cpu)>();
        var order = new List<(string Layout, int M, int K, int N, bool Targeted)>();
        var peaks = new Dictionary<(int M, int K, int N), FmaPeak>();
        for (int round = 0; round < rounds; round++)
        {
            foreach (var (M, K, N, targeted) in shapes)
            {
                var peak = MeasureShape(M, K, N, targeted, secondsPerCase, (layout, wall, cpu) =>
                {
                    var key = (layout, M, K, N);
                    bool seen = best.TryGetValue(key, out var b);
                    if (!seen) order.Add((layout, M, K, N, targeted));
                    if (!seen || wall < b.Wall) best[key] = (wall, cpu);
                });
                if (!peaks.TryGetValue((M, K, N), out var p) || peak.WallGFlops > p.WallGFlops) peaks[(M, K, N)] = peak;
            }
            output.WriteLine($"  round {round + 1}/{rounds} done");
        }
        var results = new List<MatMulResult>();
        foreach (var (layout, M, K, N, targeted) in order)
        {
            var (wall, cpu) = best[(layout, M, K, N)];
            double flops = 2.0 * M * K * N;
            var r = new MatMulResult(layout, M, K, N, flops / wall / 1e9, flops / cpu / 1e9, peaks[(M, K, N)], targeted);
            results.Add(r);
            output.WriteLine(Format(r));
        }
        return results;
    }

    /// <summary>Times each layout at one shape (reporting best wall and CPU seconds); returns the better of the FMA peaks measured before and after.</summary>
    private static FmaPeak MeasureShape(int M, int K, int N, bool targeted, double seconds, Action<string, double, double> report)
    {
        var before = Peak.MeasureFma(repeats: 4, scale: 1);
        var x = Fill((long)M * K, 1);
        var w = Fill((long)N * K, 2);
        var dy = Fill((long)M * N, 3);
        var y = new float[(long)M * N];
        var dx = new float[(long)M * K];
        var dw = new float[(long)N * K];

        void Report(string layout, Action call)
        {
            var (wall, cpu) = Time(call, seconds);
            report(layout, wall, cpu);
        }

        if (targeted)
        {
            var packed = PackedWeight.FromF32(w, N, K);
            Report("forward", () => MatMul.Forward(x, packed, y, M));
            Report("backward-input", () => MatMul.BackwardInput(dy, packed, dx, M));
        }
        else
        {
            Report("lora-forward", () => MatMul.Forward(x, w, y, M, K, N));
            Report("lora-backward-input", () => MatMul.BackwardInput(dy, w, dx, M, N, K));
        }
        Report(targeted ? "backward-weight" : "lora-backward-weight", () => MatMul.BackwardWeight(dy, x, dw, M, N, K));

        var after = Peak.MeasureFma(repeats: 4, scale: 1);
        return after.WallGFlops > before.WallGFlops ? after : before;
    }

    /// <summary>One result line: layout, shape, GFLOP/s, % of peak (wall clock), % of peak (CPU time).</summary>
    public static string Format(MatMulResult r) =>
        $"  {r.Layout,-22} M={r.M,-5} K={r.K,-5} N={r.N,-6} {r.GFlops,7:0.0} GFLOP/s {100 * r.OfPeak,6:0.0}% of peak" +
        $"  (cpu time: {100 * r.OfCpuPeak,5:0.0}%)";

    /// <summary>
    /// Best wall time of the calls, and the mean process CPU time per call (CPU time advances in ticks of a few
    /// milliseconds, so one short call's CPU time is mostly tick error). <paramref name="warmupSeconds"/> of untimed
    /// calls first lets tiered compilation reach its optimised code (a few hundred thousand calls of a small kernel).
    /// At least <paramref name="minRuns"/> timed calls: a 0.4 s product measured only twice came out 20-25% below
    /// its steady state (the first calls after the warm-up were still slow).
    /// </summary>
    internal static (double Wall, double Cpu) Time(Action call, double seconds, double warmupSeconds = 0, int minRuns = 5)
    {
        call();   // warm-up: JIT, first-use scratch, lazy backward panels; a second call for the output's pages
        call();
        for (long t0 = Stopwatch.GetTimestamp(); Stopwatch.GetElapsedTime(t0).TotalSeconds < warmupSeconds;) call();
        double best = double.MaxValue, totalCpu = 0, total = 0;
        int runs = 0;
        while (runs < minRuns || (total < seconds && runs < 200))
        {
            var cpu0 = Environment.CpuUsage.TotalTime;
            long t0 = Stopwatch.GetTimestamp();
            call();
            double t = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            totalCpu += (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
            best = Math.Min(best, t);
            total += t;
            runs++;
        }
        return (best, totalCpu > 0 ? totalCpu / runs : best);
    }

    private static float[] Fill(long n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() - 0.5);
        return a;
    }
}
