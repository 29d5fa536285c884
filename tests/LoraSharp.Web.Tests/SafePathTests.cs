// SafePath: every way a name could lead out of its folder is refused, and names inside (also through links that
// stay inside) resolve to their real path.
using LoraSharp.Web.Security;

namespace LoraSharp.Web.Tests;

public sealed class SafePathTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-safepath-").FullName;
    private readonly string _root;
    private readonly string _outside;

    public SafePathTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_dir, "root")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
        File.WriteAllText(Path.Combine(_outside, "secret.txt"), "secret");
        Directory.CreateDirectory(Path.Combine(_root, "sub"));
        File.WriteAllText(Path.Combine(_root, "sub", "data.json"), "[]");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Resolve(string name) => SafePath.Resolve(_root, "datasets", name);

    private void AssertRefused(string name)
    {
        var e = Assert.Throws<UnauthorizedAccessException>(() => Resolve(name));
        Assert.Contains("refused", e.Message);
        Assert.Contains("datasets folder", e.Message);
    }

    [Fact]
    public void NamesInside_ResolveToTheirRealPath()
    {
        Assert.Equal(Path.Combine(_root, "sub", "data.json"), Resolve("sub/data.json"));
        Assert.Equal(Path.Combine(_root, "sub", "data.json"), Resolve("./sub//data.json"));
        Assert.Equal(Path.Combine(_root, "new.json"), Resolve("new.json"));   // need not exist (an output)
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../outside/secret.txt")]
    [InlineData("sub/../../outside/secret.txt")]
    [InlineData("sub/..")]
    [InlineData("..\\outside\\secret.txt")]
    public void DotDot_IsRefused(string name) => AssertRefused(name);

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("\\etc\\passwd")]
    [InlineData("~/secret.txt")]
    public void AbsolutePaths_AreRefused(string name) => AssertRefused(name);

    [Fact]
    public void AbsolutePathOfAFileInside_IsRefusedToo() => AssertRefused(Path.Combine(_root, "sub", "data.json"));

    [Theory]
    [InlineData("a\0b")]
    [InlineData("line\nbreak")]
    public void ControlCharacters_AreRefused(string name) => AssertRefused(name);

    [Theory]
    [InlineData(".")]
    [InlineData("./")]
    public void TheFolderItself_IsRefused(string name) => AssertRefused(name);

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData(null)]
    public void EmptyNames_AreAUserError(string? name) => Assert.Throws<LoraSharp.Core.UserErrorException>(() => SafePath.Resolve(_root, "datasets", name));

    [Fact]
    public void FileLinkPointingOutside_IsRefused()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "link.txt"), Path.Combine(_outside, "secret.txt"));
        AssertRefused("link.txt");
    }

    [Fact]
    public void FolderLinkPointingOutside_IsRefused_ForEverythingUnderIt()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "away"), _outside);
        AssertRefused("away/secret.txt");
        AssertRefused("away/not-yet-there.json");
    }

    [Fact]
    public void RelativeLinkClimbingOut_IsRefused()
    {
        Directory.CreateSymbolicLink(Path.Combine(_root, "sub", "up"), "../../outside");
        AssertRefused("sub/up/secret.txt");
    }

    [Fact]
    public void ChainOfLinksEndingOutside_IsRefused()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "hop2"), Path.Combine(_outside, "secret.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "hop1"), Path.Combine(_root, "hop2"));
        AssertRefused("hop1");
    }

    [Fact]
    public void LinkStayingInside_IsAccepted_AsItsTarget()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "alias.json"), Path.Combine(_root, "sub", "data.json"));
        Assert.Equal(Path.Combine(_root, "sub", "data.json"), Resolve("alias.json"));
    }

    [Fact]
    public void RootThatIsItselfALink_StillAcceptsNamesInside()
    {
        string linkRoot = Path.Combine(_dir, "root-link");
        Directory.CreateSymbolicLink(linkRoot, _root);
        Assert.Equal(Path.Combine(_root, "sub", "data.json"), SafePath.Resolve(linkRoot, "datasets", "sub/data.json"));
    }

    [Fact]
    public void LinkLoop_IsAnIOError()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "loop-a"), Path.Combine(_root, "loop-b"));
        File.CreateSymbolicLink(Path.Combine(_root, "loop-b"), Path.Combine(_root, "loop-a"));
        Assert.Throws<IOException>(() => Resolve("loop-a"));
    }

    [Theory]
    [InlineData("sub/data.json")]
    [InlineData("a\\b")]
    public void ResolveChild_RefusesNestedNames(string name) =>
        Assert.Throws<LoraSharp.Core.UserErrorException>(() => SafePath.ResolveChild(_root, "adapters", name));

    [Fact]
    public void IsInside_NeedsASeparatorAfterTheRoot() => Assert.False(SafePath.IsInside("/data/root", "/data/root-sibling/x"));
}
