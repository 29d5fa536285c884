// Extracts a LoRA adapter from a fine-tuned model and its base: for every linear weight, ΔW = W_tuned − W_base
// (both widened to f32 from their stored dtypes, the difference taken in double), truncated SVD ΔW ≈ U·diag(S)·Vᵀ,
// B = U·diag(S) [N, r], A = Vᵀ [r, K], scale 1 (lora_alpha = r). The rank is fixed (--rank) or, per module, the
// smallest that keeps a target share of ‖ΔW‖²_F (--energy), capped by MaxRank. The share kept is reported per
// module and overall (Σ kept / Σ ‖ΔW‖²). Modules whose ΔW is exactly zero are left out.
// Not here: embeddings, norms and lm_head (LoRA does not adapt them; differences there are reported, not kept).
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;

namespace LoraSharp.Training.Adapters;

/// <summary>Options of <see cref="LoraExtractor"/>.</summary>
public sealed record ExtractOptions
{
    /// <summary>Fixed rank for every module (exclusive with <see cref="Energy"/>).</summary>
    public int? Rank { get; init; }

    /// <summary>Target share of each ΔW's energy, in (0, 1] (exclusive with <see cref="Rank"/>).</summary>
    public double? Energy { get; init; }

    /// <summary>Largest rank the energy mode may choose.</summary>
    public int MaxRank { get; init; } = 128;

    /// <summary>Modules to extract (q_proj ... down_proj); null = all seven.</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>Seed of the randomized SVD.</summary>
    public int Seed { get; init; }
}

/// <summary>One extracted module.</summary>
/// <param name="Module">HF module name.</param>
/// <param name="Rank">Rank kept.</param>
/// <param name="EnergyKept">Share of ‖ΔW‖²_F kept.</param>
/// <param name="DeltaEnergy">‖ΔW‖²_F.</param>
public sealed record ExtractedModule(string Module, int Rank, double EnergyKept, double DeltaEnergy);

/// <summary>What an extraction kept.</summary>
/// <param name="Modules">Per module.</param>
/// <param name="EnergyKept">Overall share: Σ kept / Σ ‖ΔW‖²_F.</param>
/// <param name="Notes">Tensors that differ but are not captured, modules skipped.</param>
public sealed record ExtractReport(IReadOnlyList<ExtractedModule> Modules, double EnergyKept, IReadOnlyList<string> Notes);

/// <summary>Extracts LoRA adapters from weight differences.</summary>
public static class LoraExtractor
{
    /// <summary>Extracts the adapter that turns <paramref name="baseModel"/> into (approximately) <paramref name="tuned"/>.</summary>
    public static (LoraWeights Weights, ExtractReport Report) Extract(LoadedModel baseModel, LoadedModel tuned, ExtractOptions options, Action<string>? log = null) =>
        Extract(baseModel.Tensors, baseModel.SourcePath, tuned.Tensors, tuned.SourcePath, options, log);

    /// <summary>Loads both models (tensors kept in their stored dtypes) and extracts.</summary>
    public static (LoraWeights Weights, ExtractReport Report) Extract(string basePath, string tunedPath, ExtractOptions options, Action<string>? log = null)
    {
        var load = new ModelLoadOptions { BaseDType = "stored" };
        using var b = ModelLoader.Load(basePath, load);
        using var t = ModelLoader.Load(tunedPath, load);
        return Extract(b, t, options, log);
    }

