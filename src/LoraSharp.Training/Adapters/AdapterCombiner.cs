// Combines several LoRA adapters, each with a weight w_i, into one adapter, following PEFT's
// LoraModel.add_weighted_adapter (s_i is adapter i's own scale, alpha/r or alpha/√r):
//   linear  every input must have the same rank per module. A' = Σ sign(w_i)·√|w_i·s_i|·A_i,
//           B' = Σ √|w_i·s_i|·B_i, scale 1 (PEFT sets lora_alpha = r). With one adapter ΔW' = w·s·B·A exactly; with
//           several, ΔW' = (Σ√c_i B_i)(Σ√c_j A_j) includes cross terms B_i·A_j, as in PEFT. (PEFT takes √(w·s) and
//           so rejects negative weights; the sign on A keeps them meaningful here.)
//   cat     ranks add: A' = [sign(w_i)·√|c_i|·A_i stacked on rows], B' = [√|c_i|·B_i side by side], scale 1.
//           ΔW' = Σ w_i·s_i·B_i·A_i exactly.
//   svd     ΔW = Σ w_i·s_i·B_i·A_i (double) truncated to the target rank: B' = U·diag(S), A' = Vᵀ, scale 1
//           (PEFT's svd combination; default target rank = the largest input rank of the module).
//   ties, dare_linear, dare_ties, magnitude_prune (TaskMerging): as linear, with A's and B's of the inputs merged
//           by that method (weights ±√|w_i·s_i| on A, √|w_i·s_i| on B; PEFT applies them to lora_A and lora_B separately), scale 1.
//   ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd: the method on the deltas s_i·B_i·A_i with weights
//           w_i, then truncated SVD as svd.
// density (default 1: nothing pruned), majority_sign_method (total or frequency) and seed (DARE) are PEFT's arguments.
// A module present in only some adapters combines those that have it (PEFT skips absent adapters the same way).
namespace LoraSharp.Training.Adapters;

/// <summary>How <see cref="AdapterCombiner"/> combines adapters.</summary>
public enum CombineMethod
{
    /// <summary>Weighted sum of A and of B (same ranks).</summary>
    Linear,

    /// <summary>Concatenation along the rank (ranks add).</summary>
    Cat,

    /// <summary>Weighted sum of deltas, re-factored by truncated SVD.</summary>
    Svd,

    /// <summary>TIES on A and on B (equal ranks).</summary>
    Ties,
    /// <summary>DARE (random pruning, rescaled) then weighted sum, on A and on B.</summary>
    DareLinear,
    /// <summary>DARE pruning then TIES' sign election and disjoint merge, on A and on B.</summary>
    DareTies,
    /// <summary>Magnitude pruning then weighted sum, on A and on B.</summary>
    MagnitudePrune,
    /// <summary>TIES on the deltas, re-factored by SVD.</summary>
    TiesSvd,
    /// <summary>DARE-linear on the deltas, re-factored by SVD.</summary>
    DareLinearSvd,
    /// <summary>DARE-TIES on the deltas, re-factored by SVD.</summary>
    DareTiesSvd,
    /// <summary>Magnitude pruning on the deltas, re-factored by SVD.</summary>
    MagnitudePruneSvd,
}

/// <summary>Combines adapters with weights into one.</summary>
public static class AdapterCombiner
{
    /// <summary>The method names, as PEFT's combination_type.</summary>
    public const string MethodNames = "linear, cat, svd, ties, dare_linear, dare_ties, magnitude_prune, ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd";

    /// <summary>Parses a PEFT combination_type (<see cref="MethodNames"/>).</summary>
    public static CombineMethod ParseMethod(string text) => text.Trim().ToLowerInvariant() switch
    {
        "linear" => CombineMethod.Linear,
        "cat" => CombineMethod.Cat,
        "svd" => CombineMethod.Svd,
        "ties" => CombineMethod.Ties,
        "dare_linear" => CombineMethod.DareLinear,
        "dare_ties" => CombineMethod.DareTies,
        "magnitude_prune" => CombineMethod.MagnitudePrune,
        "ties_svd" => CombineMethod.TiesSvd,
        "dare_linear_svd" => CombineMethod.DareLinearSvd,
        "dare_ties_svd" => CombineMethod.DareTiesSvd,
        "magnitude_prune_svd" => CombineMethod.MagnitudePruneSvd,
        _ => throw new Core.UserErrorException($"Combination '{text}' is not one of {MethodNames}."),
    };

