// `lorasharp merge`: help, a real merge of the golden adapter into stories260K (HF and GGUF), and bad input that
// exits non-zero with a clear message and writes nothing.
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class MergeCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-cli-merge-" + Guid.NewGuid().ToString("N"));

    public MergeCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    internal static string Lora => SharedFixtures.Path("golden", "stories260K", "lora");

    [Fact]
    public void Help_ListsOptions()
    {
        var (code, output, _) = Run("merge", "--help");
        Assert.Equal(0, code);
        foreach (var o in new[] { "--model", "--adapter", "--out", "--format", "--dtype", "--safe" }) Assert.Contains(o, output);
    }

    [Fact]
    public void Merge_GoldenAdapterToHfAndGguf_WritesLoadableModels()
    {
        string hf = Path.Combine(_dir, "merged");
        var (code, output, err) = Run("merge", "--model", SharedFixtures.Stories260KHf, "--adapter", Lora + ":1", "--out", hf, "--safe");
        Assert.True(code == 0, err);
        Assert.Contains("merged 35 weights", output);
        Assert.True(File.Exists(Path.Combine(hf, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(hf, "tokenizer.json")));

        string gguf = Path.Combine(_dir, "merged.gguf");
        (code, output, err) = Run("merge", "-m", SharedFixtures.Stories260KHf, "-a", Lora, "-o", gguf, "--dtype", "f16");
        Assert.True(code == 0, err);
        Assert.Contains("F16", output);
        using var loaded = Models.Loading.ModelLoader.Load(gguf);
        Assert.Equal(5, loaded.Config.NumHiddenLayers);
    }

    [Fact]
    public void Merge_AdapterMissing_FailsWithMessageAndWritesNothing()
    {
        string outDir = Path.Combine(_dir, "out");
        var (code, _, err) = Run("merge", "--model", SharedFixtures.Stories260KHf, "--adapter", Path.Combine(_dir, "nope"), "--out", outDir);
        Assert.Equal(1, code);
        Assert.Contains("error:", err);
        Assert.Contains("nope", err);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Merge_BadDType_FailsWithMessage()
    {
        var (code, _, err) = Run("merge", "--model", SharedFixtures.Stories260KHf, "--adapter", Lora, "--out", Path.Combine(_dir, "x"), "--dtype", "q4_k");
        Assert.Equal(1, code);
        Assert.Contains("q4_k", err);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
