// Hand-made corrupt GGUF files: each fails with one ModelFormatException naming the file, the key or tensor and
// the problem, without allocating more than the file or hanging.
using System.Text;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;

namespace LoraSharp.Formats.Tests.Gguf;

public class GgufCorruptTests
{
    // A tiny writer of raw GGUF bytes so tests can lie in any field.
    private sealed class Raw
    {
        private readonly MemoryStream _ms = new();
        private readonly BinaryWriter _w;
        public Raw() => _w = new BinaryWriter(_ms);
        public Raw U32(uint v) { _w.Write(v); return this; }
        public Raw U64(ulong v) { _w.Write(v); return this; }
        public Raw Bytes(byte[] b) { _w.Write(b); return this; }
        public Raw Str(string s) { var b = Encoding.UTF8.GetBytes(s); return U64((ulong)b.Length).Bytes(b); }
        public Raw Header(ulong tensors, ulong kvs, uint version = 3) => U32(GgufFile.Magic).U32(version).U64(tensors).U64(kvs);
        public Raw Pad(int to) { while (_ms.Length % to != 0) _w.Write((byte)0); return this; }
        public byte[] ToArray() { _w.Flush(); return _ms.ToArray(); }
    }

    private static ModelFormatException Fails(byte[] bytes, params string[] mustContain)
    {
        using var dir = new TempDir();
        string path = dir.Write("bad.gguf", bytes);
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains("bad.gguf", e.Message);
        foreach (var s in mustContain) Assert.Contains(s, e.Message);
        return e;
    }

    private static Raw OneTensor(uint type, ulong[] dims, ulong offset) =>
        new Raw().Header(1, 0).Str("w").U32((uint)dims.Length).Bytes(dims.SelectMany(BitConverter.GetBytes).ToArray()).U32(type).U64(offset);

    [Fact]
    public void BadMagic_Fails() => Fails(new Raw().U32(0x12345678).U32(3).U64(0).U64(0).ToArray(), "not a GGUF file");

    [Fact]
    public void Version1_IsRefused() => Fails(new Raw().Header(0, 0, version: 1).ToArray(), "version 1");

    [Fact]
    public void BigEndianVersion_IsNamed() => Fails(new Raw().Header(0, 0, version: 0x03000000).ToArray(), "big-endian");

    [Fact]
    public void AbsurdKvCount_FailsBeforeAllocating() => Fails(new Raw().Header(0, ulong.MaxValue / 2).ToArray(), "metadata_kv_count", "absurd");

    [Fact]
    public void AbsurdTensorCount_FailsBeforeAllocating() => Fails(new Raw().Header(1L << 40, 0).ToArray(), "tensor_count", "absurd");

    [Fact]
    public void AbsurdStringLength_Fails() => Fails(new Raw().Header(0, 1).U64(1UL << 62).Bytes(new byte[32]).ToArray(), "metadata key #0", "string length");

    [Fact]
    public void AbsurdArrayCount_FailsBeforeAllocating()
        => Fails(new Raw().Header(0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(1UL << 50).Bytes(new byte[64]).ToArray(), "tokenizer.ggml.tokens", "absurd");

    [Fact]
    public void UnknownValueType_Fails() => Fails(new Raw().Header(0, 1).Str("k").U32(99).Bytes(new byte[16]).ToArray(), "k", "unknown metadata value type 99");

    [Fact]
    public void NonUtf8Key_Fails() => Fails(new Raw().Header(0, 1).U64(2).Bytes([0xC3, 0x28]).U32(4).U32(1).ToArray(), "not valid UTF-8");

    [Fact]
    public void BadAlignment_Fails() => Fails(new Raw().Header(0, 1).Str("general.alignment").U32(4).U32(24).ToArray(), "general.alignment", "power of two");

    [Fact]
    public void DuplicateKey_Fails() => Fails(new Raw().Header(0, 2).Str("k").U32(4).U32(1).Str("k").U32(4).U32(2).ToArray(), "k", "twice");

    [Fact]
    public void UnknownTensorType_NamesTheType() => Fails(OneTensor(10, [256], 0).Pad(32).Bytes(new byte[256]).ToArray(), "w", "Q2_K (10) is not supported");

    [Fact]
    public void TooManyDims_Fails() => Fails(OneTensor(0, [1, 1, 1, 1, 1], 0).Pad(32).Bytes(new byte[4]).ToArray(), "w", "at most 4");

    [Fact]
    public void AbsurdDimension_Fails() => Fails(OneTensor(0, [1UL << 40], 0).Pad(32).ToArray(), "w", "absurd");

    [Fact]
    public void HugeElementCount_FailsAsPastEnd() => Fails(OneTensor(0, [int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue], 0).Pad(32).ToArray(), "w", "runs past");

    [Fact]
    public void OffsetOutOfRange_Fails() => Fails(OneTensor(0, [4], 64).Pad(32).Bytes(new byte[16]).ToArray(), "w", "runs past");

    [Fact]
    public void MisalignedOffset_Fails() => Fails(OneTensor(0, [1], 4).Pad(32).Bytes(new byte[16]).ToArray(), "w", "multiple of the alignment");

    [Fact]
    public void QuantizedRowNotWholeBlocks_Fails() => Fails(OneTensor(8, [33], 0).Pad(32).Bytes(new byte[64]).ToArray(), "w", "block size");

    [Fact]
    public void OverlappingTensors_Fails()
    {
        var b = new Raw().Header(2, 0)
            .Str("a").U32(1).U64(16).U32(0).U64(0)
            .Str("b").U32(1).U64(16).U32(0).U64(32)
            .Pad(32).Bytes(new byte[128]).ToArray();
        Fails(b, "b", "overlaps tensor 'a'");
    }

    [Fact]
    public void EveryPrefixOfValidFile_FailsCleanly()
    {
        using var dir = new TempDir();
        using var t = Tensor.FromFloats([1f, 2f], 2);
        string good = dir.File("good.gguf");
        GgufWriter.Write(good, GgufTests.EveryType(), [new("w", t)]);
        byte[] all = File.ReadAllBytes(good);
        using (GgufFile.Open(good)) { }
        // The last tensor ends before the final alignment padding; cutting inside the padding is still valid.
        long dataEnd;
        using (var g = GgufFile.Open(good)) dataEnd = g.DataStart + g.Info("w").Offset + g.Info("w").ByteLength;
        // Every cut inside the fixed header, then every 5th byte (each cut is a file write + map: ~14 ms).
        for (int n = 0; n < dataEnd; n += n < 40 ? 1 : 5)
        {
            string p = dir.Write("cut.gguf", all[..n]);
            var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(p).Dispose());
            Assert.Contains("cut.gguf", e.Message);
        }
    }
}
