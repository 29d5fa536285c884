// `lorasharp export`: help, exporting the golden adapter to a GGUF LoRA file that imports back, and the missing
// base-config error.
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class ExportCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-cli-export-" + Guid.NewGuid().ToString("N"));

    public ExportCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Help_ListsOptions()
    {
        var (code, output, _) = MergeCommandTests.Run("export", "--help");
        Assert.Equal(0, code);
        foreach (var o in new[] { "--adapter", "--out", "--model", "--dtype" }) Assert.Contains(o, output);
    }

    [Fact]
    public void Export_GoldenAdapter_WritesGgufLoraThatMergeAccepts()
    {
        string gguf = Path.Combine(_dir, "lora.gguf");
        var (code, output, err) = MergeCommandTests.Run("export", "--adapter", MergeCommandTests.Lora, "--model", SharedFixtures.Stories260KHf, "--out", gguf);
        Assert.True(code == 0, err);
        Assert.Contains("35 modules", output);
        using (var g = Formats.Gguf.GgufFile.Open(gguf)) Assert.Equal("adapter", g.Get("general.type")!.AsString());

        // Every command that takes an adapter accepts the GGUF LoRA file.
        (code, _, err) = MergeCommandTests.Run("merge", "-m", SharedFixtures.Stories260KHf, "-a", gguf, "-o", Path.Combine(_dir, "m"));
        Assert.True(code == 0, err);
        (code, _, err) = MergeCommandTests.Run("combine", "-a", gguf, "-m", SharedFixtures.Stories260KHf, "-o", Path.Combine(_dir, "c"));
        Assert.True(code == 0, err);
    }

    [Fact]
    public void Export_WithoutModelAndNonLocalBase_FailsAskingForModel()
    {
        string gguf = Path.Combine(_dir, "lora.gguf");
        var (code, _, err) = MergeCommandTests.Run("export", "--adapter", MergeCommandTests.Lora, "--out", gguf);
        Assert.Equal(1, code);
        Assert.Contains("--model", err);
        Assert.False(File.Exists(gguf));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
