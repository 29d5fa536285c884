// Turns a name the browser sent ("stories260K-hf", "sub/data.json") into a path inside one configured folder, or
// refuses it: empty names, control characters, absolute or rooted paths, ".." segments, and anything whose real
// location (every symbolic link along the path followed, as realpath(3) does) is outside the folder's real
// location. Not here: whether the file exists or has the right type (the use case reports that), or hard links
// and bind mounts (they look like ordinary files and folders).
namespace LoraSharp.Web.Security;

/// <summary>Resolves user-given names inside a root folder.</summary>
public static class SafePath
{
    private const int MaxLinks = 40;   // as Linux's MAXSYMLINKS

    private static StringComparison Comparison => OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    /// <summary>
    /// The real path of <paramref name="name"/> (segments separated by '/') inside <paramref name="root"/>; throws
    /// <see cref="UnauthorizedAccessException"/> when it is or leads outside, a <see cref="Core.UserErrorException"/> when empty.
    /// </summary>
    /// <param name="root">The folder the name must stay in.</param>
    /// <param name="label">What the folder is called in messages ("datasets").</param>
    /// <param name="name">The name as the user gave it.</param>
    public static string Resolve(string root, string label, string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new Core.UserErrorException($"No name given for the {label} folder; pick one from its list.");
        if (name.Any(char.IsControl)) throw Refused(label, name, "it contains control characters");
        if (Path.IsPathRooted(name) || name[0] is '/' or '\\' or '~') throw Refused(label, name, "absolute paths are not accepted");
        var segments = name.Split('/', '\\').Where(s => s.Length > 0 && s != ".").ToArray();
        if (segments.Contains("..")) throw Refused(label, name, "'..' is not accepted");
        if (segments.Length == 0) throw Refused(label, name, "it names the folder itself");
        string realRoot = RealPath(root);
        string real = RealPath(Path.Combine([realRoot, .. segments]));
        if (!IsInside(realRoot, real)) throw Refused(label, name, "it is a link that points outside");
        return real;
    }

    /// <summary>Like <see cref="Resolve"/> for a plain name directly inside <paramref name="root"/> (an output folder or file).</summary>
    public static string ResolveChild(string root, string label, string? name)
    {
        if (name != null && name.IndexOfAny(['/', '\\']) >= 0)
            throw new Core.UserErrorException($"'{name}' must be a plain name in the {label} folder, without '/'.");
        if (name is "." or "..") throw Refused(label, name, "it names a folder, not an entry");
        return Resolve(root, label, name);
    }

    /// <summary>True when <paramref name="path"/> lies strictly inside <paramref name="root"/> (both real, full paths).</summary>
    public static bool IsInside(string root, string path)
    {
        string prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        return path.Length > prefix.Length && path.StartsWith(prefix, Comparison);
    }

    /// <summary>
    /// <paramref name="path"/> made absolute with every symbolic link resolved, component by component, as realpath(3)
    /// does; the part from the first missing component on is kept as written.
    /// </summary>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string current = Path.GetPathRoot(full)!;
        var todo = Split(full[current.Length..]);
        int links = 0;
        bool missing = false;
        for (int i = 0; i < todo.Count; i++)
        {
            string part = todo[i];
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }
            string next = Path.Combine(current, part);
            if (!missing)
            {
                var info = new FileInfo(next);
                if (info.LinkTarget is { } target)
                {
                    if (++links > MaxLinks) throw new IOException($"'{path}': too many levels of symbolic links.");
                    var rest = todo.Skip(i + 1);
                    if (Path.IsPathRooted(target)) current = Path.GetPathRoot(target)!;
                    todo = [.. Split(Path.IsPathRooted(target) ? target[current.Length..] : target), .. rest];
                    i = -1;   // continue with the link's target, then the rest
                    continue;
                }
                missing = !info.Exists && !Directory.Exists(next);
            }
            current = next;
        }
        return current;
    }

    private static List<string> Split(string relative) =>
        [.. relative.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar).Where(s => s.Length > 0)];

    private static UnauthorizedAccessException Refused(string label, string name, string why) =>
        new($"'{name}' is refused: {why}. Give a name inside the {label} folder, as its list shows them.");
}
