// docs/getting-started.md: the `lorasharp` lines of its checked block run as written (../shared -> the fixtures,
// relative paths -> a temporary folder), and the files the page talks about are there with the content it describes.
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class GettingStartedTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-start-" + Guid.NewGuid().ToString("N"));

    public GettingStartedTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void CommandsOfThePage_RunAndWriteModelfiles()
    {
        var commands = CheckedCommands();
        Assert.Equal(["mkdir", "train", "merge", "export"], commands.Select(c => c[0] == "mkdir" ? "mkdir" : c[1]));
        File.WriteAllText(Path.Combine(_dir, "story.txt"), string.Join("\n", Enumerable.Repeat(
            "Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog.", 8)));
        foreach (var words in commands)
        {
            if (words[0] == "mkdir")
            {
                foreach (var folder in words.Skip(1).Where(w => !w.StartsWith('-'))) Directory.CreateDirectory(Resolve(folder));
                continue;
            }
            var args = words.Skip(1).Select(Resolve).ToArray();
            // train writes under --output (default: loras in the working directory): give the temporary folder's.
            if (args[0] == "train") args = [.. args, "--output", Path.Combine(_dir, "loras")];
            var (code, output, err) = MergeCommandTests.Run(args);
            Assert.True(code == 0, $"{string.Join(' ', words)} exited {code}:\n{output}\n{err}");
        }

        Assert.True(File.Exists(Path.Combine(_dir, "loras", "my-lora", "adapter_config.json")));
        string merged = File.ReadAllText(Path.Combine(_dir, "out", "merged", "Modelfile"));
        Assert.Contains("FROM ./my-model.gguf\n", merged);
        Assert.True(File.Exists(Path.Combine(_dir, "out", "merged", "my-model.gguf")));
        Assert.Contains("no chat template", merged);   // stories260K has none: the page says so
        string adapter = File.ReadAllText(Path.Combine(_dir, "out", "adapter", "Modelfile"));
        Assert.Contains($"FROM {SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf")}\n", adapter);
        Assert.Contains("ADAPTER ./my-lora.gguf\n", adapter);
        Assert.True(File.Exists(Path.Combine(_dir, "out", "adapter", "my-lora.gguf")));
    }

    private string Resolve(string word) =>
        word.StartsWith("../shared/", StringComparison.Ordinal) ? SharedFixtures.Path(word["../shared/".Length..].Split('/'))
        : word.StartsWith("loras/", StringComparison.Ordinal) || word.StartsWith("out/", StringComparison.Ordinal) || word == "story.txt" ? Path.Combine(_dir, word)
        : word;

    // The `mkdir ...` and `lorasharp ...` lines of the block after the "checked by GettingStartedTests" marker, split on spaces.
    private static List<string[]> CheckedCommands()
    {
        string root = AppContext.BaseDirectory;
        for (var d = new DirectoryInfo(root); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoraSharp.slnx"))) { root = d.FullName; break; }
        var lines = File.ReadAllLines(Path.Combine(root, "docs", "getting-started.md"));
        int marker = Array.FindIndex(lines, l => l.Contains("checked by GettingStartedTests", StringComparison.Ordinal));
        Assert.True(marker >= 0, "docs/getting-started.md lost its 'checked by GettingStartedTests' marker");
        int open = Array.FindIndex(lines, marker, l => l.StartsWith("```", StringComparison.Ordinal));
        int close = Array.FindIndex(lines, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        return lines[(open + 1)..close].Where(l => l.StartsWith("lorasharp ", StringComparison.Ordinal) || l.StartsWith("mkdir ", StringComparison.Ordinal))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
    }
}
