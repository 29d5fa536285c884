// Matmuls over frozen weights kept compressed (QLoRA): forward, input gradient and the one-row decode product for
// each stored dtype, as a fraction of the same product over f32 packed panels measured in the same run. Weights are
// random codes; the work does not depend on their values.
// Not here: correctness (tests/LoraSharp.Core.Tests/Kernels/StoredWeightTests.cs).
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;

namespace LoraSharp.Bench;

/// <summary>Stored-weight matmul throughput relative to f32.</summary>
public static class StoredMatMulBench
{
    /// <summary>(M, K, N): shape (b)'s q/o and MLP projections at 2048 tokens, and one decode row.</summary>
    public static readonly (int M, int K, int N)[] Shapes = [(2048, 576, 1536), (2048, 1536, 576), (85, 576, 49152), (1, 576, 1536), (1, 4096, 11008)];

    /// <summary>Types compared with f32.</summary>
    public static readonly DType[] Types = [DType.BF16, DType.Q8_0, DType.NF4, DType.Q4_0];

    /// <summary>Prints one line per (shape, layout): GFLOP/s of f32 and of each type as a fraction of it.</summary>
    public static void Run(TextWriter output, double secondsPerCase = 0.2)
    {
        output.WriteLine($"  {"layout",-15} {"M",-5} {"K",-5} {"N",-6} {"f32 GFLOP/s",11}  " + string.Join("  ", Types.Select(t => $"{t,6}")) + "  (x f32 throughput)");
        foreach (var (M, K, N) in Shapes)
        {
            var config = new Models.LlamaConfig { HiddenSize = K, IntermediateSize = N, NumHiddenLayers = 0, NumAttentionHeads = 1, NumKeyValueHeads = 1, HeadDim = K, VocabSize = N, MaxPositionEmbeddings = 1 };
            var x = new float[(long)M * K];
            var dy = new float[(long)M * N];
            var y = new float[(long)M * N];
            var dx = new float[(long)M * K];
            Array.Fill(x, 0.01f);
            Array.Fill(dy, 0.01f);
            double flops = 2.0 * M * K * N;
            var layouts = M == 1 ? new[] { "forward" } : ["forward", "backward-input"];
            foreach (var layout in layouts)
            {
                double Measure(PackedWeight w)
                {
                    Action call = layout == "forward" ? () => MatMul.Forward(x, w, y, M) : () => MatMul.BackwardInput(dy, w, dx, M);
                    return flops / MatMulBench.Time(call, secondsPerCase, warmupSeconds: 0.3).Wall / 1e9;
                }
                double f32 = Measure(Packed(config, DType.F32));
                var ratios = Types.Select(t => Measure(Packed(config, t)) / f32);
                output.WriteLine($"  {layout,-15} {M,-5} {K,-5} {N,-6} {f32,11:0.0}  " + string.Join("  ", ratios.Select(r => $"{r,5:0.00}x")));
            }
        }
    }

    // One random [N, K] weight of the type (the config's embedding is [V = N, C = K]).
    private static PackedWeight Packed(Models.LlamaConfig c, DType type)
    {
        var weights = RandomWeights.Create(c with { NumHiddenLayers = 0 }, seed: 3, type);
        var w = weights["model.embed_tokens.weight"];
        var packed = type == DType.F32 ? PackedWeight.FromF32(w.Floats, c.VocabSize, c.HiddenSize) : PackedWeight.FromStored(w);
        foreach (var t in weights.Values) t.Dispose();
        return packed;
    }
}
