// `lorasharp bench train`: tokens/s, GFLOP/s and peak RSS of a full LoRA training step (forward, backward, AdamW)
// at the two shapes of the PyTorch peer (../shared/bench/torch_lora_peer.py), and the peer itself in the same run.
// Each measurement runs in a child process so peak RSS is per shape. FLOP accounting is the peer's, term by term.
using System.Diagnostics;
using System.Text.Json;
using LoraSharp.Core.Diagnostics;
using LoraSharp.Core.Optim;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;

namespace LoraSharp.Bench;

/// <summary>The LoRA training-step benchmark against the PyTorch peer.</summary>
public static class TrainBench
{
    /// <summary>A benchmark shape: model config, micro-batch and sequence length.</summary>
    public sealed record Shape(string Key, string Name, LlamaConfig Config, int Batch, int Seq);

    /// <summary>The peer's shapes (a) and (b), and the real model sizes people fine-tune (micro-batch 1, seq 1024).</summary>
    public static readonly Shape[] Shapes =
    [
        new("a", "stories15M-like", Llama(288, 768, 6, 6, 6, 32000, tied: false), 8, 256),
        new("b", "SmolLM2-135M-like", Llama(576, 1536, 30, 9, 3, 49152, tied: true), 4, 512),
        new("smollm2-360m", "SmolLM2-360M", Llama(960, 2560, 32, 15, 5, 49152, tied: true), 1, 1024),
        new("llama3.2-1b", "Llama-3.2-1B", Llama(2048, 8192, 16, 32, 8, 128256, tied: true), 1, 1024),
    ];

    /// <summary>The QLoRA issue's 7B-class shape (Llama-2-7B dimensions), micro-batch 1.</summary>
    public static readonly Shape SevenB = new("7b", "Llama-2-7B-like", Llama(4096, 11008, 32, 32, 32, 32000, tied: false), 1, 512);

    /// <summary>A shape by key: a, b or 7b.</summary>
    public static Shape ShapeOf(string key) => Shapes.FirstOrDefault(x => x.Key == key) ?? (key == SevenB.Key ? SevenB
        : throw new ArgumentException($"Unknown shape '{key}'; valid: a, b, 7b."));

    private static LlamaConfig Llama(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, bool tied) => new()
    {
        HiddenSize = dim, IntermediateSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads, HeadDim = dim / heads, VocabSize = vocab, MaxPositionEmbeddings = 2048,
        RmsNormEps = 1e-5, RopeTheta = 10000, TieWordEmbeddings = tied,
    };

    /// <summary>One measured result.</summary>
    public sealed record Result(string Shape, double TokensPerSecond, double MedianStepSeconds, double Gflops, double PeakRssGiB, double[] StepSeconds,
        long BaseWeightBytes = 0, long Parameters = 0);

    /// <summary>FLOPs per token of one training step, exactly as the peer counts them.</summary>
    public static double FlopsPerToken(Shape s, int rank = 8)
    {
        var c = s.Config;
        double d = c.HiddenSize, h = c.IntermediateSize, L = c.NumHiddenLayers, V = c.VocabSize, T = s.Seq;
        double kvd = c.NumKeyValueHeads * (d / c.NumAttentionHeads);
        double lin = L * (d * d + 2 * d * kvd + d * d + 3 * d * h);
        double head = d * V;
        double lora = L * rank * ((d + d) + 2 * (d + kvd) + (d + d) + 2 * (d + h) + (h + d));
        double attn = L * 4 * T * d;
        double fwd = 2 * (lin + head) + 2 * lora + attn;
        double bwd = 2 * (lin + head) + 4 * lora + 2 * attn;
        return fwd + bwd;
    }

