// ModelLoader on the shared stories260K fixtures: the HF folder (F32 and BF16 safetensors) and the F32/Q8_0/Q4_0
// GGUF files must give the same tensors under HF names; the tiny random Llama-2 GGUF (F16, 32k vocab) loads.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Loading;

public class ModelLoaderTests
{
    private static string Gguf(string name) => SharedFixtures.Path("models", "stories260K-gguf", name);

    private static uint[] Bits(Tensor t) => t.AsSpan<uint>().ToArray();

    [Fact]
    public void Stories260K_SafetensorsAndF32Gguf_GiveIdenticalTensorsBitForBit()
    {
        using var hf = ModelLoader.Load(SharedFixtures.Stories260KHf);
        using var gg = ModelLoader.Load(Gguf("stories260K-F32.gguf"));
        Assert.Equal("hf", hf.Format);
        Assert.Equal("gguf", gg.Format);
        Assert.Null(hf.GgufMetadata);
        Assert.NotNull(gg.GgufMetadata);
        Assert.Equal(47, hf.Tensors.Count);
        Assert.Equal(hf.Tensors.Keys.Order(), gg.Tensors.Keys.Order());
        Assert.DoesNotContain(TensorNames.LmHead, hf.Tensors.Keys);
        foreach (var (name, a) in hf.Tensors)
        {
            var b = gg.Tensors[name];
            Assert.Equal(DType.F32, a.DType);
            Assert.Equal(DType.F32, b.DType);
            Assert.Equal(a.Shape, b.Shape);
            Assert.True(Bits(a).AsSpan().SequenceEqual(Bits(b)), $"{name} differs between safetensors and GGUF");
        }
        Assert.Equal(260_032, hf.ParameterCount);
        Assert.Equal(hf.Config with { EosTokenIds = [], TorchDtype = null, MaxPositionEmbeddings = 0 },
            gg.Config with { EosTokenIds = [], TorchDtype = null, MaxPositionEmbeddings = 0 });
        Assert.Equal([2], gg.Config.EosTokenIds);
        Assert.Equal(512, gg.Config.MaxPositionEmbeddings);
    }

    [Fact]
    public void Stories260K_QProjFromGguf_IsPermutedNotCopied()
    {
        // The raw GGUF attn_q rows are interleaved; without the permutation they would differ from HF.
        using var hf = ModelLoader.Load(SharedFixtures.Stories260KHf);
        using var g = LoraSharp.Formats.Gguf.GgufFile.Open(Gguf("stories260K-F32.gguf"));
        var raw = g.GetTensor("blk.0.attn_q.weight").Floats;
        var q = hf.Tensors["model.layers.0.self_attn.q_proj.weight"].Floats;
        Assert.False(raw.SequenceEqual(q));
        // GGUF row 1 (head 0, j=0, c=1) is HF row HS/2 = 4.
        Assert.True(raw.Slice(1 * 64, 64).SequenceEqual(q.Slice(4 * 64, 64)));
    }

    [Fact]
    public void Stories260K_Bf16Safetensors_EqualsRoundToNearestEvenOfF32()
    {
        using var f32 = ModelLoader.Load(SharedFixtures.Stories260KHf);
        string bf16Path = Path.Combine(SharedFixtures.Stories260KHf, "model.bf16.safetensors");
        using var stored = ModelLoader.Load(bf16Path, new ModelLoadOptions { BaseDType = "stored" });
        using var widened = ModelLoader.Load(bf16Path, new ModelLoadOptions { BaseDType = "f32" });
        foreach (var (name, t) in f32.Tensors)
        {
            var expected = new ushort[t.ElementCount];
            Bf16.FromFloatScalar(t.Floats, expected);
            var s = stored.Tensors[name];
            Assert.Equal(DType.BF16, s.DType);
            Assert.True(s.AsSpan<ushort>().SequenceEqual(expected), $"{name}: bf16 file != RNE(F32)");
            var w = widened.Tensors[name];
            Assert.Equal(DType.F32, w.DType);
            for (int i = 0; i < expected.Length; i++) Assert.Equal(Bf16.ToFloat(expected[i]), w.Floats[i]);
        }
    }

    [Fact]
    public void Bf16Safetensors_DefaultLoad_KeepsMatricesStoredAndVectorsF32()
    {
        // Widening bf16 is exact, so by default it would only double the bytes: matrices stay bf16, norms are f32.
        using var auto = ModelLoader.Load(Path.Combine(SharedFixtures.Stories260KHf, "model.bf16.safetensors"));
        int matrices = 0;
        foreach (var (name, t) in auto.Tensors)
        {
            Assert.Equal(t.Shape.Length == 2 ? DType.BF16 : DType.F32, t.DType);
            if (t.Shape.Length == 2) matrices++;
        }
        Assert.Equal(36, matrices);   // 5 layers x 7 projections + the (tied) embedding
    }

