// Writes a folder so that it appears complete or not at all: files go into a sibling temporary folder (a dot name,
// which adapter lists skip), every file and the folder are flushed to the disk, and the folder is then renamed into
// place, replacing an old one in one step where the system allows it (Formats' Durable.ReplaceDirectory). A kill -9
// or power cut at any moment leaves the old folder or the new one, never a mix; a left-over temporary folder is
// removed by the next write of the same name. An existing folder is never silently overwritten.
using LoraSharp.Formats;

namespace LoraSharp.Training;

/// <summary>All-or-nothing folder writes.</summary>
public static class AtomicFolder
{
    /// <summary>The prefix of temporary folders (so that listings can skip them).</summary>
    public const string TempPrefix = ".";

    /// <summary>Runs <paramref name="write"/> on a temporary folder, then moves it to <paramref name="folder"/>.</summary>
    public static void Write(string folder, bool overwrite, Action<string> write)
    {
        folder = Path.GetFullPath(folder);
        if (Directory.Exists(folder) && !overwrite)
            throw new Core.UserErrorException($"{folder} already exists; choose another name or pass --overwrite to replace it.");
        string parent = Path.GetDirectoryName(folder) ?? ".";
        Directory.CreateDirectory(parent);
        RemoveLeftovers(parent);
        string temp = Path.Combine(parent, $"{TempPrefix}{Path.GetFileName(folder)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            Commit(temp, folder);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Makes the finished folder <paramref name="source"/> appear at <paramref name="folder"/>: flushes it to the disk,
    /// then renames it there in one step (replacing what was there).
    /// </summary>
    public static void Commit(string source, string folder)
    {
        Durable.SyncTree(source);
        Durable.ReplaceDirectory(source, folder);
    }

    /// <summary>
    /// Removes the temporary files and folders ("NAME.tmp-PID-...") that a process killed mid-write left in
    /// <paramref name="parent"/>; never those of a live process (the pid in the name is checked).
    /// </summary>
    public static void RemoveLeftovers(string parent)
    {
        if (!Directory.Exists(parent)) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(parent, "*.tmp-*"))
        {
            string name = Path.GetFileName(entry);
            int at = name.LastIndexOf(".tmp-", StringComparison.Ordinal);
            var rest = name[(at + ".tmp-".Length)..];
            int dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest[..dash], out int pid) || pid == Environment.ProcessId || IsAlive(pid)) continue;
            try
            {
                if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
                else File.Delete(entry);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
