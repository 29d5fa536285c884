// Hand-made corrupt safetensors files: each must fail with one ModelFormatException naming the file, the tensor
// or key, and the problem; none may crash, hang or allocate beyond the file size.
using System.Buffers.Binary;
using System.Text;
using LoraSharp.Formats.Safetensors;

namespace LoraSharp.Formats.Tests.Safetensors;

public class SafetensorsCorruptTests
{
    private static byte[] File(string header, int dataBytes, bool pad = true)
    {
        var h = Encoding.UTF8.GetBytes(header).ToList();
        while (pad && (8 + h.Count) % 8 != 0) h.Add((byte)' ');
        var b = new byte[8 + h.Count + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Count);
        h.ToArray().CopyTo(b, 8);
        return b;
    }

    private static ModelFormatException Fails(byte[] bytes, params string[] mustContain)
    {
        using var dir = new TempDir();
        string path = dir.Write("bad.safetensors", bytes);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains("bad.safetensors", e.Message);
        foreach (var s in mustContain) Assert.Contains(s, e.Message);
        return e;
    }

    [Fact]
    public void Truncated_ShorterThanHeaderLength_Fails() => Fails([1, 2, 3], "8-byte header length");

    [Fact]
    public void EmptyFile_Fails() => Fails([], "0 bytes");

    [Fact]
    public void HeaderLengthBeyondFile_Fails()
    {
        var b = File("{}", 0);
        BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue - 3);
        Fails(b, "header length", "past the end");
    }

    [Fact]
    public void TruncatedData_OffsetsPastEnd_Fails()
        => Fails(File("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "w", "past the data section");

    [Fact]
    public void OverlappingTensors_Fails()
        => Fails(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlap");

    [Fact]
    public void UnknownDType_Fails()
        => Fails(File("{\"w\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), "w", "unknown or unsupported dtype 'F7'");

    [Fact]
    public void ShapeTimesDTypeNotMatchingByteRange_Fails()
        => Fails(File("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "w", "does not match the byte range");

    [Fact]
    public void AbsurdDimensions_FailWithoutAllocating()
        => Fails(File("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8), "w", "does not match");

    [Fact]
    public void NegativeOrHugeDimension_Fails()
    {
        Fails(File("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0), "w", "non-negative");
        Fails(File("{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999],\"data_offsets\":[0,0]}}", 0), "w", "exceeds");
    }

    [Fact]
    public void NonUtf8Name_Fails()
    {
        var b = File("{\"w\xFF\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        // Replace the UTF-8 encoding of U+00FF (C3 BF) with a lone 0xFF byte and a space, keeping the length.
        int at = Array.IndexOf(b, (byte)0xC3);
        b[at] = 0xFF;
        b[at + 1] = (byte)'x';
        Fails(b, "header", "UTF-8 JSON");
    }

    [Fact]
    public void HeaderNotJsonObject_Fails()
    {
        Fails(File("[1,2]", 0), "JSON object");
        Fails(File("{\"w\":", 0), "JSON");
    }

    [Fact]
    public void DuplicateTensorName_Fails()
        => Fails(File("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2), "w", "twice");

    [Fact]
    public void MetadataNotStrings_Fails()
        => Fails(File("{\"__metadata__\":{\"n\":1}}", 0), "__metadata__.n", "string");

    [Fact]
    public void EveryPrefixOfValidFile_FailsCleanly()
    {
        using var dir = new TempDir();
        using var t = LoraSharp.Core.Tensors.Tensor.FromFloats([1f, 2f, 3f], 3);
        string good = dir.File("good.safetensors");
        SafetensorsWriter.Write(good, [new("w", t)], new Dictionary<string, string> { ["format"] = "pt" });
        byte[] all = System.IO.File.ReadAllBytes(good);
        for (int n = 0; n < all.Length; n++)
        {
            string p = dir.Write($"cut{n}.safetensors", all[..n]);
            var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(p).Dispose());
            Assert.Contains($"cut{n}.safetensors", e.Message);
        }
    }
}
