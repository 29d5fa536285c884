// One folder the web UI may read or write (models, datasets, adapters, formats): its label for messages and its
// real path. Every name from the browser goes through Resolve/ResolveChild; every path shown goes through Name.
using LoraSharp.Web.Security;

namespace LoraSharp.Web.Library;

/// <summary>A configured folder.</summary>
/// <param name="Label">How messages call it ("datasets").</param>
/// <param name="Root">Its real, full path.</param>
internal sealed record WebFolder(string Label, string Root)
{
    /// <summary>Opens <paramref name="path"/> as a folder with its links resolved.</summary>
    public static WebFolder At(string label, string path) => new(label, SafePath.RealPath(path));

    /// <summary>A name inside the folder (may contain '/'), or refused.</summary>
    public string Resolve(string? name) => SafePath.Resolve(Root, Label, name);

    /// <summary>A plain name directly inside the folder, or refused.</summary>
    public string ResolveChild(string? name) => SafePath.ResolveChild(Root, Label, name);

    /// <summary>The name of <paramref name="path"/> relative to the folder ('/'-separated), or null when it is not inside.</summary>
    public string? Name(string? path)
    {
        if (path == null) return null;
        string real = SafePath.RealPath(path);
        return SafePath.IsInside(Root, real) ? Path.GetRelativePath(Root, real).Replace(Path.DirectorySeparatorChar, '/') : null;
    }

    /// <summary>True when the entry at <paramref name="path"/> really lies inside (links followed).</summary>
    public bool Contains(string path) => SafePath.IsInside(Root, SafePath.RealPath(path));
}
