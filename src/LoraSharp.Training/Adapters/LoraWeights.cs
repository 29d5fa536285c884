// A whole LoRA adapter held in memory as plain factors per module (LoraModuleWeights), with the PEFT folder
// reader/writer and the checks against a base model that every adapter tool shares. Reading resolves PEFT's
// scaling per module (lora_alpha or alpha_pattern, divided by the rank found in the file, or its square root with
// use_rslora), so rank/alpha patterns and rsLoRA need no special cases downstream. Writing keeps one r/lora_alpha
// and records modules that differ in rank_pattern / alpha_pattern (keyed by full module name, which PEFT's
// re.match(".*\.{key}$") matches exactly).
// Not here: GGUF LoRA files (GgufLoraAdapter) and the dispatch between formats (AdapterLoader).
using System.Globalization;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Peft;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training.Adapters;

/// <summary>A LoRA adapter as plain per-module factors.</summary>
public sealed class LoraWeights
{
    /// <summary>Creates an adapter from its modules (sorted by name; names must be unique) and its modules_to_save matrices.</summary>
    public LoraWeights(IEnumerable<LoraModuleWeights> modules, string source, string? baseModel = null, IEnumerable<SavedModuleWeights>? savedModules = null)
    {
        Modules = modules.OrderBy(m => m.Module, StringComparer.Ordinal).ToList();
        SavedModules = savedModules == null ? [] : [.. savedModules.OrderBy(m => Array.IndexOf(LlamaModel.SaveableModules, m.Module))];
        var dup = Modules.GroupBy(m => m.Module).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new Formats.ModelFormatException(source, null, $"module '{dup.Key}' appears twice.");
        if (Modules.Count == 0 && SavedModules.Count == 0) throw new Formats.ModelFormatException(source, null, $"the adapter has no LoRA modules.");
        Source = source;
        BaseModel = baseModel;
    }

    /// <summary>Modules sorted by name.</summary>
    public IReadOnlyList<LoraModuleWeights> Modules { get; }

    /// <summary>PEFT modules_to_save matrices (embed_tokens, lm_head) that replace the base's; empty for most adapters.</summary>
    public IReadOnlyList<SavedModuleWeights> SavedModules { get; }

    /// <summary>Where the adapter came from (folder or file), for messages.</summary>
    public string Source { get; }

    /// <summary>base_model_name_or_path, when known.</summary>
    public string? BaseModel { get; }

    /// <summary>The module named <paramref name="module"/>, or null.</summary>
    public LoraModuleWeights? Find(string module) => Modules.FirstOrDefault(m => m.Module == module);

    /// <summary>
    /// The init_lora_weights of an adapter whose factors are relative to a residual base (pissa, pissa_niter_K, olora),
    /// read with residualRelative: true; null for an ordinary adapter. PissaConversion.FromOriginalBase converts it.
    /// </summary>
    public string? ResidualInit { get; init; }

