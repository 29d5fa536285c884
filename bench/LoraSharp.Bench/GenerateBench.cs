// `lorasharp bench generate`: decode tokens/s at the peer's shape (b) with f32, bf16 and quantized (QLoRA) base
// weights, and the memory bandwidth that implies (every weight byte the model holds for its projections and output
// is read once per token) as a fraction of the bandwidth measured in the same run. Warm-up tokens first, so tiered
// compilation has reached its optimised code before the clock starts.
using System.Diagnostics;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;

namespace LoraSharp.Bench;

/// <summary>The decode benchmark.</summary>
public static class GenerateBench
{
    /// <summary>Base dtypes measured.</summary>
    public static readonly DType[] Types = [DType.F32, DType.BF16, DType.Q8_0, DType.NF4, DType.Q4_0];

    /// <summary>Runs the benchmark; returns 0.</summary>
    public static int Run(TextWriter output)
    {
        output.WriteLine(BenchInfo.Header());
        var bw = Peak.MeasureBandwidth();
        output.WriteLine($"memory bandwidth (measured now): read {bw.ReadGBps:F1} GB/s, copy {bw.CopyGBps:F1} GB/s");
        var shape = TrainBench.Shapes.Single(s => s.Key == "b");
        foreach (var dtype in Types)
        {
            var weights = RandomWeights.Create(shape.Config, seed: 0, dtype);
            using var model = LlamaModel.FromTensors(shape.Config, weights, "random", consumeTensors: true);
            foreach (var t in weights.Values) t.Dispose();
            const int prompt = 16, warmup = 48, tokens = 64;
            var cache = model.CreateCache(prompt + warmup + tokens + 1);
            model.ForwardCached(Enumerable.Range(1, prompt).ToArray(), cache);
            int next = 1;
            for (int i = 0; i < warmup; i++) next = Models.Generation.Sampler.ArgMax(model.ForwardCached([next], cache));
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++) next = Models.Generation.Sampler.ArgMax(model.ForwardCached([next], cache));
            double tps = tokens / clock.Elapsed.TotalSeconds;
            // What one token reads: every projection and the output projection as held (f32 forward panels, or the
            // stored blocks; a stored tied output reads the embedding's bytes); the embedding lookup reads one row.
            double output0 = model.Output.Bytes > 0 ? model.Output.Bytes : model.Embedding.ByteLength;
            double bytesPerToken = model.Layers.Sum(l => l.Projections.Sum(p => (double)p.Packed.Bytes)) + output0;
            double gbps = bytesPerToken * tps / 1e9;
            output.WriteLine($"decode {dtype,-5} base: {tps,7:F1} tokens/s, {bytesPerToken / 1e6,4:F0} MB of weights per token, " +
                             $"{gbps,5:F1} GB/s = {100 * gbps / bw.ReadGBps,3:F0}% of the measured read bandwidth" + (dtype == DType.F32 || dtype == DType.BF16 ? " (target >= 70%)" : ""));
        }
        return 0;
    }
}
