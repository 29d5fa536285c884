// TEST-ONLY safetensors reader for the golden F32 files (8-byte little-endian header length, a JSON header of
// name -> {dtype, shape, data_offsets}, then raw little-endian data). It exists because the real reader in
// LoraSharp.Formats is written in parallel; it reads F32 only and does no validation beyond what the tests need.
// Replace its uses with the Formats reader once that lands.
using System.Buffers.Binary;
using System.Text.Json;

namespace LoraSharp.Core.Tests.Optim;

internal static class TestSafetensors
{
    /// <summary>Every F32 tensor of the file: name -> (shape, values).</summary>
    public static Dictionary<string, (int[] Shape, float[] Data)> ReadF32(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var result = new Dictionary<string, (int[], float[])>(StringComparer.Ordinal);
        int dataStart = 8 + (int)headerLength;
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            string dtype = entry.Value.GetProperty("dtype").GetString()!;
            if (dtype != "F32") throw new InvalidDataException($"{path}: tensor '{entry.Name}' is {dtype}; this test reader handles F32 only.");
            int[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            int n = (int)((offsets[1] - offsets[0]) / 4);
            var data = new float[n];
            for (int i = 0; i < n; i++)
                data[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart + (int)offsets[0] + 4 * i, 4));
            result[entry.Name] = (shape, data);
        }
        return result;
    }
}
