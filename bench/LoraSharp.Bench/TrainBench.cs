// `lorasharp bench train`: tokens/s, GFLOP/s and peak RSS of a full LoRA training step (forward, backward, AdamW)
// at named shapes (the PyTorch peer's a and b, SmolLM2-360M and Llama-3.2-1B at seq 1024, a 7B-class 4-bit QLoRA
// step) or a real model folder/GGUF with random token ids, and the peer (../shared/bench/torch_lora_peer.py, the same
// dims through its --json overrides) in the same run. Each measurement runs in a child process so peak RSS is its
// own; the child also reports the memory estimate that `train` prints (LoraMemoryEstimate), to check it against.
// FLOP accounting is the peer's, term by term. No ratio is printed against a peer on a reference BLAS.
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
    /// <summary>A benchmark shape: model config, micro-batch and sequence length, and how it runs.</summary>
    /// <param name="BaseDType">Base weights of our side (the peer always holds f32).</param>
    /// <param name="Checkpointing">Activation checkpointing on our side.</param>
    /// <param name="Peer">The peer runs it too (a 7B model in f32 does not fit in 24 GB).</param>
    /// <param name="CheckpointingRow">Also measure our side with activation checkpointing, as a second row.</param>
    /// <param name="ModelPath">A real model folder or GGUF file instead of random weights.</param>
    /// <param name="Bf16Row">Also measure our side with bf16 base weights, as `train` holds a bf16 checkpoint (the real
    /// models of these sizes ship in bf16), as a second row.</param>
    /// <param name="TargetModules">LoRA target_modules of our side (null: all-linear, every projection of the model's
    /// family); the FLOP count stays the peer's seven-projection one.</param>
    public sealed record Shape(string Key, string Name, LlamaConfig Config, int Batch, int Seq, string BaseDType = "f32", bool Checkpointing = false,
        bool Peer = true, bool CheckpointingRow = false, string? ModelPath = null, bool Bf16Row = false, IReadOnlyList<string>? TargetModules = null)
    {
        /// <summary>The LoRA settings of our side: r 8, alpha 16, dropout 0.05 on <see cref="TargetModules"/>.</summary>
        public LoraSettings Lora => new() { Rank = 8, Alpha = 16, Dropout = 0.05, TargetModules = [.. TargetModules ?? ["all-linear"]] };

        /// <summary>Refuses target modules this shape's model does not have (phi3 has qkv_proj, not q_proj), naming its
        /// projections, before any child process starts.</summary>
        public void CheckTargets()
        {
            var lora = Lora;
            lora.Validate();
            var names = Config.FusedProjections ? LlamaLayer.FusedProjectionNames : LlamaLayer.ProjectionNames;
            foreach (var m in lora.ResolvedTargetsFor(names))
                if (!names.Contains(m))
                    throw new Core.UserErrorException($"--target-modules: '{m}' is not a projection of this {Config.ModelType} model; its projections are {string.Join(", ", names)} (or all-linear).");
        }

        /// <summary>The peer's --json overrides for these dims (every field, so nothing depends on its built-in a/b).</summary>
        public string PeerJson() => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["name"] = Name, ["dim"] = Config.HiddenSize, ["hidden"] = Config.IntermediateSize, ["n_layers"] = Config.NumHiddenLayers,
            ["n_heads"] = Config.NumAttentionHeads, ["n_kv_heads"] = Config.NumKeyValueHeads, ["vocab"] = Config.VocabSize,
            ["tied"] = Config.TieWordEmbeddings, ["seq"] = Seq, ["batch"] = Batch,
        });
    }

    /// <summary>The named shapes: the peer's (a) and (b), the model sizes people fine-tune (micro-batch 1, seq 1024), and 7b.</summary>
    public static readonly Shape[] Shapes =
    [
        new("a", "stories15M-like", Llama(288, 768, 6, 6, 6, 32000, tied: false), 8, 256, CheckpointingRow: true),
        new("b", "SmolLM2-135M-like", Llama(576, 1536, 30, 9, 3, 49152, tied: true), 4, 512, CheckpointingRow: true),
        new("smollm2-360m", "SmolLM2-360M", Llama(960, 2560, 32, 15, 5, 49152, tied: true), 1, 1024, Bf16Row: true),
        new("llama3.2-1b", "Llama-3.2-1B", Llama(2048, 8192, 16, 32, 8, 128256, tied: true), 1, 1024, Bf16Row: true),
        // Without activation checkpointing: its recompute would add a third forward (6 instead of the 4 FLOPs a weight
        // and token the peer counts, capping the step at 67% of peak), and the activations of 512 tokens (3.6 GiB)
        // still fit beside the 3.5 GiB of Q4_0 weights within the 8 GiB target.
        new("7b", "Llama-2-7B-like", Llama(4096, 11008, 32, 32, 32, 32000, tied: false), 1, 512, BaseDType: "q4_0", Peer: false),
    ];

    /// <summary>The QLoRA issue's 7B-class shape (Llama-2-7B dimensions, random Q4_0 base), micro-batch 1.</summary>
    public static Shape SevenB => ShapeOf("7b");

    /// <summary>A shape by key.</summary>
    public static Shape ShapeOf(string key) => Shapes.FirstOrDefault(x => x.Key == key)
        ?? throw new ArgumentException($"Unknown shape '{key}'; valid: {string.Join(", ", Shapes.Select(x => x.Key))}.");

    /// <summary>A shape for a real model (HF folder or GGUF): its config, micro-batch 1, <paramref name="seq"/> tokens (at most its context).</summary>
    public static Shape ForModel(string path, int seq)
    {
        // The loader's own resolution of the path (folder, .safetensors, .gguf), with nothing converted, as `inspect` reads it.
        using var loaded = Models.Loading.ModelLoader.Load(path, new Models.Loading.ModelLoadOptions { BaseDType = "stored" });
        var config = loaded.Config;
        string full = Path.GetFullPath(path);
        return new Shape("model", Path.GetFileName(full.TrimEnd('/')), config, 1, Math.Min(seq, config.MaxPositionEmbeddings), BaseDType: "auto", ModelPath: full);
    }

    private static LlamaConfig Llama(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, bool tied) => new()
    {
        HiddenSize = dim, IntermediateSize = hidden, NumHiddenLayers = layers, NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads, HeadDim = dim / heads, VocabSize = vocab, MaxPositionEmbeddings = 2048,
        RmsNormEps = 1e-5, RopeTheta = 10000, TieWordEmbeddings = tied,
    };

    /// <summary>One measured result.</summary>
    public sealed record Result(string Shape, double TokensPerSecond, double MedianStepSeconds, double Gflops, double PeakRssGiB, double[] StepSeconds,
        long BaseWeightBytes = 0, long Parameters = 0, double EstimateGiB = 0, string? Blas = null, string? BaseDType = null, double Loss = double.NaN);   // Loss: the mean loss of the last step (a sanity check, not a benchmark figure)

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
    /// <param name="baseDType">Base weights: f32, bf16, f16, q8_0, q4_0, nf4, or nf4-dq (NF4 with double-quantized scales);
    /// for a real model also auto (as `train` loads it) or stored.</param>
    public static Result MeasureHere(Shape s, int steps, int warmup, bool checkpointing = false, string baseDType = "f32")
    {
        bool doubleQuant = baseDType == "nf4-dq";
        long parameterCount;
        LlamaModel model;
        if (s.ModelPath != null)
        {
            // As `train` loads it: the session's model, built from the file without a second copy.
            string? loadAs = baseDType switch { "auto" => null, "nf4-dq" => "nf4", _ => baseDType };
            model = App.ModelSession.Open(s.ModelPath, baseDType: loadAs, doubleQuant: doubleQuant).Model;   // disposing the model disposes the session
            parameterCount = model.Layers.Sum(l => l.Projections.Sum(p => (long)p.InFeatures * p.OutFeatures)) + (long)model.Config.VocabSize * model.Config.HiddenSize
                             + (model.Config.TieWordEmbeddings ? 0 : (long)model.Output.N * model.Output.K);
        }
        else
        {
            var weights = RandomWeights.Create(s.Config, seed: 0, BaseDType(baseDType));
            parameterCount = weights.Values.Sum(t => t.ElementCount);
            model = LlamaModel.FromTensors(s.Config, weights, "random", doubleQuant: doubleQuant, consumeTensors: true);
            foreach (var t in weights.Values) t.Dispose();
            weights.Clear();
        }
        using var owned = model;
        model.ActivationCheckpointing = checkpointing;
        LoraInjector.Attach(model, s.Lora, seed: 0);
        var parameters = model.TrainableParameters();
        var optimizer = new AdamW(weightDecay: 0.0);
        var rng = new Random(0);
        int n = s.Batch * s.Seq;
        var ids = new int[n];
        var labels = new int[n];
        for (int i = 0; i < n; i++) { ids[i] = rng.Next(s.Config.VocabSize); labels[i] = rng.Next(s.Config.VocabSize); }
        var batch = new Batch(s.Batch, s.Seq, ids, labels: labels);
        var times = new List<double>();
        double loss = double.NaN;
        IReadOnlyList<(StepPhase Phase, double Seconds)> lastSnap = StepProfile.Snapshot();
        for (int i = 0; i < warmup + steps; i++)
        {
            if (i == warmup) StepProfile.Reset();
            var clock = Stopwatch.StartNew();
            long t0 = StepProfile.Start();
            Optimizer.ZeroGrad(parameters);
            StepProfile.Stop(StepPhase.Optimizer, t0);
            loss = model.ForwardBackward(batch, 1f / batch.TargetCount, (ulong)i, out int count) / count;
            t0 = StepProfile.Start();
            optimizer.Step(parameters, 1e-4);
            StepProfile.Stop(StepPhase.Optimizer, t0);
            if (i >= warmup) times.Add(clock.Elapsed.TotalSeconds);
            if (StepProfile.Enabled && Environment.GetEnvironmentVariable("LORASHARP_PROFILE_STEPS") == "1")
            {
                // This step's phases: the totals since the last snapshot (the totals keep running for the summary).
                var snap = StepProfile.Snapshot();
                var step = snap.Select((p, j) => (p.Phase, Seconds: p.Seconds - (i == warmup ? 0 : lastSnap[j].Seconds)));
                Console.Error.WriteLine($"step {i} {clock.Elapsed.TotalSeconds:F3}: " + string.Join(" ", step.Where(p => p.Seconds > 0.01).Select(p => $"{p.Phase}={p.Seconds:F3}")));
                lastSnap = snap;
            }
        }
        if (StepProfile.Enabled) PrintProfile(Console.Error, times);
        double median = times.Order().ElementAt(times.Count / 2);
        double tps = n / median;
        double rss = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024 * 1024);
        // The estimate `train` prints for this run, from the same function.
        var estimate = App.LoraMemoryEstimate.Compute(model.Config, model.BaseWeightBytes, parameters.Sum(p => (long)p.Length), 8, s.Seq, s.Batch,
            model.Output.StorageDType == Core.Tensors.DType.F32, Core.Threading.Threads.Hardware);
        return new Result(s.Key, tps, median, FlopsPerToken(s) * tps / 1e9, rss, [.. times], model.BaseWeightBytes, parameterCount,
            estimate.Total(checkpointing) / (1024.0 * 1024 * 1024), BaseDType: DescribeBase(model), Loss: loss);
    }

    /// <summary>Seconds per step of each phase and its share of the step (LORASHARP_PROFILE=1).</summary>
    public static void PrintProfile(TextWriter o, IReadOnlyList<double> times)
    {
        double totalSeconds = times.Sum();
        int steps = times.Count;
        var phases = StepProfile.Snapshot();
        double attributed = phases.Sum(p => p.Seconds);
        o.WriteLine($"profile over {steps} steps, {totalSeconds / steps:F3} s per step ({string.Join(" ", times.Select(t => t.ToString("F3")))}):");
        foreach (var (phase, seconds) in phases.OrderByDescending(p => p.Seconds))
            o.WriteLine($"  {phase,-18} {seconds / steps,8:F4} s {100 * seconds / totalSeconds,6:F1}%");
        o.WriteLine($"  {"(unattributed)",-18} {(totalSeconds - attributed) / steps,8:F4} s {100 * (totalSeconds - attributed) / totalSeconds,6:F1}%");
    }

    // "f32", "bf16", "q4_0, f32 x 1": the storage of the model's projections and output, the most common first.
    private static string DescribeBase(LlamaModel model) => string.Join(", ", model.Layers.SelectMany(l => l.Projections).Select(p => p.Packed)
        .Append(model.Output).GroupBy(p => p.StorageDType.ToString().ToLowerInvariant()).OrderByDescending(g => g.Count())
        .Select((g, i) => i == 0 ? g.Key : $"{g.Key} x {g.Count()}"));

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
    public static int Run(TextWriter output, IReadOnlyList<Shape> shapes, int steps, int warmup, string[] selfCommand, string? peerScript)
    {
        output.WriteLine(BenchInfo.Header());
        // A shared VM's share of the CPU drifts over tens of seconds, so one probe at the start can read low (a
        // step then showed 106% of it): each run is compared with the best probe so far, one taken right after it included.
        double peak = Peak.MeasureFmaPeak();
        output.WriteLine($"fp32 FMA peak (measured now): {peak:F1} GFLOP/s; each % peak below uses the best probe taken up to the end of its run");
        string targets = string.Join("; ", shapes.Select(x => string.Join(" ", x.TargetModules ?? ["all-linear"])).Distinct());
        output.WriteLine($"LoRA r 8, alpha 16, dropout 0.05 on {(targets == "all-linear" ? "every projection (all-linear; phi3: its four fused ones)" : targets)}, AdamW; {steps} timed steps (median) after {warmup} warm-up, each side; " +
                         "estimate: what `train` prints, against our peak RSS (! = outside ±15%)");
        output.WriteLine($"{"shape",-26} {"impl",-10} {"tokens/s",9} {"step s",8} {"GFLOP/s",8} {"% peak",7} {"peak RSS GiB",12} {"estimate GiB",13}  base");
        foreach (var s in shapes)
        {
            // One row of ours: the child's run, then a peak probe right after it (see above).
            Result Ours(string label, bool checkpointing, string? baseDType = null)
            {
                var r = RunChild(selfCommand, s, steps, warmup, checkpointing, baseDType);
                peak = Math.Max(peak, Peak.MeasureFmaPeak());
                Print(output, s, label, r, peak);
                return r;
            }
            var ours = Ours(s.Checkpointing ? "ours+ckpt" : "lorasharp", s.Checkpointing);
            if (s.CheckpointingRow && !s.Checkpointing)
            {
                var ckpt = Ours("+ckpt", checkpointing: true);
                output.WriteLine($"{"",-26} activation checkpointing: peak RSS {ckpt.PeakRssGiB:F2} vs {ours.PeakRssGiB:F2} GiB ({100 * (1 - ckpt.PeakRssGiB / ours.PeakRssGiB):F0}% less), " +
                                 $"step time {ckpt.MedianStepSeconds / ours.MedianStepSeconds:F2}x");
            }
            var bf16 = s.Bf16Row && s.BaseDType == "f32" ? Ours("bf16 base", s.Checkpointing, "bf16") : null;
            var peer = peerScript == null || !s.Peer ? null : RunPeer(peerScript, s, steps, warmup, output);
            if (peer == null) continue;
            Print(output, s, "torch", peer, peak);
            if (peer.Blas is not ("openblas" or "mkl" or "blis"))
            {
                output.WriteLine($"{"",-26} no ratio: the peer ran on the '{peer.Blas}' BLAS, not its best (apt-get install -y python3-torch libopenblas0-pthread)");
                continue;
            }
            output.WriteLine($"{"",-26} ratio: {ours.TokensPerSecond / peer.TokensPerSecond:F2}x tokens/s, peak RSS {ours.PeakRssGiB / peer.PeakRssGiB:F2}x of the peer's " +
                             $"(peer on {peer.Blas} at {100 * peer.Gflops / peak:F1}% of peak)");
            if (bf16 != null)
                output.WriteLine($"{"",-26} bf16 base: {bf16.TokensPerSecond / peer.TokensPerSecond:F2}x tokens/s, peak RSS {bf16.PeakRssGiB / peer.PeakRssGiB:F2}x of the peer's (f32)");
        }
        return 0;
    }

    private static void Print(TextWriter o, Shape s, string impl, Result r, double peak)
    {
        // The estimate must be within ±15% of the measured peak (issue #15); a miss is flagged on the line.
        double error = r.EstimateGiB / r.PeakRssGiB - 1;
        string estimate = r.EstimateGiB > 0 ? $"{r.EstimateGiB:F2} ({Math.Round(100 * error):+0;-0;0}%{(Math.Abs(error) <= 0.15 ? "" : "!")})" : "";
        o.WriteLine($"{s.Key + " " + s.Name,-26} {impl,-10} {r.TokensPerSecond,9:F1} {r.MedianStepSeconds,8:F3} {r.Gflops,8:F1} {100 * r.Gflops / peak,6:F1}% " +
                    $"{r.PeakRssGiB,12:F2} {estimate,13}  {r.BaseDType ?? r.Blas}");
    }

    /// <summary>How a child writes its <see cref="Result"/> (a NaN loss, a broken model's, must still reach the parent).</summary>
    public static JsonSerializerOptions ResultJson { get; } = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Measures one configuration in a child process of <paramref name="selfCommand"/> (so peak RSS is its own).</summary>
    public static Result RunChild(string[] selfCommand, Shape shape, int steps, int warmup, bool checkpointing, string? baseDType = null)
    {
        var psi = new ProcessStartInfo(selfCommand[0]) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in selfCommand.Skip(1)) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "bench", "train-child", "--steps", steps.ToString(), "--warmup", warmup.ToString(), "--base-dtype", baseDType ?? shape.BaseDType })
            psi.ArgumentList.Add(a);
        foreach (var a in shape.ModelPath != null ? ["--model", shape.ModelPath, "--seq", shape.Seq.ToString(), "--batch", shape.Batch.ToString()] : new[] { "--shape", shape.Key })
            psi.ArgumentList.Add(a);
        if (checkpointing) psi.ArgumentList.Add("--checkpointing");
        if (shape.TargetModules is { Count: > 0 } targets)
        {
            psi.ArgumentList.Add("--target-modules");
            foreach (var m in targets) psi.ArgumentList.Add(m);
        }
        using var p = Process.Start(psi)!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = text.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'))
                   ?? throw new InvalidOperationException($"The benchmark child for shape {shape.Key} printed no result (exit {p.ExitCode}):\n{text}");
        return JsonSerializer.Deserialize<Result>(line, ResultJson)!;
    }

    /// <summary>Runs the peer with its best-tuned settings (its header) on the shape's dims; null with a note when it cannot run.</summary>
    private static Result? RunPeer(string script, Shape shape, int steps, int warmup, TextWriter output)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { script, "--config", "a", "--json", shape.PeerJson(), "--threads", Environment.ProcessorCount.ToString(),
                     "--steps", steps.ToString(), "--warmup", warmup.ToString() })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        psi.Environment["GLIBC_TUNABLES"] = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736";
        try
        {
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string text = p.StandardOutput.ReadToEnd();
            string err = stderr.Result;
            p.WaitForExit();
            var line = text.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
            if (p.ExitCode != 0 || line == null)
            {
                string why = err.Contains("No module named 'torch'") ? "python3-torch is not installed: apt-get install -y python3-torch libopenblas0-pthread"
                    : err.Trim().Split('\n').LastOrDefault() is { Length: > 0 } last ? last : $"exit {p.ExitCode}";
                output.WriteLine($"  peer not run ({why})");
                return null;
            }
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            return new Result(shape.Key, r.GetProperty("tokens_per_s").GetDouble(), r.GetProperty("median_step_s").GetDouble(),
                r.GetProperty("achieved_gflops").GetDouble(), r.GetProperty("peak_rss_gib").GetDouble(),
                r.GetProperty("step_times_s").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
                Blas: r.TryGetProperty("blas", out var b) ? b.GetString() : "unknown");
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
