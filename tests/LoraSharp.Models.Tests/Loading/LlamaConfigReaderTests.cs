// config.json -> LlamaConfig defaults per model type (as transformers), and GGUF metadata -> LlamaConfig.
using LoraSharp.Formats;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Loading;

public class LlamaConfigReaderTests
{
    private static LlamaConfig FromJson(string json) => ConfigJson.Read(json);

    private const string Dims = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";

    [Fact]
    public void Llama_Defaults_HeadDimKvHeadsTieFollowTransformers()
    {
        var c = FromJson($"{{\"model_type\":\"llama\",{Dims}}}");
        Assert.Equal(16, c.HeadDim);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(2048, c.MaxPositionEmbeddings);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Null(c.RopeScaling);
        Assert.Empty(c.EosTokenIds);
    }

    [Fact]
    public void Mistral_SlidingWindowAndEosList()
    {
        var c = FromJson($"{{\"model_type\":\"mistral\",{Dims},\"num_key_value_heads\":2,\"sliding_window\":4096,\"eos_token_id\":[2,3]}}");
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Equal([2, 3], c.EosTokenIds);
        Assert.False(c.QkvBias);
    }

    [Fact]
    public void Qwen2_QkvBiasWithoutOutputBias_SlidingWindowOnlyWhenUsed()
    {
        var c = FromJson($"{{\"model_type\":\"qwen2\",{Dims},\"num_key_value_heads\":2,\"sliding_window\":4096,\"use_sliding_window\":false,\"tie_word_embeddings\":true}}");
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.Null(c.SlidingWindow);
        Assert.True(c.TieWordEmbeddings);
        var expected = LlamaTensorLayout.Expected(c).Select(e => e.Name).ToList();
        Assert.Contains("model.layers.1.self_attn.k_proj.bias", expected);
        Assert.DoesNotContain("model.layers.1.self_attn.o_proj.bias", expected);
        Assert.DoesNotContain(TensorNames.LmHead, expected);
    }

    [Fact]
    public void Llama3RopeScaling_IsMapped()
    {
        var c = FromJson($"{{\"model_type\":\"llama\",{Dims},\"head_dim\":32,\"rope_scaling\":{{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}}}");
        Assert.Equal(32, c.HeadDim);
        Assert.Equal(new LoraSharp.Core.Kernels.RopeScaling("llama3", 8, 1, 4, 8192), c.RopeScaling);
    }

    [Fact]
    public void UnsupportedModelTypeOrMissingField_NamesField()
    {
        var e = Assert.Throws<ModelFormatException>(() => FromJson($"{{\"model_type\":\"gpt2\",{Dims}}}"));
        Assert.Contains("model_type", e.Message);
        Assert.Contains("gpt2", e.Message);
        e = Assert.Throws<ModelFormatException>(() => FromJson("{\"model_type\":\"llama\",\"hidden_size\":64}"));
        Assert.Contains("num_attention_heads", e.Message);
        var bad = Assert.Throws<ModelFormatException>(() => FromJson($"{{\"model_type\":\"llama\",{Dims},\"num_key_value_heads\":3}}"));
        Assert.Contains("num_key_value_heads", bad.Message);
    }

    [Fact]
    public void Stories260KGguf_MatchesConfigJson()
    {
        var hf = LlamaConfigReader.FromHfFile(Path.Combine(SharedFixtures.Stories260KHf, "config.json"));
        using var g = LoraSharp.Formats.Gguf.GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf"));
        var gc = LlamaConfigReader.FromGguf(g);
        Assert.Equal(hf.HiddenSize, gc.HiddenSize);
        Assert.Equal(hf.IntermediateSize, gc.IntermediateSize);
        Assert.Equal(hf.NumHiddenLayers, gc.NumHiddenLayers);
        Assert.Equal(hf.NumAttentionHeads, gc.NumAttentionHeads);
        Assert.Equal(hf.NumKeyValueHeads, gc.NumKeyValueHeads);
        Assert.Equal(hf.HeadDim, gc.HeadDim);
        Assert.Equal(hf.VocabSize, gc.VocabSize);
        Assert.Equal(hf.MaxPositionEmbeddings, gc.MaxPositionEmbeddings);
        Assert.Equal(hf.RmsNormEps, gc.RmsNormEps);
        Assert.Equal(hf.RopeTheta, gc.RopeTheta);
        Assert.Equal(hf.TieWordEmbeddings, gc.TieWordEmbeddings);
        Assert.Equal(hf.BosTokenId, gc.BosTokenId);
        Assert.Equal(hf.EosTokenIds, gc.EosTokenIds);
    }
}
