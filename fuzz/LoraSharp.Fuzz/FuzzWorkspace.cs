// The scratch folder a target writes its input files into (the parsers read paths). It lives on /dev/shm when
// there is one, so a million inputs cost no disk writes. Multi-file inputs (a tokenizer.json and its
// tokenizer_config.json, a sharded index and its shards) are one byte string cut at Separator.
using System.Text;

namespace LoraSharp.Fuzz;

/// <summary>A private folder for one target's input files.</summary>
public sealed class FuzzWorkspace : IDisposable
{
    /// <summary>Cuts a multi-file input into its files; mutations may remove it, leaving fewer (later files empty).</summary>
    public static readonly byte[] Separator = Encoding.ASCII.GetBytes("\n--8<--\n");

    /// <summary>The folder.</summary>
    public string Root { get; }

    /// <summary>Creates a fresh folder under <paramref name="parent"/> (null: /dev/shm or the temp folder).</summary>
    public FuzzWorkspace(string name, string? parent = null)
    {
        parent ??= Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        Root = Path.Combine(parent, $"lorasharp-fuzz-{Environment.ProcessId}-{name}-{Guid.NewGuid():N}"[..^24]);
        Directory.CreateDirectory(Root);
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="relative"/> (sub folders created) and returns its path.</summary>
    public string Write(string relative, ReadOnlySpan<byte> bytes)
    {
        string path = Path.Combine(Root, relative);
        string? dir = Path.GetDirectoryName(path);
        if (dir != null && dir != Root) Directory.CreateDirectory(dir);
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        f.Write(bytes);
        return path;
    }

    /// <summary>Deletes a file or folder inside the workspace if present.</summary>
    public void Delete(string relative)
    {
        string path = Path.Combine(Root, relative);
        if (Directory.Exists(path)) Directory.Delete(path, true);
        else if (File.Exists(path)) File.Delete(path);
    }

    /// <summary>The parts of a multi-file input: exactly <paramref name="count"/>, missing ones empty.</summary>
    public static byte[][] Split(byte[] input, int count)
    {
        var parts = new byte[count][];
        int start = 0;
        for (int i = 0; i < count; i++)
        {
            if (start > input.Length) { parts[i] = []; continue; }
            int at = i == count - 1 ? -1 : input.AsSpan(start).IndexOf(Separator);
            int end = at < 0 ? input.Length : start + at;
            parts[i] = input[start..end];
            start = at < 0 ? input.Length + 1 : end + Separator.Length;
        }
        return parts;
    }

    /// <summary>Joins files into one multi-file input (the inverse of <see cref="Split"/>).</summary>
    public static byte[] Join(params byte[][] parts)
    {
        var ms = new MemoryStream();
        for (int i = 0; i < parts.Length; i++)
        {
            if (i > 0) ms.Write(Separator);
            ms.Write(parts[i]);
        }
        return ms.ToArray();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
