// Benchmark of the tiled attention kernel (not a test): forward and backward GFLOP/s at two training shapes,
// as a fraction of the machine's fp32 FMA peak measured in the same run, the speed-up over the full-matrix scalar
// reference, the 1-thread rate, and the memory the kernel holds (fixed per-thread scratch + lse, O(T) per head)
// against the T x T score matrix a naive kernel would hold per head. Timings are the best of several calls.
// Where Linux gives per-thread CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID)), the 1-thread rates are also given per
// CPU-second of the running thread and compared with a 1-thread FMA peak measured the same way, so the
// efficiency stays meaningful on a machine shared with other jobs (wall-clock rates then are not).
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core;
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;

namespace LoraSharp.Bench;

/// <summary>Attention forward/backward throughput and memory.</summary>
public static class AttentionBench
{
    private readonly record struct Shape(int B, int T, int NH, int NKV, int HS)
    {
        /// <summary>Forward FLOPs with the causal halving: 2 GEMMs (QKᵀ, PV) of 2·T·T·HS each, halved.</summary>
        public double ForwardFlops => 4.0 * T * T * HS / 2 * NH * B;
        public override string ToString() => $"B={B} T={T} NH={NH} NKV={NKV} HS={HS}";
    }

    /// <summary>Runs the benchmark and prints one block per shape.</summary>
    public static void Run(TextWriter output)
    {
        output.WriteLine($"# attention bench; {BenchInfo.Header()}");
        double peak = Peak.MeasureFmaPeak();
        output.WriteLine($"fp32 FMA peak ({Threads.Count} threads, {Simd.Level}): {peak:F1} GFLOP/s");
        double cpuPeak = 0;
        if (ThreadCpuSeconds() is not null)
        {
            using (Threads.Limit(1)) cpuPeak = Peak.MeasureFma().CpuGFlops;
            output.WriteLine($"fp32 FMA peak per CPU-second of one thread: {cpuPeak:F1} GFLOP/s");
        }
        foreach (var s in new[] { new Shape(4, 512, 9, 3, 64), new Shape(8, 256, 6, 6, 48) })
            RunShape(output, s, peak, cpuPeak);
        RunPacked(output);
    }

