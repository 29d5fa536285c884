// One fixed pool of worker threads and one way to use it: a static split of a struct work item into parts.
// No per-call thread creation, no allocation per call, no nested parallelism (a Run inside a Run executes
// serially on the calling thread). Parts are assigned to threads by index, never by work stealing, so a
// kernel whose parts write disjoint outputs gives identical results for any thread count.
//
// Hand-off: the caller publishes a function pointer and a pointer to its work struct (a local on its stack,
// alive until Run returns), bumps a generation counter and runs part 0 itself; workers spin briefly, then sleep
// on a monitor. Spinning ~50 us keeps back-to-back kernel calls in a training step from paying a wake-up each.
using System.Runtime.CompilerServices;

namespace LoraSharp.Core.Threading;

/// <summary>The process's compute threads.</summary>
public static unsafe class Threads
{
    [ThreadStatic] private static bool t_inside;
    [ThreadStatic] private static int t_limit;
    [ThreadStatic] private static long t_parallelRuns;

    private static readonly object s_runLock = new();
    private static readonly object s_wakeLock = new();
    private static Pool? s_pool;

    /// <summary>Threads the pool was built with: LORASHARP_THREADS, else the processor count.</summary>
    public static int Hardware { get; } = ReadThreadCount();

    /// <summary>Threads a Run on this thread uses now (1 inside a running part).</summary>
    public static int Count => t_inside ? 1 : t_limit > 0 ? Math.Min(t_limit, Hardware) : Hardware;

    /// <summary>Runs started on this thread that used more than one thread (tests check that their 2-thread case splits).</summary>
    public static long ParallelRunsOnThisThread => t_parallelRuns;

