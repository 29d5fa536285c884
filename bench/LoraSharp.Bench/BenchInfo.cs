// Placeholder namespace anchor for the benchmark library; benchmarks are added per issue (kernels, train, generate).
namespace LoraSharp.Bench;

/// <summary>Common header printed by every benchmark.</summary>
public static class BenchInfo
{
    /// <summary>One line naming the machine and settings, so ratios can be compared across runs.</summary>
    public static string Header() =>
        string.Join("; ", App.SystemInfo.Describe().Select(p => $"{p.Name}: {p.Value}"));
}
