// The llama.cpp part of `lorasharp bench generate`: LoraSharp and llama.cpp (LlamaCppPeer, in this process) load
// the same GGUF files, random weights at shape (b) (SmolLM2-135M-like) in F32, Q8_0 and Q4_0 written by
// RandomGguf into a temporary folder, and are timed on the same work with the same threads:
//   decode:  tokens/s of Tokens tokens one at a time (after a 16-token prompt and 48 warm-up tokens), each step's
//            logits over the full vocabulary and their arg-max fed back (no sampler, no detokenisation);
//   prefill: tokens/s of one Prefill-token prompt in one call (LoraSharp: one chunk; llama.cpp: n_batch = n_ubatch
//            = Prefill), from an empty cache, logits of the last position only.
// LoraSharp keeps Q8_0/Q4_0 compressed and decodes them inside the matmuls; F32 is packed once at load. The
// machine's share of the CPU drifts, so engines and types are interleaved over rounds (each round: every type,
// both engines, the engine order alternating) and each keeps its best round. Prefill GFLOP/s count the projections
// (2 x weights per token), causal attention and the one output row, and are set against the FMA peak as a check
// that the peer runs as it should. A native library that does not load gives a note and LoraSharp's numbers only.
// For Q4_0 (the one type decode multiplies in integers) a third engine decodes the same file with
// LlamaModel.Q8DecodeActivations off (float products, the path before the integer kernels), interleaved in the same
// rounds, so old and new are compared in one run.
using System.Diagnostics;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;

namespace LoraSharp.Bench;

/// <summary>LoraSharp against llama.cpp on the same GGUF files.</summary>
public static class LlamaCppComparison
{
    /// <summary>GGUF types compared.</summary>
    public static readonly DType[] Types = [DType.F32, DType.Q8_0, DType.Q4_0];

    /// <summary>Prompt length of the prefill measurement.</summary>
    public const int Prefill = 512;

    private const int Prompt = 16, Warmup = 48, Tokens = 32, Rounds = 6, PrefillWarmup = 1;

    /// <summary>Writes the three GGUF files for <paramref name="config"/> into <paramref name="folder"/>; returns their paths by type.</summary>
    public static Dictionary<DType, string> WriteFiles(LlamaConfig config, string folder, IEnumerable<DType> types, int seed = 0)
    {
        Directory.CreateDirectory(folder);
        var paths = new Dictionary<DType, string>();
        foreach (var t in types)
        {
            string path = Path.Combine(folder, $"random-135m-{t.ToString().ToLowerInvariant()}.gguf");
            RandomGguf.Write(path, config, t, seed);
            paths[t] = path;
        }
        return paths;
    }

