// Throughput of the memory-bound kernels (RMSNorm, RoPE, SwiGLU, softmax; forward and backward) on tensors far
// larger than the caches, as GB/s and as a fraction of this machine's measured memory bandwidth.
// Bytes are counted STREAM-style: each tensor read once plus each tensor written once (an accumulated gradient
// counts as read + write); small operands that stay in cache (RMSNorm weight, RoPE cos/sin rows) are not counted.
// The bandwidth reference is a STREAM "scale" probe (y = a*x, 8 bytes per element) run with the same threads,
// vector width and ordinary stores as the kernels (the write-allocate reads are paid by both alike).
// Not a test: numbers vary with the machine and its load; run it alone (`lorasharp bench`).
using System.Diagnostics;
using System.Runtime.Intrinsics;
using LoraSharp.Core;
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Threading;

namespace LoraSharp.Bench;

/// <summary>Elementwise kernel throughput vs measured memory bandwidth.</summary>
public static class ElementwiseBench
{
    /// <summary>Runs every measurement on 16M-float tensors and prints one line per kernel.</summary>
    /// <param name="output">Where the table goes.</param>
    public static void Run(TextWriter output) => Run(output, 1 << 24);

    /// <summary>Runs every measurement and prints one line per kernel.</summary>
    /// <param name="output">Where the table goes.</param>
    /// <param name="elements">Elements per tensor (default 16M floats = 64 MiB per tensor, beyond any L3 of a 2-channel desktop).</param>
    public static void Run(TextWriter output, int elements)
    {
        output.WriteLine($"# elementwise kernels: {Threads.Count} threads, SIMD {Simd.Level}, {elements / (1 << 20)}M floats per tensor");
        const int C = 4096;
        int N = elements / C;
        var a = Filled(N * C, 1);
        var b = Filled(N * C, 2);
        var c = Filled(N * C, 3);
        var d = Filled(N * C, 4);
        var e = Filled(N * C, 5);
        var weight = Filled(C, 6);
        var rstd = new float[N];

        // The probe runs before every kernel and the best value seen so far is the reference: on a busy machine a
        // single probe can land in a slow window and flatter every ratio after it.
        double bw = 0;
        double readBw = MeasureReadBandwidth(a);
        output.WriteLine($"read-only bandwidth {readBw:F1} GB/s (for information; the reference is the scale probe)");
        output.WriteLine($"{"kernel",-22} {"shape",-16} {"ms",8} {"GB/s",8} {"probe",7} {"of bw",7}");

        void Report(string name, string shape, double seconds, long bytes)
        {
            double gbs = bytes / seconds / 1e9;
            output.WriteLine($"{name,-22} {shape,-16} {seconds * 1e3,8:F2} {gbs,8:F1} {bw,7:F1} {gbs / bw,7:P0}");
        }

        double Probe() => bw = Math.Max(bw, MeasureBandwidth(e, d));

        long nc = (long)N * C;
        string shape = $"[{N}, {C}]";
        Probe();
        Report("rmsnorm forward", shape, Time(() => RmsNorm.Forward(a, weight, b, rstd, N, C, 1e-5f)), 8 * nc);
        Probe();
        Report("rmsnorm backward", shape, Time(() => RmsNorm.Backward(c, a, weight, rstd, d, default, N, C)), 16 * nc);

        const int H = 32, HS = 128;
        int T = N * C / (H * HS);
        var table = RopeTable.Create(HS, T, 500000.0, null);
        var positions = new int[T];
        for (int t = 0; t < T; t++) positions[t] = t;
        string ropeShape = $"[{T}, {H}*{HS}]";
        Probe();
        Report("rope forward", ropeShape, Time(() => Rope.Forward(a, positions, table, T, H, HS)), 8 * nc);
        Probe();
        Report("rope backward", ropeShape, Time(() => Rope.Backward(a, positions, table, T, H, HS)), 8 * nc);

        var x = Filled(N * C, 7, 4f);
        Probe();
        Report("swiglu forward", shape, Time(() => SwiGlu.Forward(x, b, c)), 12 * nc);
        Probe();
        Report("swiglu backward", shape, Time(() => SwiGlu.Backward(a, x, b, d, e)), 28 * nc);

        Probe();
        Report("softmax forward", shape, Time(() => Softmax.Forward(x, b, N, C)), 8 * nc);
        Probe();
        Report("softmax backward", shape, Time(() => Softmax.Backward(a, b, c, N, C)), 16 * nc);

        Probe();
        Report("silu forward", shape, Time(() => Silu.Forward(x, c)), 8 * nc);
        Probe();
        Report("dropout forward", shape, Time(() => Dropout.Forward(x, c, 0.1f, 1, 0)), 8 * nc);
    }

