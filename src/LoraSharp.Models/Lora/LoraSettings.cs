// Which projections get a LoRA adapter and with what rank/alpha: PEFT LoraConfig's knobs in PascalCase.
using System.Text.RegularExpressions;

namespace LoraSharp.Models.Lora;

/// <summary>LoRA hyperparameters (PEFT names: r, lora_alpha, lora_dropout, target_modules, ...).</summary>
public sealed record LoraSettings
{
    /// <summary>The rank when none is given (text-generation-webui's; training settings use it too).</summary>
    public const int DefaultRank = 32;

    private readonly double? _alpha;

    /// <summary>Rank r.</summary>
    public int Rank { get; init; } = DefaultRank;

    /// <summary>lora_alpha; scaling is alpha / r (alpha / √r with rsLoRA). Not given: 2 × <see cref="Rank"/>.</summary>
    public double Alpha { get => _alpha ?? 2.0 * Rank; init => _alpha = value; }

    /// <summary>lora_dropout on the adapter's input path.</summary>
    public double Dropout { get; init; }

    /// <summary>Module names (q_proj, ..., down_proj) or the single entry "all-linear".</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];

    /// <summary>Layers to adapt (null = all).</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>PEFT rank_pattern: key (a module-name suffix or regex) → rank.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>PEFT alpha_pattern: key → alpha.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>use_rslora: scale alpha / √r.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>
    /// init_lora_weights: "default" (A Kaiming-uniform, B zero; PEFT's true), "gaussian" (A normal std 1/r, B zero),
    /// "none" (both random, for tests; PEFT's false), or one of the base-derived inits that move part of W into the
    /// adapter: "pissa", "pissa_niter_K" (randomized SVD, K subspace iterations), "olora" (QR). "true"/"false" are
    /// accepted as PEFT spells them. The base-derived inits change the base weights, so <see cref="LoraInjector"/>
    /// refuses them: LoraSharp.Training.Adapters.PissaInit attaches those.
    /// </summary>
    public string Init { get; init; } = "default";

    /// <summary>use_dora: weight-decomposed LoRA (a magnitude vector per adapted projection).</summary>
    public bool UseDora { get; init; }

    /// <summary>The accepted init_lora_weights values, for messages.</summary>
    public const string InitNames = "default (true), gaussian, none (false), pissa, pissa_niter_K (K >= 1), olora";

    /// <summary>PEFT's spellings mapped to LoraSharp's: "true" → "default", "false" → "none"; anything else unchanged.</summary>
    public static string CanonicalInit(string init) => init switch { "true" => "default", "false" => "none", _ => init };

    /// <summary>True for "pissa", "pissa_niter_K" and "olora": inits computed from the base weight, which they change.</summary>
    public static bool IsBaseDerivedInit(string init) => init is "pissa" or "olora" || TryParsePissaNiter(init, out _);

    /// <summary>Parses "pissa_niter_K" (K a positive integer, PEFT's fast SVD with K subspace iterations).</summary>
    public static bool TryParsePissaNiter(string init, out int niter)
    {
        niter = 0;
        const string prefix = "pissa_niter_";
        return init.StartsWith(prefix, StringComparison.Ordinal)
               && int.TryParse(init.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out niter)
               && niter >= 1;
    }

    /// <summary>The resolved module list (all seven for all-linear).</summary>
    public IReadOnlyList<string> ResolvedTargets =>
        TargetModules.Count == 1 && TargetModules[0] is "all-linear" or "all" ? Llama.LlamaLayer.ProjectionNames : TargetModules;

    /// <summary>The targets in a model whose layers hold <paramref name="moduleNames"/> (phi3: qkv_proj, o_proj,
    /// gate_up_proj, down_proj): all of them for all-linear, else target_modules.</summary>
    public IReadOnlyList<string> ResolvedTargetsFor(IReadOnlyList<string> moduleNames) =>
        TargetModules.Count == 1 && TargetModules[0] is "all-linear" or "all" ? moduleNames : TargetModules;

    /// <summary>Rank for a module (full HF name like model.layers.3.self_attn.q_proj), after rank_pattern.</summary>
    public int RankFor(string moduleName) => Match(RankPattern, moduleName) is { } r ? r : Rank;

    /// <summary>Alpha for a module after alpha_pattern.</summary>
    public double AlphaFor(string moduleName) => Match(AlphaPattern, moduleName) is { } a ? a : Alpha;

    /// <summary>Scaling applied to B·A: alpha/r, or alpha/√r with rsLoRA.</summary>
    public float ScaleFor(string moduleName)
    {
        double r = RankFor(moduleName), alpha = AlphaFor(moduleName);
        return (float)(UseRsLora ? alpha / Math.Sqrt(r) : alpha / r);
    }

    // PEFT matches pattern keys with re.match(rf".*\.{key}$", name) (the first matching key wins).
    private static T? Match<T>(IReadOnlyDictionary<string, T> patterns, string name) where T : struct
    {
        foreach (var (key, value) in patterns)
            if (Regex.IsMatch(name, $"^(.*\\.)?{key}$")) return value;
        return null;
    }

    /// <summary>Throws with the setting's name when a value is invalid.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new Core.UserErrorException($"LoRA rank (r) must be positive (is {Rank}).");
        if (Alpha <= 0) throw new Core.UserErrorException($"lora_alpha must be positive (is {Alpha}).");
        if (Dropout is < 0 or >= 1) throw new Core.UserErrorException($"lora_dropout must be in [0, 1) (is {Dropout}).");
        if (TargetModules.Count == 0) throw new Core.UserErrorException("target_modules is empty; name at least one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all-linear.");
        foreach (var m in ResolvedTargets)
            if (!Llama.LlamaLayer.ProjectionNames.Contains(m) && !Llama.LlamaLayer.FusedProjectionNames.Contains(m))
                throw new Core.UserErrorException($"target module '{m}' does not exist in a Llama-family model; valid: {string.Join(", ", Llama.LlamaLayer.ProjectionNames)}, all-linear (phi3: {string.Join(", ", Llama.LlamaLayer.FusedProjectionNames)}).");
        if (CanonicalInit(Init) is not ("default" or "gaussian" or "none") && !IsBaseDerivedInit(Init))
            throw new Core.UserErrorException($"init_lora_weights '{Init}' is not one of {InitNames}.");
        if (IsBaseDerivedInit(Init) && UseDora)
            throw new Core.UserErrorException($"init_lora_weights '{Init}' with use_dora is not supported: DoRA's magnitude would be taken from the residual " +
                                                "weight. Use one or the other.");
        foreach (var (k, r) in RankPattern)
            if (r <= 0) throw new Core.UserErrorException($"rank_pattern['{k}'] must be positive (is {r}).");
    }
}
