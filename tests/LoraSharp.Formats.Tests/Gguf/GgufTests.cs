// GGUF round trips (every metadata type, arrays of strings, nested arrays, v2 and v3, custom alignment) and the
// shared stories260K / tiny Llama-2 files.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.TestSupport;

namespace LoraSharp.Formats.Tests.Gguf;

public class GgufTests
{
    internal static List<KeyValuePair<string, GgufValue>> EveryType() =>
    [
        new("general.architecture", GgufValue.From("llama")),
        new("general.alignment", GgufValue.From(64u)),
        new("t.u8", GgufValue.From((byte)200)),
        new("t.i8", GgufValue.From((sbyte)-100)),
        new("t.u16", GgufValue.From((ushort)60000)),
        new("t.i16", GgufValue.From((short)-30000)),
        new("t.u32", GgufValue.From(4_000_000_000u)),
        new("t.i32", GgufValue.From(-2_000_000_000)),
        new("t.f32", GgufValue.From(1e-5f)),
        new("t.bool", GgufValue.From(true)),
        new("t.string", GgufValue.From("▁héllo 🙂")),
        new("t.u64", GgufValue.From(ulong.MaxValue)),
        new("t.i64", GgufValue.From(long.MinValue)),
        new("t.f64", GgufValue.From(Math.PI)),
        new("t.empty_string", GgufValue.From("")),
        new("a.u8", GgufValue.From(new byte[] { 1, 2, 255 })),
        new("a.i8", GgufValue.From(new sbyte[] { -1, 2 })),
        new("a.u16", GgufValue.From(new ushort[] { 1, 65535 })),
        new("a.i16", GgufValue.From(new short[] { -5 })),
        new("a.u32", GgufValue.From(new uint[] { 7, 8, 9 })),
        new("a.i32", GgufValue.From(new[] { -1, 0, 3 })),
        new("a.f32", GgufValue.From(new[] { 0.5f, -0f, float.PositiveInfinity })),
        new("a.bool", GgufValue.From(new[] { true, false, true })),
        new("a.string", GgufValue.From(new[] { "<unk>", "<s>", "", "▁the" })),
        new("a.u64", GgufValue.From(new ulong[] { 1, ulong.MaxValue })),
        new("a.i64", GgufValue.From(new long[] { -1 })),
        new("a.f64", GgufValue.From(new[] { 1.5, -2.25 })),
        new("a.empty", GgufValue.From(Array.Empty<int>())),
        new("a.nested", GgufValue.From(new[] { GgufValue.From(new[] { 1, 2 }), GgufValue.From(new[] { 3 }) })),
    ];

    [Theory]
    [InlineData(2u)]
    [InlineData(3u)]
    public void WriteThenRead_EveryMetadataTypeAndTensorType_RoundTrips(uint version)
    {
        using var dir = new TempDir();
        var meta = EveryType();
        using var f32 = Tensor.FromFloats(TestData.Uniform(6, seed: 2), 2, 3);
        using var f16 = Tensor.Zeros(DType.F16, 5);
        using var q8 = Tensor.Zeros(DType.Q8_0, 2, 64);
        q8.Bytes.Fill(3);
        using var bf16 = Tensor.Zeros(DType.BF16, 1, 1, 1, 2);
        bf16.Bytes.Fill(0x3F);
        var tensors = new List<KeyValuePair<string, Tensor>> { new("w.f32", f32), new("w.f16", f16), new("w.q8", q8), new("w.bf16", bf16) };
        string path = dir.File("t.gguf");
        GgufWriter.Write(path, meta, tensors, version);
        using var g = GgufFile.Open(path);
        Assert.Equal(version, g.Version);
        Assert.Equal(64, g.Alignment);
        Assert.Equal(0, g.DataStart % 64);
        Assert.Equal(meta.Select(m => m.Key), g.Metadata.Select(m => m.Key));
        foreach (var (k, v) in meta) Assert.True(v.ValueEquals(g.MetadataByKey[k]), $"{k}: wrote {v}, read {g.MetadataByKey[k]}");
        Assert.Equal(tensors.Select(t => t.Key), g.Tensors.Select(t => t.Name));
        foreach (var (name, t) in tensors)
        {
            var r = g.GetTensor(name);
            Assert.Equal(t.DType, r.DType);
            Assert.Equal(t.Shape, r.Shape);
            Assert.Equal(0, g.Info(name).Offset % 64);
            Assert.True(r.Bytes.SequenceEqual(t.Bytes), name);
        }
        Assert.Equal([64L, 2L], g.Info("w.q8").Dims);
    }

    [Fact]
    public void Stories260KF32_MetadataAndTensorInfos_MatchGoldenReadme()
    {
        using var g = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf"));
        Assert.Equal(3u, g.Version);
        Assert.Equal(32, g.Alignment);
        Assert.Equal("llama", g.Get("general.architecture")!.AsString());
        Assert.Equal("stories260K", g.Get("general.name")!.AsString());
        Assert.Equal(GgufValueType.UInt32, g.Get("llama.context_length")!.Type);
        Assert.Equal(512, g.Get("llama.context_length")!.AsInt64());
        Assert.Equal(1e-5f, (float)g.Get("llama.attention.layer_norm_rms_epsilon")!.Value);
        var tokens = g.Get("tokenizer.ggml.tokens")!.AsArray<string>();
        Assert.Equal(512, tokens.Length);
        Assert.Equal("<0x00>", tokens[3]);
        Assert.Equal("▁", tokens[410]);
        Assert.Equal(512, g.Get("tokenizer.ggml.scores")!.AsArray<float>().Length);
        Assert.Equal(6, g.Get("tokenizer.ggml.token_type")!.AsArray<int>()[3]); // llama_token_type BYTE
        Assert.True(g.Get("tokenizer.ggml.add_bos_token")!.AsBool());
        Assert.Equal(47, g.Tensors.Count);
        Assert.Equal([64L, 32L], g.Info("blk.0.attn_k.weight").Dims);
        Assert.Equal([32, 64], g.Info("blk.0.attn_k.weight").Shape);
        Assert.False(g.Contains("output.weight"));
    }

    [Fact]
    public void Stories260KF32_RewritesByteIdentically()
    {
        // Our writer reproduces gguf-py's file: same metadata encoding, tensor infos, padding and data layout.
        string src = SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf");
        using var dir = new TempDir();
        using (var g = GgufFile.Open(src))
            GgufWriter.Write(dir.File("copy.gguf"), g.Metadata, g.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, g.GetTensor(t.Name))).ToList(), g.Version);
        byte[] a = File.ReadAllBytes(src), b = File.ReadAllBytes(dir.File("copy.gguf"));
        Assert.Equal(a.Length, b.Length);
        Assert.True(a.AsSpan().SequenceEqual(b));
    }

    [Fact]
    public void TinyRandomLlama2_ReadsF16TensorsAndVocabulary()
    {
        using var g = GgufFile.Open(SharedFixtures.Path("models", "tiny-random-llama2-gguf", "llama-2-tiny-random.gguf"));
        Assert.Contains(g.Tensors, t => t.DType == DType.F16);
        var tokens = g.Get("tokenizer.ggml.tokens")!.AsArray<string>();
        Assert.Equal(32000, tokens.Length);
        Assert.Equal("<unk>", tokens[0]);
        Assert.Equal("llama", g.Get("tokenizer.ggml.model")!.AsString());
    }
}