    /// <summary>
    /// Extracts from tensors by HF name (base and tuned; any readable dtype). <paramref name="baseSource"/> and
    /// <paramref name="tunedSource"/> name them in messages.
    /// </summary>
    public static (LoraWeights Weights, ExtractReport Report) Extract(IReadOnlyDictionary<string, Tensor> baseTensors, string baseSource,
        IReadOnlyDictionary<string, Tensor> tunedTensors, string tunedSource, ExtractOptions options, Action<string>? log = null)
    {
        if (options.Rank.HasValue == options.Energy.HasValue) throw new Core.UserErrorException("Give exactly one of a rank (--rank) or a target energy share (--energy).");
        if (options.Rank is <= 0) throw new Core.UserErrorException($"The rank must be positive (is {options.Rank}).");
        if (options.Energy is { } e && !(e > 0 && e <= 1)) throw new Core.UserErrorException($"The energy share must be in (0, 1] (is {e}).");
        if (options.MaxRank <= 0) throw new Core.UserErrorException($"The maximum rank must be positive (is {options.MaxRank}).");
        // Both name sets: a model has only one of them (phi3 the fused qkv_proj / gate_up_proj), so the other never matches.
        string[] linear = [.. LlamaLayer.ProjectionNames, "qkv_proj", "gate_up_proj"];
        var targets = options.TargetModules ?? linear;
        foreach (var t in targets)
            if (!linear.Contains(t)) throw new Core.UserErrorException($"'{t}' is not a linear module ({string.Join(", ", linear)}).");

        // Check every shape and the requested rank before any work.
        var notes = new List<string>();
        var work = new List<(string Weight, int N, int K)>();
        foreach (var (name, bt) in baseTensors.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!tunedTensors.TryGetValue(name, out var tt))
                throw new Core.UserErrorException($"{tunedSource} has no tensor {name}, which {baseSource} has; the two are not the same architecture.");
            if (!bt.Shape.AsSpan().SequenceEqual(tt.Shape))
                throw new Core.UserErrorException($"{name} is {bt.ShapeText} in the base {baseSource} but {tt.ShapeText} in the tuned model {tunedSource}; the tuned model was not fine-tuned from this base.");
            string leaf = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^7][(name[..^7].LastIndexOf('.') + 1)..] : "";
            if (TensorNames.LayerIndex(name) != null && targets.Contains(leaf) && bt.Shape.Length == 2)
            {
                int N = bt.Shape[0], K = bt.Shape[1];
                if (options.Rank is int r && r > Math.Min(N, K))
                    throw new Core.UserErrorException($"Rank {r} is larger than {name} allows: it is [{N}, {K}], so the rank is at most {Math.Min(N, K)}.");
                work.Add((name, N, K));
            }
        }
        foreach (var name in tunedTensors.Keys)
            if (!baseTensors.ContainsKey(name))
                throw new Core.UserErrorException($"{tunedSource} has tensor {name}, which the base {baseSource} lacks; the two are not the same architecture.");

        foreach (var (name, bt) in baseTensors.OrderBy(p => p.Key, StringComparer.Ordinal))
            if (!work.Exists(w => w.Weight == name) && !SameValues(bt, tunedTensors[name]))
                notes.Add($"{name} differs between the models but is not a LoRA target; the difference is not in the adapter.");

        var modules = new List<LoraModuleWeights>();
        var report = new List<ExtractedModule>();
        double totalEnergy = 0, keptEnergy = 0;
        foreach (var (name, N, K) in work)
        {
            var wb = ToF32(baseTensors[name]);
            var wt = ToF32(tunedTensors[name]);
            var delta = new float[wb.Length];
            bool any = false;
            for (int i = 0; i < delta.Length; i++)
            {
                double d = (double)wt[i] - wb[i];
                if (!double.IsFinite(d)) throw new Core.UserErrorException($"{name}: the difference is not finite at row {i / K}, column {i % K} (tuned {wt[i]}, base {wb[i]}).");
                delta[i] = (float)d;
                any |= d != 0;
            }
            string module = name[..^".weight".Length];
            if (!any)
            {
                notes.Add($"{module}: ΔW is zero; left out.");
                continue;
            }
            int cap = Math.Min(Math.Min(N, K), options.Rank ?? options.MaxRank);
            var svd = TruncatedSvd.Compute(delta, N, K, cap, options.Seed);
            int rank = options.Rank ?? ChooseRank(svd, options.Energy!.Value);
            if (options.Energy is { } target && svd.EnergyKept(rank) < target)
                notes.Add($"{module}: rank {rank} (the cap) keeps {svd.EnergyKept(rank) * 100:F2}% of ΔW's energy, below the target {target * 100:F1}%; raise --max-rank.");
            var (m, kept) = Build(module, svd, N, K, rank);
            modules.Add(m);
            report.Add(new ExtractedModule(module, rank, kept, svd.TotalEnergy));
            totalEnergy += svd.TotalEnergy;
            keptEnergy += kept * svd.TotalEnergy;
            log?.Invoke($"{module}: rank {rank}, energy kept {kept * 100:F2}%");
        }
        if (modules.Count == 0) throw new Core.UserErrorException($"{tunedSource} and {baseSource} have identical linear weights; there is nothing to extract.");
        var weights = new LoraWeights(modules, tunedSource, baseSource);
        return (weights, new ExtractReport(report, totalEnergy > 0 ? keptEnergy / totalEnergy : 1, notes));
    }

    private static int ChooseRank(SvdResult svd, double energy)
    {
        for (int r = 1; r <= svd.Rank; r++)
            if (svd.EnergyKept(r) >= energy - 1e-12) return r;
        return svd.Rank;
    }

    /// <summary>Factors the dense ΔW [N, K] at rank <paramref name="rank"/>: B = U·diag(S), A = Vᵀ, scale 1.</summary>
    public static (LoraModuleWeights Module, double EnergyKept) Factor(string module, float[] delta, int N, int K, int rank, int seed = 0)
    {
        var svd = TruncatedSvd.Compute(delta, N, K, rank, seed);
        return Build(module, svd, N, K, rank);
    }

    private static (LoraModuleWeights, double) Build(string module, SvdResult svd, int N, int K, int rank)
    {
        var a = new float[rank * K];
        var b = new float[N * rank];
        for (int r = 0; r < rank; r++)
            for (int k = 0; k < K; k++) a[r * K + k] = (float)svd.Vt[r * K + k];
        for (int n = 0; n < N; n++)
            for (int r = 0; r < rank; r++) b[n * rank + r] = (float)(svd.U[n * svd.Rank + r] * svd.S[r]);
        return (new LoraModuleWeights(module, rank, K, N, a, b, 1.0), svd.EnergyKept(rank));
    }

    /// <summary>The values of <paramref name="t"/> widened to f32 (any readable dtype).</summary>
    internal static unsafe float[] ToF32(Tensor t)
    {
        var dst = new float[t.ElementCount];
        if (dst.Length == 0) return dst;
        int K = t.Shape.Length == 0 ? 1 : t.Shape[^1];
        long rows = t.ElementCount / K;
        long rowBytes = t.ByteLength / rows;
        byte* p = (byte*)t.Pointer;
        for (long r = 0; r < rows; r++)
            Dequant.DequantizeRow(t.DType, new ReadOnlySpan<byte>(p + r * rowBytes, (int)rowBytes), dst.AsSpan((int)(r * K), K));
        return dst;
    }

    private static bool SameValues(Tensor a, Tensor b) => a.DType == b.DType ? a.Bytes.SequenceEqual(b.Bytes) : ToF32(a).AsSpan().SequenceEqual(ToF32(b));
}
