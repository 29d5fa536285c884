// The arena that holds frozen weights on huge pages: slices are aligned, zeroed and disjoint, big slices get their
// own chunk, copies keep their bytes, and on a Linux machine whose THP setting allows it the weights really sit on
// 2 MiB pages (AnonHugePages grows), which is what makes f32 decode faster.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.TestSupport;
using Xunit.Abstractions;

namespace LoraSharp.Core.Tests.Tensors;

public unsafe class HugePageArenaTests(ITestOutputHelper log)
{
    [Fact]
    public void Slices_AreAlignedZeroedAndDisjoint()
    {
        long[] sizes = [1, 63, 64, 1000, 3 << 20, 17, 40L << 20];   // the last is past half a chunk: a chunk of its own
        var slices = new List<(nint P, long Bytes, ArenaChunk Owner)>();
        byte fill = 1;
        foreach (long bytes in sizes)
        {
            byte* p = HugePageArena.Allocate(bytes, out var owner);
            Assert.Equal(0, (nint)p % 64);
            Assert.True(new ReadOnlySpan<byte>(p, (int)bytes).IndexOfAnyExcept((byte)0) < 0, $"slice of {bytes} bytes not zeroed");
            new Span<byte>(p, (int)bytes).Fill(fill++);
            slices.Add(((nint)p, bytes, owner));
        }
        fill = 1;
        foreach (var (p, bytes, _) in slices)
        {
            byte expected = fill++;
            Assert.True(new ReadOnlySpan<byte>((byte*)p, (int)bytes).IndexOfAnyExcept(expected) < 0, $"slice of {bytes} bytes was overwritten by another");
        }
        GC.KeepAlive(slices);
    }

    [Fact]
    public void CopyToHugePages_KeepsTheBytes_AndLeavesTheSourceUsable()
    {
        using var source = Tensor.FromFloats(TestData.Uniform(3000, 5), 30, 100);
        using var copy = source.CopyToHugePages();
        Assert.Equal(source.Shape, copy.Shape);
        Assert.Equal(source.AsSpan<float>().ToArray(), copy.AsSpan<float>().ToArray());
        Assert.NotEqual(source.Pointer, copy.Pointer);
        Assert.Equal(3000, source.AsSpan<float>().Length);
    }

    [Fact]
    public void F32Weights_SitOnHugePages_WhereTheOsAllowsIt()
    {
        if (!OperatingSystem.IsLinux()) return;
        string thp = File.Exists("/sys/kernel/mm/transparent_hugepage/enabled") ? File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled") : "";
        log.WriteLine($"transparent_hugepage/enabled: {thp.Trim()}");
        if (!thp.Contains("[madvise]") && !thp.Contains("[always]")) return;   // THP off: nothing to check
        long before = AnonHugePagesKb();
        const int N = 4096, K = 4096;   // 64 MiB of f32 panels
        var weight = PackedWeight.FromF32(new float[(long)N * K], N, K);
        long after = AnonHugePagesKb();
        log.WriteLine($"AnonHugePages {before} -> {after} kB");
        Assert.True(after - before >= 48 * 1024, $"a 64 MiB f32 weight added only {after - before} kB of huge pages (expected most of it)");
        GC.KeepAlive(weight);
    }

    private static long AnonHugePagesKb()
    {
        foreach (string line in File.ReadLines("/proc/self/smaps_rollup"))
            if (line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        return 0;
    }
}