    /// <summary>
    /// Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors; pickles refused). An adapter trained
    /// against a residual base (init_lora_weights pissa/olora/...) is refused unless <paramref name="residualRelative"/>.
    /// </summary>
    public static LoraWeights ReadPeft(string folder, bool residualRelative = false)
    {
        string configPath = Path.Combine(folder, PeftAdapterConfig.FileName);
        string weightsPath = Path.Combine(folder, PeftAdapter.WeightsFile);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{folder} is not a PEFT adapter folder: {PeftAdapterConfig.FileName} is missing.", configPath);
        if (!File.Exists(weightsPath))
        {
            string hint = File.Exists(Path.Combine(folder, "adapter_model.bin"))
                ? " It holds adapter_model.bin, a pickle: pickles can run code, so LoraSharp reads only safetensors. Convert it with PEFT (save_pretrained(safe_serialization=True))."
                : "";
            throw new FileNotFoundException($"{folder}: {PeftAdapter.WeightsFile} is missing.{hint}", weightsPath);
        }
        var config = PeftAdapterConfig.Read(configPath);
        if (config.PeftType != "LORA") throw new Core.UserErrorException($"{configPath}: peft_type is '{config.PeftType}'; only LORA adapters are supported.");
        string? residualInit = config.InitLoraWeights.Method is { } method && (LoraSettings.IsBaseDerivedInit(method) || method is "corda" or "loftq") ? method : null;
        if (residualInit is { } init && !residualRelative)
            throw new Core.UserErrorException(
                $"{configPath}: init_lora_weights is '{init}': these weights were trained against {init}'s residual base (the original weights minus the " +
                "initial s·B0·A0), not the original model, so using them on the original base would be wrong. A finished LoraSharp run writes its " +
                "adapter already converted to a plain LoRA (init_lora_weights true); this folder is a checkpoint or an unconverted PEFT adapter. " +
                "Finish (resume) the LoraSharp run; or convert it on the ORIGINAL base with `lorasharp export --to-lora --format peft -a ADAPTER -m BASE -o OUT` " +
                "(pissa and olora, whose initial factors are a function of the base); or with PEFT: save_pretrained(..., path_initial_model_for_weight_conversion=<the initial adapter>).");
        var settings = PeftAdapter.ToSettings(config);

        using var st = SafetensorsFile.Open(weightsPath);
        var pairs = new Dictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
        var magnitudes = new Dictionary<string, string>(StringComparer.Ordinal);
        var listed = config.ModulesToSave is { } mts ? LlamaModel.NormalizeModulesToSave(mts, $"{configPath}: modules_to_save") : [];
        var saved = new List<SavedModuleWeights>();
        foreach (var info in st.Tensors)
        {
            if (PeftAdapter.ParseModuleKey(info.Name) is { } savedModule)
            {
                // Not listed: PEFT's save_embedding_layers (a resized vocabulary) saves the embedding or head this way,
                // and PEFT loads it into the model, so it replaces the base's here too.
                if (info.Shape.Length != 2)
                    throw new Formats.ModelFormatException(weightsPath, null, $"'{info.Name}' has shape {Tensor.FormatShape(info.Shape)}; {savedModule} must be [vocab, hidden].");
                var values = ReadF32(st, info.Name);
                foreach (var v in values)
                    if (!float.IsFinite(v)) throw new Core.UserErrorException($"{weightsPath}: '{info.Name}' holds a non-finite value; the adapter is damaged.");
                saved.Add(new SavedModuleWeights(savedModule, info.Shape[0], info.Shape[1], values));
                continue;
            }
            if (LoraKeys.ParseMagnitude(info.Name) is { } dm)
            {
                if (!config.UseDora)
                    throw new Core.UserErrorException($"{weightsPath}: '{info.Name}' is a DoRA magnitude but {configPath} says use_dora false; set use_dora true if this is a DoRA adapter.");
                magnitudes[dm] = info.Name;
                continue;
            }
            if (LoraKeys.Parse(info.Name) is not { } p) continue;
            var (a, b) = pairs.GetValueOrDefault(p.Module);
            pairs[p.Module] = p.Which == 'A' ? (info.Name, b) : (a, info.Name);
        }
        foreach (var m in listed)
            if (!saved.Exists(x => x.Module == m))
                throw new Core.UserErrorException($"{weightsPath}: {configPath} lists '{m}' in modules_to_save but the file has no {PeftAdapter.ModuleKey(m)}; the adapter is incomplete.");
        if (pairs.Count == 0) throw new Core.UserErrorException($"{weightsPath}: no LoRA weights (keys like base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight).");
        foreach (var dm in magnitudes.Keys)
            if (!pairs.ContainsKey(dm)) throw new Core.UserErrorException($"{weightsPath}: '{magnitudes[dm]}' has no lora_A/lora_B for module '{dm}'.");
        var modules = new List<LoraModuleWeights>();
        foreach (var (module, (aKey, bKey)) in pairs)
        {
            if (aKey == null || bKey == null)
                throw new Formats.ModelFormatException(weightsPath, null, $"module '{module}' has lora_{(aKey == null ? "A" : "B")} missing.");
            var ia = st.Info(aKey);
            var ib = st.Info(bKey);
            if (ia.Shape.Length != 2 || ib.Shape.Length != 2 || ia.Shape[0] != ib.Shape[1])
                throw new Formats.ModelFormatException(weightsPath, null, $"'{module}' has lora_A {Tensor.FormatShape(ia.Shape)} and lora_B {Tensor.FormatShape(ib.Shape)}; expected A [r, in] and B [out, r] with the same r.");
            int rank = ia.Shape[0];
            double alpha = settings.AlphaFor(module);
            double scale = settings.UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
            float[]? magnitude = null;
            if (config.UseDora)
            {
                if (!magnitudes.TryGetValue(module, out var mKey))
                    throw new Core.UserErrorException($"{weightsPath}: use_dora is true but module '{module}' has no {LoraKeys.Magnitude(module)}; the file is incomplete.");
                var im = st.Info(mKey);
                if (im.Shape.Length != 1 || im.Shape[0] != ib.Shape[0])
                    throw new Core.UserErrorException($"{weightsPath}: '{mKey}' has shape {Tensor.FormatShape(im.Shape)}; DoRA's magnitude must be [{ib.Shape[0]}] (lora_B's out features).");
                magnitude = ReadF32(st, mKey);
            }
            var m = new LoraModuleWeights(module, rank, ia.Shape[1], ib.Shape[0], ReadF32(st, aKey), ReadF32(st, bKey), scale) { Magnitude = magnitude };
            m.CheckFinite(weightsPath);
            modules.Add(m);
        }
        return new LoraWeights(modules, folder, config.BaseModelNameOrPath, saved) { ResidualInit = residualInit };
    }

