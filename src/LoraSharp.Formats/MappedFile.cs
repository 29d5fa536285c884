// A read-only memory map of a whole file. Tensors read from safetensors/GGUF files are views into it, so
// multi-GB checkpoints are never copied into managed memory. Does not parse anything.
using System.IO.MemoryMappedFiles;

namespace LoraSharp.Formats;

/// <summary>A file mapped read-only into memory. Views handed out stay valid until <see cref="Dispose"/>.</summary>
public sealed unsafe partial class MappedFile : IDisposable, Core.Tensors.IEvictable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>File size in bytes.</summary>
    public long Length { get; }

    private MappedFile(string path, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* pointer)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        _pointer = pointer;
    }

    /// <summary>Maps <paramref name="path"/> read-only. An empty file maps to no memory (Length 0).</summary>
    public static MappedFile Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"{full}: file not found.", full);
        var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = fs.Length;
        if (length == 0)
        {
            fs.Dispose();
            return new MappedFile(full, 0, null, null, null);
        }
        var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        p += view.PointerOffset;
        return new MappedFile(full, length, map, view, p);
    }

    /// <summary>Address of byte <paramref name="offset"/> (bounds-checked against the file length).</summary>
    public nint Address(long offset)
    {
        if (offset < 0 || offset > Length) throw new ArgumentOutOfRangeException(nameof(offset), $"{Path}: offset {offset} is outside the file ({Length} bytes).");
        return (nint)(Alive() + offset);
    }

    /// <summary>Bytes [offset, offset + length) of the file (bounds-checked).</summary>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Path}: bytes [{offset}, {offset + length}) are outside the file ({Length} bytes).");
        return length == 0 ? default : new ReadOnlySpan<byte>(Alive() + offset, length);
    }

    /// <summary>
    /// Drops the pages wholly inside [address, address + bytes) from this process's resident memory (Linux
    /// madvise MADV_DONTNEED; elsewhere nothing). The mapping is read-only, so a later read faults them back in from
    /// the file (or the page cache) with the same contents: this only lowers the process's peak RSS while a loader
    /// converts a checkpoint tensor by tensor.
    /// </summary>
    public void Evict(nint address, long bytes)
    {
        if (!OperatingSystem.IsLinux() || _pointer == null || bytes <= 0) return;
        long start = (long)address, end = start + bytes;
        if (start < (long)_pointer || end > (long)_pointer + Length) return;   // not ours
        long page = Environment.SystemPageSize;
        long first = (start + page - 1) / page * page, last = end / page * page;
        if (last > first) _ = Madvise((nint)first, (nuint)(last - first), MadvDontNeed);
    }

    private const int MadvDontNeed = 4;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);

    private byte* Alive() => _pointer != null || Length == 0 ? _pointer : throw new ObjectDisposedException(Path);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_pointer == null) return;
        _pointer = null;
        _view!.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map!.Dispose();
    }
}