    private static float[] Filled(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    // Best of Repeats after one warm-up run (best, not mean: other processes only ever slow a run down).
    private const int Repeats = 11;

    private static double Time(Action run)
    {
        run();
        double best = double.MaxValue;
        for (int r = 0; r < Repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return best;
    }

    // Like Time, for a work struct that lives on the caller's stack (Threads.Run reads it through a pointer).
    private static double TimeWork<T>(ref T work) where T : struct, IParallelWork
    {
        Threads.Run(ref work, Threads.Count);
        double best = double.MaxValue;
        for (int r = 0; r < Repeats; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Threads.Run(ref work, Threads.Count);
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        return best;
    }

    /// <summary>STREAM "scale" bandwidth in GB/s (8 bytes per element) with the current thread count.</summary>
    public static unsafe double MeasureBandwidth(float[] x, float[] y)
    {
        int n = Math.Min(x.Length, y.Length);
        fixed (float* px = x, py = y)
        {
            var work = new ScaleWork { X = px, Y = py, Length = n, Level = Simd.Level };
            double s = TimeWork(ref work);
            return 8.0 * n / s / 1e9;
        }
    }

    /// <summary>Read-only bandwidth in GB/s (a vector sum over x).</summary>
    public static unsafe double MeasureReadBandwidth(float[] x)
    {
        fixed (float* px = x)
        {
            var work = new SumWork { X = px, Length = x.Length };
            double s = TimeWork(ref work);
            return 4.0 * x.Length / s / 1e9;
        }
    }

    private unsafe struct ScaleWork : IParallelWork
    {
        public float* X, Y;
        public int Length;
        public SimdLevel Level;

        public readonly void Execute(int part, int parts)
        {
            var (s, e) = Threads.SplitAligned(Length, 16, part, parts);
            int i = s;
            if (Level >= SimdLevel.V512)
            {
                var k = Vector512.Create(1.0001f);
                for (; i + 16 <= e; i += 16) Vector512.Store(Vector512.Load(X + i) * k, Y + i);
            }
            else if (Level >= SimdLevel.V256)
            {
                var k = Vector256.Create(1.0001f);
                for (; i + 8 <= e; i += 8) Vector256.Store(Vector256.Load(X + i) * k, Y + i);
            }
            for (; i < e; i++) Y[i] = X[i] * 1.0001f;
        }
    }

    private unsafe struct SumWork : IParallelWork
    {
        public float* X;
        public int Length;
        public float Sink;

        public void Execute(int part, int parts)
        {
            var (s, e) = Threads.SplitAligned(Length, 64, part, parts);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            int i = s;
            for (; i + 64 <= e; i += 64)
            {
                a0 += Vector512.Load(X + i);
                a1 += Vector512.Load(X + i + 16);
                a2 += Vector512.Load(X + i + 32);
                a3 += Vector512.Load(X + i + 48);
            }
            float t = Vector512.Sum(a0 + a1 + a2 + a3);
            for (; i < e; i++) t += X[i];
            Sink = t;   // keeps the loads alive; written once after the loop
        }
    }
}