    [Theory]
    [InlineData("stories260K-Q8_0.gguf", 0.00723)]
    [InlineData("stories260K-Q4_0.gguf", 0.1296)]
    public void Stories260K_QuantizedGguf_DequantizesWithinGoldenBound(string file, double bound)
    {
        using var f32 = ModelLoader.Load(Gguf("stories260K-F32.gguf"));
        using var q = ModelLoader.Load(Gguf(file), new ModelLoadOptions { BaseDType = "f32" });
        double worst = 0;
        int quantized = 0;
        foreach (var (name, t) in f32.Tensors)
        {
            if (DTypeInfo.IsQuantized(q.StoredDTypes[name])) quantized++;
            else Assert.True(t.Floats.SequenceEqual(q.Tensors[name].Floats), $"{name} is F32 in both files but differs");
            worst = Math.Max(worst, TestData.MaxAbsDiff(q.Tensors[name].Floats, t.Floats));
        }
        Assert.Equal(31, quantized);
        Assert.InRange(worst, bound * 0.9, bound * 1.0001);
    }

    [Fact]
    public void Stories260K_Q4_0Stored_KeepsQuantizedTypesAndPermutesBlocks()
    {
        using var q = ModelLoader.Load(Gguf("stories260K-Q4_0.gguf"), new ModelLoadOptions { BaseDType = "stored" });
        using var widened = ModelLoader.Load(Gguf("stories260K-Q4_0.gguf"), new ModelLoadOptions { BaseDType = "f32" });
        Assert.Equal(DType.Q4_0, q.Tensors["model.layers.2.self_attn.k_proj.weight"].DType);
        Assert.Equal(DType.Q8_0, q.Tensors[TensorNames.Embedding].DType);
        Assert.Equal(DType.F32, q.Tensors["model.layers.2.mlp.down_proj.weight"].DType);
        foreach (var (name, t) in q.Tensors)
        {
            var deq = new float[t.ElementCount];
            int row = t.Shape[^1];
            long rowBytes = t.ByteLength / (deq.Length / row);
            for (int r = 0; r < deq.Length / row; r++)
                LoraSharp.Core.Quant.Dequant.DequantizeRow(t.DType, t.Bytes.Slice((int)(r * rowBytes), (int)rowBytes), deq.AsSpan(r * row, row));
            Assert.True(deq.AsSpan().SequenceEqual(widened.Tensors[name].Floats), name);
        }
    }

    [Fact]
    public void Stories260K_BaseDTypeBf16_ConvertsMatricesKeepsNormsF32()
    {
        using var f32 = ModelLoader.Load(SharedFixtures.Stories260KHf);
        using var m = ModelLoader.Load(Gguf("stories260K-F32.gguf"), new ModelLoadOptions { BaseDType = "bf16" });
        Assert.Equal(DType.BF16, m.Tensors["model.layers.0.self_attn.q_proj.weight"].DType);
        Assert.Equal(DType.F32, m.Tensors["model.layers.0.input_layernorm.weight"].DType);
        var expected = new ushort[64 * 64];
        Bf16.FromFloatScalar(f32.Tensors["model.layers.0.self_attn.q_proj.weight"].Floats, expected);
        Assert.True(m.Tensors["model.layers.0.self_attn.q_proj.weight"].AsSpan<ushort>().SequenceEqual(expected));
        using var f16 = ModelLoader.Load(SharedFixtures.Stories260KHf, new ModelLoadOptions { BaseDType = "f16" });
        Assert.Equal(DType.F16, f16.Tensors[TensorNames.Embedding].DType);
        Assert.Throws<LoraSharp.Core.UserErrorException>(() => ModelLoader.Load(SharedFixtures.Stories260KHf, new ModelLoadOptions { BaseDType = "int3" }));
    }

    [Fact]
    public void TinyRandomLlama2Gguf_F16_LoadsAndReadsTokenList()
    {
        string path = SharedFixtures.Path("models", "tiny-random-llama2-gguf", "llama-2-tiny-random.gguf");
        using var m = ModelLoader.Load(path, new ModelLoadOptions { BaseDType = "stored" });
        Assert.Equal("llama", m.Config.ModelType);
        Assert.Contains(m.StoredDTypes.Values, d => d == DType.F16);
        var tokens = m.GgufMetadata!.Single(kv => kv.Key == "tokenizer.ggml.tokens").Value.AsArray<string>();
        Assert.Equal(32000, tokens.Length);
        Assert.Equal("<s>", tokens[1]);
        Assert.Equal(m.Config.VocabSize, m.Tensors[TensorNames.Embedding].Shape[0]);
        using var widened = ModelLoader.Load(path, new ModelLoadOptions { BaseDType = "f32" });
        Assert.All(widened.Tensors.Values, t => Assert.Equal(DType.F32, t.DType));
        using var byDefault = ModelLoader.Load(path);   // a GGUF file loads in its own types unless asked otherwise
        Assert.Equal(DType.F16, byDefault.Tensors[TensorNames.Embedding].DType);
    }
}
