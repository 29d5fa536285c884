// CI's fuzz smoke: 10,000 mutated inputs per parser target (seeds first), none may crash, allocate beyond its bound
// or hang. The full runs (a million inputs per target) are the documented command in docs/reliability.md.
namespace LoraSharp.Fuzz.Tests;

public class SmokeTests
{
    public const int SmokeInputs = 10_000;

    public static TheoryData<string> TargetNames() => [.. Targets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Smoke_TenThousandInputs_NoCrashAllocationOrHang(string target)
    {
        var report = FuzzEngine.Run(Targets.Find(target), new FuzzOptions { Inputs = SmokeInputs, Seed = 20261206, HangMilliseconds = 20_000, MaxFindings = 5 });
        Assert.False(report.Hung, $"{target} hung: {report.Findings.FirstOrDefault()}");
        Assert.True(report.Findings.Count == 0, $"{target}: {report.Findings.Count} finding(s):\n" + string.Join("\n\n", report.Findings.Select(f =>
            $"{f}\ninput (base64): {Convert.ToBase64String(f.Input)}")));
        Assert.Equal(SmokeInputs, report.Inputs);
        // Each target's seeds must reach the parser's success path, or the smoke would only test its first check.
        Assert.True(report.Parsed > 0, $"{target}: no input parsed; the seeds are broken.");
        Assert.True(report.Rejected > 0, $"{target}: no input was rejected; the mutations never reach the parser's checks.");
    }

    [Fact]
    public void Targets_CoverEveryParserOfTheIssue()
    {
        string[] expected =
        [
            "gguf", "safetensors", "safetensors-index", "tokenizer-json", "vocab-merges", "hf-config", "peft-config", "peft-adapter", "gguf-lora",
            "dataset-json", "dataset-raw", "format-file", "settings-json", "settings-yaml",
            "web-train", "web-generate", "web-merge", "web-export", "web-combine", "web-perplexity",
        ];
        Assert.Equal(expected, Targets.All.Select(t => t.Name));
    }
}
