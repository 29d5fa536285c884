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
    [InlineData("phi3", "\"resid_pdrop\":0.1", "resid_pdrop")]
    [InlineData("phi3", "\"embd_pdrop\":0.1", "embd_pdrop")]
    [InlineData("phi3", "\"lm_head_bias\":true", "lm_head_bias")]
    [InlineData("phi3", "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,1,1,1,1,1,1,1]}", "long_factor")]
    [InlineData("phi3", "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,1],\"long_factor\":[1,1]}", "rotary_dim / 2 = 8")]
    [InlineData("phi3", "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}", "yarn")]
    [InlineData("phi3", "\"partial_rotary_factor\":0.35", "partial_rotary_factor")]
    [InlineData("llama", "\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1],\"long_factor\":[1]}", "phi3")]
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
        var e = Assert.Throws<ModelFormatException>(() => FromJson($"{{\"model_type\":\"phimoe\",{Dims}}}"));
        Assert.Contains("'phimoe' is not supported", e.Message);
        Assert.Contains("gemma3_text", e.Message);
        Assert.Contains("phi3", e.Message);
    }

    [Fact]
    public void Phi3_Defaults_FusedProjections_NoBiases_Untied()
    {
        var c = FromJson($"{{\"model_type\":\"phi3\",{Dims},\"attention_bias\":true}}");
        Assert.True(c.FusedProjections);
        Assert.False(c.QkvBias);           // Phi3Attention's qkv_proj has no bias whatever attention_bias says
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal(4096, c.MaxPositionEmbeddings);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(16, c.RotaryDim);
        var names = LlamaTensorLayout.Expected(c).Select(e => e.Name).ToList();
        Assert.Contains("model.layers.7.self_attn.qkv_proj.weight", names);
        Assert.Contains("model.layers.7.mlp.gate_up_proj.weight", names);
        Assert.DoesNotContain("model.layers.7.self_attn.q_proj.weight", names);
        Assert.Equal([16 * 4 * 3, 64], LlamaTensorLayout.Expected(c).Single(e => e.Name == "model.layers.0.self_attn.qkv_proj.weight").Shape);
    }

    [Fact]
    public void Phi3_LongRope_AndItsOldNameSu_ReadFactorsAndContextRatio()
    {
        // Phi-4-mini: partial_rotary_factor 0.75, longrope; the top-level original_max_position_embeddings sets the ratio.
        string factors = "\"short_factor\":[1,1,1,1,1,1],\"long_factor\":[1,2,3,4,5,6]";
        foreach (string type in (string[])["longrope", "su"])
        {
            var c = FromJson($"{{\"model_type\":\"phi3\",{Dims},\"partial_rotary_factor\":0.75,\"max_position_embeddings\":131072," +
                $"\"original_max_position_embeddings\":4096,\"rope_scaling\":{{\"type\":\"{type}\",{factors}}}}}");
            Assert.Equal(12, c.RotaryDim);
            Assert.True(c.LongRope);
            Assert.Equal(4096, c.RopeScaling!.OriginalMaxPositionEmbeddings);
            Assert.Equal(32.0, c.RopeScaling.Factor);
            Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), c.RopeScaling.LongRopeAttentionFactor, 12);
            Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], c.RopeScaling.LongFactor!);
        }
    }

    [Fact]
    public void Phi4Mini_ConfigWithItsExtraFields_Loads()
    {
        // Phi-4-mini-instruct's config.json fields (factor lists shortened to the right length: 48 = 96 rotary dims / 2);
        // full_attn_mod, interpolate_factor and lm_head_bias false are leftovers modeling_phi3.py does not read.
        string f = string.Join(",", Enumerable.Repeat("1.0", 48));
        var c = FromJson("{\"architectures\":[\"Phi3ForCausalLM\"],\"attention_bias\":false,\"attention_dropout\":0.0,\"bos_token_id\":199999," +
            "\"embd_pdrop\":0.0,\"eos_token_id\":199999,\"full_attn_mod\":1,\"hidden_act\":\"silu\",\"hidden_size\":3072,\"initializer_range\":0.02," +
            "\"intermediate_size\":8192,\"interpolate_factor\":1,\"lm_head_bias\":false,\"max_position_embeddings\":131072,\"mlp_bias\":false," +
            "\"model_type\":\"phi3\",\"num_attention_heads\":24,\"num_hidden_layers\":32,\"num_key_value_heads\":8,\"original_max_position_embeddings\":4096," +
            "\"pad_token_id\":199999,\"partial_rotary_factor\":0.75,\"resid_pdrop\":0.0,\"rms_norm_eps\":1e-05," +
            $"\"rope_scaling\":{{\"long_factor\":[{f}],\"short_factor\":[{f}],\"type\":\"longrope\"}},\"rope_theta\":10000.0," +
            "\"sliding_window\":262144,\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\",\"use_cache\":true,\"vocab_size\":200064}");
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(96, c.RotaryDim);
        Assert.True(c.TieWordEmbeddings && c.LongRope && c.FusedProjections);
        Assert.Equal(32.0, c.RopeScaling!.Factor);
    }
}
