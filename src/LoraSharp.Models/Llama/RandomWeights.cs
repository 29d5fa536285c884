// Random Hugging Face-named weights for a config: N(0, 0.02) matrices and unit norms, as the PyTorch peer
// benchmark builds its model (phi3: its fused qkv_proj / gate_up_proj names). For benchmarks and tests that need a
// model of a given shape, not a trained one.
// Stored dtypes (QLoRA benchmarks): bf16/f16 round the normal values; quantized types get uniformly random codes
// with one scale per block chosen for a standard deviation near `std`, generated straight into the blocks, so a
// 7B-class 4-bit model is built in seconds without an f32 copy.
using System.Buffers.Binary;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

/// <summary>Creates random weights with HF tensor names.</summary>
public static class RandomWeights
{
    /// <summary>A dictionary of tensors (the caller disposes them) shaped for <paramref name="c"/>.</summary>
    public static Dictionary<string, Tensor> Create(LlamaConfig c, int seed, float std = 0.02f) => Create(c, seed, DType.F32, std);

    /// <summary>
    /// Like <see cref="Create(LlamaConfig, int, float)"/> with every matrix in <paramref name="matrices"/> (F32, F16,
    /// BF16, Q8_0, Q4_0 or NF4); norms stay F32. Quantized rows must be whole blocks.
    /// </summary>
    public static Dictionary<string, Tensor> Create(LlamaConfig c, int seed, DType matrices, float std = 0.02f)
    {
        var rng = new Random(seed);
        int C = c.HiddenSize, H = c.IntermediateSize, QD = c.NumAttentionHeads * c.HeadDim, KD = c.NumKeyValueHeads * c.HeadDim;
        var t = new Dictionary<string, Tensor>();
        // Unit norms: weight 1, or 0 for gemma, whose norms multiply by (1 + weight).
        Tensor Norm(int n) => c.GemmaNorms ? Tensor.Zeros(DType.F32, n) : Ones(n);
        Tensor Matrix(int n, int k) => DTypeInfo.IsQuantized(matrices) ? RandomCodes(matrices, n, k, rng, std) : Normal(matrices, n, k, rng, std);
        Tensor Ones(int n)
        {
            var x = Tensor.Zeros(DType.F32, n);
            x.Floats.Fill(1f);
            return x;
        }
        Tensor Bias(int n)
        {
            using var row = Normal(DType.F32, 1, n, rng, std);
            return Tensor.FromFloats(row.Floats, n);
        }
        t["model.embed_tokens.weight"] = Matrix(c.VocabSize, C);
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}";
            t[$"{p}.input_layernorm.weight"] = Norm(C);
            t[$"{p}.post_attention_layernorm.weight"] = Norm(C);
            if (c.FusedProjections)
            {
                // phi3: qkv_proj rows [q | k | v] and gate_up_proj rows [gate | up], as LlamaModel.FromTensors reads them.
                t[$"{p}.self_attn.qkv_proj.weight"] = Matrix(QD + 2 * KD, C);
                t[$"{p}.self_attn.o_proj.weight"] = Matrix(C, QD);
                t[$"{p}.mlp.gate_up_proj.weight"] = Matrix(2 * H, C);
                t[$"{p}.mlp.down_proj.weight"] = Matrix(C, H);
                continue;
            }
            t[$"{p}.self_attn.q_proj.weight"] = Matrix(QD, C);
            t[$"{p}.self_attn.k_proj.weight"] = Matrix(KD, C);
            t[$"{p}.self_attn.v_proj.weight"] = Matrix(KD, C);
            t[$"{p}.self_attn.o_proj.weight"] = Matrix(C, QD);
            t[$"{p}.mlp.gate_proj.weight"] = Matrix(H, C);
            t[$"{p}.mlp.up_proj.weight"] = Matrix(H, C);
            t[$"{p}.mlp.down_proj.weight"] = Matrix(C, H);
            if (c.QkvBias)
            {
                // Biases are 1-D ([N]), as checkpoints store them and the loader checks.
                t[$"{p}.self_attn.q_proj.bias"] = Bias(QD);
                t[$"{p}.self_attn.k_proj.bias"] = Bias(KD);
                t[$"{p}.self_attn.v_proj.bias"] = Bias(KD);
            }
            if (c.QkNorm)
            {
                t[$"{p}.self_attn.q_norm.weight"] = Norm(c.HeadDim);
                t[$"{p}.self_attn.k_norm.weight"] = Norm(c.HeadDim);
            }
            if (c.SandwichNorms)
            {
                t[$"{p}.pre_feedforward_layernorm.weight"] = Norm(C);
                t[$"{p}.post_feedforward_layernorm.weight"] = Norm(C);
            }
        }
        t["model.norm.weight"] = Norm(C);
        if (!c.TieWordEmbeddings) t["lm_head.weight"] = Matrix(c.VocabSize, C);
        return t;
    }

    // N(0, std) values, converted row by row to F16/BF16 when asked.
    private static Tensor Normal(DType type, int n, int k, Random rng, float std)
    {
        var x = Tensor.Zeros(type, n, k);
        var row = new float[k];
        int rowBytes = (int)DTypeInfo.ByteCount(type, k);
        for (int r = 0; r < n; r++)
        {
            for (int i = 0; i < k; i += 2)
            {
                // Box-Muller: two normals per pair of uniforms.
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble(), radius = Math.Sqrt(-2 * Math.Log(u1)) * std;
                row[i] = (float)(radius * Math.Cos(2 * Math.PI * u2));
                if (i + 1 < k) row[i + 1] = (float)(radius * Math.Sin(2 * Math.PI * u2));
            }
            Dequant.QuantizeRow(type, row, x.Bytes.Slice(r * rowBytes, rowBytes));
        }
        return x;
    }

    // Uniform random code bytes with each block's scale set so the values have a standard deviation of about std:
    // uniform Q8_0 codes have sd 73.9, uniform Q4_0 nibbles sd 4.6 (about the zero of 8), uniform NF4 levels sd 0.55.
    private static Tensor RandomCodes(DType type, int n, int k, Random rng, float std)
    {
        var x = Tensor.Zeros(type, n, k);
        var bytes = x.Bytes;
        rng.NextBytes(bytes);
        int bb = DTypeInfo.BlockBytes(type);
        for (int o = 0; o < bytes.Length; o += bb)
        {
            switch (type)
            {
                case DType.Q8_0: BinaryPrimitives.WriteUInt16LittleEndian(bytes[o..], BitConverter.HalfToUInt16Bits((Half)(std / 73.9f))); break;
                case DType.Q4_0: BinaryPrimitives.WriteUInt16LittleEndian(bytes[o..], BitConverter.HalfToUInt16Bits((Half)(std / 4.6f))); break;
                case DType.NF4: BinaryPrimitives.WriteSingleLittleEndian(bytes[o..], std / 0.55f); break;
                default: throw new NotSupportedException($"Random {type} weights are not supported (Q8_0, Q4_0 and NF4 are).");
            }
        }
        return x;
    }
}
