// The `inspect` use case: open a Hugging Face model folder, a .gguf file or a PEFT adapter folder without
// converting weights (base dtype "stored"), and report architecture, dimensions, parameter count, dtypes per
// tensor kind, tokenizer kind and size, and a LoRA memory estimate, with modules_to_save when asked (or, for adapters,
// r/alpha/targets/tensors).
using LoraSharp.Formats.Json;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Loading;

namespace LoraSharp.App;

/// <summary>Builds an <see cref="InspectReport"/> for a path.</summary>
public static class InspectJob
{
    /// <summary>Inspects <paramref name="path"/>. Throws a UserErrorException (ModelFormatException, ...) or FileNotFoundException with a clear message on bad input.</summary>
    /// <param name="path">A model folder, a .gguf file or an adapter folder.</param>
    /// <param name="modulesToSave">modules_to_save the memory estimate assumes (embed_tokens, lm_head; train's names and checks).</param>
    public static InspectReport Run(string path, IReadOnlyList<string>? modulesToSave = null)
    {
        var modules = Models.Llama.LlamaModel.NormalizeModulesToSave(modulesToSave ?? [], "--modules-to-save");
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full) && File.Exists(System.IO.Path.Combine(full, "adapter_config.json"))) return Adapter(full);
        using var model = ModelLoader.Load(full, new ModelLoadOptions { BaseDType = "stored" });
        var kinds = model.Tensors
            .GroupBy(kv => TensorNames.Kind(kv.Key))
            .Select(g => new TensorKindSummary(g.Key,
                string.Join(", ", g.Select(kv => model.StoredDTypes[kv.Key].ToString()).Distinct().Order()),
                g.Count(), g.First().Value.ShapeText, g.Sum(kv => kv.Value.ElementCount)))
            .OrderBy(k => Order(k.Kind)).ThenBy(k => k.Kind, StringComparer.Ordinal)
            .ToList();
        // What training would hold: by default (auto) the file's bf16/f16/quantized matrices as stored, f32 otherwise;
        // and everything widened to f32 (--base-dtype f32).
        var shapes = model.Tensors.Select(kv => (kv.Key, kv.Value.Shape)).ToList();
        var auto = BaseStorageRules.Parse(model.Format == "gguf" ? "stored" : "auto");
        long held = LoraMemoryEstimate.HeldBaseWeightBytes(model.Config, shapes, name => BaseStorageRules.Target(auto, model.Tensors[name], out _), modules);
        long heldF32 = LoraMemoryEstimate.HeldBaseWeightBytes(model.Config, shapes, _ => Core.Tensors.DType.F32, modules);
        const int Rank = 8, Seq = 512, MicroBatch = 1;
        // modules_to_save train in full beside the adapters: their f32 values, gradients and optimizer state.
        long adapter = LoraMemoryEstimate.AdapterParameters(model.Config, Rank) + LoraMemoryEstimate.ModulesToSaveParameters(model.Config, modules);
        int threads = Core.Threading.Threads.Hardware;
        bool outputF32 = BaseStorageRules.Target(auto, model.Tensors[model.Tensors.ContainsKey(TensorNames.LmHead) && !model.Config.TieWordEmbeddings
            ? TensorNames.LmHead : TensorNames.Embedding], out _) == Core.Tensors.DType.F32;
        var (tokKind, tokSize) = Tokenizer(model);
        return new InspectReport
        {
            Path = full,
            Kind = model.Format,
            Config = model.Config,
            ParameterCount = model.ParameterCount,
            TensorKinds = kinds,
            TokenizerKind = tokKind,
            TokenizerVocabSize = tokSize,
            Memory = LoraMemoryEstimate.Compute(model.Config, held, adapter, Rank, Seq, MicroBatch, outputF32, threads),
            MemoryF32 = LoraMemoryEstimate.Compute(model.Config, heldF32, adapter, Rank, Seq, MicroBatch, outputF32: true, threads),
            ModulesToSave = modules,
            DoraExtraBytes = LoraMemoryEstimate.AllLinears(model.Config).Sum(m => LoraMemoryEstimate.DoraBufferBytes(m.Out, m.In, Rank, Seq * MicroBatch) + 16L * m.Out),
            IgnoredTensors = model.IgnoredTensors,
        };
    }

    // Embedding first, then per-layer kinds, then the final norm and lm_head.
    private static int Order(string kind) => kind == TensorNames.Embedding ? 0 : kind.StartsWith("model.layers.", StringComparison.Ordinal) ? 1 : 2;

    private static (string?, int?) Tokenizer(LoadedModel model)
    {
        if (model.GgufMetadata is { } meta)
        {
            string? kind = meta.FirstOrDefault(kv => kv.Key == "tokenizer.ggml.model").Value?.AsString();
            int? size = meta.FirstOrDefault(kv => kv.Key == "tokenizer.ggml.tokens").Value?.Count;
            return (kind, size);
        }
        string dir = Directory.Exists(model.SourcePath) ? model.SourcePath : System.IO.Path.GetDirectoryName(model.SourcePath)!;
        string json = System.IO.Path.Combine(dir, "tokenizer.json");
        if (File.Exists(json))
        {
            var info = TokenizerJsonInfo.Read(json);
            return (info.ModelType, info.VocabSize);
        }
        if (File.Exists(System.IO.Path.Combine(dir, "tokenizer.model"))) return ("SentencePiece (tokenizer.model)", null);
        return (null, null);
    }

    private static InspectReport Adapter(string dir)
    {
        var cfg = Formats.Peft.PeftAdapterConfig.Read(System.IO.Path.Combine(dir, "adapter_config.json"));
        string weights = System.IO.Path.Combine(dir, "adapter_model.safetensors");
        int? count = null;
        long parameters = 0;
        var kinds = new List<TensorKindSummary>();
        if (File.Exists(weights))
        {
            using var f = SafetensorsFile.Open(weights);
            count = f.Tensors.Count;
            parameters = f.Tensors.Sum(t => t.ElementCount);
            kinds = f.Tensors
                .GroupBy(t => TensorNames.PeftToHf(t.Name) is { } p ? TensorNames.Kind(p.HfWeight)[..^".weight".Length] + "." + p.LoraPart : TensorNames.Kind(t.Name))
                .Select(g => new TensorKindSummary(g.Key, string.Join(", ", g.Select(t => t.DType.ToString()).Distinct().Order()), g.Count(),
                    Core.Tensors.Tensor.FormatShape(g.First().Shape), g.Sum(t => t.ElementCount)))
                .OrderBy(k => k.Kind, StringComparer.Ordinal).ToList();
        }
        else if (File.Exists(System.IO.Path.Combine(dir, "adapter_model.bin")))
        {
            throw new Formats.ModelFormatException(System.IO.Path.Combine(dir, "adapter_model.bin"), null,
                "is a pickle adapter, which LoraSharp refuses to read: unpickling can run arbitrary code. Save the adapter with safe_serialization=True.");
        }
        return new InspectReport
        {
            Path = dir,
            Kind = "adapter",
            ParameterCount = parameters,
            TensorKinds = kinds,
            Rank = cfg.R,
            Alpha = cfg.LoraAlpha,
            TargetModules = cfg.TargetModules?.Items ?? (cfg.TargetModules?.Text is { } regex ? [regex] : null),
            AdapterTensorCount = count,
            BaseModel = cfg.BaseModelNameOrPath,
        };
    }
}
