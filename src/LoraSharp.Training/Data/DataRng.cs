// A small deterministic generator for data order (SplitMix64), so a seed gives the same shuffles on every .NET
// version and machine (System.Random's algorithm is not promised to stay the same). Not for anything secret.
namespace LoraSharp.Training.Data;

/// <summary>SplitMix64 with Fisher-Yates shuffles.</summary>
internal struct DataRng
{
    private ulong _state;

    public DataRng(ulong seed) => _state = seed;

    /// <summary>A generator for stream <paramref name="stream"/> of <paramref name="seed"/> (e.g. one per epoch).</summary>
    public static DataRng ForStream(ulong seed, ulong stream) => new(Mix(seed ^ Mix(stream + 0x9E3779B97F4A7C15UL)));

    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, n) by the multiply-high method (bias below 2^-32 for n below 2^32).</summary>
    public int NextBelow(int n) => (int)Math.BigMul(Next(), (ulong)n, out _);

    /// <summary>Shuffles in place (Fisher-Yates, from the end).</summary>
    public void Shuffle(Span<int> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextBelow(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
