// What this machine can do at best, measured in the same run as the kernels so that kernel numbers can be printed
// as ratios: the fp32 FMA peak (independent FMA chains on every compute thread, widest vector available) and the
// memory bandwidth (streaming read and copy of buffers far larger than the caches). Not here: any kernel.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core;
using LoraSharp.Core.Threading;

namespace LoraSharp.Bench;

/// <summary>Memory bandwidth in GB/s (10^9 bytes per second).</summary>
/// <param name="ReadGBps">Streaming read (a vector sum over a large buffer).</param>
/// <param name="CopyGBps">Copy, counting bytes read plus bytes written.</param>
/// <param name="Bytes">Size of the buffer read (and of each copy buffer).</param>
public readonly record struct Bandwidth(double ReadGBps, double CopyGBps, long Bytes)
{
    /// <summary>The larger of read and copy bandwidth: what a streaming kernel can hope for.</summary>
    public double BestGBps => Math.Max(ReadGBps, CopyGBps);
}

/// <summary>An fp32 FMA peak.</summary>
/// <param name="WallGFlops">GFLOP/s by wall clock over all compute threads: the number the targets use.</param>
/// <param name="CpuGFlops">GFLOP per second of process CPU time: what one busy core delivers while it runs. On a
/// machine shared with other work, kernel/peak ratios of this kind stay meaningful when wall-clock ones do not.</param>
public readonly record struct FmaPeak(double WallGFlops, double CpuGFlops);

/// <summary>Machine peaks for ratio reporting.</summary>
public static unsafe class Peak
{
    private const int FmaIterations = 1 << 22;   // x 12 chains x 16 lanes x 2 flops = 1.6 GFLOP per thread per rep

    /// <summary>
    /// fp32 FMA peak in GFLOP/s over <see cref="Threads.Count"/> threads: 12 independent FMA chains per thread
    /// (enough to cover FMA latency x throughput on current x64 and Arm cores), best of <paramref name="repeats"/>.
    /// </summary>
    public static double MeasureFmaPeak(int repeats = 5) => MeasureFma(repeats).WallGFlops;

    /// <summary>Like <see cref="MeasureFmaPeak"/>, also per second of CPU time; <paramref name="scale"/> shortens each repeat.</summary>
    public static FmaPeak MeasureFma(int repeats = 5, double scale = 1)
    {
        int threads = Threads.Count;
        var level = Simd.Level;
        double lanes = level switch { SimdLevel.V512 => 16, SimdLevel.V256 => 8, SimdLevel.V128 => 4, _ => 1 };
        int iterations = Math.Max(1024, (int)(FmaIterations * scale));
        var sink = new float[threads * 16];
        double wall = 0, cpuFlops = 0, cpuTotal = 0;
        fixed (float* s = sink)
        {
            for (int rep = 0; rep < repeats + 1; rep++)
            {
                var work = new FmaWork { Sink = s, Iterations = iterations, Level = level };
                var cpu0 = Environment.CpuUsage.TotalTime;
                long t0 = Stopwatch.GetTimestamp();
                Threads.Run(ref work, threads);
                double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                double cpuSeconds = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
                double flops = (double)iterations * 12 * lanes * 2 * threads;
                if (rep == 0) continue;   // warms up (JIT, clocks)
                wall = Math.Max(wall, flops / seconds / 1e9);
                // Per CPU-second over all repeats together: process CPU time advances in ticks of a few
                // milliseconds, as long as a short repeat, so a best-of over single repeats picked tick errors.
                cpuFlops += flops;
                cpuTotal += cpuSeconds;
            }
        }
        double cpu = cpuTotal > 0 ? cpuFlops / cpuTotal / 1e9 : wall;
        return new FmaPeak(wall, cpu);
    }