    /// <summary>Measures LoraSharp in this process (the child side): warm-up steps, then timed steps.</summary>
    /// <param name="baseDType">Base weights: f32, bf16, f16, q8_0, q4_0, nf4, or nf4-dq (NF4 with double-quantized scales).</param>
    public static Result MeasureHere(Shape s, int steps, int warmup, bool checkpointing = false, string baseDType = "f32")
    {
        bool doubleQuant = baseDType == "nf4-dq";
        var dtype = BaseDType(baseDType);
        var weights = RandomWeights.Create(s.Config, seed: 0, dtype);
        long parameterCount = weights.Values.Sum(t => t.ElementCount);
        using var model = LlamaModel.FromTensors(s.Config, weights, "random", doubleQuant: doubleQuant, consumeTensors: true);
        foreach (var t in weights.Values) t.Dispose();
        weights.Clear();
        model.ActivationCheckpointing = checkpointing;
        LoraInjector.Attach(model, new LoraSettings { Rank = 8, Alpha = 16, Dropout = 0.05, TargetModules = ["all-linear"] }, seed: 0);
        var parameters = model.TrainableParameters();
        var optimizer = new AdamW(weightDecay: 0.0);
        var rng = new Random(0);
        int n = s.Batch * s.Seq;
        var ids = new int[n];
        var labels = new int[n];
        for (int i = 0; i < n; i++) { ids[i] = rng.Next(s.Config.VocabSize); labels[i] = rng.Next(s.Config.VocabSize); }
        var batch = new Batch(s.Batch, s.Seq, ids, labels: labels);
        var times = new List<double>();
        for (int i = 0; i < warmup + steps; i++)
        {
            if (i == warmup) StepProfile.Reset();
            var clock = Stopwatch.StartNew();
            long t0 = StepProfile.Start();
            Optimizer.ZeroGrad(parameters);
            StepProfile.Stop(StepPhase.Optimizer, t0);
            model.ForwardBackward(batch, 1f / batch.TargetCount, (ulong)i, out _);
            t0 = StepProfile.Start();
            optimizer.Step(parameters, 1e-4);
            StepProfile.Stop(StepPhase.Optimizer, t0);
            if (i >= warmup) times.Add(clock.Elapsed.TotalSeconds);
        }
        if (StepProfile.Enabled) PrintProfile(Console.Error, times.Sum(), times.Count);
        double median = times.Order().ElementAt(times.Count / 2);
        double tps = n / median;
        double rss = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);
        return new Result(s.Key, tps, median, FlopsPerToken(s) * tps / 1e9, rss, [.. times], model.BaseWeightBytes, parameterCount);
    }

    /// <summary>Seconds per step of each phase and its share of the step (LORASHARP_PROFILE=1).</summary>
    public static void PrintProfile(TextWriter o, double totalSeconds, int steps)
    {
        var phases = StepProfile.Snapshot();
        double attributed = phases.Sum(p => p.Seconds);
        o.WriteLine($"profile over {steps} steps, {totalSeconds / steps:F3} s per step:");
        foreach (var (phase, seconds) in phases.OrderByDescending(p => p.Seconds))
            o.WriteLine($"  {phase,-18} {seconds / steps,8:F4} s {100 * seconds / totalSeconds,6:F1}%");
        o.WriteLine($"  {"(unattributed)",-18} {(totalSeconds - attributed) / steps,8:F4} s {100 * (totalSeconds - attributed) / totalSeconds,6:F1}%");
    }

    /// <summary>The dtype of a --base-dtype benchmark value.</summary>
    public static Core.Tensors.DType BaseDType(string name) => name switch
    {
        "f32" => Core.Tensors.DType.F32,
        "bf16" => Core.Tensors.DType.BF16,
        "f16" => Core.Tensors.DType.F16,
        "q8_0" => Core.Tensors.DType.Q8_0,
        "q4_0" => Core.Tensors.DType.Q4_0,
        "nf4" or "nf4-dq" => Core.Tensors.DType.NF4,
        _ => throw new ArgumentException($"Unknown base dtype '{name}'; valid: f32, bf16, f16, q8_0, q4_0, nf4, nf4-dq."),
    };

    /// <summary>Runs the whole benchmark: each shape in a child process of <paramref name="selfCommand"/>, and the peer.</summary>
    public static int Run(TextWriter output, IReadOnlyList<string> shapes, int steps, int warmup, string[] selfCommand, string? peerScript)
    {
        output.WriteLine(BenchInfo.Header());
        // A shared VM's share of the CPU drifts over tens of seconds, so one probe at the start can read low (a
        // step then showed 106% of it): each run is compared with the best probe so far, one taken right after it included.
        double peak = Peak.MeasureFmaPeak();
        output.WriteLine($"fp32 FMA peak (measured now): {peak:F1} GFLOP/s; each % peak below uses the best probe taken up to the end of its run");
        output.WriteLine($"{"shape",-22} {"impl",-10} {"tokens/s",10} {"step s",8} {"GFLOP/s",9} {"% peak",7} {"peak RSS GiB",13}");
        foreach (var key in shapes)
        {
            var s = ShapeOf(key);
            var ours = RunChild(selfCommand, s.Key, steps, warmup, checkpointing: false);
            peak = Math.Max(peak, Peak.MeasureFmaPeak());
            Print(output, s, "lorasharp", ours, peak);
            var ckpt = RunChild(selfCommand, s.Key, steps, warmup, checkpointing: true);
            peak = Math.Max(peak, Peak.MeasureFmaPeak());
            Print(output, s, "+ckpt", ckpt, peak);
            output.WriteLine($"{"",-22} activation checkpointing: peak RSS {ckpt.PeakRssGiB:F2} vs {ours.PeakRssGiB:F2} GiB ({100 * (1 - ckpt.PeakRssGiB / ours.PeakRssGiB):F0}% less), " +
                             $"step time {ckpt.MedianStepSeconds / ours.MedianStepSeconds:F2}x");
            var peer = peerScript == null ? null : RunPeer(peerScript, s.Key, steps, warmup, output);
            if (peer != null)
            {
                Print(output, s, "torch", peer, peak);
                output.WriteLine($"{"",-22} ratio: {ours.TokensPerSecond / peer.TokensPerSecond:F2}x tokens/s (target >= 2x), " +
                                 $"RSS {ours.PeakRssGiB / peer.PeakRssGiB:F2}x of the peer's (target <= 0.5x)");
            }
        }
        return 0;
    }

    private static void Print(TextWriter o, Shape s, string impl, Result r, double peak)
        => o.WriteLine($"{s.Key + " " + s.Name,-22} {impl,-10} {r.TokensPerSecond,10:F1} {r.MedianStepSeconds,8:F3} {r.Gflops,9:F1} {100 * r.Gflops / peak,6:F1}% {r.PeakRssGiB,13:F2}");

    /// <summary>Measures one configuration in a child process of <paramref name="selfCommand"/> (so peak RSS is its own).</summary>
    public static Result RunChild(string[] selfCommand, string shape, int steps, int warmup, bool checkpointing, string baseDType = "f32")
    {
        var psi = new ProcessStartInfo(selfCommand[0]) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in selfCommand.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "bench", "train-child", "--shape", shape, "--steps", steps.ToString(), "--warmup", warmup.ToString(), "--base-dtype", baseDType })
            psi.ArgumentList.Add(a);
        if (checkpointing) psi.ArgumentList.Add("--checkpointing");
        using var p = Process.Start(psi)!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = text.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'))
                   ?? throw new InvalidOperationException($"The benchmark child for shape {shape} printed no result (exit {p.ExitCode}):\n{text}");
        return JsonSerializer.Deserialize<Result>(line)!;
    }

    /// <summary>Runs the peer with its best-tuned settings (its header); null with a note when torch is missing.</summary>
    private static Result? RunPeer(string script, string shape, int steps, int warmup, TextWriter output)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { script, "--config", shape, "--threads", Environment.ProcessorCount.ToString(), "--steps", steps.ToString(), "--warmup", warmup.ToString() })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        psi.Environment["GLIBC_TUNABLES"] = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736";
        try
        {
            using var p = Process.Start(psi)!;
            string text = p.StandardOutput.ReadToEnd();
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            var line = text.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
            if (p.ExitCode != 0 || line == null)
            {
                output.WriteLine($"  peer not run ({(err.Contains("No module named 'torch'") ? "python3-torch is not installed: apt-get install -y python3-torch" : err.Trim().Split('\n').LastOrDefault())})");
                return null;
            }
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            return new Result(shape, r.GetProperty("tokens_per_s").GetDouble(), r.GetProperty("median_step_s").GetDouble(),
                r.GetProperty("achieved_gflops").GetDouble(), r.GetProperty("peak_rss_gib").GetDouble(),
                r.GetProperty("step_times_s").EnumerateArray().Select(e => e.GetDouble()).ToArray());
        }
        catch (System.ComponentModel.Win32Exception)
        {
            output.WriteLine("  peer not run (/usr/bin/python3 not found)");
            return null;
        }
    }

    /// <summary>Finds ../shared/bench/torch_lora_peer.py above the current or base directory.</summary>
    public static string? FindPeerScript()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string p = Path.Combine(d.FullName, "shared", "bench", "torch_lora_peer.py");
                if (File.Exists(p)) return p;
            }
        return null;
    }
}
