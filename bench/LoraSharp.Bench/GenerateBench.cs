// `lorasharp bench generate`: decode tokens/s at the peer's shape (b) with f32 and bf16 base weights, and the
// memory bandwidth that implies (every weight byte is read once per token) as a fraction of the measured bandwidth.
using System.Diagnostics;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;

namespace LoraSharp.Bench;

/// <summary>The decode benchmark.</summary>
public static class GenerateBench
{
    /// <summary>Runs the benchmark; returns 0.</summary>
    public static int Run(TextWriter output)
    {
        output.WriteLine(BenchInfo.Header());
        var bw = Peak.MeasureBandwidth();
        output.WriteLine($"memory bandwidth (measured now): read {bw.ReadGBps:F1} GB/s, copy {bw.CopyGBps:F1} GB/s");
        var shape = TrainBench.Shapes.Single(s => s.Key == "b");
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        {
            var weights = RandomWeights.Create(shape.Config, seed: 0);
            if (dtype == DType.BF16)
                foreach (var key in weights.Keys.ToList())
                {
                    var t = weights[key];
                    if (t.Shape.Length != 2 || t.Shape[0] == 1) continue;
                    var b = Tensor.Zeros(DType.BF16, t.Shape);
                    Bf16.FromFloat(t.Floats, b.AsSpan<ushort>());
                    t.Dispose();
                    weights[key] = b;
                }
            using var model = LlamaModel.FromTensors(shape.Config, weights, "random");
            foreach (var t in weights.Values) t.Dispose();
            const int prompt = 16, tokens = 64;
            var cache = model.CreateCache(prompt + tokens + 1);
            var ids = Enumerable.Range(1, prompt).ToArray();
            model.ForwardCached(ids, cache);
            int next = 1;
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++)
            {
                var logits = model.ForwardCached([next], cache);
                next = Models.Generation.Sampler.ArgMax(logits);
            }
            double tps = tokens / clock.Elapsed.TotalSeconds;
            // Packed weights are f32 (bf16 is widened while packing), so each token streams the f32 panels.
            var c = shape.Config;
            long linear = (long)c.NumHiddenLayers * (2L * c.HiddenSize * c.HiddenSize + 2L * c.HiddenSize * c.NumKeyValueHeads * c.HeadDim + 3L * c.HiddenSize * c.IntermediateSize);
            double bytesPerToken = (linear + (long)c.VocabSize * c.HiddenSize) * 4.0;
            double gbps = bytesPerToken * tps / 1e9;
            output.WriteLine($"decode {dtype,-5} base: {tps,7:F1} tokens/s, {bytesPerToken / 1e6:F0} MB of weights per token, " +
                             $"{gbps:F1} GB/s = {100 * gbps / bw.ReadGBps:F0}% of the measured read bandwidth (target >= 70%)");
        }
        return 0;
    }
}
