// `lorasharp bench qlora`: the cost of a compressed frozen base. At shape (b) (SmolLM2-135M-like, LoRA r 8 on all
// projections, AdamW) one child process per base dtype measures tokens/s, the bytes the base weights hold and peak
// RSS, printed as ratios to the f32 base measured in the same run; then two timed training steps (after one warm-up) of a 7B-class model
// (Llama-2-7B dimensions, random 4-bit weights, seq 512, micro-batch 1; TrainBench.SevenB), which must fit
// in 24 GB. Base-weight bytes count what the model holds (packed panels, stored blocks, embedding, norms); the
// "f32 bytes" they are compared to are 4 bytes a parameter. The dtypes run in rounds (f32, bf16, ..., f32, bf16, ...)
// and each keeps its fastest round, so a slow spell of a shared machine cannot land on one dtype alone.
namespace LoraSharp.Bench;

/// <summary>The QLoRA benchmark.</summary>
public static class QloraBench
{
    /// <summary>The dtypes compared by default.</summary>
    public static readonly string[] DefaultDTypes = ["f32", "bf16", "q8_0", "nf4", "nf4-dq", "q4_0"];

    /// <summary>Runs the benchmark; returns the exit code.</summary>
    public static int Run(TextWriter output, string[] selfCommand, IReadOnlyList<string> dtypes, int steps, int warmup, bool include7b, int rounds = 2)
    {
        output.WriteLine(BenchInfo.Header());
        var shape = TrainBench.ShapeOf("b");
        output.WriteLine($"shape b {shape.Name}: LoRA r 8 on all projections, AdamW, micro-batch {shape.Batch} x seq {shape.Seq}; " +
                         $"{steps} timed steps after {warmup} warm-up, best of {rounds} rounds");
        var order = dtypes.Contains("f32") ? dtypes.Where(d => d == "f32").Concat(dtypes.Where(d => d != "f32")).ToList() : [.. dtypes];
        var best = new Dictionary<string, TrainBench.Result>();
        for (int round = 0; round < rounds; round++)
            foreach (var dtype in order)
            {
                var r = TrainBench.RunChild(selfCommand, shape, steps, warmup, checkpointing: false, dtype);
                if (!best.TryGetValue(dtype, out var b) || r.MedianStepSeconds < b.MedianStepSeconds) best[dtype] = r;
            }
        output.WriteLine($"{"base",-8} {"tokens/s",9} {"step s",8} {"x f32 time",10} {"base MiB",9} {"x f32 bytes",11} {"bits/param",10} {"peak RSS GiB",13}");
        var f32 = best.GetValueOrDefault("f32");
        foreach (var dtype in order)
        {
            var r = best[dtype];
            double fp32Bytes = 4.0 * r.Parameters;
            string time = f32 == null ? "-" : $"{r.MedianStepSeconds / f32.MedianStepSeconds:F2}x";
            output.WriteLine($"{dtype,-8} {r.TokensPerSecond,9:F1} {r.MedianStepSeconds,8:F3} {time,10} {r.BaseWeightBytes / 1048576.0,9:F1} " +
                             $"{r.BaseWeightBytes / fp32Bytes,10:F3}x {8.0 * r.BaseWeightBytes / r.Parameters,10:F2} {r.PeakRssGiB,13:F2}");
        }
        output.WriteLine("targets: 4-bit base weights <= 0.16x the f32 bytes; a 4-bit step <= 1.15x the f32 step time");
        if (include7b)
        {
            var big = TrainBench.SevenB;
            output.WriteLine($"7B-class: {big.Name} (dim 4096, hidden 11008, 32 layers, vocab 32000), random {big.BaseDType} base, seq {big.Seq}, micro-batch {big.Batch}" +
                             $"{(big.Checkpointing ? ", activation checkpointing" : "")}; 2 timed steps after 1 warm-up");
            double peak = Peak.MeasureFmaPeak();
            var r = TrainBench.RunChild(selfCommand, big, steps: 2, warmup: 1, big.Checkpointing);
            peak = Math.Max(peak, Peak.MeasureFmaPeak());
            output.WriteLine($"  step {r.MedianStepSeconds:F1} s ({r.TokensPerSecond:F1} tokens/s, {r.Gflops:F1} GFLOP/s = {100 * r.Gflops / peak:F1}% of the {peak:F0} GFLOP/s FMA peak " +
                             $"by the peer's FLOP accounting), base weights {r.BaseWeightBytes / 1073741824.0:F2} GiB for {r.Parameters / 1e9:F2} B parameters, " +
                             $"peak RSS {r.PeakRssGiB:F2} GiB (target <= 8 GiB; estimate {r.EstimateGiB:F2} GiB)");
        }
        return 0;
    }
}
