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
// A module present in only some adapters combines those that have it (PEFT skips absent adapters the same way).
// Not here: ties/dare/magnitude_prune variants.
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
}

/// <summary>Combines adapters with weights into one.</summary>
public static class AdapterCombiner
{
    /// <summary>Parses "linear", "cat" or "svd".</summary>
    public static CombineMethod ParseMethod(string text) => text.Trim().ToLowerInvariant() switch
    {
        "linear" => CombineMethod.Linear,
        "cat" => CombineMethod.Cat,
        "svd" => CombineMethod.Svd,
        _ => throw new Core.UserErrorException($"Combination '{text}' is not one of linear, cat, svd."),
    };

    /// <summary>
    /// The combination of <paramref name="adapters"/> (adapter, weight). <paramref name="targetRank"/> is used by
    /// svd only (null = largest input rank per module). All checks run before any factor is computed.
    /// </summary>
    public static LoraWeights Combine(IReadOnlyList<(LoraWeights Weights, double Weight)> adapters, CombineMethod method, int? targetRank = null, string source = "combined")
    {
        if (adapters.Count == 0) throw new Core.UserErrorException("Give at least one adapter to combine.");
        foreach (var (w, weight) in adapters)
        {
            if (!double.IsFinite(weight)) throw new Core.UserErrorException($"{w.Source}: weight {weight} is not finite.");
            foreach (var m in w.Modules) m.CheckFinite(w.Source);
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
            if (method == CombineMethod.Linear)
                foreach (var p in parts)
                    if (p.M.Rank != first.M.Rank)
                        throw new Core.UserErrorException(
                            $"The linear combination needs equal ranks, but '{name}' has rank {first.M.Rank} in {first.Source} and {p.M.Rank} in {p.Source}; use --method cat or svd.");
            if (method == CombineMethod.Svd)
            {
                int r = targetRank ?? parts.Max(p => p.M.Rank);
                int min = Math.Min(first.M.InFeatures, first.M.OutFeatures);
                if (r > min)
                    throw new Core.UserErrorException($"Target rank {r} is larger than '{name}' allows: its ΔW is [{first.M.OutFeatures}, {first.M.InFeatures}], so the rank is at most {min}.");
            }
            groups.Add((name, parts));
        }

        var result = new List<LoraModuleWeights>();
        foreach (var (name, parts) in groups)
        {
            var f = parts[0].M;
            int K = f.InFeatures, N = f.OutFeatures;
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
