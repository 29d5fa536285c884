// Seeded random data and comparison helpers shared by the test projects.
namespace LoraSharp.TestSupport;

/// <summary>Deterministic inputs and tolerant comparisons.</summary>
public static class TestData
{
    /// <summary>n floats uniform in [-scale, scale) from a fixed seed.</summary>
    public static float[] Uniform(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>Largest |a[i] - b[i]|.</summary>
    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}");
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    /// <summary>Asserts |a - b| &lt;= atol + rtol |b| elementwise, reporting the worst index.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double atol, double rtol = 0, string what = "values")
    {
        if (actual.Length != expected.Length) throw new Xunit.Sdk.XunitException($"{what}: length {actual.Length} != expected {expected.Length}");
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            double tol = atol + rtol * Math.Abs(expected[i]);
            if (!(diff <= tol) && (worst < 0 || diff - tol > worstExcess)) { worst = i; worstExcess = diff - tol; }
        }
        if (worst >= 0)
            throw new Xunit.Sdk.XunitException($"{what}: element {worst} is {actual[worst]} but expected {expected[worst]} (atol {atol}, rtol {rtol}).");
    }
}
