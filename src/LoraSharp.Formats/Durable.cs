// Writes that survive a crash or power loss: a file is written under a temporary name in its own folder, flushed to
// the disk (fsync), renamed over its final name, and the folder's entry is flushed too, so after a kill -9 or a power
// cut a reader finds either the old file or the whole new one. Folders are replaced the same way: on Linux one
// renameat2(RENAME_EXCHANGE) swaps a finished temporary folder with the old one, so the name never points at nothing
// and never at a half-written folder (elsewhere: rename the old one aside, rename the new one in, delete the old one).
// Not here: what goes into the files.
using System.Runtime.InteropServices;

namespace LoraSharp.Formats;

/// <summary>Crash-safe file and folder replacement.</summary>
public static partial class Durable
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/> atomically and durably.</summary>
    public static void WriteFile(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            SyncDirectory(dir);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes a text file (UTF-8, no BOM) atomically and durably.</summary>
    public static void WriteAllText(string path, string text) =>
        WriteFile(path, s => { var bytes = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(bytes); });

    /// <summary>Flushes the data of every file under <paramref name="folder"/> and the folders themselves to the disk.</summary>
    public static void SyncTree(string folder)
    {
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            using var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            fs.Flush(flushToDisk: true);
        }
        foreach (var dir in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories)) SyncDirectory(dir);
        SyncDirectory(folder);
    }

    /// <summary>Flushes a folder's entries (names created, renamed or removed in it) to the disk; a no-op on Windows.</summary>
    public static void SyncDirectory(string folder)
    {
        if (OperatingSystem.IsWindows()) return;   // NTFS journals metadata; a directory cannot be opened for fsync there
        int fd = Open(folder, ReadOnly | (OperatingSystem.IsLinux() ? DirectoryFlag : 0));
        if (fd < 0) return;                         // a file system that cannot open folders (rare): nothing more to do
        try { _ = Fsync(fd); }
        finally { _ = Close(fd); }
    }

    /// <summary>
    /// Puts the finished folder <paramref name="source"/> at <paramref name="target"/>, replacing a folder there in one
    /// step where the system allows it; the old folder is deleted afterwards. Both must be on the same file system.
    /// </summary>
    public static void ReplaceDirectory(string source, string target)
    {
        source = Path.GetFullPath(source);
        target = Path.GetFullPath(target);
        string parent = Path.GetDirectoryName(target) ?? ".";
        if (!Directory.Exists(target))
        {
            Directory.Move(source, target);
        }
        else if (OperatingSystem.IsLinux() && Exchange(source, target))
        {
            Directory.Delete(source, recursive: true);   // source now holds the old folder
        }
        else
        {
            string old = Path.Combine(parent, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
            Directory.Move(target, old);
            Directory.Move(source, target);
            Directory.Delete(old, recursive: true);
        }
        SyncDirectory(parent);
    }

    // renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE): both names stay valid, their folders swap. False when the
    // call is not available (old kernel or libc, a file system without it), so the caller falls back to two renames.
    private static bool Exchange(string a, string b)
    {
        try
        {
            return RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    private const int ReadOnly = 0;                  // O_RDONLY
    private const int DirectoryFlag = 0x10000;       // O_DIRECTORY on Linux x64/arm64
    private const int AtFdCwd = -100;                // AT_FDCWD
    private const uint RenameExchange = 2;           // RENAME_EXCHANGE

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "renameat2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int RenameAt2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);
}
