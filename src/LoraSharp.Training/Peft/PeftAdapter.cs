// Hugging Face PEFT adapter folders: adapter_config.json + adapter_model.safetensors, read into a model's Linear
// seam and written from it exactly as PEFT writes them (keys base_model.model.<module>.lora_A.weight, A [r, in],
// B [out, r], F32). Writing goes to a temporary folder that is renamed into place when complete.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Peft;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;

namespace LoraSharp.Training.Peft;

/// <summary>Loads and saves PEFT LoRA adapters.</summary>
public static class PeftAdapter
{
    /// <summary>Name of the weights file in an adapter folder.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>LoRA settings equivalent to a PEFT config (ranks and alphas with their patterns, rsLoRA, targets).</summary>
    public static LoraSettings ToSettings(PeftAdapterConfig config)
    {
        IReadOnlyList<string> targets = config.TargetModules?.Items ?? (config.TargetModules?.Text is { } t ? [t] : ["q_proj", "v_proj"]);
        string init = config.InitLoraWeights.Method ?? (config.InitLoraWeights.Flag == false ? "none" : "default");
        return new LoraSettings
        {
            Rank = config.R,
            Alpha = config.LoraAlpha,
            Dropout = config.LoraDropout,
            TargetModules = targets,
            LayersToTransform = config.LayersToTransform,
            RankPattern = config.RankPattern,
            AlphaPattern = config.AlphaPattern,
            UseRsLora = config.UseRslora,
            Init = init is "default" or "gaussian" or "none" ? init : "default",
        };
    }

    /// <summary>
    /// Attaches the adapter in <paramref name="folder"/> to <paramref name="model"/> under <paramref name="adapterName"/>,
    /// with its PEFT scaling multiplied by <paramref name="scale"/>. Every shape is checked before anything is attached.
    /// </summary>
    public static PeftAdapterConfig Attach(LlamaModel model, string folder, string adapterName = "default", double scale = 1.0, bool trainable = false)
    {
        string configPath = Path.Combine(folder, PeftAdapterConfig.FileName);
        string weightsPath = Path.Combine(folder, WeightsFile);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{folder} is not a PEFT adapter folder: {PeftAdapterConfig.FileName} is missing.", configPath);
        if (!File.Exists(weightsPath))
        {
            string hint = File.Exists(Path.Combine(folder, "adapter_model.bin"))
                ? " It holds adapter_model.bin, a pickle: pickles can run code, so LoraSharp reads only safetensors. Convert it with PEFT (save_pretrained(safe_serialization=True))."
                : "";
            throw new FileNotFoundException($"{folder}: {WeightsFile} is missing.{hint}", weightsPath);
        }
        var config = PeftAdapterConfig.Read(configPath);
        if (config.PeftType != "LORA") throw new InvalidDataException($"{configPath}: peft_type is '{config.PeftType}'; only LORA adapters are supported.");
        if (config.UseDora) throw new NotSupportedException($"{configPath}: use_dora is true; DoRA adapters are not supported.");
        var settings = ToSettings(config);

        using var st = SafetensorsFile.Open(weightsPath);
        var pairs = new Dictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
        foreach (var info in st.Tensors)
        {
            var parsed = LoraKeys.Parse(info.Name);
            if (parsed is not { } p) continue;   // e.g. modules_to_save copies: not LoRA weights
            var (a, b) = pairs.GetValueOrDefault(p.Module);
            pairs[p.Module] = p.Which == 'A' ? (info.Name, b) : (a, info.Name);
        }
        if (pairs.Count == 0) throw new InvalidDataException($"{weightsPath}: no LoRA weights (keys like base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight).");

        var plan = new List<(Linear Linear, string AKey, string BKey, int Rank)>();
        foreach (var (module, (aKey, bKey)) in pairs.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (aKey == null || bKey == null)
                throw new InvalidDataException($"{weightsPath}: module '{module}' has lora_{(aKey == null ? "A" : "B")} missing.");
            var linear = model.FindLinear(module)
                ?? throw new InvalidDataException($"{weightsPath}: module '{module}' does not exist in this {model.Config.ModelType} model with {model.Layers.Length} layers; the adapter was made for another base.");
            var ia = st.Info(aKey);
            var ib = st.Info(bKey);
            if (ia.Shape.Length != 2 || ib.Shape.Length != 2 || ia.Shape[0] != ib.Shape[1] || ia.Shape[1] != linear.InFeatures || ib.Shape[0] != linear.OutFeatures)
                throw new InvalidDataException(
                    $"{weightsPath}: '{module}' has lora_A {Tensor.FormatShape(ia.Shape)} and lora_B {Tensor.FormatShape(ib.Shape)}, but the base weight is " +
                    $"[{linear.OutFeatures}, {linear.InFeatures}] (expected A [r, {linear.InFeatures}], B [{linear.OutFeatures}, r]); the adapter was made for another base.");
            plan.Add((linear, aKey, bKey, ia.Shape[0]));
        }

        foreach (var (linear, aKey, bKey, rank) in plan)
        {
            double alpha = settings.AlphaFor(linear.Name);
            float s = (float)(scale * (settings.UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank));
            var adapter = new LoraAdapter(adapterName, rank, linear.InFeatures, linear.OutFeatures, s, (float)settings.Dropout, trainable);
            CopyF32(st, aKey, adapter.A);
            CopyF32(st, bKey, adapter.B);
            linear.Attach(adapter);
        }
        return config;
    }

