// safetensors round trips, layout of written files, golden files and sharded folders.
using System.Buffers.Binary;
using System.Text;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Safetensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Formats.Tests.Safetensors;

public class SafetensorsTests
{
    private static Dictionary<string, Tensor> SampleTensors()
    {
        var f32 = Tensor.FromFloats(TestData.Uniform(15, seed: 1), 3, 5);
        var f16 = Tensor.Zeros(DType.F16, 4);
        Fp16.FromFloat([1.5f, -2f, 0.25f, 65504f], f16.AsSpan<ushort>());
        var bf16 = Tensor.Zeros(DType.BF16, 2, 2);
        Bf16.FromFloat([1f, -3.5f, 1e-3f, 7f], bf16.AsSpan<ushort>());
        var i64 = Tensor.Zeros(DType.I64, 3);
        i64.AsSpan<long>()[2] = long.MinValue;
        var i32 = Tensor.Zeros(DType.I32, 2);
        i32.AsSpan<int>()[0] = -7;
        var u8 = Tensor.Zeros(DType.U8, 7);
        u8.Bytes.Fill(0xAB);
        var scalar = Tensor.FromFloats([3.25f]);
        var empty = Tensor.Zeros(DType.F32, 0, 4);
        return new()
        {
            ["z.f32"] = f32, ["a.f16"] = f16, ["m.bf16"] = bf16, ["i64"] = i64, ["i32"] = i32, ["u8"] = u8, ["scalar"] = scalar, ["empty"] = empty,
        };
    }

    [Fact]
    public void WriteThenRead_EveryDType_RoundTripsBytesShapesAndMetadata()
    {
        using var dir = new TempDir();
        var tensors = SampleTensors();
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["loss_f64"] = "1.1635450960739868", ["ünïcode"] = "▁x" };
        string path = dir.File("t.safetensors");
        SafetensorsWriter.Write(path, tensors, meta);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(meta, f.Metadata);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), f.Tensors.Select(t => t.Name));
        foreach (var (name, t) in tensors)
        {
            var r = f.GetTensor(name);
            Assert.Equal(t.DType, r.DType);
            Assert.Equal(t.Shape, r.Shape);
            Assert.True(r.Bytes.SequenceEqual(t.Bytes), name);
        }
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }

    [Fact]
    public void Write_Layout_HeaderPaddedToEightSortedContiguous()
    {
        using var dir = new TempDir();
        string path = dir.File("t.safetensors");
        SafetensorsWriter.Write(path, SampleTensors(), new Dictionary<string, string> { ["format"] = "pt" });
        byte[] bytes = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + (long)n) % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\"},", header);
        Assert.DoesNotContain("\n", header);
        Assert.Equal(header.TrimEnd(' ').Length + (header.Length - header.TrimEnd(' ').Length), header.Length);
        using var f = SafetensorsFile.Open(path);
        long expect = 0;
        foreach (var t in f.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            Assert.Equal(expect, t.Begin);
            expect = t.End;
        }
        Assert.Equal(bytes.Length, 8 + (long)n + expect);
    }

    [Fact]
    public void Write_RejectsQuantizedDTypeWithReason()
    {
        using var dir = new TempDir();
        using var q = Tensor.Zeros(DType.Q8_0, 32);
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.File("q.safetensors"), [new("q", q)]));
        Assert.Contains("Q8_0", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void GoldenReferenceLogits_ReadsI64ScalarsAndMetadata()
    {
        using var f = SafetensorsFile.Open(SharedFixtures.Path("golden", "stories260K", "reference_logits_32.safetensors"));
        var ids = f.GetTensor("input_ids");
        Assert.Equal(DType.I64, ids.DType);
        Assert.Equal([32], ids.Shape);
        Assert.Equal(1, ids.AsSpan<long>()[0]);
        Assert.Equal([32, 512], f.Info("logits_ref").Shape);
        Assert.Equal("pt", f.Metadata["format"]);
        using var fwd = SafetensorsFile.Open(SharedFixtures.Path("golden", "stories260K", "lora", "forward.safetensors"));
        var loss = fwd.GetTensor("loss");
        Assert.Empty(loss.Shape);
        Assert.Equal(1.1635450960739868, loss.Floats[0], 6);
    }

    [Fact]
    public void Stories260K_ModelFile_RewritesByteIdentically()
    {
        // Our writer reproduces the reference file exactly: same header JSON, padding and tensor order.
        string src = Path.Combine(SharedFixtures.Stories260KHf, "model.safetensors");
        using var dir = new TempDir();
        using (var f = SafetensorsFile.Open(src))
        {
            var tensors = f.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, f.GetTensor(t.Name))).ToList();
            SafetensorsWriter.Write(dir.File("copy.safetensors"), tensors, f.Metadata);
        }
        Assert.True(File.ReadAllBytes(src).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("copy.safetensors"))));
    }

    [Fact]
    public void ShardedFolder_IndexJson_OpensAllShards()
    {
        using var dir = new TempDir();
        var all = SampleTensors();
        var names = all.Keys.Order(StringComparer.Ordinal).ToList();
        SafetensorsWriter.Write(dir.File("model-00001-of-00002.safetensors"), names.Take(4).Select(n => new KeyValuePair<string, Tensor>(n, all[n])));
        SafetensorsWriter.Write(dir.File("model-00002-of-00002.safetensors"), names.Skip(4).Select(n => new KeyValuePair<string, Tensor>(n, all[n])));
        string map = string.Join(",", names.Select((n, i) => $"\"{n}\":\"model-0000{(i < 4 ? 1 : 2)}-of-00002.safetensors\""));
        File.WriteAllText(dir.File("model.safetensors.index.json"), $"{{\"metadata\":{{\"total_size\":1}},\"weight_map\":{{{map}}}}}");
        using var set = SafetensorsSet.OpenFolder(dir.Path);
        Assert.Equal(2, set.Files.Count);
        Assert.Equal(names, set.Names);
        foreach (var n in names) Assert.True(set.GetTensor(n).Bytes.SequenceEqual(all[n].Bytes));
    }

    [Fact]
    public void ShardedFolder_IndexNamesTensorMissingFromShard_Throws()
    {
        using var dir = new TempDir();
        using var t = Tensor.FromFloats([1f], 1);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("x", t)]);
        File.WriteAllText(dir.File("model.safetensors.index.json"), "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\"}}");
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsSet.OpenFolder(dir.Path));
        Assert.Contains("'y'".Trim('\''), e.Message);
        Assert.Contains("does not contain", e.Message);
    }

    [Fact]
    public void ShardedFolder_SameTensorInTwoFiles_Throws()
    {
        using var dir = new TempDir();
        using var t = Tensor.FromFloats([1f], 1);
        SafetensorsWriter.Write(dir.File("a.safetensors"), [new("x", t)]);
        SafetensorsWriter.Write(dir.File("b.safetensors"), [new("x", t)]);
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsSet.OpenFiles([dir.File("a.safetensors"), dir.File("b.safetensors")]));
        Assert.Contains("also appears", e.Message);
    }
}
