// The tiny random checkpoints of tests/references/families (made by tests/references/families_reference.py, with
// float64 golden data), found from a test's bin folder by searching upwards for the repository's tests/ folder.
// A model folder for loading is assembled in a temp folder: the committed config.json + model.safetensors, and
// stories260K's tokenizer files from ../shared (vocabulary 512), which are not copied into the repository.
namespace LoraSharp.TestSupport;

/// <summary>Paths of the family reference checkpoints.</summary>
public static class FamilyFixtures
{
    /// <summary>The families with reference data.</summary>
    public static IReadOnlyList<string> Names { get; } = ["qwen2", "qwen3", "smollm3", "gemma3_text", "gemma2", "phi3", "phi3_longrope"];

    private static readonly Lazy<string?> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "references", "families");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    });

    /// <summary>tests/references/families/<paramref name="family"/>, or throws saying how to regenerate it.</summary>
    public static string Folder(string family)
    {
        string root = s_root.Value ?? throw new DirectoryNotFoundException(
            $"tests/references/families was not found searching upwards from {AppContext.BaseDirectory}; run the tests from the repository " +
            "(regenerate the data with /usr/bin/python3 tests/references/families_reference.py).");
        string dir = Path.Combine(root, family);
        if (!System.IO.File.Exists(Path.Combine(dir, "golden.safetensors")))
            throw new FileNotFoundException($"{dir} has no golden.safetensors; run /usr/bin/python3 tests/references/families_reference.py {family}.");
        return dir;
    }

    /// <summary>A file of the family's reference folder.</summary>
    public static string File(string family, string name) => Path.Combine(Folder(family), name);

    /// <summary>
    /// A fresh temp folder holding the family's Hugging Face model (config.json, model.safetensors) and stories260K's
    /// tokenizer.json / tokenizer_config.json; the caller deletes it.
    /// </summary>
    public static string ModelFolder(string family)
    {
        // Not named after the family: merged GGUFs take general.name from the folder, and llama.cpp's vocabulary loader
        // looks up Phi-3's "<|endoftext|>" by name (throwing when absent) for any model named "phi3"; stories260K's
        // vocabulary has no such token.
        string dir = Path.Combine(Path.GetTempPath(), $"lorasharp-family-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        foreach (string f in (string[])["config.json", "model.safetensors"])
            System.IO.File.Copy(File(family, f), Path.Combine(dir, f));
        foreach (string f in (string[])["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        {
            string src = Path.Combine(SharedFixtures.Stories260KHf, f);
            if (System.IO.File.Exists(src)) System.IO.File.Copy(src, Path.Combine(dir, f));
        }
        return dir;
    }
}