    /// <summary>Runs the comparison on <paramref name="types"/> (default <see cref="Types"/>; llama.cpp skipped when <paramref name="withLlamaCpp"/> is false); returns 0.</summary>
    public static int Run(TextWriter output, bool withLlamaCpp = true, IReadOnlyList<DType>? types = null)
    {
        types ??= Types;
        var config = TrainBench.ShapeOf("b").Config;
        int threads = Threads.Hardware;
        string folder = Path.Combine(Path.GetTempPath(), $"lorasharp-bench-gguf-{Environment.ProcessId}");
        var engines = new List<(DType Type, Engine LoraSharp, Engine? LlamaCpp, Engine? FloatDecode)>();
        try
        {
            output.WriteLine();
            output.WriteLine($"LoraSharp vs llama.cpp on the same GGUF files (random weights, shape b: dim {config.HiddenSize}, {config.NumHiddenLayers} layers, vocab {config.VocabSize}), {threads} threads each:");
            var clock = Stopwatch.StartNew();
            var paths = WriteFiles(config, folder, types);
            output.WriteLine($"wrote {string.Join(", ", paths.Select(p => $"{p.Key} {new FileInfo(p.Value).Length / 1e6:F0} MB"))} to {folder} in {clock.Elapsed.TotalSeconds:F1} s");

            string? note = withLlamaCpp ? LlamaCppPeer.TryLoadNative() : "skipped (--no-llama-cpp)";
            if (note != null) output.WriteLine($"llama.cpp: {note}; LoraSharp's numbers only.");
            else output.WriteLine($"llama.cpp (LLamaSharp {LlamaCppPeer.PackageVersion}, in-process): {LlamaCppPeer.SystemInfo()}");

            int decodeCapacity = Prompt + Warmup + (Rounds + 1) * Tokens;
            foreach (var t in types)
            {
                var ours = new LoraSharpEngine(paths[t], decodeCapacity);
                Engine? peer = null;
                if (note == null)
                {
                    try
                    {
                        var p = new LlamaCppPeer(paths[t], threads, decodeCapacity, Prefill);
                        if (engines.Count == 0) output.WriteLine($"llama.cpp configuration: {p.Describe()}");
                        peer = new LlamaCppEngine(p);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        output.WriteLine($"llama.cpp could not load {paths[t]}: {e.GetType().Name}: {e.Message}");
                    }
                }
                Engine? floatDecode = t is DType.Q4_0 ? new LoraSharpEngine(paths[t], decodeCapacity, q8Decode: false) : null;
                engines.Add((t, ours, peer, floatDecode));
            }
            if (note == null)
            {
                foreach (var line in LlamaCppPeer.LogLines("libllama", "Flash Attention", "file type", "CPU_REPACK"))
                    if (!line.Contains("dependency", StringComparison.Ordinal) && !line.Contains("trying", StringComparison.Ordinal)) output.WriteLine($"  llama.cpp log: {line}");
            }

            // Same prompts for both engines: ids above the special and byte pieces.
            var rng = new Random(1);
            int[] prompt = Enumerable.Range(0, Prompt).Select(_ => rng.Next(RandomGguf.ReservedTokens, config.VocabSize)).ToArray();
            int[] longPrompt = Enumerable.Range(0, Prefill).Select(_ => rng.Next(RandomGguf.ReservedTokens, config.VocabSize)).ToArray();
            clock.Restart();
            foreach (var e in engines.SelectMany(e => new[] { e.LoraSharp, e.LlamaCpp }).OfType<Engine>())
            {
                e.Start(prompt, Warmup);
                for (int i = 0; i < PrefillWarmup; i++) e.PrefillRound(longPrompt);
            }
            foreach (var e in engines.Select(e => e.FloatDecode).OfType<Engine>()) e.Start(prompt, Warmup);
            output.WriteLine($"loaded and warmed up in {clock.Elapsed.TotalSeconds:F1} s; {Rounds} interleaved rounds of {Tokens} decode tokens and one {Prefill}-token prefill per engine and type");

            // Between rounds: the CPU share and the read bandwidth this run had (decode is bandwidth-bound but Q4_0's).
            var peaks = new List<double> { Peak.MeasureFmaPeak() };
            var bandwidths = new List<double> { Peak.MeasureBandwidth().ReadGBps };
            for (int round = 0; round < Rounds; round++)
            {
                foreach (var (_, ours, peer, floatDecode) in engines)
                {
                    var order = round % 2 == 0 ? new[] { ours, peer } : [peer, ours];
                    foreach (var e in order.OfType<Engine>())
                    {
                        e.DecodeRound(Tokens);
                        e.PrefillRound(longPrompt);
                    }
                    floatDecode?.DecodeRound(Tokens);   // decode only: a prefill never takes the integer products
                }
                peaks.Add(Peak.MeasureFmaPeak());
                bandwidths.Add(Peak.MeasureBandwidth().ReadGBps);
            }

            double peak = peaks.Max();
            double flops = PrefillFlops(config, Prefill);
            output.WriteLine($"FMA peak {peaks.Min():F0}-{peak:F0} GFLOP/s over {peaks.Count} probes between rounds (% below: of the best); prefill counts {flops / Prefill / 1e6:F0} MFLOP a token (projections, causal attention, one output row)");
            output.WriteLine($"read bandwidth {bandwidths.Min():F1}-{bandwidths.Max():F1} GB/s over the same probes; decode reads {string.Join(", ", engines.Select(e => $"{e.Type} {e.LoraSharp.BytesPerToken / 1e6:F0} MB"))} of weights a token (LoraSharp's count)");
            output.WriteLine("type  | decode tokens/s: LoraSharp  llama.cpp  ratio | prefill 512 tokens/s: LoraSharp (GFLOP/s, % peak)  llama.cpp (GFLOP/s, % peak)  ratio");
            foreach (var (t, ours, peer, _) in engines)
            {
                string Pf(Engine? e) => e == null ? "-" : $"{e.BestPrefill,6:F0} ({e.BestPrefill * flops / Prefill / 1e9,4:F0}, {100 * e.BestPrefill * flops / Prefill / 1e9 / peak,3:F0}%)";
                string Ratio(double a, double? b) => b is > 0 ? $"{a / b.Value:F2}x" : "-";
                output.WriteLine($"{t,-5} | {ours.BestDecode,27:F1} {(peer == null ? "-" : peer.BestDecode.ToString("F1")),10} {Ratio(ours.BestDecode, peer?.BestDecode),6} | " +
                                 $"{Pf(ours),38} {Pf(peer),29} {Ratio(ours.BestPrefill, peer?.BestPrefill),6}");
            }
            output.WriteLine("ratio = LoraSharp / llama.cpp (target >= 1.0x for decode and prefill); each number is the engine's best round.");
            foreach (var (t, ours, peer, floatDecode) in engines.Where(e => e.FloatDecode != null))
                output.WriteLine($"{t,-5} | decode with float products (Q8DecodeActivations off, the earlier path): {floatDecode!.BestDecode:F1} tokens/s" +
                                 (peer is { BestDecode: > 0 } ? $" = {floatDecode.BestDecode / peer.BestDecode:F2}x llama.cpp" : "") +
                                 $"; integer products {ours.BestDecode / floatDecode.BestDecode:F2}x that");
            return 0;
        }
        finally
        {
            foreach (var (_, ours, peer, floatDecode) in engines)
            {
                ours.Dispose();
                peer?.Dispose();
                floatDecode?.Dispose();
            }
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>FLOPs of one <paramref name="t"/>-token prefill: projections, causal attention (QKᵀ and AV), and the last position's output row.</summary>
    public static double PrefillFlops(LlamaConfig c, int t)
    {
        double C = c.HiddenSize, H = c.IntermediateSize, L = c.NumHiddenLayers, V = c.VocabSize;
        double QD = c.NumAttentionHeads * c.HeadDim, KD = c.NumKeyValueHeads * c.HeadDim;
        double projections = L * (C * QD + 2 * C * KD + QD * C + 3 * C * H);
        double attention = L * 2 * QD * t * (t + 1.0);   // sum over positions i of 4 * QD * (i + 1)
        return 2 * projections * t + attention + 2 * C * V;
    }

    /// <summary>One engine holding one file: a decode sequence that keeps growing and a prefill cleared each time.</summary>
    private abstract class Engine : IDisposable
    {
        private int _next, _position;

        public double BestDecode { get; private set; }

        public double BestPrefill { get; private set; }

        /// <summary>Weight bytes one decode step reads (0 when unknown).</summary>
        public virtual double BytesPerToken => 0;

        public void Start(int[] prompt, int warmup)
        {
            foreach (int id in prompt) _next = Step(id, _position++);
            for (int i = 0; i < warmup; i++) _next = Step(_next, _position++);
        }

        public void DecodeRound(int tokens)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++) _next = Step(_next, _position++);
            BestDecode = Math.Max(BestDecode, tokens / clock.Elapsed.TotalSeconds);
        }

        public void PrefillRound(int[] tokens)
        {
            var clock = Stopwatch.StartNew();
            RunPrefill(tokens);
            BestPrefill = Math.Max(BestPrefill, tokens.Length / clock.Elapsed.TotalSeconds);
        }

        /// <summary>Runs one token of the decode sequence; returns the arg-max of its logits.</summary>
        protected abstract int Step(int token, int position);

        protected abstract int RunPrefill(int[] tokens);

        public abstract void Dispose();
    }

