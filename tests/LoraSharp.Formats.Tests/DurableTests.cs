// Crash-safe writes: a failed write leaves the old file and no temporary one; a folder replacement swaps whole folders.
namespace LoraSharp.Formats.Tests;

public sealed class DurableTests
{
    [Fact]
    public void WriteFile_ThatFails_KeepsTheOldFile_AndLeavesNoTemporary()
    {
        using var dir = new TempDir();
        string path = dir.Write("a.txt", "old"u8.ToArray());
        Assert.Throws<InvalidOperationException>(() => Durable.WriteFile(path, s => { s.Write("ne"u8); throw new InvalidOperationException("disk full"); }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(["a.txt"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));
        Durable.WriteAllText(path, "new");
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(["a.txt"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void ReplaceDirectory_SwapsInTheNewFolder_AndRemovesTheOld()
    {
        using var dir = new TempDir();
        string target = Directory.CreateDirectory(dir.File("adapter")).FullName;
        File.WriteAllText(Path.Combine(target, "old.txt"), "old");
        string source = Directory.CreateDirectory(dir.File(".adapter.tmp-1-x")).FullName;
        File.WriteAllText(Path.Combine(source, "new.txt"), "new");
        Durable.SyncTree(source);
        Durable.ReplaceDirectory(source, target);
        Assert.Equal(["new.txt"], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
        Assert.Equal(["adapter"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));

        string fresh = Directory.CreateDirectory(dir.File(".fresh")).FullName;
        Durable.ReplaceDirectory(fresh, dir.File("fresh"));   // nothing there yet: a plain rename
        Assert.True(Directory.Exists(dir.File("fresh")));
        Assert.False(Directory.Exists(fresh));
    }

    [Fact]
    public void SyncDirectory_OfAFolder_Works()
    {
        using var dir = new TempDir();
        Durable.SyncDirectory(dir.Path);
        Durable.SyncTree(dir.Path);
    }
}
