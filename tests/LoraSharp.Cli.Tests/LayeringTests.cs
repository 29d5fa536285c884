// Asserts the assembly dependency graph of ../shared/STYLE.md by reading every .csproj's ProjectReferences.
using System.Xml.Linq;

namespace LoraSharp.Cli.Tests;

public class LayeringTests
{
    // Allowed ProjectReferences of each production project (exactly these, so a new edge is a decision).
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["LoraSharp.Core"] = [],
        ["LoraSharp.Formats"] = ["LoraSharp.Core"],
        ["LoraSharp.Tokenizers"] = [],
        ["LoraSharp.Models"] = ["LoraSharp.Core", "LoraSharp.Formats", "LoraSharp.Tokenizers"],
        ["LoraSharp.Training"] = ["LoraSharp.Core", "LoraSharp.Formats", "LoraSharp.Tokenizers", "LoraSharp.Models"],
        ["LoraSharp.App"] = ["LoraSharp.Core", "LoraSharp.Formats", "LoraSharp.Tokenizers", "LoraSharp.Models", "LoraSharp.Training"],
        ["LoraSharp.Web"] = ["LoraSharp.App"],
        ["LoraSharp.Bench"] = ["LoraSharp.App"],
        ["LoraSharp.Cli"] = ["LoraSharp.App", "LoraSharp.Web", "LoraSharp.Bench"],
    };

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoraSharp.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException("LoraSharp.slnx not found above " + AppContext.BaseDirectory);
    }

    private static Dictionary<string, string[]> ReadGraph()
    {
        var root = RepoRoot();
        var graph = new Dictionary<string, string[]>();
        foreach (var csproj in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.csproj", SearchOption.AllDirectories)
                     .Concat(Directory.EnumerateFiles(Path.Combine(root, "bench"), "*.csproj", SearchOption.AllDirectories)))
        {
            var refs = XDocument.Load(csproj).Descendants("ProjectReference")
                .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value.Replace('\\', '/')))
                .OrderBy(s => s, StringComparer.Ordinal).ToArray();
            graph[Path.GetFileNameWithoutExtension(csproj)] = refs;
        }
        return graph;
    }

    [Fact]
    public void ProjectReferences_FollowTheLayering()
    {
        var graph = ReadGraph();
        Assert.Equal(Allowed.Keys.Order(StringComparer.Ordinal), graph.Keys.Order(StringComparer.Ordinal));
        foreach (var (project, refs) in graph)
            Assert.True(Allowed[project].Order(StringComparer.Ordinal).SequenceEqual(refs),
                $"{project} references [{string.Join(", ", refs)}] but the layering allows [{string.Join(", ", Allowed[project])}].");
    }

    [Fact]
    public void Core_AndTokenizers_UseNoPackagesButTensors()
    {
        var root = RepoRoot();
        foreach (var (name, allowed) in new[] { ("LoraSharp.Core", new[] { "System.Numerics.Tensors" }), ("LoraSharp.Tokenizers", Array.Empty<string>()) })
        {
            var pkgs = XDocument.Load(Path.Combine(root, "src", name, name + ".csproj")).Descendants("PackageReference")
                .Select(e => e.Attribute("Include")!.Value).ToArray();
            Assert.True(pkgs.All(allowed.Contains), $"{name} uses packages [{string.Join(", ", pkgs)}]");
        }
    }

    [Fact]
    public void LlamaSharp_IsReferencedByTheBenchAndTheModelFamilyTestsOnly()
    {
        // llama.cpp (LLamaSharp) is bench generate's peer and the model-family tests' independent runtime
        // (Training.Tests/Families), never a dependency of the library.
        var root = RepoRoot();
        var users = Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(p => XDocument.Load(p).Descendants("PackageReference").Any(e => e.Attribute("Include")!.Value.StartsWith("LLamaSharp", StringComparison.OrdinalIgnoreCase)
                                                                                   && (string?)e.Attribute("Publish") != "false"))
            .Select(p => Path.GetFileNameWithoutExtension(p)!).ToArray();
        Assert.Equal(["LoraSharp.Bench", "LoraSharp.Training.Tests"], users.Order(StringComparer.Ordinal));
        // The CLI names them only to keep them out of the packed tool (Publish="false", docs/packaging.md).
        var cli = XDocument.Load(Path.Combine(root, "src", "LoraSharp.Cli", "LoraSharp.Cli.csproj")).Descendants("PackageReference")
            .Where(e => e.Attribute("Include")!.Value.StartsWith("LLamaSharp", StringComparison.OrdinalIgnoreCase)).ToArray();
        Assert.All(cli, e => Assert.Equal("false", (string?)e.Attribute("Publish")));
    }
}
