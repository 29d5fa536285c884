// Random Hugging Face-named weights for a config: N(0, 0.02) matrices and unit norms, as the PyTorch peer
// benchmark builds its model. For benchmarks and tests that need a model of a given shape, not a trained one.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

/// <summary>Creates random weights with HF tensor names.</summary>
public static class RandomWeights
{
    /// <summary>A dictionary of tensors (the caller disposes them) shaped for <paramref name="c"/>.</summary>
    public static Dictionary<string, Tensor> Create(LlamaConfig c, int seed, float std = 0.02f)
    {
        var rng = new Random(seed);
        int C = c.HiddenSize, H = c.IntermediateSize, QD = c.NumAttentionHeads * c.HeadDim, KD = c.NumKeyValueHeads * c.HeadDim;
        var t = new Dictionary<string, Tensor>();
        Tensor Matrix(int n, int k)
        {
            var x = Tensor.Zeros(DType.F32, n, k);
            var s = x.Floats;
            for (int i = 0; i < s.Length; i += 2)
            {
                // Box-Muller: two normals per pair of uniforms.
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble(), r = Math.Sqrt(-2 * Math.Log(u1)) * std;
                s[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
                if (i + 1 < s.Length) s[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
            }
            return x;
        }
        Tensor Ones(int n)
        {
            var x = Tensor.Zeros(DType.F32, n);
            x.Floats.Fill(1f);
            return x;
        }
        t["model.embed_tokens.weight"] = Matrix(c.VocabSize, C);
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}";
            t[$"{p}.input_layernorm.weight"] = Ones(C);
            t[$"{p}.post_attention_layernorm.weight"] = Ones(C);
            t[$"{p}.self_attn.q_proj.weight"] = Matrix(QD, C);
            t[$"{p}.self_attn.k_proj.weight"] = Matrix(KD, C);
            t[$"{p}.self_attn.v_proj.weight"] = Matrix(KD, C);
            t[$"{p}.self_attn.o_proj.weight"] = Matrix(C, QD);
            t[$"{p}.mlp.gate_proj.weight"] = Matrix(H, C);
            t[$"{p}.mlp.up_proj.weight"] = Matrix(H, C);
            t[$"{p}.mlp.down_proj.weight"] = Matrix(C, H);
            if (c.QkvBias)
            {
                t[$"{p}.self_attn.q_proj.bias"] = Matrix(1, QD);
                t[$"{p}.self_attn.k_proj.bias"] = Matrix(1, KD);
                t[$"{p}.self_attn.v_proj.bias"] = Matrix(1, KD);
            }
        }
        t["model.norm.weight"] = Ones(C);
        if (!c.TieWordEmbeddings) t["lm_head.weight"] = Matrix(c.VocabSize, C);
        return t;
    }
}