    /// <summary>True for the methods that re-factor a dense ΔW by SVD (and take a target rank).</summary>
    public static bool IsSvd(CombineMethod m) => m is CombineMethod.Svd or CombineMethod.TiesSvd or CombineMethod.DareLinearSvd or CombineMethod.DareTiesSvd or CombineMethod.MagnitudePruneSvd;

    private static string? TaskMethod(CombineMethod m) => m switch
    {
        CombineMethod.Ties or CombineMethod.TiesSvd => "ties",
        CombineMethod.DareLinear or CombineMethod.DareLinearSvd => "dare_linear",
        CombineMethod.DareTies or CombineMethod.DareTiesSvd => "dare_ties",
        CombineMethod.MagnitudePrune or CombineMethod.MagnitudePruneSvd => "magnitude_prune",
        _ => null,
    };

    /// <summary>
    /// The combination of <paramref name="adapters"/> (adapter, weight). <paramref name="targetRank"/> is used by
    /// svd only (null = largest input rank per module). All checks run before any factor is computed.
    /// </summary>
    public static LoraWeights Combine(IReadOnlyList<(LoraWeights Weights, double Weight)> adapters, CombineMethod method, int? targetRank = null, string source = "combined",
        double density = 1.0, string majoritySignMethod = "total", ulong seed = 0)
    {
        if (!(density > 0 && density <= 1)) throw new Core.UserErrorException($"density must be in (0, 1] (is {density}); it is the share of each task tensor kept by ties/dare/magnitude_prune.");
        if (majoritySignMethod is not ("total" or "frequency")) throw new Core.UserErrorException($"majority_sign_method '{majoritySignMethod}' is not total or frequency.");
        if (adapters.Count == 0) throw new Core.UserErrorException("Give at least one adapter to combine.");
        foreach (var (w, weight) in adapters)
        {
            if (!double.IsFinite(weight)) throw new Core.UserErrorException($"{w.Source}: weight {weight} is not finite.");
            if (w.SavedModules.Count > 0)
                throw new Core.UserErrorException($"{w.Source} carries modules_to_save ({string.Join(", ", w.SavedModules.Select(m => m.Module))}): full matrices cannot be combined as LoRA deltas. Merge it into the base instead (lorasharp merge), after or before the others.");
            foreach (var m in w.Modules)
            {
                m.CheckFinite(w.Source);
                m.RequirePlainLora("combining adapters");
            }
        }
        if (targetRank is <= 0) throw new Core.UserErrorException($"The target rank must be positive (is {targetRank}).");

        var names = adapters.SelectMany(a => a.Weights.Modules.Select(m => m.Module)).Distinct().Order(StringComparer.Ordinal).ToList();
        var groups = new List<(string Module, List<(LoraModuleWeights M, double C, string Source)> Parts)>();
        foreach (string name in names)
        {
            var parts = new List<(LoraModuleWeights M, double C, string Source)>();
            foreach (var (w, weight) in adapters)
                if (w.Find(name) is { } m) parts.Add((m, weight * m.Scale, w.Source));
            var first = parts[0];
            foreach (var p in parts)
                if (p.M.InFeatures != first.M.InFeatures || p.M.OutFeatures != first.M.OutFeatures)
                    throw new Core.UserErrorException(
                        $"'{name}' has ΔW [{first.M.OutFeatures}, {first.M.InFeatures}] in {first.Source} but [{p.M.OutFeatures}, {p.M.InFeatures}] in {p.Source}; the adapters were made for different bases.");
            if (method is CombineMethod.Linear or CombineMethod.Ties or CombineMethod.DareLinear or CombineMethod.DareTies or CombineMethod.MagnitudePrune)
                foreach (var p in parts)
                    if (p.M.Rank != first.M.Rank)
                        throw new Core.UserErrorException(
                            $"The {method.ToString().ToLowerInvariant()} combination needs equal ranks, but '{name}' has rank {first.M.Rank} in {first.Source} and {p.M.Rank} in {p.Source}; use --method cat or svd.");
            if (IsSvd(method))
            {
                int r = targetRank ?? parts.Max(p => p.M.Rank);
                int min = Math.Min(first.M.InFeatures, first.M.OutFeatures);
                if (r > min)
                    throw new Core.UserErrorException($"Target rank {r} is larger than '{name}' allows: its ΔW is [{first.M.OutFeatures}, {first.M.InFeatures}], so the rank is at most {min}.");
            }
            groups.Add((name, parts));
        }

        var result = new List<LoraModuleWeights>();
        ulong moduleSeed = seed;
        foreach (var (name, parts) in groups)
        {
            var f = parts[0].M;
            int K = f.InFeatures, N = f.OutFeatures;
            moduleSeed = moduleSeed * 0xD1B54A32D192ED03UL + 0x632BE59BD9B4E019UL;
            if (TaskMethod(method) is { } task)
            {
                if (IsSvd(method))
                {
                    int R = targetRank ?? parts.Max(p => p.M.Rank);
                    var deltas = parts.Select(p => p.M.Delta()).ToList();
                    var w = parts.Select(p => p.M.Scale == 0 ? 0 : p.C / p.M.Scale).ToList();
                    var delta = TaskMerging.Merge(deltas, w, task, density, majoritySignMethod, moduleSeed);
                    result.Add(LoraExtractor.Factor(name, ToFloat(delta), N, K, R).Module);
                }
                else
                {
                    var aw = parts.Select(p => Math.Sign(p.C) * Math.Sqrt(Math.Abs(p.C))).ToList();
                    var bw = parts.Select(p => Math.Sqrt(Math.Abs(p.C))).ToList();
                    var a = TaskMerging.Merge(parts.Select(p => p.M.A.Select(v => (double)v).ToArray()).ToList(), aw, task, density, majoritySignMethod, moduleSeed);
                    var b = TaskMerging.Merge(parts.Select(p => p.M.B.Select(v => (double)v).ToArray()).ToList(), bw, task, density, majoritySignMethod, moduleSeed ^ 0xB);
                    result.Add(new LoraModuleWeights(name, f.Rank, K, N, ToFloat(a), ToFloat(b), 1.0));
                }
                continue;
            }
            switch (method)
            {
                case CombineMethod.Linear:
                {
                    int R = f.Rank;
                    var a = new double[R * K];
                    var b = new double[N * R];
                    foreach (var (m, c, _) in parts)
                    {
                        double root = Math.Sqrt(Math.Abs(c)), signed = Math.Sign(c) * root;
                        for (int i = 0; i < a.Length; i++) a[i] += signed * m.A[i];
                        for (int i = 0; i < b.Length; i++) b[i] += root * m.B[i];
                    }
                    result.Add(new LoraModuleWeights(name, R, K, N, ToFloat(a), ToFloat(b), 1.0));
                    break;
                }
                case CombineMethod.Cat:
                {
                    int R = parts.Sum(p => p.M.Rank);
                    var a = new float[R * K];
                    var b = new float[N * R];
                    int at = 0;
                    foreach (var (m, c, _) in parts)
                    {
                        double root = Math.Sqrt(Math.Abs(c)), signed = Math.Sign(c) * root;
                        for (int r = 0; r < m.Rank; r++)
                            for (int k = 0; k < K; k++) a[(at + r) * K + k] = (float)(signed * m.A[r * K + k]);
                        for (int n = 0; n < N; n++)
                            for (int r = 0; r < m.Rank; r++) b[n * R + at + r] = (float)(root * m.B[n * m.Rank + r]);
                        at += m.Rank;
                    }
                    result.Add(new LoraModuleWeights(name, R, K, N, a, b, 1.0));
                    break;
                }
                default:
                {
                    int R = targetRank ?? parts.Max(p => p.M.Rank);
                    var delta = new double[(long)N * K];
                    foreach (var (m, c, _) in parts)
                        for (int n = 0; n < N; n++) m.AddDeltaToRow(n, delta.AsSpan(n * K, K), m.Scale == 0 ? 0 : c / m.Scale);
                    result.Add(LoraExtractor.Factor(name, ToFloat(delta), N, K, R).Module);
                    break;
                }
            }
        }
        return new LoraWeights(result, source, adapters[0].Weights.BaseModel);
    }

    internal static float[] ToFloat(double[] x)
    {
        var f = new float[x.Length];
        for (int i = 0; i < x.Length; i++) f[i] = (float)x[i];
        return f;
    }
}
