// Converts a DoRA adapter to a plain LoRA for tools that only know ΔW = s·B·A (llama.cpp's GGUF LoRA, combine):
// per module the effective change  ΔW = m ⊙ (W + s·B·A) / ‖W + s·B·A‖ − W  (rows; W the base weight, in double) is
// factored by a truncated SVD at the adapter's rank (or a given one), B' = U·diag(S), A' = Vᵀ, scale 1. The change
// is generally full rank (the row scale touches all of W), so the conversion is approximate; the relative error
// ‖ΔW − B'A'‖_F / ‖ΔW‖_F of every module is reported, never hidden.
// Not here: the exact alternative, merging into the base (AdapterMerger), which needs no conversion.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Training.Adapters;

/// <summary>The error of one converted module.</summary>
/// <param name="Module">HF module name.</param>
/// <param name="Rank">Rank of the plain LoRA.</param>
/// <param name="RelativeError">‖ΔW − B'A'‖_F / ‖ΔW‖_F (0 when ΔW is zero).</param>
public sealed record DoraConversionModule(string Module, int Rank, double RelativeError);

/// <summary>What a conversion lost: per module and overall (‖all residuals‖_F / ‖all ΔW‖_F).</summary>
public sealed record DoraConversionReport(IReadOnlyList<DoraConversionModule> Modules, double RelativeError);

/// <summary>DoRA → plain LoRA by SVD.</summary>
public static class DoraConversion
{
    /// <summary>
    /// Converts <paramref name="dora"/> (plain modules pass through unchanged) against the base weights
    /// <paramref name="baseTensors"/> (HF names, any readable dtype). <paramref name="rank"/> null keeps each module's rank.
    /// </summary>
    public static (LoraWeights Weights, DoraConversionReport Report) ToPlainLora(LoraWeights dora, IReadOnlyDictionary<string, Tensor> baseTensors, int? rank = null, int seed = 0)
    {
        if (rank is <= 0) throw new Core.UserErrorException($"--rank must be positive (is {rank}).");
        dora.CheckAgainst(name => baseTensors.TryGetValue(name, out var t) ? t.Shape : null, "the base model");
        var modules = new List<LoraModuleWeights>();
        var report = new List<DoraConversionModule>();
        double totalEnergy = 0, totalResidual = 0;
        foreach (var m in dora.Modules)
        {
            m.CheckFinite(dora.Source);
            if (!m.IsDora)
            {
                modules.Add(m);
                continue;
            }
            int N = m.OutFeatures, K = m.InFeatures, r = Math.Min(rank ?? m.Rank, Math.Min(N, K));
            var w = LoraExtractor.ToF32(baseTensors[m.WeightName]);
            var delta = new float[(long)N * K];
            var row = new double[K];
            for (int n = 0; n < N; n++)
            {
                for (int k = 0; k < K; k++) row[k] = w[(long)n * K + k];
                m.AddDeltaToRow(n, row, 1.0);
                m.ApplyDoraToRow(n, row);
                for (int k = 0; k < K; k++) delta[(long)n * K + k] = (float)(row[k] - w[(long)n * K + k]);
            }
            var (plain, kept) = LoraExtractor.Factor(m.Module, delta, N, K, r, seed);
            double energy = 0;
            foreach (float v in delta) energy += (double)v * v;
            double residual = Math.Max(0, 1 - kept) * energy;   // ‖ΔW − B'A'‖² = (1 − kept)·‖ΔW‖² for the SVD truncation
            totalEnergy += energy;
            totalResidual += residual;
            report.Add(new DoraConversionModule(m.Module, r, energy > 0 ? Math.Sqrt(residual / energy) : 0));
            modules.Add(plain);
        }
        var weights = new LoraWeights(modules, dora.Source + " (DoRA converted to LoRA)", dora.BaseModel, dora.SavedModules);
        return (weights, new DoraConversionReport(report, totalEnergy > 0 ? Math.Sqrt(totalResidual / totalEnergy) : 0));
    }
}
