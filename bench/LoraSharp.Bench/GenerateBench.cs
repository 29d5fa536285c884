// `lorasharp bench generate`: decode tokens/s at the peer's shape (b) with f32, bf16 and quantized (QLoRA) base
// weights, and the memory bandwidth that implies (every weight byte the model holds for its projections and output
// is read once per token) as a fraction of the bandwidth measured in the same run (the better of a probe before and
// one after). Warm-up tokens first, so tiered compilation has reached its optimised code before the clock starts;
// each type's rate is its best of three rounds.
using System.Diagnostics;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;

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
        var before = Peak.MeasureBandwidth();
        var shape = TrainBench.Shapes.Single(s => s.Key == "b");
        var rates = new List<(DType Type, double TokensPerSecond, double BytesPerToken, double? LoraTokensPerSecond)>();
        foreach (var dtype in Types)
        {
            var weights = RandomWeights.Create(shape.Config, seed: 0, dtype);
            using var model = LlamaModel.FromTensors(shape.Config, weights, "random", consumeTensors: true);
            foreach (var t in weights.Values) t.Dispose();
            double tps = DecodeRate(model);
            // With a rank-8 adapter on all seven projections (what `generate -a` runs): the adapter's cost per token.
            double? loraTps = null;
            if (dtype is DType.F32 or DType.BF16)
            {
                LoraInjector.Attach(model, new LoraSettings { Rank = 8, Alpha = 16, TargetModules = ["all-linear"], Init = "none" }, seed: 1, trainable: false);
                loraTps = DecodeRate(model);
            }
            // What one token reads: every projection and the output projection as held (f32 forward panels, or the
            // stored blocks; a stored tied output reads the embedding's bytes); the embedding lookup reads one row.
            double output0 = model.Output.Bytes > 0 ? model.Output.Bytes : model.Embedding.ByteLength;
            double bytesPerToken = model.Layers.Sum(l => l.Projections.Sum(p => (double)p.Packed.Bytes)) + output0;
            rates.Add((dtype, tps, bytesPerToken, loraTps));
        }
        // The bandwidth is measured before and after the decodes and the better one taken: on a shared machine one
        // probe can land in a slow moment (15 GB/s one run, 28-30 the next, with the same decode rates).
        var after = Peak.MeasureBandwidth();
        var bw = after.ReadGBps > before.ReadGBps ? after : before;
        output.WriteLine($"memory bandwidth (best of before and after): read {bw.ReadGBps:F1} GB/s, copy {bw.CopyGBps:F1} GB/s " +
                         $"(before {before.ReadGBps:F1}, after {after.ReadGBps:F1} GB/s read)");
        foreach (var (dtype, tps, bytesPerToken, loraTps) in rates)
        {
            double gbps = bytesPerToken * tps / 1e9;
            output.WriteLine($"decode {dtype,-5} base: {tps,7:F1} tokens/s, {bytesPerToken / 1e6,4:F0} MB of weights per token, " +
                             $"{gbps,5:F1} GB/s = {100 * gbps / bw.ReadGBps,3:F0}% of the measured read bandwidth" + (dtype == DType.F32 || dtype == DType.BF16 ? " (target >= 70%)" : ""));
            if (loraTps is { } lt)
                output.WriteLine($"decode {dtype,-5} + LoRA r=8 on all 7 projections: {lt,7:F1} tokens/s = {lt / tps:F2}x the base's rate");
        }
        return 0;
    }

    /// <summary>Decode tokens/s: a 16-token prompt, 48 warm-up tokens, then the best of three rounds of 32 (a shared
    /// machine's share of the CPU drifts, as the bandwidth probes show).</summary>
    private static double DecodeRate(LlamaModel model)
    {
        const int prompt = 16, warmup = 48, rounds = 3, tokens = 32;
        var cache = model.CreateCache(prompt + warmup + rounds * tokens + 1);
        model.ForwardCached(Enumerable.Range(1, prompt).ToArray(), cache);
        int next = 1;
        for (int i = 0; i < warmup; i++) next = Models.Generation.Sampler.ArgMax(model.ForwardCached([next], cache));
        double tps = 0;
        for (int round = 0; round < rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++) next = Models.Generation.Sampler.ArgMax(model.ForwardCached([next], cache));
            tps = Math.Max(tps, tokens / clock.Elapsed.TotalSeconds);
        }
        return tps;
    }
}
