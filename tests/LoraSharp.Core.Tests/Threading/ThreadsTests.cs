using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Tests.Threading;

public class ThreadsTests
{
    private unsafe struct CountParts : IParallelWork
    {
        public int* Hits;
        public int* ThreadIds;

        public void Execute(int part, int parts)
        {
            Interlocked.Increment(ref Hits[part]);
            ThreadIds[part] = Environment.CurrentManagedThreadId;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(64)]
    public unsafe void Run_ExecutesEveryPartExactlyOnce(int parts)
    {
        var hits = new int[parts];
        var ids = new int[parts];
        fixed (int* h = hits, t = ids)
        {
            for (int round = 0; round < 200; round++)
            {
                var work = new CountParts { Hits = h, ThreadIds = t };
                Threads.Run(ref work, parts);
            }
        }
        Assert.All(hits, v => Assert.Equal(200, v));
    }

    [Fact]
    public unsafe void Limit_One_RunsOnCallingThread()
    {
        var hits = new int[4];
        var ids = new int[4];
        using (Threads.Limit(1))
        {
            Assert.Equal(1, Threads.Count);
            fixed (int* h = hits, t = ids)
            {
                var work = new CountParts { Hits = h, ThreadIds = t };
                Threads.Run(ref work, 4);
            }
        }
        Assert.All(ids, id => Assert.Equal(Environment.CurrentManagedThreadId, id));
    }

    private struct Nested : IParallelWork
    {
        public int[] InnerCounts;

        public void Execute(int part, int parts)
        {
            Assert.Equal(1, Threads.Count);   // inside a part, no nested parallelism
            var inner = new Inc { Counts = InnerCounts, Offset = part * 3 };
            Threads.Run(ref inner, 3);
        }
    }

    private struct Inc : IParallelWork
    {
        public int[] Counts;
        public int Offset;
        public void Execute(int part, int parts) => Counts[Offset + part]++;
    }

    [Fact]
    public void Run_InsideRun_ExecutesSerially()
    {
        var counts = new int[6];
        var work = new Nested { InnerCounts = counts };
        Threads.Run(ref work, 2);
        Assert.All(counts, c => Assert.Equal(1, c));
    }

    private struct Throwing : IParallelWork
    {
        public void Execute(int part, int parts)
        {
            if (part == parts - 1) throw new InvalidOperationException("boom");
        }
    }

    [Fact]
    public void Run_PartThrows_SurfacesOnCaller()
    {
        var work = new Throwing();
        var e = Assert.ThrowsAny<Exception>(() => Threads.Run(ref work, 4));
        Assert.Contains("boom", e.ToString());
        var ok = new Inc { Counts = new int[2] };
        Threads.Run(ref ok, 2);   // the pool still works afterwards
        Assert.All(ok.Counts, c => Assert.Equal(1, c));
    }

    // Part 0 holds its thread until every other part is done (or a timeout passes): the other parts must not wait
    // for that thread. With parts assigned by index (thread i runs i, i+n, ...), parts 2, 4 and 6 would sit behind
    // part 0 and the run would end only at the timeout.
    private unsafe struct OnePartStalls : IParallelWork
    {
        public int* Done;
        public int* TimedOut;

        public void Execute(int part, int parts)
        {
            if (part == 0)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (Volatile.Read(ref *Done) < parts - 1)
                {
                    if (clock.ElapsedMilliseconds > 5000) { *TimedOut = 1; return; }
                    Thread.Sleep(1);
                }
            }
            else Interlocked.Increment(ref *Done);
        }
    }

    [Fact]
    public unsafe void Run_ThreadHeldInOnePart_OtherThreadsTakeTheRemainingParts()
    {
        Assert.True(Threads.Count >= 2, $"needs two threads (LORASHARP_THREADS / processor count gave {Threads.Count})");
        int done = 0, timedOut = 0;
        var work = new OnePartStalls { Done = &done, TimedOut = &timedOut };
        Threads.Run(ref work, 8);
        Assert.Equal(0, timedOut);
        Assert.Equal(7, done);
    }

    [Theory]
    [InlineData(10, 3)]
    [InlineData(2, 5)]
    [InlineData(0, 2)]
    [InlineData(1000, 7)]
    public void Split_CoversRangeWithoutOverlap(int n, int parts)
    {
        int next = 0;
        for (int p = 0; p < parts; p++)
        {
            var (s, e) = Threads.Split(n, p, parts);
            Assert.Equal(next, s);
            Assert.True(e >= s);
            next = e;
        }
        Assert.Equal(n, next);
    }

    [Theory]
    [InlineData(100, 16, 3)]
    [InlineData(17, 16, 2)]
    [InlineData(5, 16, 4)]
    public void SplitAligned_BoundariesOnMultiples(int n, int align, int parts)
    {
        int next = 0;
        for (int p = 0; p < parts; p++)
        {
            var (s, e) = Threads.SplitAligned(n, align, p, parts);
            Assert.Equal(next, s);
            if (e < n) Assert.Equal(0, e % align);
            next = e;
        }
        Assert.Equal(n, next);
    }
}
