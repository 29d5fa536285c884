// safetensors writer: u64 header length, compact JSON header ("__metadata__" first, then tensors sorted by name)
// right-padded with spaces so the data section starts at a multiple of 8, then every tensor's bytes contiguously
// in the same sorted order. Written to a temporary file beside the target and renamed when complete, so a crash
// never leaves a half-written checkpoint under the real name. Does not write quantized (GGUF-only) dtypes.
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Safetensors;

/// <summary>Writes safetensors files.</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> (name -> tensor; any order, stored sorted by ordinal name) and optional
    /// string <paramref name="metadata"/> to <paramref name="path"/>, atomically (temp file + rename).
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        for (int i = 1; i < list.Count; i++)
            if (list[i].Key == list[i - 1].Key) throw new ArgumentException($"Tensor name '{list[i].Key}' is given twice.");
        byte[] header = BuildHeader(list, metadata);

        string full = Path.GetFullPath(path);
        string tmp = full + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
                fs.Write(len);
                fs.Write(header);
                foreach (var (_, t) in list) WriteBytes(fs, t);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            Durable.SyncDirectory(Path.GetDirectoryName(full)!);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> list, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.");
                w.WriteStartObject(name);
                w.WriteString("dtype", SafetensorsDTypes.Name(t.DType));
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.ByteLength;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - (8 + ms.Length) % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    internal static unsafe void WriteBytes(Stream s, Tensor t)
    {
        byte* p = (byte*)t.Pointer;
        long left = t.ByteLength;
        while (left > 0)
        {
            int chunk = (int)Math.Min(left, 1 << 30);
            s.Write(new ReadOnlySpan<byte>(p, chunk));
            p += chunk;
            left -= chunk;
        }
    }
}
