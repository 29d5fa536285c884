// A tensor: a shape, a dtype and one 64-byte aligned native allocation (or a view of memory someone else owns,
// such as a memory-mapped file). Each tensor is its own allocation, so a 7B model is many tensors of at most
// int.MaxValue elements each, never one slab. Deliberately not a lazy/autograd tensor: kernels take spans.
using System.Runtime.InteropServices;

namespace LoraSharp.Core.Tensors;

/// <summary>A dense tensor in native, 64-byte aligned memory. Shapes are row-major, outermost dimension first.</summary>
public sealed unsafe class Tensor : IDisposable
{
    /// <summary>Alignment of every allocation: one cache line, one Vector512.</summary>
    public const int Alignment = 64;

    private byte* _data;
    private readonly bool _owned;
    private readonly IDisposable? _owner;

    /// <summary>What keeps a view's memory alive (null for owned tensors).</summary>
    public IDisposable? Owner => _owner;

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Dimensions, outermost first (PyTorch / Hugging Face order).</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>Bytes of storage.</summary>
    public long ByteLength { get; }

    private Tensor(DType dtype, int[] shape, byte* data, bool owned, IDisposable? owner)
    {
        DType = dtype;
        Shape = shape;
        ElementCount = CountElements(shape);
        ByteLength = DTypeInfo.ByteCount(dtype, ElementCount);
        _data = data;
        _owned = owned;
        _owner = owner;
    }

    /// <summary>A new zero-filled tensor.</summary>
    public static Tensor Zeros(DType dtype, params int[] shape)
    {
        long bytes = DTypeInfo.ByteCount(dtype, CountElements(shape));
        nuint n = (nuint)Math.Max(bytes, 1);
        bool huge = bytes >= HugePages.Threshold;   // weights and big buffers: placed on 2 MiB pages (HugePages.cs)
        byte* p = (byte*)NativeMemory.AlignedAlloc(n, huge ? (nuint)HugePages.Size : Alignment);
        if (huge) HugePages.Advise(p, bytes);
        NativeMemory.Clear(p, n);
        if (bytes > 0) GC.AddMemoryPressure(bytes);
        return new Tensor(dtype, (int[])shape.Clone(), p, owned: true, owner: null);
    }

    /// <summary>A new F32 tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromFloats(ReadOnlySpan<float> values, params int[] shape)
    {
        var t = Zeros(DType.F32, shape);
        if (t.ElementCount != values.Length)
            throw new ArgumentException($"{values.Length} values do not fill shape [{string.Join(", ", shape)}] ({t.ElementCount} elements).");
        values.CopyTo(t.AsSpan<float>());
        return t;
    }

    /// <summary>
    /// A view over memory owned elsewhere (for example a memory-mapped file). <paramref name="owner"/>, if given,
    /// is kept alive (referenced) by the view; it is not disposed with it, since many views share one owner.
    /// </summary>
    public static Tensor View(nint data, DType dtype, int[] shape, IDisposable? owner = null)
        => new((byte*)data, dtype, (int[])shape.Clone(), owner);

    private Tensor(byte* data, DType dtype, int[] shape, IDisposable? owner) : this(dtype, shape, data, false, owner) { }

    /// <summary>Start of the storage.</summary>
    public nint Pointer => (nint)EnsureAlive();

    /// <summary>A new owned tensor holding a copy of this one's contents.</summary>
    public Tensor Clone()
    {
        byte* data = EnsureAlive();
        var copy = Zeros(DType, Shape);
        Buffer.MemoryCopy(data, copy._data, ByteLength, ByteLength);
        return copy;
    }

    /// <summary>
    /// A copy of this tensor in <see cref="HugePageArena"/> memory (huge pages where the OS gives them), for a frozen
    /// weight that kernels stream whole: a view whose owner keeps the arena chunk alive. This tensor is left as it was.
    /// </summary>
    public Tensor CopyToHugePages()
    {
        byte* data = EnsureAlive();
        byte* p = HugePageArena.Allocate(ByteLength, out var chunk);
        Buffer.MemoryCopy(data, p, ByteLength, ByteLength);
        return new Tensor(p, DType, (int[])Shape.Clone(), chunk);
    }

    /// <summary>
    /// A tensor that owns this one's contents: an owned tensor hands its memory over without copying and is left
    /// disposed; a view (of a mapped file) is copied into new memory and stays usable.
    /// </summary>
    public Tensor MoveOrCopy()
    {
        byte* data = EnsureAlive();
        if (!_owned) return Clone();
        var moved = new Tensor(DType, (int[])Shape.Clone(), data, owned: true, owner: null);
        _data = null;   // the memory (and its GC pressure) now belongs to `moved`
        GC.SuppressFinalize(this);
        return moved;
    }

    /// <summary>Number of rows when viewed as a matrix [rows, last dim].</summary>
    public long Rows => Shape.Length == 0 ? 1 : ElementCount / Math.Max(1, Shape[^1]);

    /// <summary>The storage as elements of <typeparamref name="T"/>. Throws if the tensor holds more than int.MaxValue of them.</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        long n = ByteLength / sizeof(T);
        if (n > int.MaxValue)
            throw new InvalidOperationException($"Tensor of {ElementCount} elements is too large for one span; process it by rows.");
        return new Span<T>(EnsureAlive(), (int)n);
    }

    /// <summary>The raw bytes.</summary>
    public Span<byte> Bytes => AsSpan<byte>();

    /// <summary>Float32 elements; throws unless <see cref="DType"/> is F32.</summary>
    public Span<float> Floats
    {
        get
        {
            if (DType != DType.F32) throw new InvalidOperationException($"Tensor is {DType}, not F32.");
            return AsSpan<float>();
        }
    }

    /// <summary>Shape as text, for error messages: [2, 3].</summary>
    public string ShapeText => FormatShape(Shape);

    /// <summary>Formats a shape for messages.</summary>
    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    private static long CountElements(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape {FormatShape(shape)}.");
            n = checked(n * d);
        }
        return n;
    }

    private byte* EnsureAlive() => _data != null || ByteLength == 0 ? _data : throw new ObjectDisposedException(nameof(Tensor));

    /// <summary>
    /// The caller is done with this tensor for good (its values now live elsewhere, e.g. packed into a weight): an
    /// owned tensor is freed, and a view of a memory-mapped file also drops its pages from this process's resident
    /// memory (<see cref="IEvictable"/>), so loading a model never holds the file and the model's copy at once.
    /// The tensor is disposed afterwards either way.
    /// </summary>
    public void Consume()
    {
        if (_data != null && !_owned && _owner is IEvictable e) e.Evict((nint)_data, ByteLength);
        Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_data == null) return;
        if (_owned)
        {
            NativeMemory.AlignedFree(_data);
            if (ByteLength > 0) GC.RemoveMemoryPressure(ByteLength);
        }
        _data = null;
    }

    /// <summary>Frees native memory of a tensor that was never disposed.</summary>
    ~Tensor() => Free();
}
