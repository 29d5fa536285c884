// A float buffer on the pinned object heap whose first element sits on a 64-byte boundary (one cache line, one
// Vector512), so packed panels never straddle cache lines. Pinned arrays never move, so the pointer stays valid
// for the buffer's lifetime without `fixed`. Not thread-safe: each owner (a weight, a thread's scratch) has its own.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>A growable, 64-byte aligned, pinned float buffer.</summary>
internal sealed unsafe class AlignedBuffer
{
    private object? _array;   // keeps the pinned memory alive (a float[] or an arena chunk)

    /// <summary>First aligned element (null before the first <see cref="Ensure"/>).</summary>
    public float* Pointer { get; private set; }

    /// <summary>Usable floats from <see cref="Pointer"/>.</summary>
    public long Capacity { get; private set; }

    /// <summary>A zero-filled buffer of exactly <paramref name="length"/> usable floats.</summary>
    public static AlignedBuffer Zeros(long length, string what)
    {
        var b = new AlignedBuffer();
        b.Allocate(length, zero: true, what);
        return b;
    }

    /// <summary>
    /// A zero-filled buffer of <paramref name="length"/> floats carved from <see cref="HugePageArena"/> (huge pages where
    /// the OS gives them): for frozen weights, which are read whole every step or token. It never grows.
    /// </summary>
    public static AlignedBuffer ZerosOnHugePages(long length)
    {
        var b = new AlignedBuffer();
        b.Pointer = (float*)HugePageArena.Allocate(length * sizeof(float), out var chunk);
        b._array = chunk;
        b.Capacity = length;
        return b;
    }

    /// <summary>Grows (contents are not kept) to at least <paramref name="length"/> floats and returns the pointer.</summary>
    public float* Ensure(long length)
    {
        if (length > Capacity) Allocate(Math.Max(length, Capacity + Capacity / 2), zero: false, "GEMM scratch");
        return Pointer;
    }

    private void Allocate(long length, bool zero, string what)
    {
        const int pad = 16;   // floats of slack to move the start onto a 64-byte boundary
        if (length + pad > Array.MaxLength)
            throw new ArgumentException($"{what} needs {length} floats, more than one .NET array can hold ({Array.MaxLength}); split the tensor.");
        var array = zero
            ? GC.AllocateArray<float>((int)(length + pad), pinned: true)
            : GC.AllocateUninitializedArray<float>((int)(length + pad), pinned: true);
        fixed (float* p = array)
        {
            nint misalign = (nint)p & 63;
            Pointer = misalign == 0 ? p : (float*)((byte*)p + (64 - misalign));
        }
        _array = array;
        Capacity = length;
    }
}
