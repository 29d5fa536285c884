// safetensors reader (memory-mapped). Spec (huggingface/safetensors):
//   u64 little-endian N | N bytes of UTF-8 JSON header | data section
//   header = { "__metadata__": {string: string}?, name: {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, ... }
//   offsets are relative to the data section (byte 8 + N), row-major, little-endian; tensors must not overlap,
//   and end - begin must equal prod(shape) * sizeof(dtype).
// Tensors are handed out as Tensor views into the map: nothing is copied. Every check failure throws
// ModelFormatException naming the file and tensor. Does not follow sharded indexes (see SafetensorsSet).
using System.Buffers.Binary;
using System.Text.Json;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Safetensors;

/// <summary>An open, memory-mapped safetensors file.</summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the reference implementation's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile _file;
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;

    /// <summary>Full path of the file.</summary>
    public string Path => _file.Path;

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>Absolute file offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    private SafetensorsFile(MappedFile file, long dataStart, Dictionary<string, string> metadata, List<SafetensorsTensorInfo> tensors)
    {
        _file = file;
        DataStart = dataStart;
        Metadata = metadata;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Opens and validates <paramref name="path"/>. Throws <see cref="ModelFormatException"/> for malformed files.</summary>
    public static SafetensorsFile Open(string path)
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

    /// <summary>True when the file has a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Header entry of <paramref name="name"/>; throws KeyNotFoundException naming the file when absent.</summary>
    public SafetensorsTensorInfo Info(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>A view of tensor <paramref name="name"/> over the mapped file (valid until this file is disposed).</summary>
    public Tensor GetTensor(string name)
    {
        var info = Info(name);
        return Tensor.View(_file.Address(DataStart + info.Begin), info.DType, info.Shape, _file);
    }

    /// <summary>The raw bytes of tensor <paramref name="name"/> (only for tensors under 2 GiB).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = Info(name);
        return _file.Span(DataStart + info.Begin, checked((int)(info.End - info.Begin)));
    }

    private static SafetensorsFile Parse(MappedFile file)
    {
        string p = file.Path;
        if (file.Length < 8)
            throw new ModelFormatException(p, null, $"file is {file.Length} bytes; a safetensors file starts with an 8-byte header length (truncated or not safetensors).");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, 8));
        if (n > (ulong)(file.Length - 8))
            throw new ModelFormatException(p, "header", $"header length {n} runs past the end of the file ({file.Length} bytes): truncated or not a safetensors file.");
        if ((long)n > MaxHeaderBytes)
            throw new ModelFormatException(p, "header", $"header length {n} exceeds the {MaxHeaderBytes}-byte limit.");
        long dataStart = 8 + (long)n;
        long dataLength = file.Length - dataStart;

        var headerBytes = file.Span(8, (int)n);
        // JsonDocument only checks string contents when they are read; check the whole header up front.
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new ModelFormatException(p, "header", $"header is not valid UTF-8 JSON (invalid UTF-8 near byte {8 + FirstInvalidUtf8(headerBytes)}); a tensor name or metadata string is corrupt.");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(p, "header", $"header is not valid UTF-8 JSON ({e.Message}).", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(p, "header", $"header must be a JSON object, found {doc.RootElement.ValueKind}.");
            if (Json.JsonStrings.FirstInvalid(doc.RootElement) is { } bad)
                throw new ModelFormatException(p, "header", $"{bad} is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair).");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafetensorsTensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new ModelFormatException(p, prop.Name, "appears twice in the header.");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new ModelFormatException(p, "__metadata__", "must be an object of strings.");
                    foreach (var kv in prop.Value.EnumerateObject())
                    {
                        if (kv.Value.ValueKind != JsonValueKind.String)
                            throw new ModelFormatException(p, $"__metadata__.{kv.Name}", $"must be a string, found {kv.Value.ValueKind}.");
                        metadata[kv.Name] = kv.Value.GetString()!;
                    }
                    continue;
                }
                tensors.Add(ParseTensor(p, prop.Name, prop.Value, dataLength));
            }
            CheckOverlaps(p, tensors);
            return new SafetensorsFile(file, dataStart, metadata, tensors);
        }
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> b)
    {
        System.Text.Unicode.Utf8.ToUtf16(b, new char[b.Length], out int read, out _, replaceInvalidSequences: false);
        return read;
    }

    private static SafetensorsTensorInfo ParseTensor(string p, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new ModelFormatException(p, name, "header entry must be an object with dtype, shape and data_offsets.");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new ModelFormatException(p, name, "missing string field 'dtype'.");
        string dtName = dt.GetString()!;
        var dtype = SafetensorsDTypes.Parse(dtName)
            ?? throw new ModelFormatException(p, name, $"unknown or unsupported dtype '{dtName}' (supported: {string.Join(", ", SafetensorsDTypes.Supported)}).");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new ModelFormatException(p, name, "missing array field 'shape'.");
        var shape = new int[sh.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new ModelFormatException(p, name, $"shape[{i}] must be a non-negative integer, found {d.GetRawText()}.");
            if (v > int.MaxValue)
                throw new ModelFormatException(p, name, $"shape[{i}] = {v} exceeds {int.MaxValue}.");
            shape[i++] = (int)v;
            // Saturate instead of overflowing: anything beyond the file is rejected below anyway.
            elements = elements > long.MaxValue / Math.Max(1, v) ? long.MaxValue : elements * v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new ModelFormatException(p, name, "missing field 'data_offsets' = [begin, end].");
        // TryGetInt64 throws (InvalidOperationException) on a non-number, so check the kinds first.
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new ModelFormatException(p, name, $"data_offsets {off.GetRawText()} must be two integers with 0 <= begin <= end.");
        if (end > dataLength)
            throw new ModelFormatException(p, name, $"data_offsets [{begin}, {end}] run past the data section ({dataLength} bytes): file truncated or header wrong.");
        int esize = DTypeInfo.BlockBytes(dtype);
        if (elements > long.MaxValue / esize || elements * esize != end - begin)
            throw new ModelFormatException(p, name,
                $"shape {Tensor.FormatShape(shape)} x {dtName} ({esize} bytes) does not match the byte range [{begin}, {end}) of {end - begin} bytes.");
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static void CheckOverlaps(string p, List<SafetensorsTensorInfo> tensors)
    {
        var sorted = tensors.Where(t => t.End > t.Begin).OrderBy(t => t.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].Begin < sorted[i - 1].End)
                throw new ModelFormatException(p, sorted[i].Name,
                    $"bytes [{sorted[i].Begin}, {sorted[i].End}) overlap tensor '{sorted[i - 1].Name}' [{sorted[i - 1].Begin}, {sorted[i - 1].End}).");
        }
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();
}