    /// <summary>
    /// Streaming read and copy bandwidth over buffers of <paramref name="megabytes"/> MB each (far above any L3),
    /// split over <see cref="Threads.Count"/> threads, best of <paramref name="repeats"/>.
    /// </summary>
    public static Bandwidth MeasureBandwidth(int megabytes = 256, int repeats = 5)
    {
        long bytes = (long)megabytes << 20;
        float* a = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        float* b = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            long n = bytes / sizeof(float);
            new Span<byte>(a, checked((int)Math.Min(bytes, int.MaxValue))).Fill(1);
            new Span<byte>(b, checked((int)Math.Min(bytes, int.MaxValue))).Clear();   // touch every page first
            int threads = Threads.Count;
            var sums = new double[threads * 8];
            double read = 0, copy = 0;
            fixed (double* s = sums)
            {
                for (int rep = 0; rep < repeats + 1; rep++)
                {
                    var r = new ReadWork { Src = a, Count = n, Sums = s };
                    long t0 = Stopwatch.GetTimestamp();
                    Threads.Run(ref r, threads);
                    double tr = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    var c = new CopyWork { Src = a, Dst = b, Count = n };
                    t0 = Stopwatch.GetTimestamp();
                    Threads.Run(ref c, threads);
                    double tc = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                    if (rep == 0) continue;
                    read = Math.Max(read, bytes / tr / 1e9);
                    copy = Math.Max(copy, 2.0 * bytes / tc / 1e9);
                }
            }
            return new Bandwidth(read, copy, bytes);
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
        }
    }

    private struct FmaWork : IParallelWork
    {
        public float* Sink;
        public int Iterations;
        public SimdLevel Level;

        public void Execute(int part, int parts)
        {
            float r = Level switch
            {
                SimdLevel.V512 => Fma512(Iterations),
                SimdLevel.V256 => Fma256(Iterations),
                SimdLevel.V128 => Fma128(Iterations),
                _ => FmaScalar(Iterations),
            };
            Sink[part * 16] = r;   // keeps the chains alive; written once, after the loop
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma512(int iterations)
    {
        var m = Vector512.Create(0.999999f);
        var add = Vector512.Create(1e-7f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0 + add, c2 = c1 + add, c3 = c2 + add, c4 = c3 + add, c5 = c4 + add,
            c6 = c5 + add, c7 = c6 + add, c8 = c7 + add, c9 = c8 + add, c10 = c9 + add, c11 = c10 + add;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, add); c1 = Vector512.FusedMultiplyAdd(c1, m, add);
            c2 = Vector512.FusedMultiplyAdd(c2, m, add); c3 = Vector512.FusedMultiplyAdd(c3, m, add);
            c4 = Vector512.FusedMultiplyAdd(c4, m, add); c5 = Vector512.FusedMultiplyAdd(c5, m, add);
            c6 = Vector512.FusedMultiplyAdd(c6, m, add); c7 = Vector512.FusedMultiplyAdd(c7, m, add);
            c8 = Vector512.FusedMultiplyAdd(c8, m, add); c9 = Vector512.FusedMultiplyAdd(c9, m, add);
            c10 = Vector512.FusedMultiplyAdd(c10, m, add); c11 = Vector512.FusedMultiplyAdd(c11, m, add);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(int iterations)
    {
        var m = Vector256.Create(0.999999f);
        var add = Vector256.Create(1e-7f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0 + add, c2 = c1 + add, c3 = c2 + add, c4 = c3 + add, c5 = c4 + add,
            c6 = c5 + add, c7 = c6 + add, c8 = c7 + add, c9 = c8 + add, c10 = c9 + add, c11 = c10 + add;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, add); c1 = Vector256.FusedMultiplyAdd(c1, m, add);
            c2 = Vector256.FusedMultiplyAdd(c2, m, add); c3 = Vector256.FusedMultiplyAdd(c3, m, add);
            c4 = Vector256.FusedMultiplyAdd(c4, m, add); c5 = Vector256.FusedMultiplyAdd(c5, m, add);
            c6 = Vector256.FusedMultiplyAdd(c6, m, add); c7 = Vector256.FusedMultiplyAdd(c7, m, add);
            c8 = Vector256.FusedMultiplyAdd(c8, m, add); c9 = Vector256.FusedMultiplyAdd(c9, m, add);
            c10 = Vector256.FusedMultiplyAdd(c10, m, add); c11 = Vector256.FusedMultiplyAdd(c11, m, add);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma128(int iterations)
    {
        var m = Vector128.Create(0.999999f);
        var add = Vector128.Create(1e-7f);
        Vector128<float> c0 = Vector128.Create(1f), c1 = c0 + add, c2 = c1 + add, c3 = c2 + add, c4 = c3 + add, c5 = c4 + add,
            c6 = c5 + add, c7 = c6 + add, c8 = c7 + add, c9 = c8 + add, c10 = c9 + add, c11 = c10 + add;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, m, add); c1 = Vector128.FusedMultiplyAdd(c1, m, add);
            c2 = Vector128.FusedMultiplyAdd(c2, m, add); c3 = Vector128.FusedMultiplyAdd(c3, m, add);
            c4 = Vector128.FusedMultiplyAdd(c4, m, add); c5 = Vector128.FusedMultiplyAdd(c5, m, add);
            c6 = Vector128.FusedMultiplyAdd(c6, m, add); c7 = Vector128.FusedMultiplyAdd(c7, m, add);
            c8 = Vector128.FusedMultiplyAdd(c8, m, add); c9 = Vector128.FusedMultiplyAdd(c9, m, add);
            c10 = Vector128.FusedMultiplyAdd(c10, m, add); c11 = Vector128.FusedMultiplyAdd(c11, m, add);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float FmaScalar(int iterations)
    {
        float c0 = 1, c1 = 1.1f, c2 = 1.2f, c3 = 1.3f;
        for (int i = 0; i < iterations * 3; i++)
        {
            c0 = MathF.FusedMultiplyAdd(c0, 0.999999f, 1e-7f); c1 = MathF.FusedMultiplyAdd(c1, 0.999999f, 1e-7f);
            c2 = MathF.FusedMultiplyAdd(c2, 0.999999f, 1e-7f); c3 = MathF.FusedMultiplyAdd(c3, 0.999999f, 1e-7f);
        }
        return c0 + c1 + c2 + c3;
    }

    private struct ReadWork : IParallelWork
    {
        public float* Src;
        public long Count;
        public double* Sums;

        public void Execute(int part, int parts)
        {
            long chunk = (Count / parts) & ~63L;
            long start = part * chunk, end = part == parts - 1 ? Count : start + chunk;
            Sums[part * 8] = SumRange(Src + start, end - start);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static double SumRange(float* p, long n)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            long i = 0;
            for (; i + 64 <= n; i += 64)
            {
                s0 += Vector512.LoadAligned(p + i); s1 += Vector512.LoadAligned(p + i + 16);
                s2 += Vector512.LoadAligned(p + i + 32); s3 += Vector512.LoadAligned(p + i + 48);
            }
            double s = Vector512.Sum(s0 + s1 + s2 + s3);
            for (; i < n; i++) s += p[i];
            return s;
        }
        else
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            long i = 0;
            for (; i + 32 <= n; i += 32)
            {
                s0 += Vector256.Load(p + i); s1 += Vector256.Load(p + i + 8);
                s2 += Vector256.Load(p + i + 16); s3 += Vector256.Load(p + i + 24);
            }
            double s = Vector256.Sum(s0 + s1 + s2 + s3);
            for (; i < n; i++) s += p[i];
            return s;
        }
    }

    private struct CopyWork : IParallelWork
    {
        public float* Src, Dst;
        public long Count;

        public void Execute(int part, int parts)
        {
            long chunk = (Count / parts) & ~63L;
            long start = part * chunk, end = part == parts - 1 ? Count : start + chunk;
            long bytes = (end - start) * sizeof(float);
            Buffer.MemoryCopy(Src + start, Dst + start, bytes, bytes);
        }
    }
}
