// Creates optimizers from the names Hugging Face TrainingArguments.optim and text-generation-webui use.
// Not every HF name exists here (no 8-bit, paged, fused or bitsandbytes variants): an unknown name is an error that
// lists the valid ones.
namespace LoraSharp.Core.Optim;

/// <summary>Optimizer construction by name.</summary>
public static class OptimizerFactory
{
    /// <summary>The accepted names, canonical first, aliases in parentheses.</summary>
    public const string ValidNames = "adamw (also adamw_torch, adamw_hf), adam, sgd, adafactor, lion (also lion_32bit), sophia (also sophiag)";

    /// <summary>The canonical names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["adamw", "adam", "sgd", "adafactor", "lion", "sophia"];

    /// <summary>Creates the optimizer <paramref name="name"/> (case-insensitive) with <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="ValidNames"/>.</exception>
    public static Optimizer Create(string name, OptimizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        var o = options ?? new OptimizerOptions();
        return name.Trim().ToLowerInvariant() switch
        {
            "adamw" or "adamw_torch" or "adamw_hf" => new AdamW(o.Beta1 ?? 0.9, o.Beta2 ?? 0.999, o.Epsilon ?? 1e-8, o.WeightDecay),
            "adam" => new Adam(o.Beta1 ?? 0.9, o.Beta2 ?? 0.999, o.Epsilon ?? 1e-8, o.WeightDecay),
            "sgd" => new Sgd(o.Momentum, o.Dampening, o.WeightDecay, o.Nesterov),
            "adafactor" => new Adafactor(o.AdafactorEps1, o.AdafactorEps2, o.ClipThreshold, o.DecayRate, o.Beta1, o.WeightDecay,
                o.ScaleParameter ?? false, o.RelativeStep ?? false, o.WarmupInit),
            "lion" or "lion_32bit" => new Lion(o.Beta1 ?? 0.9, o.Beta2 ?? 0.99, o.WeightDecay),
            "sophia" or "sophiag" => new Sophia(o.Beta1 ?? 0.965, o.Beta2 ?? 0.99, o.SophiaRho, o.Epsilon ?? 1e-15, o.WeightDecay),
            _ => throw new ArgumentException($"Unknown optimizer '{name}'. Valid names: {ValidNames}.", nameof(name)),
        };
    }
}
