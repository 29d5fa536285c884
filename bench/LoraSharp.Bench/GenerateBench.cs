// `lorasharp bench generate`: decode tokens/s at the peer's shape (b) with f32, bf16 and quantized (QLoRA) base
// weights, and the memory bandwidth that implies (every weight byte the model holds for its projections and output
// is read once per token) as a fraction of the measured read bandwidth. A shared VM's share of the CPU and its
// bandwidth drift within a run (one type once decoded at half its rate for a few seconds while the others did not),
// so the types are measured interleaved: every model is loaded, then each round decodes 32 tokens with each type in
// turn, with a bandwidth probe between rounds. A type's rate is its best round, compared with the better of the
// probes just before and just after that round. Warm-up tokens first, so tiered compilation has reached its
// optimised code before the clock starts. Then LlamaCppComparison: LoraSharp and llama.cpp on the same GGUF files.
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

    private const int Prompt = 16, Warmup = 48, Rounds = 5, Tokens = 32, AdapterWarmup = 8;

    /// <summary>Runs the benchmark; returns 0.</summary>
    /// <param name="output">Where the results go.</param>
    /// <param name="types">The five base types' decode rates and bandwidth.</param>
    /// <param name="llamaCpp">The same-file comparison: LoraSharp and, when <paramref name="withLlamaCpp"/>, llama.cpp.</param>
    /// <param name="withLlamaCpp">Run llama.cpp in that comparison (false: LoraSharp's side only).</param>
    /// <param name="ggufTypes">The comparison's GGUF types (default F32, Q8_0, Q4_0).</param>
    public static int Run(TextWriter output, bool types = true, bool llamaCpp = true, bool withLlamaCpp = true, IReadOnlyList<DType>? ggufTypes = null)
    {
        output.WriteLine(BenchInfo.Header());
        if (types) RunTypes(output);
        return llamaCpp ? LlamaCppComparison.Run(output, withLlamaCpp, ggufTypes) : 0;
    }

    private static void RunTypes(TextWriter output)
    {
        var shape = TrainBench.Shapes.Single(s => s.Key == "b");
        var decoders = new List<Decoder>();
        try
        {
            foreach (var dtype in Types) decoders.Add(new Decoder(shape.Config, dtype));
            var probes = new List<double> { Peak.MeasureBandwidth().ReadGBps };
            var best = new (double Tps, int Round)[decoders.Count];
            for (int round = 0; round < Rounds; round++)
            {
                for (int i = 0; i < decoders.Count; i++)
                {
                    double tps = decoders[i].Round();
                    if (tps > best[i].Tps) best[i] = (tps, round);
                }
                probes.Add(Peak.MeasureBandwidth().ReadGBps);
            }

            // With a rank-8 adapter on all seven projections (what `generate -a` runs): the adapter's cost per token,
            // f32 and bf16 interleaved the same way.
            var adapted = decoders.Where(d => d.Type is DType.F32 or DType.BF16).ToArray();
            foreach (var d in adapted) d.AttachAdapter();
            var loraBest = new double[adapted.Length];
            for (int round = 0; round < 3; round++)
                for (int i = 0; i < adapted.Length; i++) loraBest[i] = Math.Max(loraBest[i], adapted[i].Round());

            output.WriteLine($"memory bandwidth: read {probes.Min():F1}-{probes.Max():F1} GB/s over {probes.Count} probes, one between rounds; " +
                             $"{Rounds} interleaved rounds of {Tokens} tokens per type");
            for (int i = 0; i < decoders.Count; i++)
            {
                var (tps, round) = best[i];
                double around = Math.Max(probes[round], probes[round + 1]);
                double gbps = decoders[i].BytesPerToken * tps / 1e9;
                var dtype = decoders[i].Type;
                output.WriteLine($"decode {dtype,-5} base: {tps,7:F1} tokens/s, {decoders[i].BytesPerToken / 1e6,4:F0} MB of weights per token, " +
                                 $"{gbps,5:F1} GB/s = {100 * gbps / around,3:F0}% of the read bandwidth around its best round ({around:F1} GB/s)" +
                                 (dtype == DType.F32 || dtype == DType.BF16 ? " (target >= 70%)" : ""));
                int a = Array.IndexOf(adapted, decoders[i]);
                if (a >= 0)
                    output.WriteLine($"decode {dtype,-5} + LoRA r=8 on all 7 projections: {loraBest[a],7:F1} tokens/s = {loraBest[a] / tps:F2}x the base's rate");
            }
        }
        finally
        {
            foreach (var d in decoders) d.Dispose();
        }
    }

    /// <summary>One model of one base dtype with its KV cache, prompted and warmed up, decoding greedily.</summary>
    private sealed class Decoder : IDisposable
    {
        private readonly LlamaModel _model;
        private readonly KvCache _cache;
        private int _next = 1;

        public Decoder(Models.LlamaConfig config, DType dtype)
        {
            Type = dtype;
            var weights = RandomWeights.Create(config, seed: 0, dtype);
            _model = LlamaModel.FromTensors(config, weights, "random", consumeTensors: true);
            foreach (var t in weights.Values) t.Dispose();
            // What one token reads: every projection and the output projection as held (f32 forward panels, or the
            // stored blocks; a stored tied output reads the embedding's bytes); the embedding lookup reads one row.
            double output = _model.Output.Bytes > 0 ? _model.Output.Bytes : _model.Embedding!.ByteLength;
            BytesPerToken = _model.Layers.Sum(l => l.Projections.Sum(p => (double)p.Packed.Bytes)) + output;
            _cache = _model.CreateCache(Prompt + Warmup + (Rounds + 3) * Tokens + AdapterWarmup + 1);
            _model.ForwardCached(Enumerable.Range(1, Prompt).ToArray(), _cache);
            for (int i = 0; i < Warmup; i++) Step();
        }

        public DType Type { get; }

        public double BytesPerToken { get; }

        /// <summary>Tokens/s of one round of <see cref="Tokens"/> tokens.</summary>
        public double Round()
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < Tokens; i++) Step();
            return Tokens / clock.Elapsed.TotalSeconds;
        }

        public void AttachAdapter()
        {
            LoraInjector.Attach(_model, new LoraSettings { Rank = 8, Alpha = 16, TargetModules = ["all-linear"], Init = "none" }, seed: 1, trainable: false);
            for (int i = 0; i < AdapterWarmup; i++) Step();   // the adapter's code paths warm up too
        }

        private void Step() => _next = Models.Generation.Sampler.ArgMax(_model.ForwardCached([_next], _cache));

        public void Dispose() => _model.Dispose();
    }
}
