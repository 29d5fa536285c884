// config.json of the families beyond Llama (qwen3, smollm3, gemma3_text, gemma2): transformers' defaults, and fields that
// change the math in a way LoraSharp does not implement refused by name.
using LoraSharp.Formats;
using LoraSharp.Models.Loading;

namespace LoraSharp.Models.Tests.Loading;

public class FamilyConfigReaderTests
{
    private static LlamaConfig FromJson(string json) => ConfigJson.Read(json);

    private const string Dims = "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":8,\"num_attention_heads\":4,\"vocab_size\":100";

    [Fact]
    public void Qwen3_Defaults_HeadDim128_QkNorms_NoBiasUntied()
    {
        var c = FromJson($"{{\"model_type\":\"qwen3\",{Dims},\"num_key_value_heads\":2}}");
        Assert.Equal(128, c.HeadDim);
        Assert.True(c.QkNorm);
        Assert.False(c.QkvBias);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.GgufInterleavedQk);
        Assert.Contains("model.layers.7.self_attn.k_norm.weight", LlamaTensorLayout.Expected(c).Select(e => e.Name));
    }

    [Fact]
    public void Smollm3_Defaults_EveryFourthLayerWithoutRope_Tied()
    {
        var c = FromJson($"{{\"model_type\":\"smollm3\",{Dims}}}");
        Assert.Equal([1, 1, 1, 0, 1, 1, 1, 0], c.NoRopeLayers!);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(2000000.0, c.RopeTheta);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.True(c.GgufInterleavedQk);
        var explicitList = FromJson($"{{\"model_type\":\"smollm3\",{Dims},\"no_rope_layers\":[0,1,1,1,1,1,1,1]}}");
        Assert.False(explicitList.UsesRope(0));
        Assert.True(explicitList.UsesRope(3));
    }

    [Fact]
    public void Gemma3_Defaults_SlidingPatternSix_LocalRopeBase_Gelu()
    {
        var c = FromJson($"{{\"model_type\":\"gemma3_text\",{Dims}}}");
        Assert.Equal(256, c.HeadDim);
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);
        Assert.True(c.TieWordEmbeddings && c.GemmaNorms && c.SandwichNorms && c.QkNorm);
        Assert.Equal([4096, 4096, 4096, 4096, 4096, 0, 4096, 4096], Enumerable.Range(0, 8).Select(c.LayerWindow));
        Assert.Equal(10000.0, c.RopeLocalTheta);
        Assert.Equal(1f / 16f, c.AttentionScale);   // query_pre_attn_scalar 256
        Assert.Equal(8f, c.EmbeddingScale);         // sqrt(64)
    }

    [Fact]
    public void Gemma2_Defaults_AlternatingWindows_SoftCaps_NoQkNorm()
    {
        var c = FromJson($"{{\"model_type\":\"gemma2\",{Dims}}}");
        Assert.Equal(256, c.HeadDim);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal("gelu_pytorch_tanh", c.HiddenAct);
        Assert.True(c.TieWordEmbeddings && c.GemmaNorms && c.SandwichNorms);
        Assert.False(c.QkNorm);
        Assert.Null(c.RopeLocalTheta);
        Assert.Equal([4096, 0, 4096, 0, 4096, 0, 4096, 0], Enumerable.Range(0, 8).Select(c.LayerWindow));
        Assert.Equal(50.0, c.AttnLogitSoftcapping);
        Assert.Equal(30.0, c.FinalLogitSoftcapping);
        Assert.Equal(1f / 16f, c.AttentionScale);   // query_pre_attn_scalar 256
        Assert.Equal(8192, c.MaxPositionEmbeddings);
        Assert.Equal("gemma2", c.GgufArchitecture);
        Assert.False(c.GgufInterleavedQk);
        var uncapped = FromJson($"{{\"model_type\":\"gemma2\",{Dims},\"attn_logit_softcapping\":null,\"final_logit_softcapping\":null}}");
        Assert.Equal(0f, uncapped.AttentionSoftCap);
        Assert.Equal(0f, uncapped.LogitSoftCap);
        var typed = FromJson($"{{\"model_type\":\"gemma2\",{Dims},\"layer_types\":[\"full_attention\",\"sliding_attention\",\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\"]}}");
        Assert.Equal([0, 4096, 0, 0, 0, 0, 0, 0], Enumerable.Range(0, 8).Select(typed.LayerWindow));
    }

    [Theory]
    [InlineData("\"attn_logit_softcapping\":-1", "attn_logit_softcapping")]
    [InlineData("\"final_logit_softcapping\":0", "final_logit_softcapping")]
    [InlineData("\"sliding_window_pattern\":6", "sliding_window_pattern")]
    [InlineData("\"rope_local_base_freq\":10000.0", "rope_local_base_freq")]
    public void Gemma2_BadOrForeignField_IsRefusedByName(string field, string name)
    {
        var e = Assert.Throws<ModelFormatException>(() => FromJson($"{{\"model_type\":\"gemma2\",{Dims},{field}}}"));
        Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData("llama", "\"attn_logit_softcapping\":50.0", "attn_logit_softcapping")]
    [InlineData("gemma3_text", "\"final_logit_softcapping\":30.0", "final_logit_softcapping")]
    [InlineData("qwen3", "\"partial_rotary_factor\":0.5", "partial_rotary_factor")]
    [InlineData("llama", "\"no_rope_layers\":[1,1,1,0,1,1,1,0]", "no_rope_layers")]
    [InlineData("qwen3", "\"use_sliding_window\":true", "use_sliding_window")]
    [InlineData("smollm3", "\"use_sliding_window\":true", "use_sliding_window")]
    [InlineData("mistral", "\"num_local_experts\":8", "num_local_experts")]
    public void FieldThatChangesTheMath_IsRefusedByName(string type, string field, string name)
    {
        var e = Assert.Throws<ModelFormatException>(() => FromJson($"{{\"model_type\":\"{type}\",{Dims},{field}}}"));
        Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData("qwen3", "\"partial_rotary_factor\":1.0,\"num_key_value_heads\":2")]
    [InlineData("llama", "\"attn_logit_softcapping\":null")]
    [InlineData("qwen2", "\"layer_types\":[\"full_attention\",\"full_attention\"],\"num_key_value_heads\":2")]
    public void NeutralValueOfSuchAField_Loads(string type, string field)
        => FromJson($"{{\"model_type\":\"{type}\",{Dims},{field}}}");

    [Fact]
    public void UnknownModelType_NamesTheSupportedOnes()
    {
        var e = Assert.Throws<ModelFormatException>(() => FromJson($"{{\"model_type\":\"phi3\",{Dims}}}"));
        Assert.Contains("'phi3' is not supported", e.Message);
        Assert.Contains("gemma3_text", e.Message);
    }
}
