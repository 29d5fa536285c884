// GGUF reader (memory-mapped), versions 2 and 3. Layout (ggml gguf.h), all little-endian:
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key; u32 type; value }           string = u64 length + UTF-8 bytes (no terminator)
//                                                     array  = u32 element type + u64 count + elements
//   n_tensors x { string name; u32 n_dims (<= 4); u64 ne[n_dims] (innermost first); u32 ggml type; u64 offset }
//   padding to general.alignment (u32, default 32) | data section (offsets relative to it, each aligned)
// Every count is checked against the bytes left before anything is allocated, so a lying header cannot make the
// reader allocate more than the file's size or loop for long. Tensors are Tensor views into the map.
// Version 1 (u32 counts) and big-endian files are refused.
using System.Buffers.Binary;
using System.Text;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Gguf;

/// <summary>An open, memory-mapped GGUF file.</summary>
public sealed class GgufFile : IDisposable
{
    /// <summary>"GGUF" as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment when general.alignment is absent.</summary>
    public const int DefaultAlignment = 32;

    private readonly MappedFile _file;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private readonly Dictionary<string, GgufValue> _kv;

    /// <summary>Full path of the file.</summary>
    public string Path => _file.Path;

    /// <summary>Format version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>Metadata by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> MetadataByKey => _kv;

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>general.alignment (or 32).</summary>
    public int Alignment { get; }

    /// <summary>Absolute file offset of the data section.</summary>
    public long DataStart { get; }

    private GgufFile(MappedFile file, uint version, List<KeyValuePair<string, GgufValue>> kv, List<GgufTensorInfo> tensors, int alignment, long dataStart)
    {
        _file = file;
        Version = version;
        Metadata = kv;
        _kv = kv.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Alignment = alignment;
        DataStart = dataStart;
    }

    /// <summary>Opens and validates a GGUF file. Throws <see cref="ModelFormatException"/> for malformed files.</summary>
    public static GgufFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The value of <paramref name="key"/>, or null.</summary>
    public GgufValue? Get(string key) => _kv.TryGetValue(key, out var v) ? v : null;

