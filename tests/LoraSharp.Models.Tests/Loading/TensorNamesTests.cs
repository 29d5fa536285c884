// The HF <-> GGUF <-> PEFT name map and the rotary row permutation.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Loading;

public class TensorNamesTests
{
    [Theory]
    [InlineData("token_embd.weight", "model.embed_tokens.weight")]
    [InlineData("output_norm.weight", "model.norm.weight")]
    [InlineData("output.weight", "lm_head.weight")]
    [InlineData("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight")]
    [InlineData("blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight")]
    [InlineData("blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias")]
    [InlineData("blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight")]
    [InlineData("blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight")]
    [InlineData("blk.4.ffn_norm.weight", "model.layers.4.post_attention_layernorm.weight")]
    [InlineData("blk.4.ffn_gate.weight", "model.layers.4.mlp.gate_proj.weight")]
    [InlineData("blk.4.ffn_up.weight", "model.layers.4.mlp.up_proj.weight")]
    [InlineData("blk.4.ffn_down.weight", "model.layers.4.mlp.down_proj.weight")]
    public void GgufAndHf_MapBothWays(string gguf, string hf)
    {
        Assert.Equal(hf, TensorNames.GgufToHf(gguf));
        Assert.Equal(gguf, TensorNames.HfToGguf(hf));
    }

    [Theory]
    [InlineData("rope_freqs.weight")]
    [InlineData("blk.x.attn_q.weight")]
    [InlineData("blk.0.attn_q")]
    [InlineData("blk.0.unknown.weight")]
    public void UnknownGgufNames_MapToNull(string gguf) => Assert.Null(TensorNames.GgufToHf(gguf));

    [Fact]
    public void EveryStoriesGgufTensor_MapsToAnHfTensorOfTheSafetensorsFile()
    {
        using var g = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf"));
        using var s = SafetensorsFile.Open(Path.Combine(SharedFixtures.Stories260KHf, "model.safetensors"));
        Assert.Equal(s.Tensors.Select(t => t.Name).Order(), g.Tensors.Select(t => TensorNames.GgufToHf(t.Name)!).Order());
    }

    [Fact]
    public void PeftKeys_MatchGoldenAdapterFileAndMapBack()
    {
        using var a = SafetensorsFile.Open(SharedFixtures.Path("golden", "stories260K", "lora", "adapter_model.safetensors"));
        var expected = new List<string>();
        for (int l = 0; l < 5; l++)
            foreach (var m in TensorNames.LinearModules)
                foreach (var part in new[] { "lora_A", "lora_B" })
                    expected.Add(TensorNames.HfToPeft(TensorNames.Linear(l, m), part));
        Assert.Equal(a.Tensors.Select(t => t.Name).Order(), expected.Order());
        Assert.Equal(("model.layers.0.self_attn.q_proj.weight", "lora_A"), TensorNames.PeftToHf("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
        Assert.Equal(("model.layers.2.mlp.down_proj.weight", "lora_B"), TensorNames.PeftToHf("base_model.model.model.layers.2.mlp.down_proj.lora_B.default.weight"));
        Assert.Null(TensorNames.PeftToHf("model.layers.0.self_attn.q_proj.weight"));
        Assert.Equal("model.layers.N.mlp.up_proj.weight", TensorNames.Kind("model.layers.17.mlp.up_proj.weight"));
    }

    [Fact]
    public void RopePermutation_MovesRow2jPlusCToRowCHalfPlusJ_AndInverts()
    {
        // 2 heads of HS = 6, 2 columns: GGUF row r holds (r, r + 0.5).
        var values = new float[12 * 2];
        for (int r = 0; r < 12; r++) { values[2 * r] = r; values[2 * r + 1] = r + 0.5f; }
        using var gguf = Tensor.FromFloats(values, 12, 2);
        using var hf = RopePermutation.GgufToHf(gguf, nHeads: 2);
        float[] hfFirstColumn = Enumerable.Range(0, 12).Select(r => hf.Floats[2 * r]).ToArray();
        Assert.Equal([0f, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11], hfFirstColumn);
        using var back = RopePermutation.HfToGguf(hf, nHeads: 2);
        Assert.True(back.Floats.SequenceEqual(gguf.Floats));
        using var bias = Tensor.FromFloats([0f, 1, 2, 3], 4);
        using var biasHf = RopePermutation.GgufToHf(bias, nHeads: 1);
        Assert.Equal([0f, 2, 1, 3], biasHf.Floats.ToArray());
        Assert.Throws<ArgumentException>(() => RopePermutation.GgufToHf(gguf, nHeads: 5));
    }

    [Fact]
    public void ExportHfToGgufNames_WithInversePermutation_ReproducesF32GgufTensors()
    {
        using var hf = ModelLoader.Load(SharedFixtures.Stories260KHf);
        using var g = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf"));
        foreach (var (name, t) in hf.Tensors)
        {
            string gname = TensorNames.HfToGguf(name)!;
            int heads = TensorNames.IsQuery(name) ? hf.Config.NumAttentionHeads : TensorNames.IsKey(name) ? hf.Config.NumKeyValueHeads : 0;
            using var exported = heads > 0 ? RopePermutation.HfToGguf(t, heads) : null;
            Assert.True((exported ?? t).Bytes.SequenceEqual(g.GetTensor(gname).Bytes), gname);
        }
    }
}