    private static void CopyF32(SafetensorsFile st, string key, Tensor destination)
    {
        using var t = st.GetTensor(key);
        switch (t.DType)
        {
            case DType.F32: t.Floats.CopyTo(destination.Floats); break;
            case DType.BF16: Bf16.ToFloat(t.AsSpan<ushort>(), destination.Floats); break;
            case DType.F16: Fp16.ToFloat(t.AsSpan<ushort>(), destination.Floats); break;
            default: throw new InvalidDataException($"{st.Path}: '{key}' is {t.DType}; LoRA weights must be F32, BF16 or F16.");
        }
        foreach (float v in destination.Floats)
            if (!float.IsFinite(v)) throw new InvalidDataException($"{st.Path}: '{key}' holds a non-finite value.");
    }

    /// <summary>
    /// Writes the adapter <paramref name="adapterName"/> of <paramref name="model"/> to <paramref name="folder"/> as PEFT does.
    /// The folder is written under a temporary name and renamed when complete; an existing folder is replaced only when
    /// <paramref name="overwrite"/> is true.
    /// </summary>
    public static void Save(LlamaModel model, string adapterName, PeftAdapterConfig config, string folder, bool overwrite = false,
        IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (_, _, linear, adapter) in LoraInjector.Enumerate(model, adapterName))
        {
            tensors.Add(new(LoraKeys.A(linear.Name), adapter.A));
            tensors.Add(new(LoraKeys.B(linear.Name), adapter.B));
        }
        if (tensors.Count == 0) throw new InvalidOperationException($"The model has no adapter named '{adapterName}' to save.");
        AtomicFolder.Write(folder, overwrite, temp =>
        {
            SafetensorsWriter.Write(Path.Combine(temp, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            config.Write(Path.Combine(temp, PeftAdapterConfig.FileName));
            if (extraFiles != null)
                foreach (var (name, text) in extraFiles) File.WriteAllText(Path.Combine(temp, name), text);
        });
    }

    /// <summary>Writes (or replaces) the two adapter files inside an existing folder, each file atomically.</summary>
    public static void WriteFiles(LlamaModel model, string adapterName, PeftAdapterConfig config, string folder)
    {
        var tensors = LoraInjector.Enumerate(model, adapterName)
            .SelectMany(x => new[] { new KeyValuePair<string, Tensor>(LoraKeys.A(x.Linear.Name), x.Adapter.A), new KeyValuePair<string, Tensor>(LoraKeys.B(x.Linear.Name), x.Adapter.B) })
            .ToList();
        if (tensors.Count == 0) throw new InvalidOperationException($"The model has no adapter named '{adapterName}' to save.");
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        config.Write(Path.Combine(folder, PeftAdapterConfig.FileName));
    }

    /// <summary>A PEFT config describing <paramref name="settings"/> for a base model.</summary>
    public static PeftAdapterConfig ToConfig(LoraSettings settings, string baseModel, int rank = 0) => new()
    {
        PeftType = "LORA",
        R = rank > 0 ? rank : settings.Rank,
        LoraAlpha = settings.Alpha,
        LoraDropout = settings.Dropout,
        TargetModules = PeftStringOrList.FromList(settings.ResolvedTargets),
        Bias = "none",
        TaskType = "CAUSAL_LM",
        BaseModelNameOrPath = baseModel,
        UseRslora = settings.UseRsLora,
        InferenceMode = true,
        InitLoraWeights = settings.Init == "gaussian" ? PeftInitLoraWeights.FromMethod("gaussian") : PeftInitLoraWeights.FromBool(settings.Init != "none"),
        RankPattern = settings.RankPattern,
        AlphaPattern = settings.AlphaPattern,
        LayersToTransform = settings.LayersToTransform,
    };
}