    /// <summary>Caps <see cref="Count"/> on this thread until disposed (tests compare 1 and N threads).</summary>
    public static Scope Limit(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "need at least one thread");
        int previous = t_limit;
        t_limit = threads;
        return new Scope(previous);
    }

    /// <summary>Restores the previous limit when disposed.</summary>
    public readonly struct Scope(int previous) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => t_limit = previous;
    }

    /// <summary>Runs <paramref name="work"/> in <see cref="Count"/> parts.</summary>
    public static void Run<T>(ref T work) where T : struct, IParallelWork => Run(ref work, Count);

    /// <summary>
    /// Runs parts 0..parts-1 of <paramref name="work"/>; thread i runs parts i, i+n, i+2n... Blocks until all are done.
    /// <paramref name="work"/> must be a local of the caller (it is read through a pointer while Run blocks).
    /// </summary>
    public static void Run<T>(ref T work, int parts) where T : struct, IParallelWork => Run(ref work, parts, int.MaxValue);

    /// <summary>
    /// Like <see cref="Run{T}(ref T, int)"/> on at most <paramref name="maxThreads"/> threads (1 runs every part on the
    /// caller). Kernels pass 1 for work too small to pay a hand-off (a few microseconds).
    /// </summary>
    public static void Run<T>(ref T work, int parts, int maxThreads) where T : struct, IParallelWork
    {
        if (parts <= 0) return;
        int threads = Math.Min(Math.Min(Count, parts), Math.Max(1, maxThreads));
        if (threads <= 1)
        {
            bool outer = t_inside;
            t_inside = true;
            try { for (int p = 0; p < parts; p++) work.Execute(p, parts); }
            finally { t_inside = outer; }
            return;
        }
        t_parallelRuns++;
        lock (s_runLock)
        {
            var pool = s_pool ??= new Pool(Hardware - 1);
            pool.Run(&Invoke<T>, Unsafe.AsPointer(ref work), parts, threads);
        }
    }

    /// <summary>
    /// Threads worth using for <paramref name="flops"/> of arithmetic: one below ~4 MFLOP per extra thread, since
    /// waking a worker costs ~2-5 us, about what one core needs for that much work at ~200 GFLOP/s per core.
    /// </summary>
    public static int ForFlops(long flops) => (int)Math.Clamp(flops / (4L << 20), 1, Count);

    /// <summary>The half-open range [start, end) of part <paramref name="part"/> when n items are split evenly into parts.</summary>
    public static (int Start, int End) Split(int n, int part, int parts)
    {
        int q = n / parts, r = n % parts;
        int start = part * q + Math.Min(part, r);
        return (start, start + q + (part < r ? 1 : 0));
    }

    /// <summary>Like <see cref="Split"/>, but boundaries fall on multiples of <paramref name="align"/> (the last part takes the tail).</summary>
    public static (int Start, int End) SplitAligned(int n, int align, int part, int parts)
    {
        int blocks = (n + align - 1) / align;
        var (bs, be) = Split(blocks, part, parts);
        return (Math.Min(bs * align, n), Math.Min(be * align, n));
    }

    private static void Invoke<T>(void* work, int part, int parts) where T : struct, IParallelWork
        => Unsafe.AsRef<T>(work).Execute(part, parts);

    private static int ReadThreadCount()
    {
        string? s = Environment.GetEnvironmentVariable("LORASHARP_THREADS");
        if (string.IsNullOrWhiteSpace(s)) return Environment.ProcessorCount;
        if (int.TryParse(s, out int n) && n >= 1) return n;
        throw new UserErrorException($"LORASHARP_THREADS='{s}' is not a positive integer.");
    }

    private sealed class Pool
    {
        private const int SpinIterations = 20_000;   // about 50 us of Thread.SpinWait(10) on Zen 5 before sleeping
        private const int JoinSpinIterations = 200_000;   // Thread.SpinWait(1) each: of the order of 100 us, then back off

        private delegate*<void*, int, int, void> _fn;
        private void* _work;
        private int _parts;
        private int _threads;
        private int _generation;
        private int _pending;
        private Exception? _error;

        private readonly int _workers;

        public Pool(int workers)
        {
            _workers = workers;
            for (int i = 0; i < workers; i++)
            {
                int index = i + 1;
                var t = new Thread(() => Loop(index)) { IsBackground = true, Name = $"lorasharp-worker-{index}" };
                t.Start();
            }
        }

        public void Run(delegate*<void*, int, int, void> fn, void* work, int parts, int threads)
        {
            _fn = fn;
            _work = work;
            _parts = parts;
            _threads = threads;
            _error = null;
            // Every worker acknowledges every run (even one it sits out), so none can lag into the next run's parameters.
            Volatile.Write(ref _pending, _workers);
            lock (s_wakeLock)
            {
                Interlocked.Increment(ref _generation);
                Monitor.PulseAll(s_wakeLock);
            }
            t_inside = true;
            try { RunParts(0); }
            catch (Exception e) { _error ??= e; }
            finally { t_inside = false; }
            // The join: parts of a decode step are microseconds apart, so spin on the counter first. SpinWait.SpinOnce
            // alone backs off exponentially and yields the core after ten rounds: a worker finishing 15 us after the
            // caller was noticed 0.6 ms late on a busy machine (another process got the yielded slice).
            for (int spins = 0; Volatile.Read(ref _pending) != 0 && spins < JoinSpinIterations; spins++) Thread.SpinWait(1);
            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(sleep1Threshold: -1);
            if (_error is { } error) throw new AggregateException("A parallel part failed.", error);
        }

        private void RunParts(int index)
        {
            var fn = _fn;
            var work = _work;
            int parts = _parts, threads = _threads;
            for (int p = index; p < parts; p += threads) fn(work, p, parts);
        }

        private void Loop(int index)
        {
            t_inside = true;
            int seen = 0;
            while (true)
            {
                int spins = 0;
                while (Volatile.Read(ref _generation) == seen)
                {
                    if (++spins < SpinIterations) { Thread.SpinWait(10); continue; }
                    lock (s_wakeLock)
                    {
                        while (Volatile.Read(ref _generation) == seen) Monitor.Wait(s_wakeLock);
                    }
                }
                seen = Volatile.Read(ref _generation);
                if (index < _threads)
                {
                    try { RunParts(index); }
                    catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                }
                Interlocked.Decrement(ref _pending);
            }
        }
    }
}
