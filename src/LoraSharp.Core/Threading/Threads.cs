// One fixed pool of worker threads and one way to use it: a split of a struct work item into parts.
// No per-call thread creation, no allocation per call, no nested parallelism (a Run inside a Run executes
// serially on the calling thread). A part's work depends on its index only (the split into parts depends on the
// part count, never on which thread runs a part), so a kernel whose parts write disjoint outputs gives identical
// results for any thread count.
//
// Hand-off: the caller publishes a function pointer and a pointer to its work struct (a local on its stack,
// alive until Run returns) and bumps a generation counter; then the caller and the woken workers claim parts
// from a shared counter (part 0 first) until none is left. Workers spin briefly, then sleep on a monitor: spinning
// ~50 us keeps back-to-back kernel calls in a training step from paying a wake-up each. Claiming rather than
// assigning means a worker that is not running (another process has the core) costs the caller its parts' time,
// not a wait for the worker to be scheduled.
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
    /// Runs parts 0..parts-1 of <paramref name="work"/> on up to <see cref="Count"/> threads, each claiming the next
    /// part not yet taken. Blocks until all are done.
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
        private long _claim;   // (generation << 32) | next unclaimed part of that run
        private int _done;     // parts of the current run finished (or failed)
        private Exception? _error;

        public Pool(int workers)
        {
            for (int i = 0; i < workers; i++)
            {
                int index = i + 1;
                var t = new Thread(() => Loop(index)) { IsBackground = true, Name = $"lorasharp-worker-{index}" };
                t.Start();
            }
        }

        public void Run(delegate*<void*, int, int, void> fn, void* work, int parts, int threads)
        {
            // The run's parameters, then its claim word and generation: a worker that reads a generation reads these,
            // and one that lags into a later run fails its claim (the word carries the generation), so it never
            // calls fn with a mix of two runs' parameters.
            _fn = fn;
            _work = work;
            _parts = parts;
            _threads = threads;
            _error = null;
            int generation = _generation + 1;
            Volatile.Write(ref _done, 0);
            Volatile.Write(ref _claim, (long)generation << 32);
            lock (s_wakeLock)
            {
                Volatile.Write(ref _generation, generation);
                Monitor.PulseAll(s_wakeLock);
            }
            t_inside = true;
            try { RunParts(generation); }
            finally { t_inside = false; }
            // The join waits for the parts, not for the workers: parts are claimed, so when a worker has not started
            // (preempted by another process on a busy machine, or still waking) the caller has claimed and run its
            // parts too, and nothing is left to wait for. Parts of a decode step are microseconds apart, so spin on
            // the counter first. SpinWait.SpinOnce alone backs off exponentially and yields the core after ten
            // rounds: a worker finishing 15 us after the caller was noticed 0.6 ms late on a busy machine.
            for (int spins = 0; Volatile.Read(ref _done) != parts && spins < JoinSpinIterations; spins++) Thread.SpinWait(1);
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) != parts) spin.SpinOnce(sleep1Threshold: -1);
            // Closed (a full fence, so the next run's parameters cannot be seen before it): a lagging worker claims nothing.
            Interlocked.Exchange(ref _claim, ((long)generation << 32) | int.MaxValue);
            if (_error is { } error) throw new AggregateException("A parallel part failed.", error);
        }

        // Claims and runs parts of run `generation` until none is left. The claim word is read first (acquire), the
        // run's parameters after it, and the claim taken by a compare-exchange of that word: it succeeds only if
        // no later run has begun (each run closes its word after the join, before the next run writes its
        // parameters), so the parameters read are the claimed run's. A failing part still counts as done, so the
        // join ends.
        private void RunParts(int generation)
        {
            while (true)
            {
                long claim = Volatile.Read(ref _claim);
                if ((int)(claim >> 32) != generation) return;
                var fn = _fn;
                var work = _work;
                int parts = _parts, part = (int)claim;
                if (part >= parts) return;
                if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) != claim) continue;
                try { fn(work, part, parts); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                finally { Interlocked.Increment(ref _done); }
            }
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
                if (index < _threads) RunParts(seen);
            }
        }
    }
}
