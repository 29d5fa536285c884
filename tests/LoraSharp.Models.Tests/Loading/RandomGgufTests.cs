// RandomGguf, the files `bench generate` gives both LoraSharp and llama.cpp: they load in LoraSharp with the
// config's dims, matrices in the asked type (norms F32), a tied output, the synthetic vocabulary, and a model that
// decodes. A small shape for every type, and the bench's own shape (b, SmolLM2-135M-like) in Q4_0, its cheapest.
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;

namespace LoraSharp.Models.Tests.Loading;

public class RandomGgufTests
{
    private static LlamaConfig Config(int dim, int hidden, int layers, int heads, int kvHeads, int vocab) => new()
    {
        HiddenSize = dim, IntermediateSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads, HeadDim = dim / heads, VocabSize = vocab, MaxPositionEmbeddings = 2048,
        RmsNormEps = 1e-5, RopeTheta = 10000, TieWordEmbeddings = true,
    };

    private static string TempFile() => Path.Combine(Path.GetTempPath(), $"random-gguf-test-{Guid.NewGuid():N}.gguf");

    private static void AssertLoadsAs(string path, LlamaConfig c, DType type)
    {
        using var loaded = ModelLoader.Load(path);
        Assert.Equal("gguf", loaded.Format);
        var g = loaded.Config;
        Assert.Equal((c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.VocabSize),
            (g.HiddenSize, g.IntermediateSize, g.NumHiddenLayers, g.NumAttentionHeads, g.NumKeyValueHeads, g.HeadDim, g.VocabSize));
        Assert.True(g.TieWordEmbeddings);
        Assert.DoesNotContain(TensorNames.LmHead, loaded.Tensors.Keys);
        Assert.Equal(2 + c.NumHiddenLayers * 9, loaded.Tensors.Count);
        foreach (var (name, t) in loaded.Tensors)
            Assert.Equal(t.Shape.Length == 1 ? DType.F32 : type, loaded.StoredDTypes.TryGetValue(name, out var s) ? s : t.DType);
        Assert.Equal([c.VocabSize, c.HiddenSize], loaded.Tensors["model.embed_tokens.weight"].Shape);
        Assert.Equal([c.IntermediateSize, c.HiddenSize], loaded.Tensors["model.layers.0.mlp.gate_proj.weight"].Shape);
        Assert.Equal([c.NumKeyValueHeads * c.HeadDim, c.HiddenSize], loaded.Tensors["model.layers.0.self_attn.k_proj.weight"].Shape);
        var tokenizer = GgufTokenizer.ForModel(loaded);
        Assert.Equal(c.VocabSize, tokenizer.VocabSize);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    public void Write_SmallShape_LoadsWithItsDimsAndDecodes(DType type)
    {
        var c = Config(64, 128, 2, 4, 2, 512);
        string path = TempFile();
        try
        {
            RandomGguf.Write(path, c, type, seed: 3);
            AssertLoadsAs(path, c, type);
            using var loaded = ModelLoader.Load(path);
            using var model = LlamaModel.FromTensors(loaded.Config, loaded.Tensors, path, consumeTensors: true);
            var cache = model.CreateCache(8);
            var logits = model.ForwardCached([RandomGguf.ReservedTokens, 300, 511], cache).ToArray();
            Assert.Equal(c.VocabSize, logits.Length);
            Assert.All(logits, v => Assert.True(float.IsFinite(v)));
            Assert.Contains(logits, v => v != 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Write_BenchShapeQ4_0_LoadsWithSmolLM2Dims()
    {
        var c = Config(576, 1536, 30, 9, 3, 49152);   // TrainBench shape (b), what `bench generate` writes
        string path = TempFile();
        try
        {
            RandomGguf.Write(path, c, DType.Q4_0);
            AssertLoadsAs(path, c, DType.Q4_0);
            using var loaded = ModelLoader.Load(path);
            Assert.Equal(134_515_008, loaded.ParameterCount);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Write_SameSeed_GivesTheSameBytes()
    {
        var c = Config(64, 128, 1, 4, 2, 300);
        string a = TempFile(), b = TempFile();
        try
        {
            RandomGguf.Write(a, c, DType.Q8_0, seed: 5);
            RandomGguf.Write(b, c, DType.Q8_0, seed: 5);
            Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        }
        finally
        {
            File.Delete(a);
            File.Delete(b);
        }
    }
}