    private sealed class LoraSharpEngine : Engine
    {
        private readonly LlamaModel _model;
        private readonly KvCache _decode, _prefill;

        public LoraSharpEngine(string path, int decodeCapacity, bool q8Decode = true)
        {
            using (var loaded = ModelLoader.Load(path))   // GGUF: weights as stored (F32 packed, Q8_0/Q4_0 compressed)
                _model = LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath, consumeTensors: true);
            _model.Q8DecodeActivations = q8Decode;
            _decode = _model.CreateCache(decodeCapacity);
            _prefill = _model.CreateCache(Prefill, maxChunk: Prefill);
            // As GenerateBench counts it: every projection as held, and the output (a tied stored one reads the embedding).
            double output = _model.Output.Bytes > 0 ? _model.Output.Bytes : _model.Embedding!.ByteLength;
            BytesPerToken = _model.Layers.Sum(l => l.Projections.Sum(p => (double)p.Packed.Bytes)) + output;
        }

        public override double BytesPerToken { get; }

        // Prompt tokens go one at a time too, as llama.cpp's decode context gets them; neither is timed.
        protected override int Step(int token, int position) => Models.Generation.Sampler.ArgMax(_model.ForwardCached([token], _decode));

        protected override int RunPrefill(int[] tokens)
        {
            _prefill.Reset();
            return Models.Generation.Sampler.ArgMax(_model.ForwardCached(tokens, _prefill));
        }

        public override void Dispose() => _model.Dispose();
    }

    private sealed class LlamaCppEngine(LlamaCppPeer peer) : Engine
    {
        protected override int Step(int token, int position) => peer.DecodeStep(token, position);

        protected override int RunPrefill(int[] tokens) => peer.Prefill(tokens);

        public override void Dispose() => peer.Dispose();
    }
}
