// `lorasharp bench scale`: data-parallel training on this machine (issue 21). The same global batch (2 micro-batches
// of the shape's batch x seq, random tokens, LoRA r=8 on every linear layer, AdamW) trained by the real Trainer as
// 1 process x 2 threads and as `mpirun -np 2` x 1 thread each; it prints tokens/s of both, their ratio, the bytes each
// rank all-reduces per step and the all-reduce time per step (waiting for the slower rank included), then the scaling
// model of docs/distributed.md for N machines over 10 Gb/s and 1 Gb/s Ethernet from these measured numbers.
// Each configuration runs in a child process (`bench scale-child`, started directly or under mpirun).
using System.Diagnostics;
using System.Text.Json;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.Training;
using LoraSharp.Training.Data;
using LoraSharp.Training.Distributed;

namespace LoraSharp.Bench;

/// <summary>The data-parallel scaling benchmark.</summary>
public static class ScaleBench
{
    /// <summary>Micro-batches per optimizer step (the global batch is this x the shape's batch).</summary>
    public const int MicroBatches = 2;

    /// <summary>One configuration's measurement (reported by rank 0).</summary>
    public sealed record Result(int Ranks, int ThreadsPerRank, double TokensPerSecond, double MedianStepSeconds, double MedianAllReduceSeconds,
        long AllReduceBytesPerStep, long TokensPerStep, double[] StepSeconds);

    /// <summary>The child side: trains warmup + steps optimizer steps on this process's communicator; rank 0 returns the result, other ranks null.</summary>
    public static Result? MeasureHere(TrainBench.Shape s, int steps, int warmup)
    {
        using var comm = Communicator.FromEnvironment();
        var weights = RandomWeights.Create(s.Config, seed: 0, Core.Tensors.DType.F32);
        using var model = LlamaModel.FromTensors(s.Config, weights, "random", consumeTensors: true);
        foreach (var t in weights.Values) t.Dispose();
        var settings = new TrainingSettings
        {
            MicroBatchSize = s.Batch, BatchSize = s.Batch * MicroBatches, CutoffLen = s.Seq, MaxSteps = warmup + steps, LearningRate = 1e-4,
            WarmupSteps = 0, EvalSteps = 0, SaveSteps = 0, LoraRank = 8, LoraAlpha = 16, LoraDropout = 0.05, TargetModules = ["all-linear"],
        };
        LoraInjector.Attach(model, settings.ToLoraSettings(), settings.Seed);
        var rng = new Random(0);
        var samples = new List<TrainingSample>();
        for (int i = 0; i < settings.BatchSize * (warmup + steps); i++)
        {
            var ids = new int[s.Seq];
            for (int t = 0; t < ids.Length; t++) ids[t] = rng.Next(s.Config.VocabSize);
            samples.Add(TrainingSample.AllTrained(ids));
        }
        var trainer = new Trainer(model, settings, samples, null, padId: 0) { Communicator = comm };
        var times = new List<double>();
        var reduces = new List<double>();
        var clock = Stopwatch.StartNew();
        double lastReduce = 0;
        trainer.StepCompleted += r =>
        {
            if (r.Step > warmup)
            {
                times.Add(clock.Elapsed.TotalSeconds);
                reduces.Add(trainer.AllReduceSeconds - lastReduce);
            }
            lastReduce = trainer.AllReduceSeconds;
            clock.Restart();
        };
        trainer.Run();
        if (comm.Rank != 0) return null;
        double median = Median(times);
        long tokensPerStep = (long)settings.BatchSize * s.Seq;
        return new Result(comm.Size, Core.Threading.Threads.Hardware, tokensPerStep / median, median, Median(reduces), trainer.AllReduceBytesPerStep, tokensPerStep, [.. times]);
    }

