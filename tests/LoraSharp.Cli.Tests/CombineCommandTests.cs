// `lorasharp combine`: help, a real svd/linear combination written as a PEFT folder, and mixed ranks with linear.
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class CombineCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-cli-combine-" + Guid.NewGuid().ToString("N"));

    public CombineCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Help_ListsOptions()
    {
        var (code, output, _) = MergeCommandTests.Run("combine", "--help");
        Assert.Equal(0, code);
        foreach (var o in new[] { "--adapter", "--method", "--rank", "--out" }) Assert.Contains(o, output);
    }

    [Fact]
    public void Combine_LinearAndSvd_WritePeftFolders()
    {
        string lin = Path.Combine(_dir, "lin");
        var (code, output, err) = MergeCommandTests.Run("combine", "-a", MergeCommandTests.Lora + ":0.5", "-a", MergeCommandTests.Lora + ":0.5", "--method", "linear", "-o", lin);
        Assert.True(code == 0, err);
        Assert.Contains("35 modules", output);
        Assert.True(File.Exists(Path.Combine(lin, "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(lin, "adapter_model.safetensors")));

        string svd = Path.Combine(_dir, "svd");
        (code, _, err) = MergeCommandTests.Run("combine", "-a", MergeCommandTests.Lora, "-a", lin + ":-1", "--method", "svd", "--rank", "2", "-o", svd);
        Assert.True(code == 0, err);
        Assert.Contains("\"r\": 2", File.ReadAllText(Path.Combine(svd, "adapter_config.json")));
    }

    [Fact]
    public void Combine_LinearWithMixedRanks_FailsAndWritesNothing()
    {
        string cat = Path.Combine(_dir, "cat");
        var (code, _, err) = MergeCommandTests.Run("combine", "-a", MergeCommandTests.Lora, "-a", MergeCommandTests.Lora, "--method", "cat", "-o", cat);
        Assert.True(code == 0, err);
        string bad = Path.Combine(_dir, "bad");
        (code, _, err) = MergeCommandTests.Run("combine", "-a", MergeCommandTests.Lora, "-a", cat, "--method", "linear", "-o", bad);
        Assert.Equal(1, code);
        Assert.Contains("equal ranks", err);
        Assert.False(Directory.Exists(bad));
        Assert.Equal(["cat"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
    }
}
