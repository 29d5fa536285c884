// Use case "combine adapters into one" (linear, cat, svd, ties, dare_linear, dare_ties, magnitude_prune and their
// _svd variants; PEFT add_weighted_adapter semantics), writing a PEFT
// folder. Adapter specs are PATH[:WEIGHT]. Not here: option parsing or presentation.
using LoraSharp.App.Progress;
using LoraSharp.Models.Loading;
using LoraSharp.Training.Adapters;

namespace LoraSharp.App;

/// <summary>Options of <see cref="CombineJob"/>.</summary>
public sealed record CombineJobOptions
{
    /// <summary>Adapters as PATH[:WEIGHT].</summary>
    public required IReadOnlyList<string> Adapters { get; init; }

    /// <summary>A PEFT combination_type (AdapterCombiner.MethodNames).</summary>
    public string Method { get; init; } = "linear";

    /// <summary>ties / dare / magnitude_prune: share of each task tensor kept (PEFT density; 1 = no pruning).</summary>
    public double Density { get; init; } = 1.0;

    /// <summary>ties / dare_ties: total or frequency (PEFT majority_sign_method).</summary>
    public string MajoritySignMethod { get; init; } = "total";

    /// <summary>dare: seed of the random pruning.</summary>
    public int Seed { get; init; }

    /// <summary>svd target rank (null = largest input rank).</summary>
    public int? Rank { get; init; }

    /// <summary>Output PEFT folder.</summary>
    public required string OutPath { get; init; }

    /// <summary>Base model, needed only for GGUF LoRA inputs.</summary>
    public string? ModelPath { get; init; }

    /// <summary>Replace an existing output.</summary>
    public bool Overwrite { get; init; }
}

/// <summary>Combines adapters.</summary>
public static class CombineJob
{
    /// <summary>Runs the combination; everything is checked before the folder is written.</summary>
    public static LoraWeights Run(CombineJobOptions options, IProgressSink? progress = null)
    {
        if (options.Adapters.Count == 0) throw new Core.UserErrorException("Give at least one adapter (--adapter PATH[:WEIGHT]).");
        var method = AdapterCombiner.ParseMethod(options.Method);
        if (options.Rank != null && !AdapterCombiner.IsSvd(method)) throw new Core.UserErrorException("--rank applies to --method svd and the *_svd methods only.");
        string full = Path.GetFullPath(options.OutPath);
        if (!options.Overwrite && (Directory.Exists(full) || File.Exists(full)))
            throw new IOException($"{full} already exists; choose another name or pass --overwrite to replace it.");
        Models.LlamaConfig? config = null;
        if (options.ModelPath != null)
        {
            using var loaded = ModelLoader.Load(options.ModelPath, new ModelLoadOptions { BaseDType = "stored" });
            config = loaded.Config;
        }
        var inputs = options.Adapters.Select(AdapterLoader.ParseSpec).Select(s => (AdapterLoader.Read(s.Path, config), s.Scale)).ToList();
        var combined = AdapterCombiner.Combine(inputs, method, options.Rank, full, options.Density, options.MajoritySignMethod, (ulong)options.Seed);
        combined.SavePeft(full, options.Overwrite);
        progress?.Log($"{method.ToString().ToLowerInvariant()}: {combined.Modules.Count} modules, rank {string.Join("/", combined.Modules.Select(m => m.Rank).Distinct().Order())} -> {full}");
        return combined;
    }
}
