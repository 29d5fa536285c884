// The harness itself: it must be able to fail (a crashing, over-allocating or hanging target is reported), replay
// deterministically from its seed, and cut multi-file inputs the way the targets expect.
namespace LoraSharp.Fuzz.Tests;

public class EngineTests
{
    private static FuzzTarget Fake(Action<byte[]> run, long perByte = 64, long fixedBytes = 1 << 20) => new()
    {
        Name = "fake", Parser = "test", Seeds = () => [[1, 2, 3, 4, 5, 6, 7, 8]], Rejections = [typeof(InvalidDataException)],
        Run = (input, _) => run(input), AllocPerByte = perByte, AllocFixed = fixedBytes,
    };

    [Fact]
    public void Run_TargetThrowsUndocumentedException_ReportsCrash()
    {
        var target = Fake(b => { if (b.Length > 0 && b[0] == 1 && b.Length != 8) throw new IndexOutOfRangeException("boom"); throw new InvalidDataException("bad"); });
        var report = FuzzEngine.Run(target, new FuzzOptions { Inputs = 2000 });
        var crash = Assert.Single(report.Findings);
        Assert.Equal("crash", crash.Kind);
        Assert.Contains("IndexOutOfRangeException", crash.Detail);
    }

    [Fact]
    public void Run_SubclassOfDocumentedType_IsStillACrash()
    {
        var fake = Fake(_ => throw new ArgumentOutOfRangeException("x"));
        var target = new FuzzTarget { Name = fake.Name, Parser = fake.Parser, Seeds = fake.Seeds, Run = fake.Run, Rejections = [typeof(ArgumentException)] };
        var report = FuzzEngine.Run(target, new FuzzOptions { Inputs = 10 });
        Assert.Equal("crash", Assert.Single(report.Findings).Kind);
    }

    [Fact]
    public void Run_AllocationBeyondBound_ReportsAlloc()
    {
        var target = Fake(b => GC.KeepAlive(new byte[b.Length * 1000 + 100]), perByte: 64, fixedBytes: 4096);
        var report = FuzzEngine.Run(target, new FuzzOptions { Inputs = 50 });
        Assert.Equal("alloc", report.Findings[0].Kind);
    }

    [Fact]
    public void Run_InputNeverReturns_ReportsHang()
    {
        using var release = new ManualResetEventSlim();
        var target = Fake(_ => release.Wait());
        try
        {
            var report = FuzzEngine.Run(target, new FuzzOptions { Inputs = 10, HangMilliseconds = 300 });
            Assert.True(report.Hung);
            Assert.Equal("hang", Assert.Single(report.Findings).Kind);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public void Mutator_SameSeed_SameInputs_OtherSeed_Differs()
    {
        byte[] seed = "{\"a\": [1, 2, 3]}"u8.ToArray();
        static List<string> Take(ulong s, byte[] input)
        {
            var m = new Mutator(s, [], 1024);
            return Enumerable.Range(0, 200).Select(_ => Convert.ToHexString(m.Mutate(input, input))).ToList();
        }
        Assert.Equal(Take(7, seed), Take(7, seed));
        Assert.NotEqual(Take(7, seed), Take(8, seed));
        Assert.All(Take(9, seed), h => Assert.True(h.Length / 2 <= 1024));
    }

    [Fact]
    public void Split_JoinedParts_RoundTrip_MissingPartsEmpty()
    {
        byte[][] parts = [[1, 2], [], [3]];
        Assert.Equal(parts, FuzzWorkspace.Split(FuzzWorkspace.Join(parts), 3));
        var two = FuzzWorkspace.Split([9, 9], 3);
        Assert.Equal([9, 9], two[0]);
        Assert.Empty(two[1]);
        Assert.Empty(two[2]);
    }
}