    private static float[] ReadF32(SafetensorsFile st, string key)
    {
        using var t = st.GetTensor(key);
        var dst = new float[t.ElementCount];
        switch (t.DType)
        {
            case DType.F32: t.Floats.CopyTo(dst); break;
            case DType.BF16: Bf16.ToFloat(t.AsSpan<ushort>(), dst); break;
            case DType.F16: Fp16.ToFloat(t.AsSpan<ushort>(), dst); break;
            default: throw new Formats.ModelFormatException(st.Path, null, $"'{key}' is {t.DType}; LoRA weights must be F32, BF16 or F16.");
        }
        return dst;
    }

    /// <summary>
    /// Writes a PEFT folder (atomically). r and lora_alpha are the most common rank and its alpha (alpha = s·r,
    /// or s·√r with <paramref name="useRsLora"/>); other modules get rank_pattern / alpha_pattern entries.
    /// </summary>
    public void SavePeft(string folder, bool overwrite = false, string? baseModel = null, bool useRsLora = false)
    {
        foreach (var m in Modules) m.CheckFinite(Source);
        double AlphaOf(LoraModuleWeights m) => useRsLora ? m.Scale * Math.Sqrt(m.Rank) : m.Scale * m.Rank;
        int r = Modules.GroupBy(m => m.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        double alpha = Modules.Where(m => m.Rank == r).GroupBy(AlphaOf).OrderByDescending(g => g.Count()).First().Key;
        var rankPattern = new Dictionary<string, int>(StringComparer.Ordinal);
        var alphaPattern = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var m in Modules)
        {
            if (m.Rank != r) rankPattern[m.Module] = m.Rank;
            double a = AlphaOf(m);
            if (Math.Abs(a - alpha) > 1e-12 * Math.Max(1, Math.Abs(alpha))) alphaPattern[m.Module] = a;
        }
        bool dora = Modules.Any(m => m.IsDora);
        if (dora && !Modules.All(m => m.IsDora))
            throw new Core.UserErrorException($"{Source}: some modules are DoRA and some are not; PEFT's use_dora applies to the whole adapter.");
        var targets = Modules.Select(m => m.Module[(m.Module.LastIndexOf('.') + 1)..]).Distinct().OrderBy(t => Array.IndexOf(LlamaLayer.ProjectionNames, t)).ToArray();
        var config = new PeftAdapterConfig
        {
            PeftType = "LORA",
            R = r,
            LoraAlpha = alpha,
            TargetModules = PeftStringOrList.FromList(targets),
            Bias = "none",
            TaskType = "CAUSAL_LM",
            BaseModelNameOrPath = baseModel ?? BaseModel,
            UseRslora = useRsLora,
            UseDora = dora,
            InferenceMode = true,
            InitLoraWeights = true,
            RankPattern = rankPattern,
            AlphaPattern = alphaPattern,
            ModulesToSave = SavedModules.Count > 0 ? [.. SavedModules.Select(m => m.Module)] : null,
        };
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var m in Modules)
            {
                tensors.Add(new(LoraKeys.A(m.Module), Tensor.FromFloats(m.A, m.Rank, m.InFeatures)));
                tensors.Add(new(LoraKeys.B(m.Module), Tensor.FromFloats(m.B, m.OutFeatures, m.Rank)));
                if (m.Magnitude != null) tensors.Add(new(LoraKeys.Magnitude(m.Module), Tensor.FromFloats(m.Magnitude, m.OutFeatures)));
            }
            foreach (var m in SavedModules) tensors.Add(new(PeftAdapter.ModuleKey(m.Module), Tensor.FromFloats(m.Values, m.Rows, m.Columns)));
            AtomicFolder.Write(folder, overwrite, temp =>
            {
                SafetensorsWriter.Write(Path.Combine(temp, PeftAdapter.WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
                config.Write(Path.Combine(temp, PeftAdapterConfig.FileName));
            });
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }

    /// <summary>
    /// Checks every module against base weight shapes (HF weight name → [out, in]); throws a UserErrorException naming
    /// the module, both shapes and the likely cause. Call before writing anything.
    /// </summary>
    public void CheckAgainst(Func<string, int[]?> weightShape, string baseSource)
    {
        foreach (var m in Modules)
        {
            var shape = weightShape(m.WeightName)
                ?? throw new Core.UserErrorException($"{Source}: module '{m.Module}' does not exist in the base model {baseSource}; the adapter was made for another base.");
            if (shape.Length != 2 || shape[0] != m.OutFeatures || shape[1] != m.InFeatures)
                throw new Core.UserErrorException(
                    $"{Source}: '{m.Module}' has lora_A [{m.Rank}, {m.InFeatures}] and lora_B [{m.OutFeatures}, {m.Rank}] (ΔW [{m.OutFeatures}, {m.InFeatures}]), " +
                    $"but the base weight {m.WeightName} in {baseSource} is {Tensor.FormatShape(shape)}; the adapter was made for another base.");
        }
        foreach (var m in SavedModules)
        {
            // A tied base has no lm_head.weight: its head is the embedding, of the same shape.
            var shape = weightShape(m.WeightName) ?? weightShape(LlamaModel.ModuleWeightName("embed_tokens"));
            if (shape == null || shape.Length != 2 || shape[0] != m.Rows || shape[1] != m.Columns)
                throw new Core.UserErrorException(
                    $"{Source}: modules_to_save '{m.Module}' is [{m.Rows}, {m.Columns}] but the base's {m.WeightName} in {baseSource} is {(shape == null ? "missing" : Tensor.FormatShape(shape))}; the adapter was made for another base (or another vocabulary).");
        }
    }

    /// <summary>Refuses to scale an adapter that carries modules_to_save: those matrices replace the base's, they have no delta to scale.</summary>
    public void CheckScalable(double scale)
    {
        if (SavedModules.Count > 0 && scale != 1.0)
            throw new Core.UserErrorException(
                $"{Source}: the adapter carries modules_to_save ({string.Join(", ", SavedModules.Select(m => m.Module))}), which replace the base's matrices and cannot be scaled by {scale}; use scale 1 for it.");
    }

    /// <summary>Checks against a model's projections.</summary>
    public void CheckAgainst(LlamaModel model, string baseSource = "the base model") =>
        CheckAgainst(name => name is "model.embed_tokens.weight" or "lm_head.weight" ? [model.Config.VocabSize, model.Config.HiddenSize]
            : model.FindLinear(name[..^".weight".Length]) is { } l ? [l.OutFeatures, l.InFeatures] : null, baseSource);

    /// <summary>
    /// Attaches the adapter to <paramref name="model"/> under <paramref name="adapterName"/> with every module's scale
    /// multiplied by <paramref name="scale"/>. Every shape is checked before anything is attached.
    /// </summary>
    public IReadOnlyList<LoraAdapter> AttachTo(LlamaModel model, string adapterName = "default", double scale = 1.0, bool trainable = false)
    {
        CheckAgainst(model);
        CheckScalable(scale);
        var created = new List<LoraAdapter>();
        foreach (var m in Modules)
        {
            var linear = model.FindLinear(m.Module)!;
            var adapter = new LoraAdapter(adapterName, m.Rank, m.InFeatures, m.OutFeatures, (float)(scale * m.Scale), 0f, trainable);
            m.A.CopyTo(adapter.A.Floats);
            m.B.CopyTo(adapter.B.Floats);
            if (m.Magnitude != null) adapter.EnableDora(m.Magnitude);
            linear.Attach(adapter);
            created.Add(adapter);
        }
        if (SavedModules.Count > 0)
            model.ReplaceModules(adapterName, SavedModules.FirstOrDefault(m => m.Module == "embed_tokens")?.Values, SavedModules.FirstOrDefault(m => m.Module == "lm_head")?.Values);
        return created;
    }

    /// <summary>The adapter named <paramref name="adapterName"/> attached to <paramref name="model"/>, copied out.</summary>
    public static LoraWeights FromModel(LlamaModel model, string adapterName = "default", string? baseModel = null)
    {
        var modules = new List<LoraModuleWeights>();
        foreach (var (_, _, linear, a) in LoraInjector.Enumerate(model, adapterName))
            modules.Add(new LoraModuleWeights(linear.Name, a.Rank, a.InFeatures, a.OutFeatures, a.A.Floats.ToArray(), a.B.Floats.ToArray(), a.Scale)
            {
                Magnitude = a.Magnitude?.Floats.ToArray(),
            });
        if (modules.Count == 0) throw new InvalidOperationException($"The model has no adapter named '{adapterName}'.");
        int V = model.Config.VocabSize, C = model.Config.HiddenSize;
        var saved = model.ModulesToSave.Select(m => new SavedModuleWeights(m, V, C, m == "embed_tokens" ? model.Embedding!.Floats.ToArray() : model.OutputWeightF32!.Floats.ToArray()));
        return new LoraWeights(modules, $"adapter '{adapterName}'", baseModel, saved);
    }

    /// <summary>A short description: module count, ranks.</summary>
    public override string ToString()
    {
        var ranks = Modules.Select(m => m.Rank).Distinct().Order().Select(r => r.ToString(CultureInfo.InvariantCulture));
        return $"{Source}: {Modules.Count} {(Modules.Any(m => m.IsDora) ? "DoRA " : "")}modules, rank {string.Join("/", ranks)}"
            + (SavedModules.Count > 0 ? $", modules_to_save {string.Join(", ", SavedModules.Select(m => m.Module))}" : "");
    }
}
