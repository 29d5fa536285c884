// `lorasharp extract`: help, extracting the golden adapter back from a merged model, and a rank larger than a matrix.
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class ExtractCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-cli-extract-" + Guid.NewGuid().ToString("N"));

    public ExtractCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Merged()
    {
        string merged = Path.Combine(_dir, "merged");
        var (code, _, err) = MergeCommandTests.Run("merge", "-m", SharedFixtures.Stories260KHf, "-a", MergeCommandTests.Lora, "-o", merged);
        Assert.True(code == 0, err);
        return merged;
    }

    [Fact]
    public void Help_ListsOptions()
    {
        var (code, output, _) = MergeCommandTests.Run("extract", "--help");
        Assert.Equal(0, code);
        foreach (var o in new[] { "--base", "--tuned", "--rank", "--energy", "--max-rank", "--out" }) Assert.Contains(o, output);
    }

    [Fact]
    public void Extract_FromMergedModel_ReportsEnergyAndWritesPeftFolder()
    {
        string merged = Merged();
        string outDir = Path.Combine(_dir, "extracted");
        var (code, output, err) = MergeCommandTests.Run("extract", "--base", SharedFixtures.Stories260KHf, "--tuned", merged, "--rank", "4", "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains("model.layers.0.self_attn.q_proj", output);
        Assert.Contains("overall energy kept 100.000%", output);
        Assert.True(File.Exists(Path.Combine(outDir, "adapter_model.safetensors")));

        (code, output, err) = MergeCommandTests.Run("extract", "-b", SharedFixtures.Stories260KHf, "-t", merged, "--energy", "0.8", "-o", Path.Combine(_dir, "e"));
        Assert.True(code == 0, err);
        Assert.Contains("overall energy kept", output);
    }

    [Fact]
    public void Extract_RankLargerThanMatrix_FailsAndWritesNothing()
    {
        string merged = Merged();
        string outDir = Path.Combine(_dir, "x");
        var (code, _, err) = MergeCommandTests.Run("extract", "--base", SharedFixtures.Stories260KHf, "--tuned", merged, "--rank", "100", "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("at most", err);
        Assert.False(Directory.Exists(outDir));
    }
}
