// Finds the read-only fixtures folder ../shared (beside the repository root) from a test's bin folder.
// LORASHARP_SHARED overrides the search. A missing folder fails the test with a message that says how to fix it.
namespace LoraSharp.TestSupport;

/// <summary>Paths into ../shared for tests and benchmarks.</summary>
public static class SharedFixtures
{
    private static readonly Lazy<string?> s_root = new(Locate);

    /// <summary>The shared folder, or throws with a clear message.</summary>
    public static string Root => s_root.Value ?? throw new DirectoryNotFoundException(
        "The fixtures folder ../shared (beside the repository root, holding STYLE.md, models/, golden/) was not found " +
        $"searching upwards from {AppContext.BaseDirectory}. Check out the repository next to shared/, " +
        "or set LORASHARP_SHARED to its path.");

    /// <summary>Absolute path of a file or folder inside ../shared; throws if it does not exist.</summary>
    public static string Path(params string[] parts)
    {
        string p = System.IO.Path.Combine([Root, .. parts]);
        if (!File.Exists(p) && !Directory.Exists(p))
            throw new FileNotFoundException($"Fixture '{string.Join('/', parts)}' is missing from {Root}.", p);
        return p;
    }

    /// <summary>The stories260K Hugging Face folder.</summary>
    public static string Stories260KHf => Path("models", "stories260K-hf");

    /// <summary>The stories260K golden folder.</summary>
    public static string Golden => Path("golden", "stories260K");

    private static string? Locate()
    {
        string? env = Environment.GetEnvironmentVariable("LORASHARP_SHARED");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? System.IO.Path.GetFullPath(env) : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "shared");
            if (File.Exists(System.IO.Path.Combine(candidate, "STYLE.md"))) return candidate;
        }
        return null;
    }
}
