// Where frozen weights live: slices of large pinned chunks whose 2 MiB-aligned interior is advised for transparent
// huge pages (HugePages.cs says why). A model's weights are many tensors of a few MiB (a 576 x 1536 f32 projection
// is 3.5 MiB, as Q8_0 0.9 MiB), which one by one would mostly miss whole 2 MiB pages; carved in order from 64 MiB
// chunks they sit on huge pages almost entirely.
// Slices are 64-byte aligned; one larger than half a chunk gets a chunk of its own. A chunk is an ordinary pinned
// array, freed by the GC once no slice's owner (ArenaChunk) is referenced; the arena keeps only the current one.
// Pages become resident when a slice is written, so a chunk's unused tail costs address space, not memory.
using System.Runtime.InteropServices;

namespace LoraSharp.Core.Tensors;

/// <summary>Keeps one arena chunk alive; held by every tensor or buffer carved from it (Dispose does nothing).</summary>
public sealed class ArenaChunk : IDisposable
{
    internal ArenaChunk(float[] array) => Array = array;

    internal float[] Array { get; }   // float, not byte: one array then holds up to 8 GiB

    /// <inheritdoc />
    public void Dispose() { }
}

internal static unsafe class HugePageArena
{
    private const long ChunkBytes = 64L << 20;
    private static readonly object s_lock = new();
    private static ArenaChunk? s_chunk;    // the current chunk
    private static byte* s_next, s_end;    // its free range

    /// <summary>A zero-filled, 64-byte aligned slice of <paramref name="bytes"/> bytes; <paramref name="owner"/> keeps it alive.</summary>
    public static byte* Allocate(long bytes, out ArenaChunk owner)
    {
        long need = (Math.Max(bytes, 1) + 63) & ~63L;   // whole cache lines, so the next slice stays aligned
        byte* p;
        lock (s_lock)
        {
            if (need > ChunkBytes / 2)
            {
                p = NewChunk(need, out owner);
            }
            else
            {
                if (s_chunk == null || s_next + need > s_end)
                {
                    s_next = NewChunk(ChunkBytes, out s_chunk);
                    s_end = s_next + ChunkBytes;
                }
                p = s_next;
                s_next += need;
                owner = s_chunk;
            }
        }
        NativeMemory.Clear(p, (nuint)bytes);
        return p;
    }

    // A pinned array with `bytes` bytes from a 2 MiB boundary on; that range advised for huge pages.
    private static byte* NewChunk(long bytes, out ArenaChunk chunk)
    {
        long floats = (bytes + HugePages.Size + sizeof(float) - 1) / sizeof(float);
        if (floats > Array.MaxLength)
            throw new ArgumentException($"A weight of {bytes} bytes is more than one .NET array can hold ({(long)Array.MaxLength * sizeof(float)} bytes); split the tensor.");
        var array = GC.AllocateUninitializedArray<float>((int)floats, pinned: true);
        chunk = new ArenaChunk(array);
        byte* p = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(array, 0);
        byte* start = (byte*)(((nint)p + (nint)(HugePages.Size - 1)) & ~(nint)(HugePages.Size - 1));
        HugePages.Advise(start, bytes);
        return start;
    }
}