    private static double Median(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Order().ElementAt(xs.Count / 2);

    /// <summary>Runs 1 rank x 2 threads and 2 ranks x 1 thread (mpirun) at <paramref name="shape"/> and prints the comparison and the scaling model.</summary>
    public static int Run(TextWriter output, string[] selfCommand, TrainBench.Shape shape, int steps, int warmup)
    {
        output.WriteLine($"bench scale: shape {shape.Key} ({shape.Name}), global batch {MicroBatches} micro-batches x {shape.Batch} x {shape.Seq} tokens, " +
                         $"LoRA r=8 on all linear layers, AdamW; {warmup} warm-up + {steps} timed steps each");
        var one = RunChild(selfCommand, shape, steps, warmup, ranks: 1, threads: 2);
        var two = RunChild(selfCommand, shape, steps, warmup, ranks: 2, threads: 1);
        output.WriteLine($"{"",-22} {"tokens/s",10} {"step s",9} {"all-reduce s",13} {"of step",8} {"bytes/step",12}");
        foreach (var r in new[] { one, two })
            output.WriteLine($"{$"{r.Ranks} rank(s) x {r.ThreadsPerRank} thread(s)",-22} {r.TokensPerSecond,10:F1} {r.MedianStepSeconds,9:F3} {r.MedianAllReduceSeconds,13:F4} " +
                             $"{r.MedianAllReduceSeconds / r.MedianStepSeconds,8:P1} {r.AllReduceBytesPerStep,12:N0}");
        double ratio = two.TokensPerSecond / one.TokensPerSecond;
        double share = two.MedianAllReduceSeconds / two.MedianStepSeconds;
        output.WriteLine($"2 ranks x 1 thread / 1 rank x 2 threads: {ratio:F2}x (target >= 0.90x: {(ratio >= 0.9 ? "met" : "NOT met")}); " +
                         $"all-reduce {share:P1} of the step (target <= 5%: {(share <= 0.05 ? "met" : "NOT met")})");

        // The model of docs/distributed.md: one machine (this one, 2 cores) computes a micro-batch in c seconds; N machines
        // each computing k = 2 micro-batches per step, with a ring all-reduce of G bytes at bandwidth W and latency a:
        // step(N) = k c + 2 (N-1)/N G / W + 2 (N-1) a.
        double c = one.MedianStepSeconds / MicroBatches;
        long g = two.AllReduceBytesPerStep;
        long tokensPerMicro = (long)shape.Batch * shape.Seq;
        output.WriteLine($"scaling model (docs/distributed.md): c = {c:F3} s per micro-batch per machine, G = {g:N0} bytes, k = {MicroBatches}, latency a = 50 us");
        output.WriteLine($"{"machines",-10}" + string.Concat(Machines.Select(n => $"{n,12}")));
        foreach (var (name, bitsPerSecond) in new[] { ("10 Gb/s", 10e9), ("1 Gb/s", 1e9) })
        {
            var steps2 = Machines.Select(n => MicroBatches * c + (n == 1 ? 0 : 2.0 * (n - 1) / n * g * 8 / bitsPerSecond + 2 * (n - 1) * 50e-6)).ToArray();
            output.WriteLine($"{name + " tok/s",-10}" + string.Concat(Machines.Select((n, i) => $"{n * MicroBatches * tokensPerMicro / steps2[i],12:F0}")));
            output.WriteLine($"{"  effic.",-10}" + string.Concat(Machines.Select((n, i) => $"{MicroBatches * c / steps2[i],12:P1}")));
        }
        return 0;
    }

    private static readonly int[] Machines = [1, 2, 4, 8, 16, 32];

    private static Result RunChild(string[] selfCommand, TrainBench.Shape shape, int steps, int warmup, int ranks, int threads)
    {
        ProcessStartInfo psi;
        if (ranks == 1)
        {
            psi = new ProcessStartInfo(selfCommand[0]);
            foreach (var a in selfCommand.Skip(1)) psi.ArgumentList.Add(a);
        }
        else
        {
            psi = new ProcessStartInfo("mpirun");
            // Root may start ranks only when asked to; the flag is harmless otherwise. -x passes the thread count to every rank.
            foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(), "-x", "LORASHARP_THREADS" }) psi.ArgumentList.Add(a);
            foreach (var a in selfCommand) psi.ArgumentList.Add(a);
        }
        foreach (var a in new[] { "bench", "scale-child", "--shape", shape.Key, "--steps", steps.ToString(), "--warmup", warmup.ToString(),
                     "--batch", shape.Batch.ToString(), "--seq", shape.Seq.ToString() })
            psi.ArgumentList.Add(a);
        psi.Environment["LORASHARP_THREADS"] = threads.ToString();
        psi.RedirectStandardOutput = true;
        psi.UseShellExecute = false;
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e) when (ranks > 1)
        {
            throw new Core.UserErrorException($"mpirun could not be started ({e.Message}); install Open MPI: apt-get install -y openmpi-bin libopenmpi-dev", e);
        }
        using (p)
        {
            string text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            // Under mpirun a rank's stdout is a pseudo-terminal: .NET may write terminal set-up codes before the JSON.
            var line = text.Split('\n').Where(l => l.Contains("{\"Ranks\"", StringComparison.Ordinal)).Select(l => l[l.IndexOf('{')..]).LastOrDefault()
                       ?? throw new InvalidOperationException($"The scale benchmark child ({ranks} rank(s)) printed no result (exit {p.ExitCode}):\n{text}");
            return JsonSerializer.Deserialize<Result>(line)!;
        }
    }
}
