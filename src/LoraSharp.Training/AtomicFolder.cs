// Writes a folder so that it appears complete or not at all: files go into a sibling temporary folder, which is
// renamed into place at the end. An existing folder is never silently overwritten.
namespace LoraSharp.Training;

/// <summary>All-or-nothing folder writes.</summary>
public static class AtomicFolder
{
    /// <summary>Runs <paramref name="write"/> on a temporary folder, then moves it to <paramref name="folder"/>.</summary>
    public static void Write(string folder, bool overwrite, Action<string> write)
    {
        folder = Path.GetFullPath(folder);
        if (Directory.Exists(folder) && !overwrite)
            throw new IOException($"{folder} already exists; choose another name or pass --overwrite to replace it.");
        string parent = Path.GetDirectoryName(folder) ?? ".";
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(folder)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            if (Directory.Exists(folder))
            {
                string old = temp + ".old";
                Directory.Move(folder, old);
                Directory.Move(temp, folder);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                Directory.Move(temp, folder);
            }
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }
}