    /// <summary>
    /// One micro-batch of 8 samples of seeded lengths in [32, 512] (NH 9, NKV 3, HS 64), padded (B = 8, T = longest)
    /// against packed (B = 1, T = sum, segment ids): forward + backward time of each on 1 thread and on all, and the
    /// (query, key) pairs each layout must score: Σ L(L+1)/2 packed; padded adds L·(T − L) for the pad queries.
    /// </summary>
    public static void RunPacked(TextWriter output)
    {
        int NH = 9, NKV = 3, HS = 64, n = 8;
        var rng = new Random(15);
        int[] lengths = Enumerable.Range(0, n).Select(_ => rng.Next(32, 513)).ToArray();
        int longest = lengths.Max(), total = lengths.Sum();
        float scale = 1f / MathF.Sqrt(HS);
        float[] Rand(int len) { var a = new float[len]; for (int i = 0; i < len; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        (double One, double All) Time(int B, int T, byte[] mask, int[] seg)
        {
            int qLen = B * T * NH * HS, kLen = B * T * NKV * HS;
            float[] q = Rand(qLen), k = Rand(kLen), v = Rand(kLen), dOut = Rand(qLen);
            float[] o = new float[qLen], lse = new float[B * NH * T], dq = new float[qLen], dk = new float[kLen], dv = new float[kLen];
            void Call()
            {
                Attention.Forward(q, k, v, mask, seg, o, lse, B, T, T, NH, NKV, HS, scale);
                Attention.Backward(dOut, q, k, v, o, lse, mask, seg, dq, dk, dv, B, T, T, NH, NKV, HS, scale);
            }
            double one;
            // Per CPU-second of the one running thread where Linux gives it (robust on a shared machine), else wall clock.
            using (Threads.Limit(1)) one = ThreadCpuSeconds() is null ? Best(Call) : CpuPerCall(Call);
            return (one, Best(Call));
        }
        // Score entries the forward's tiles compute (keys visited x 64-query tile), replaying its loop bounds: keys
        // from the segment start of the tile's first query (0 unsegmented) to its last query; all-pad key tiles skipped.
        long PaddedWork()
        {
            long work = 0;
            foreach (int L in lengths)
                for (int i0 = 0; i0 < longest; i0 += 64)
                {
                    int pLast = Math.Min(i0 + 64, longest) - 1;
                    for (int j0 = 0; j0 <= pLast; j0 += 64)
                        if (j0 < L) work += (long)Math.Min(64, pLast + 1 - j0) * 64;
                }
            return work;
        }
        long PackedWork(int[] seg)
        {
            long work = 0;
            for (int i0 = 0; i0 < total; i0 += 64)
            {
                int pLast = Math.Min(i0 + 64, total) - 1, jmin = i0;
                while (jmin > 0 && seg[jmin - 1] == seg[i0]) jmin--;
                for (int j0 = jmin; j0 <= pLast; j0 += 64) work += (long)Math.Min(64, pLast + 1 - j0) * 64;
            }
            return work;
        }
        var mask = new byte[n * longest];
        for (int b = 0; b < n; b++) mask.AsSpan(b * longest, lengths[b]).Fill(1);
        var seg = new int[total];
        for (int b = 0, t = 0; b < n; b++) for (int r = 0; r < lengths[b]; r++) seg[t++] = b;
        var padded = Time(n, longest, mask, []);
        var packed = Time(1, total, [], seg);
        double realPairs = lengths.Sum(l => l * (l + 1) / 2.0), paddedPairs = realPairs + lengths.Sum(l => (double)l * (longest - l));
        output.WriteLine($"packed vs padded micro-batch, lengths [{string.Join(", ", lengths)}], NH={NH} NKV={NKV} HS={HS}, forward+backward:");
        output.WriteLine($"  padded  B={n} T={longest}: 1 thread {padded.One * 1e3,8:F2} ms, {Threads.Count} threads {padded.All * 1e3,8:F2} ms");
        output.WriteLine($"  packed  B=1 T={total}: 1 thread {packed.One * 1e3,8:F2} ms, {Threads.Count} threads {packed.All * 1e3,8:F2} ms");
        output.WriteLine($"  packed / padded: {packed.One / padded.One:P0} (1 thread{(ThreadCpuSeconds() is null ? "" : ", per CPU-second")}), {packed.All / padded.All:P0} ({Threads.Count} threads, wall clock);" +
                         $" tile score entries {PackedWork(seg) / (double)PaddedWork():P0}; visible pairs {realPairs / paddedPairs:P0}");
    }

    private static void RunShape(TextWriter output, Shape s, double peak, double cpuPeak)
    {
        int qLen = s.B * s.T * s.NH * s.HS, kLen = s.B * s.T * s.NKV * s.HS, lseLen = s.B * s.NH * s.T;
        var rng = new Random(1);
        float[] Rand(int n) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        float[] q = Rand(qLen), k = Rand(kLen), v = Rand(kLen), dOut = Rand(qLen);
        float[] o = new float[qLen], lse = new float[lseLen], dq = new float[qLen], dk = new float[kLen], dv = new float[kLen];
        float scale = 1f / MathF.Sqrt(s.HS);

        void Fwd() => Attention.Forward(q, k, v, [], o, lse, s.B, s.T, s.T, s.NH, s.NKV, s.HS, scale);
        void Bwd() => Attention.Backward(dOut, q, k, v, o, lse, [], dq, dk, dv, s.B, s.T, s.T, s.NH, s.NKV, s.HS, scale);

        double fwd = Best(Fwd), bwd = Best(Bwd);
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        Fwd();
        Bwd();
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        double fwd1, bwd1;
        using (Threads.Limit(1)) { fwd1 = Best(Fwd); bwd1 = Best(Bwd); }
        // Gemma 2's attention logit soft-cap (50, its default): the cost of capping every score tile in place.
        double fwdCap = Best(() => Attention.Forward(q, k, v, [], o, lse, s.B, s.T, s.T, s.NH, s.NKV, s.HS, scale, 0, 50f));
        double bwdCap = Best(() => Attention.Backward(dOut, q, k, v, o, lse, [], dq, dk, dv, s.B, s.T, s.T, s.NH, s.NKV, s.HS, scale, 0, 50f));

        double fFlops = s.ForwardFlops, bFlops = 2.5 * s.ForwardFlops;
        output.WriteLine($"{s}");
        output.WriteLine($"  forward : {fwd * 1e3,8:F2} ms  {fFlops / fwd / 1e9,7:F1} GFLOP/s  {fFlops / fwd / 1e9 / peak,6:P1} of peak   (1 thread {fFlops / fwd1 / 1e9:F1} GFLOP/s)");
        output.WriteLine($"  backward: {bwd * 1e3,8:F2} ms  {bFlops / bwd / 1e9,7:F1} GFLOP/s  {bFlops / bwd / 1e9 / peak,6:P1} of peak   (1 thread {bFlops / bwd1 / 1e9:F1} GFLOP/s)");
        output.WriteLine($"  soft-cap 50 (gemma2): forward {fwdCap * 1e3:F2} ms ({fwdCap / fwd:F2}x uncapped), backward {bwdCap * 1e3:F2} ms ({bwdCap / bwd:F2}x)");

        if (cpuPeak > 0)
        {
            double fc, bc;
            using (Threads.Limit(1)) { fc = CpuPerCall(Fwd); bc = CpuPerCall(Bwd); }
            output.WriteLine($"  1 thread per CPU-second: forward {fFlops / fc / 1e9:F1} GFLOP/s ({fFlops / fc / 1e9 / cpuPeak:P1} of 1-thread peak)," +
                             $" backward {bFlops / bc / 1e9:F1} GFLOP/s ({bFlops / bc / 1e9 / cpuPeak:P1})");
        }

        // The scalar reference on one batch row (it materialises the score matrix and accumulates in double).
        int rq = s.T * s.NH * s.HS, rk = s.T * s.NKV * s.HS;
        var sw = Stopwatch.StartNew();
        Attention.Reference.Forward(q.AsSpan(0, rq), k.AsSpan(0, rk), v.AsSpan(0, rk), [], new float[rq], new float[s.NH * s.T], 1, s.T, s.T, s.NH, s.NKV, s.HS, scale);
        double refFwd = sw.Elapsed.TotalSeconds * s.B;
        output.WriteLine($"  forward vs scalar reference: {refFwd / fwd:F0}x faster");

        long scratch = Attention.ScratchBytesPerThread(s.HS);
        long lsePerHead = (long)s.T * sizeof(float);
        long naivePerHead = (long)s.T * s.T * sizeof(float);
        output.WriteLine($"  memory: scratch {scratch / 1024.0:F1} KiB per thread (independent of T) + lse {lsePerHead} B per head (O(T));" +
                         $" a materialised score matrix would be {naivePerHead / 1024.0:F0} KiB per head; allocated per forward+backward call: {allocated} B");
    }

    /// <summary>Best seconds per call over at least 5 calls and ~0.5 s, after one warm-up call.</summary>
    private static double Best(Action call)
    {
        call();
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < 5 || total.Elapsed.TotalSeconds < 0.5; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            call();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            if (i > 200) break;
        }
        return best;
    }

    /// <summary>Best CPU-seconds of this thread per call (one thread), over at least 5 calls and ~0.3 CPU-seconds.</summary>
    private static double CpuPerCall(Action call)
    {
        call();
        double best = double.MaxValue, total = 0;
        for (int i = 0; i < 5 || total < 0.3; i++)
        {
            double c0 = ThreadCpuSeconds()!.Value;
            call();
            double c = ThreadCpuSeconds()!.Value - c0;
            total += c;
            best = Math.Min(best, c);
            if (i > 200) break;
        }
        return best;
    }

    /// <summary>CPU time the calling thread has run, in seconds (clock_gettime(CLOCK_THREAD_CPUTIME_ID) on Linux; null elsewhere).</summary>
    private static double? ThreadCpuSeconds()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return ClockGetTime(3 /* CLOCK_THREAD_CPUTIME_ID */, out var ts) == 0 ? ts.Seconds + ts.Nanoseconds * 1e-9 : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);
}
