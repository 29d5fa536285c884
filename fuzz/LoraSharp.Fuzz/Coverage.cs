// Edge coverage from SharpFuzz's instrumentation: an assembly rewritten by `lorasharp-fuzz instrument` (SharpFuzz's
// Fuzzer.Instrument) bumps SharpFuzz.Common.Trace.SharedMem[prev ^ cur] at every branch, as AFL's compiler plugin
// does. Here that map is a private 64 KiB buffer instead of AFL's shared memory: after each input the engine asks
// whether it reached an (edge, hit-count bucket) pair never seen before, and keeps such inputs in its corpus.
// Without instrumented assemblies nothing writes the map and the engine mutates blindly from the seeds.
using System.Runtime.InteropServices;

namespace LoraSharp.Fuzz;

/// <summary>The coverage map and the set of buckets seen so far.</summary>
public sealed unsafe class Coverage : IDisposable
{
    /// <summary>AFL's map size.</summary>
    public const int MapSize = 1 << 16;

    private readonly byte* _map;
    private readonly byte[] _seen = new byte[MapSize];
    private byte* _previous;

    /// <summary>Edges (map slots) seen at least once.</summary>
    public int Edges { get; private set; }

    /// <summary>Installs a fresh map (remembering any earlier one, e.g. AFL's).</summary>
    public Coverage()
    {
        _map = (byte*)NativeMemory.AllocZeroed(MapSize);
        _previous = SharpFuzz.Common.Trace.SharedMem;
        SharpFuzz.Common.Trace.SharedMem = _map;
    }

    /// <summary>Forgets what earlier targets reached, so each target's corpus grows on its own coverage.</summary>
    public void ForgetSeen()
    {
        Array.Clear(_seen);
        Edges = 0;
    }

    /// <summary>Clears the map before an input.</summary>
    public void Reset()
    {
        new Span<byte>(_map, MapSize).Clear();
        SharpFuzz.Common.Trace.PrevLocation = 0;
    }

    /// <summary>True when the last input hit an edge, or an edge's hit-count bucket, never seen before.</summary>
    public bool Update()
    {
        var map = new ReadOnlySpan<byte>(_map, MapSize);
        bool novel = false;
        int i = map.IndexOfAnyExcept((byte)0);
        if (i < 0) return false;
        for (; i < MapSize; i++)
        {
            byte c = map[i];
            if (c == 0) continue;
            byte bucket = Bucket(c);
            if ((_seen[i] & bucket) == 0)
            {
                if (_seen[i] == 0) Edges++;
                _seen[i] |= bucket;
                novel = true;
            }
        }
        return novel;
    }

    // AFL's hit-count classes: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+.
    private static byte Bucket(byte c) => c switch
    {
        1 => 1, 2 => 2, 3 => 4, < 8 => 8, < 16 => 16, < 32 => 32, < 128 => 64, _ => 128,
    };

    /// <inheritdoc />
    public void Dispose()
    {
        if (SharpFuzz.Common.Trace.SharedMem == _map) SharpFuzz.Common.Trace.SharedMem = _previous;
        _previous = null;
        NativeMemory.Free(_map);
    }
}
