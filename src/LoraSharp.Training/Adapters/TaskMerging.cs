// The task-vector merges of PEFT's utils/merge_utils.py (TIES: Yadav et al. 2023; DARE: Yu et al. 2023), on flat
// double tensors t_i with weights w_i, all of one shape:
//   magnitude prune   keep the int(density·n) largest |t| (ties broken by index), zero the rest; Σ w_i·t_i
//   ties              magnitude prune, elect the sign per element from the pruned tensors ("total": sign of Σ t_i,
//                     "frequency": sign of Σ sign(t_i); 0 counts as +), then Σ_i w_i·t_i·[sign t_i = elected] divided
//                     by max(1, number of tensors kept there)   (PEFT's disjoint_merge)
//   dare_linear       keep each element with probability density, rescale kept ones by 1/density; Σ w_i·t_i
//   dare_ties         DARE's random pruning, then the TIES sign election and disjoint merge
// density ≥ 1 leaves a tensor unpruned (as PEFT's prune). DARE's mask is a counter-based stream of (seed, tensor),
// so a combine is reproducible; it cannot equal torch.bernoulli's draws, only their distribution.
using LoraSharp.Core.Kernels;

namespace LoraSharp.Training.Adapters;

/// <summary>TIES / DARE / magnitude-prune merging of task tensors.</summary>
public static class TaskMerging
{
    /// <summary>The merge of <paramref name="tensors"/> with <paramref name="weights"/> by <paramref name="method"/>
    /// ("ties", "dare_linear", "dare_ties", "magnitude_prune").</summary>
    public static double[] Merge(IReadOnlyList<double[]> tensors, IReadOnlyList<double> weights, string method, double density, string majoritySignMethod, ulong seed)
    {
        if (tensors.Count == 0 || tensors.Count != weights.Count) throw new ArgumentException("Give one weight per tensor (at least one tensor).");
        if (!(density > 0 && density <= 1)) throw new ArgumentException($"density must be in (0, 1] (is {density}).");
        if (majoritySignMethod is not ("total" or "frequency"))
            throw new Core.UserErrorException($"majority_sign_method '{majoritySignMethod}' is not total or frequency.");
        int n = tensors[0].Length;
        foreach (var t in tensors)
            if (t.Length != n) throw new ArgumentException("Task tensors must have the same shape.");
        var pruned = new List<double[]>(tensors.Count);
        for (int i = 0; i < tensors.Count; i++)
            pruned.Add(method switch
            {
                "ties" or "magnitude_prune" => MagnitudePrune(tensors[i], density),
                "dare_linear" or "dare_ties" => RandomPrune(tensors[i], density, seed + (ulong)i * 0x9E3779B97F4A7C15UL),
                _ => throw new ArgumentException($"'{method}' is not ties, dare_linear, dare_ties or magnitude_prune."),
            });
        var result = new double[n];
        if (method is "magnitude_prune" or "dare_linear")
        {
            for (int i = 0; i < pruned.Count; i++)
                for (int k = 0; k < n; k++) result[k] += weights[i] * pruned[i][k];
            return result;
        }
        for (int k = 0; k < n; k++)
        {
            double elect = 0;
            for (int i = 0; i < pruned.Count; i++) elect += majoritySignMethod == "total" ? pruned[i][k] : Math.Sign(pruned[i][k]);
            int sign = elect >= 0 ? 1 : -1;
            double sum = 0;
            int kept = 0;
            for (int i = 0; i < pruned.Count; i++)
                if (Math.Sign(pruned[i][k]) == sign)
                {
                    sum += weights[i] * pruned[i][k];
                    kept++;
                }
            result[k] = sum / Math.Max(1, kept);
        }
        return result;
    }

    /// <summary>Keeps the int(density·n) largest magnitudes (ties: lower index first); density ≥ 1 keeps all.</summary>
    public static double[] MagnitudePrune(double[] t, double density)
    {
        if (density >= 1) return (double[])t.Clone();
        int k = (int)(density * t.Length);
        var order = Enumerable.Range(0, t.Length).OrderByDescending(i => Math.Abs(t[i])).ThenBy(i => i).Take(k);
        var r = new double[t.Length];
        foreach (int i in order) r[i] = t[i];
        return r;
    }

    /// <summary>Keeps each element with probability density and divides it by density; density ≥ 1 keeps all.</summary>
    public static double[] RandomPrune(double[] t, double density, ulong seed)
    {
        if (density >= 1) return (double[])t.Clone();
        var rng = new CounterRng(seed);
        var r = new double[t.Length];
        for (int i = 0; i < t.Length; i++)
            if (rng.Next((ulong)i) * (1.0 / 4294967296.0) < density) r[i] = t[i] / density;
        return r;
    }
}
