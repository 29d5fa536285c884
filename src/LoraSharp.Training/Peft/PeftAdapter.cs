// Hugging Face PEFT adapter folders: adapter_config.json + adapter_model.safetensors, written from a model exactly as
// PEFT writes them (reading is Adapters/LoraWeights.ReadPeft, through AdapterLoader) (keys base_model.model.<module>.lora_A.weight, A [r, in],
// B [out, r], F32; modules_to_save add base_model.model.model.embed_tokens.weight / base_model.model.lm_head.weight; DoRA adds base_model.model.<module>.lora_magnitude_vector [out], no ".weight", as PEFT saves it).
// Each file is written under a temporary name and renamed when complete.
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
            UseDora = config.UseDora,
            Init = init is "default" or "gaussian" or "none" ? init : "default",
        };
    }

    /// <summary>Writes (or replaces) the two adapter files inside an existing folder, each file atomically.</summary>
    public static void WriteFiles(LlamaModel model, string adapterName, PeftAdapterConfig config, string folder)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (_, _, linear, a) in LoraInjector.Enumerate(model, adapterName))
        {
            tensors.Add(new(LoraKeys.A(linear.Name), a.A));
            tensors.Add(new(LoraKeys.B(linear.Name), a.B));
            if (a.IsDora) tensors.Add(new(LoraKeys.Magnitude(linear.Name), a.Magnitude!));
            if (a.IsDora != config.UseDora)
                throw new Core.UserErrorException($"{linear.Name}: the adapter is {(a.IsDora ? "" : "not ")}DoRA but adapter_config.json says use_dora {config.UseDora.ToString().ToLowerInvariant()}.");
        }
        if (tensors.Count == 0) throw new InvalidOperationException($"The model has no adapter named '{adapterName}' to save.");
        // modules_to_save as PEFT's get_peft_model_state_dict saves them: the wrapper's "modules_to_save.<adapter>."
        // removed, so base_model.model.model.embed_tokens.weight and base_model.model.lm_head.weight.
        var saved = model.ModulesToSave;
        if (!SameModules(saved, config.ModulesToSave))
            throw new InvalidOperationException($"The model trains modules_to_save [{string.Join(", ", saved)}] but adapter_config.json lists [{string.Join(", ", config.ModulesToSave ?? [])}].");
        foreach (var m in saved) tensors.Add(new(ModuleKey(m), m == "embed_tokens" ? model.Embedding! : model.OutputWeightF32!));
        SafetensorsWriter.Write(Path.Combine(folder, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        config.Write(Path.Combine(folder, PeftAdapterConfig.FileName));
    }

    /// <summary>The key PEFT saves a modules_to_save module under (embed_tokens → base_model.model.model.embed_tokens.weight).</summary>
    public static string ModuleKey(string module) => "base_model.model." + LlamaModel.ModuleWeightName(module);

    /// <summary>The module (embed_tokens, lm_head) a saved modules_to_save key holds, or null for any other key.</summary>
    public static string? ParseModuleKey(string key) => LlamaModel.SaveableModules.FirstOrDefault(m => ModuleKey(m) == key);

    private static bool SameModules(IReadOnlyList<string> a, IReadOnlyList<string>? b) =>
        a.SequenceEqual(b == null ? [] : LlamaModel.NormalizeModulesToSave(b));

    /// <summary>A PEFT config describing <paramref name="settings"/> for a base model (<paramref name="moduleNames"/>: the
    /// model's projection names, so all-linear lists phi3's fused qkv_proj / gate_up_proj; null = the Llama seven).</summary>
    public static PeftAdapterConfig ToConfig(LoraSettings settings, string baseModel, int rank = 0, IReadOnlyList<string>? modulesToSave = null,
                                             IReadOnlyList<string>? moduleNames = null) => new()
    {
        ModulesToSave = modulesToSave is { Count: > 0 } ? [.. modulesToSave] : null,
        PeftType = "LORA",
        R = rank > 0 ? rank : settings.Rank,
        LoraAlpha = settings.Alpha,
        LoraDropout = settings.Dropout,
        TargetModules = PeftStringOrList.FromList(moduleNames is null ? settings.ResolvedTargets : settings.ResolvedTargetsFor(moduleNames)),
        Bias = "none",
        TaskType = "CAUSAL_LM",
        BaseModelNameOrPath = baseModel,
        UseRslora = settings.UseRsLora,
        UseDora = settings.UseDora,
        InferenceMode = true,
        InitLoraWeights = LoraSettings.CanonicalInit(settings.Init) switch
        {
            "default" => PeftInitLoraWeights.FromBool(true),
            "none" => PeftInitLoraWeights.FromBool(false),
            var method => PeftInitLoraWeights.FromMethod(method),   // gaussian, pissa, pissa_niter_K, olora
        },
        RankPattern = settings.RankPattern,
        AlphaPattern = settings.AlphaPattern,
        LayersToTransform = settings.LayersToTransform,
    };
}