    /// <summary>True when the file has a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Tensor info of <paramref name="name"/>.</summary>
    public GgufTensorInfo Info(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>A view of the tensor (shape outermost first) over the mapped file, valid until this file is disposed.</summary>
    public Tensor GetTensor(string name)
    {
        var info = Info(name);
        return Tensor.View(_file.Address(DataStart + info.Offset), info.DType, info.Shape, _file);
    }

    private static GgufFile Parse(MappedFile file)
    {
        var r = new Cursor(file);
        string p = file.Path;
        if (file.Length < 24)
            throw new ModelFormatException(p, null, $"file is {file.Length} bytes, shorter than a GGUF header (24): truncated or not GGUF.");
        uint magic = r.U32("magic");
        if (magic != Magic)
            throw new ModelFormatException(p, "magic", $"starts with 0x{magic:X8}, not \"GGUF\": not a GGUF file.");
        uint version = r.U32("version");
        if (version == 1) throw new ModelFormatException(p, "version", "GGUF version 1 is not supported (re-convert the model with a current llama.cpp).");
        if (version is not (2 or 3))
            throw new ModelFormatException(p, "version", $"version {version} is not 2 or 3{(BinaryPrimitives.ReverseEndianness(version) is 2 or 3 ? " (this is a big-endian GGUF, which is not supported)" : "")}.");
        ulong nTensors = r.U64("tensor_count");
        ulong nKv = r.U64("metadata_kv_count");
        // Each kv needs >= 13 bytes (key length, type, 1-byte value); each tensor info >= 24.
        r.RequireCount(nKv, 13, "metadata_kv_count");
        r.RequireCount(nTensors, 24, "tensor_count");

        var kv = new List<KeyValuePair<string, GgufValue>>((int)nKv);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < nKv; i++)
        {
            string key = r.String($"metadata key #{i}");
            if (!keys.Add(key)) throw new ModelFormatException(p, key, "metadata key appears twice.");
            var type = (GgufValueType)r.U32(key);
            kv.Add(new(key, r.Value(type, key, depth: 0)));
        }

        int alignment = DefaultAlignment;
        var alignValue = kv.FirstOrDefault(x => x.Key == "general.alignment").Value;
        if (alignValue != null)
        {
            if (alignValue.Type != GgufValueType.UInt32 || (uint)alignValue.Value == 0 || ((uint)alignValue.Value & ((uint)alignValue.Value - 1)) != 0 || (uint)alignValue.Value > 1u << 20)
                throw new ModelFormatException(p, "general.alignment", $"must be a u32 power of two (is {alignValue.Type} {alignValue}).");
            alignment = (int)(uint)alignValue.Value;
        }

        var infos = new List<(string Name, long[] Dims, uint Code, ulong Offset)>((int)nTensors);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < nTensors; i++)
        {
            string name = r.String($"tensor name #{i}");
            if (!names.Add(name)) throw new ModelFormatException(p, name, "tensor name appears twice.");
            uint nDims = r.U32(name);
            if (nDims > 4) throw new ModelFormatException(p, name, $"has {nDims} dimensions; GGUF allows at most 4.");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64(name);
                if (ne > int.MaxValue) throw new ModelFormatException(p, name, $"dimension ne[{d}] = {ne} is absurd (more than {int.MaxValue}).");
                dims[d] = (long)ne;
            }
            uint code = r.U32(name);
            ulong offset = r.U64(name);
            infos.Add((name, dims, code, offset));
        }

        long dataStart = (r.Position + alignment - 1) / alignment * alignment;
        long dataLength = Math.Max(0, file.Length - dataStart);
        var tensors = new List<GgufTensorInfo>(infos.Count);
        foreach (var (name, dims, code, offset) in infos)
        {
            var dtype = GgmlTypes.ToDType(code)
                ?? throw new ModelFormatException(p, name, $"tensor type {GgmlTypes.Name(code)} ({code}) is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K are).");
            long elements = 1;
            foreach (long d in dims) elements = d == 0 ? 0 : elements > long.MaxValue / d ? long.MaxValue : elements * d;
            int bs = DTypeInfo.BlockSize(dtype);
            if (dims.Length == 0 && bs != 1)
                throw new ModelFormatException(p, name, $"is a scalar (no dimensions) of block type {dtype}, whose blocks hold {bs} values.");
            if (dims.Length > 0 && dims[0] % bs != 0)
                throw new ModelFormatException(p, name, $"row length ne[0] = {dims[0]} is not a multiple of the {dtype} block size {bs}.");
            long bytes = elements == long.MaxValue ? long.MaxValue : elements / bs > long.MaxValue / DTypeInfo.BlockBytes(dtype) ? long.MaxValue : elements / bs * DTypeInfo.BlockBytes(dtype);
            if (offset % (ulong)alignment != 0)
                throw new ModelFormatException(p, name, $"data offset {offset} is not a multiple of the alignment {alignment}.");
            if (offset > (ulong)dataLength || bytes > dataLength - (long)offset)
                throw new ModelFormatException(p, name,
                    $"data [{offset}, {(bytes == long.MaxValue ? "overflow" : ((long)offset + bytes).ToString())}) for ne [{string.Join(", ", dims)}] {dtype} runs past the data section ({dataLength} bytes): file truncated or header wrong.");
            tensors.Add(new GgufTensorInfo(name, dtype, dims, (long)offset, bytes));
        }
        var sorted = tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].ByteLength)
                throw new ModelFormatException(p, sorted[i].Name, $"data at offset {sorted[i].Offset} overlaps tensor '{sorted[i - 1].Name}' [{sorted[i - 1].Offset}, {sorted[i - 1].Offset + sorted[i - 1].ByteLength}).");
        return new GgufFile(file, version, kv, tensors, alignment, dataStart);
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();

    // Bounds-checked little-endian reader over the mapped file.
    private sealed class Cursor(MappedFile file)
    {
        private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        public long Position;

        private ReadOnlySpan<byte> Take(int n, string what)
        {
            if (Position + n > file.Length)
                throw new ModelFormatException(file.Path, what, $"file ends at byte {file.Length} while reading {n} bytes at {Position}: truncated.");
            var s = file.Span(Position, n);
            Position += n;
            return s;
        }

        public long Remaining => file.Length - Position;

        public void RequireCount(ulong count, int minBytesEach, string what)
        {
            if (count > (ulong)(Remaining / minBytesEach))
                throw new ModelFormatException(file.Path, what, $"count {count} is absurd: {Remaining} bytes left cannot hold that many (truncated or corrupt header).");
        }

        public byte U8(string w) => Take(1, w)[0];
        public ushort U16(string w) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, w));
        public uint U32(string w) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, w));
        public ulong U64(string w) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, w));

        public string String(string what)
        {
            ulong n = U64(what);
            if (n > (ulong)Remaining)
                throw new ModelFormatException(file.Path, what, $"string length {n} runs past the end of the file ({Remaining} bytes left): truncated or corrupt.");
            var bytes = Take((int)n, what);
            try
            {
                return s_utf8.GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                throw new ModelFormatException(file.Path, what, $"string at byte {Position - (long)n} is not valid UTF-8.", e);
            }
        }

        public GgufValue Value(GgufValueType type, string key, int depth)
        {
            switch (type)
            {
                case GgufValueType.UInt8: return new(type, U8(key));
                case GgufValueType.Int8: return new(type, (sbyte)U8(key));
                case GgufValueType.UInt16: return new(type, U16(key));
                case GgufValueType.Int16: return new(type, (short)U16(key));
                case GgufValueType.UInt32: return new(type, U32(key));
                case GgufValueType.Int32: return new(type, (int)U32(key));
                case GgufValueType.Float32: return new(type, BitConverter.UInt32BitsToSingle(U32(key)));
                case GgufValueType.Bool:
                    byte b = U8(key);
                    if (b > 1) throw new ModelFormatException(file.Path, key, $"bool value is {b}, not 0 or 1.");
                    return new(type, b == 1);
                case GgufValueType.String: return new(type, String(key));
                case GgufValueType.UInt64: return new(type, U64(key));
                case GgufValueType.Int64: return new(type, (long)U64(key));
                case GgufValueType.Float64: return new(type, BitConverter.UInt64BitsToDouble(U64(key)));
                case GgufValueType.Array:
                    if (depth > 4) throw new ModelFormatException(file.Path, key, "arrays nested deeper than 4 levels.");
                    var et = (GgufValueType)U32(key);
                    ulong count = U64(key);
                    RequireCount(count, MinSize(et, key), key);
                    return new(type, ReadArray(et, (int)count, key, depth), et);
                default:
                    throw new ModelFormatException(file.Path, key, $"unknown metadata value type {(uint)type}.");
            }
        }

        private int MinSize(GgufValueType et, string key) => et switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw new ModelFormatException(file.Path, key, $"unknown array element type {(uint)et}."),
        };

        private Array ReadArray(GgufValueType et, int n, string key, int depth)
        {
            switch (et)
            {
                case GgufValueType.String:
                    {
                        var a = new string[n];
                        for (int i = 0; i < n; i++) a[i] = String($"{key}[{i}]");
                        return a;
                    }
                case GgufValueType.Array:
                    {
                        var a = new GgufValue[n];
                        for (int i = 0; i < n; i++) a[i] = Value(GgufValueType.Array, $"{key}[{i}]", depth + 1);
                        return a;
                    }
                case GgufValueType.Bool:
                    {
                        var a = new bool[n];
                        var s = Take(n, key);
                        for (int i = 0; i < n; i++)
                        {
                            if (s[i] > 1) throw new ModelFormatException(file.Path, $"{key}[{i}]", $"bool value is {s[i]}, not 0 or 1.");
                            a[i] = s[i] == 1;
                        }
                        return a;
                    }
                case GgufValueType.UInt8: return Take(n, key).ToArray();
                case GgufValueType.Int8: return Blit<sbyte>(n, key);
                case GgufValueType.UInt16: return Blit<ushort>(n, key);
                case GgufValueType.Int16: return Blit<short>(n, key);
                case GgufValueType.UInt32: return Blit<uint>(n, key);
                case GgufValueType.Int32: return Blit<int>(n, key);
                case GgufValueType.Float32: return Blit<float>(n, key);
                case GgufValueType.UInt64: return Blit<ulong>(n, key);
                case GgufValueType.Int64: return Blit<long>(n, key);
                case GgufValueType.Float64: return Blit<double>(n, key);
                default: throw new ModelFormatException(file.Path, key, $"unknown array element type {(uint)et}.");
            }
        }

        // Little-endian host assumed (checked once by the writer/reader callers: .NET on x64/arm64 is little-endian).
        private unsafe T[] Blit<T>(int n, string key) where T : unmanaged
        {
            var bytes = Take(checked(n * sizeof(T)), key);
            var a = new T[n];
            bytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
            return a;
        }
    }
}
