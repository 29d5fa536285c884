// Kill -9 safety in CI: a few random kills of the real CLI (see KillSoak); the documented soak runs many more.
using Xunit.Abstractions;

namespace LoraSharp.Cli.Tests;

public sealed class KillSoakTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-soak-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void KillSoak_RandomKillsAndResumes_EqualAnUninterruptedRun()
    {
        int points = int.TryParse(Environment.GetEnvironmentVariable("LORASHARP_SOAK_POINTS"), out int n) && n > 0 ? n : 3;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("LORASHARP_SOAK_SEED"), out int s) ? s : 20261206;
        var report = new KillSoak(_dir, seed).Run(points);
        Assert.Equal(points, report.Kills.Values.Sum());
        // Printed for the soak's record (docs/reliability.md quotes it).
        log.WriteLine($"kill soak: {points} kills ({string.Join(", ", report.Kills.Select(k => $"{k.Key} {k.Value}"))}), " +
                          $"{report.Launches} launches in {report.Rounds} rounds, {report.Fallbacks} damaged-checkpoint fallbacks; every round's adapter and losses equal the uninterrupted run");
    }
}
