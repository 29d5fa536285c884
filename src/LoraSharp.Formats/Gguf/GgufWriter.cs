// GGUF writer (version 3 by default, 2 on request): header, metadata in the given order, tensor infos
// (shape reversed to ggml's innermost-first ne), zero padding to general.alignment (32 unless the metadata sets
// it), then each tensor's bytes at an aligned offset. Written to a temporary file and renamed when complete.
// It stores blocks as given: quantize with LoraSharp.Core.Quant.Dequant.QuantizeRow first.
using System.Text;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Safetensors;

namespace LoraSharp.Formats.Gguf;

/// <summary>Writes GGUF files.</summary>
public static class GgufWriter
{
    /// <summary>
    /// Writes <paramref name="metadata"/> (in order) and <paramref name="tensors"/> (name, tensor with shape
    /// outermost first; in order) to <paramref name="path"/>. <paramref name="version"/> is 2 or 3.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<KeyValuePair<string, Tensor>> tensors, uint version = 3)
    {
        if (version is not (2 or 3)) throw new ArgumentException($"GGUF version {version} cannot be written (2 or 3).", nameof(version));
        var kv = metadata.ToList();
        var ts = tensors.ToList();
        int alignment = GgufFile.DefaultAlignment;
        foreach (var (k, v) in kv)
        {
            if (k == "general.alignment")
            {
                if (v.Type != GgufValueType.UInt32 || (uint)v.Value == 0 || ((uint)v.Value & ((uint)v.Value - 1)) != 0)
                    throw new ArgumentException($"general.alignment must be a u32 power of two, got {v.Type} {v}.");
                alignment = (int)(uint)v.Value;
            }
        }
        if (kv.Select(x => x.Key).Distinct(StringComparer.Ordinal).Count() != kv.Count) throw new ArgumentException("Metadata keys must be unique.");
        if (ts.Select(x => x.Key).Distinct(StringComparer.Ordinal).Count() != ts.Count) throw new ArgumentException("Tensor names must be unique.");

        string full = Path.GetFullPath(path);
        string tmp = full + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            using (var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true))
            {
                w.Write(GgufFile.Magic);
                w.Write(version);
                w.Write((ulong)ts.Count);
                w.Write((ulong)kv.Count);
                foreach (var (k, v) in kv)
                {
                    WriteString(w, k);
                    w.Write((uint)v.Type);
                    WriteValue(w, v);
                }
                long offset = 0;
                var offsets = new long[ts.Count];
                for (int i = 0; i < ts.Count; i++)
                {
                    var (name, t) = ts[i];
                    if (t.Shape.Length > 4) throw new ArgumentException($"Tensor '{name}' has {t.Shape.Length} dimensions; GGUF allows at most 4.");
                    WriteString(w, name);
                    w.Write((uint)t.Shape.Length);
                    for (int d = t.Shape.Length - 1; d >= 0; d--) w.Write((ulong)t.Shape[d]);
                    w.Write(GgmlTypes.ToCode(t.DType));
                    w.Write((ulong)offset);
                    offsets[i] = offset;
                    offset = Align(offset + t.ByteLength, alignment);
                }
                w.Flush();
                Pad(fs, alignment);
                long dataStart = fs.Position;
                for (int i = 0; i < ts.Count; i++)
                {
                    long gap = dataStart + offsets[i] - fs.Position;
                    for (long z = 0; z < gap; z++) fs.WriteByte(0);
                    SafetensorsWriter.WriteBytes(fs, ts[i].Value);
                }
                Pad(fs, alignment);
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

    private static long Align(long x, int a) => (x + a - 1) / a * a;

    // Pads the stream with zeros to a multiple of `alignment`.
    private static void Pad(Stream s, int alignment)
    {
        long target = Align(s.Position, alignment);
        while (s.Position < target) s.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        switch (v.Type)
        {
            case GgufValueType.UInt8: w.Write((byte)v.Value); break;
            case GgufValueType.Int8: w.Write((sbyte)v.Value); break;
            case GgufValueType.UInt16: w.Write((ushort)v.Value); break;
            case GgufValueType.Int16: w.Write((short)v.Value); break;
            case GgufValueType.UInt32: w.Write((uint)v.Value); break;
            case GgufValueType.Int32: w.Write((int)v.Value); break;
            case GgufValueType.Float32: w.Write((float)v.Value); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v.Value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)v.Value); break;
            case GgufValueType.UInt64: w.Write((ulong)v.Value); break;
            case GgufValueType.Int64: w.Write((long)v.Value); break;
            case GgufValueType.Float64: w.Write((double)v.Value); break;
            case GgufValueType.Array:
                var a = (Array)v.Value;
                w.Write((uint)v.ElementType);
                w.Write((ulong)a.Length);
                foreach (var e in a)
                {
                    var ev = e as GgufValue ?? new GgufValue(v.ElementType, e);
                    if (ev.Type != v.ElementType) throw new ArgumentException($"Array of {v.ElementType} holds a {ev.Type}.");
                    WriteValue(w, ev);
                }
                break;
            default: throw new ArgumentException($"Unknown GGUF value type {v.Type}.");
        }
    }
}
