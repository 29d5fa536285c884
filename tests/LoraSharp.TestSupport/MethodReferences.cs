// Finds the golden files of tests/references/golden (written by tests/references/methods_reference.py, float64
// PyTorch) from a test's bin folder by searching upwards for the repository's tests/references folder.
namespace LoraSharp.TestSupport;

/// <summary>Paths of the training-methods reference goldens committed in the repository.</summary>
public static class MethodReferences
{
    /// <summary>Absolute path of tests/references/golden/<paramref name="file"/>; throws with how to regenerate it.</summary>
    public static string Path(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "tests", "references", "golden", file);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"tests/references/golden/{file} was not found above {AppContext.BaseDirectory}. " +
                                        "Regenerate it with /usr/bin/python3 tests/references/methods_reference.py (needs python3-torch).", file);
    }

    /// <summary>Asserts max |actual − expected| ≤ rtol · max |expected| (+ a tiny floor), naming the tensor.</summary>
    public static void AssertRelative(ReadOnlySpan<float> actual, IReadOnlyList<double> expected, double rtol, string what)
    {
        if (actual.Length != expected.Count) throw new Xunit.Sdk.XunitException($"{what}: {actual.Length} values, the reference has {expected.Count}.");
        double scale = 0, max = 0;
        for (int i = 0; i < expected.Count; i++) scale = Math.Max(scale, Math.Abs(expected[i]));
        for (int i = 0; i < expected.Count; i++) max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        if (!(max <= rtol * scale + 1e-12))
            throw new Xunit.Sdk.XunitException($"{what}: max |diff| {max:E3} is above {rtol:E1} x max |reference| {scale:E3} (rel {max / scale:E2}).");
    }
}
