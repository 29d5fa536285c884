// Runs a test's 2-thread case and checks that it really ran on two threads: a "1 vs 2 threads give identical
// results" test whose work is below the kernels' split threshold would otherwise compare one thread with itself.
using LoraSharp.Core.Threading;
using Xunit;

namespace LoraSharp.TestSupport;

/// <summary>The 2-thread half of a thread-equality test.</summary>
public static class TwoThreads
{
    /// <summary>Runs <paramref name="work"/> with two compute threads and fails unless some of it was split across both.</summary>
    public static void Run(Action work)
    {
        Assert.True(Threads.Hardware >= 2, $"this test compares 1 and 2 threads but the pool has {Threads.Hardware} (LORASHARP_THREADS or the processor count)");
        long before = Threads.ParallelRunsOnThisThread;
        using (Threads.Limit(2)) work();
        Assert.True(Threads.ParallelRunsOnThisThread > before,
            "the 2-thread case never split its work across threads (below the split threshold): give the test a bigger shape");
    }
}
