// Use case "export an adapter to llama.cpp's GGUF LoRA format". The base config (architecture, head counts for the
// q/k row order, shapes) comes from --model, or from the adapter's base_model_name_or_path when that is a local
// path. A DoRA adapter has no GGUF LoRA form: it is refused unless ToLora converts it to a plain LoRA by SVD
// (Training.Adapters.DoraConversion), whose error is reported; Format "peft" writes that plain LoRA as a PEFT folder.
// ToLora also converts a PiSSA/OLoRA adapter saved unconverted (PissaConversion.FromOriginalBase, exact, rank 2r).
// Not here: option parsing or presentation.
using LoraSharp.App.Progress;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Loading;
using LoraSharp.Training.Adapters;

namespace LoraSharp.App;

/// <summary>Options of <see cref="ExportJob"/>.</summary>
public sealed record ExportJobOptions
{
    /// <summary>Adapter (PEFT folder or GGUF LoRA file).</summary>
    public required string AdapterPath { get; init; }

    /// <summary>Output .gguf file.</summary>
    public required string OutPath { get; init; }

    /// <summary>Base model (for its config); null = the adapter's base_model_name_or_path if it exists locally.</summary>
    public string? ModelPath { get; init; }

    /// <summary>f32 or f16.</summary>
    public string DType { get; init; } = "f32";

    /// <summary>Replace an existing output.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Convert a DoRA adapter to a plain LoRA (truncated SVD of its effective change) before writing.</summary>
    public bool ToLora { get; init; }

    /// <summary>Rank of the converted LoRA (null = each module's own rank).</summary>
    public int? Rank { get; init; }

    /// <summary>"gguf" (llama.cpp LoRA file) or "peft" (a PEFT folder; with ToLora, the converted plain LoRA).</summary>
    public string Format { get; init; } = "gguf";

    /// <summary>Also write an Ollama Modelfile beside the output: FROM the base GGUF, ADAPTER the exported file, TEMPLATE and stops.</summary>
    public bool Ollama { get; init; }
}

/// <summary>Exports adapters to GGUF.</summary>
public static class ExportJob
{
    /// <summary>Runs the export; returns the adapter written.</summary>
    public static LoraWeights Run(ExportJobOptions options, IProgressSink? progress = null) => RunWithReport(options, progress).Weights;

    /// <summary>Runs the export; returns the adapter written and, for a converted DoRA adapter, the conversion's error.</summary>
    public static (LoraWeights Weights, DoraConversionReport? Conversion) RunWithReport(ExportJobOptions options, IProgressSink? progress = null)
    {
        string format = options.Format.Trim().ToLowerInvariant();
        if (format is not ("gguf" or "peft")) throw new Core.UserErrorException($"Export format '{options.Format}' is not gguf or peft.");
        if (format == "peft" && !options.ToLora)
            throw new Core.UserErrorException("--format peft writes a converted DoRA adapter; add --to-lora (a PEFT adapter needs no export otherwise).");
        var dtype = options.DType.Trim().ToLowerInvariant() switch
        {
            "f32" or "float32" => DType.F32,
            "f16" or "float16" or "fp16" => DType.F16,
            _ => throw new Core.UserErrorException($"GGUF LoRA dtype '{options.DType}' is not f32 or f16."),
        };
        string full = Path.GetFullPath(options.OutPath);
        if (!options.Overwrite && (File.Exists(full) || Directory.Exists(full)))
            throw new IOException($"{full} already exists; choose another name or pass --overwrite to replace it.");
        string? modelPath = options.ModelPath;
        LoraWeights? peft = null;
        if (modelPath == null)
        {
            peft = AdapterLoader.Read(options.AdapterPath, null, residualRelative: options.ToLora);
            if (peft.BaseModel is { } b && (Directory.Exists(b) || File.Exists(b))) modelPath = b;
            else throw new Core.UserErrorException(
                $"Exporting needs the base model's config (architecture, head counts for the q/k row order); the adapter's base_model_name_or_path " +
                $"'{peft.BaseModel}' is not a local path. Pass --model with the base model folder or GGUF file.");
        }
        if (options.Ollama && !(File.Exists(modelPath) && modelPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)))
            throw new Core.UserErrorException(
                $"--ollama: Ollama applies a GGUF LoRA to a GGUF base model, but the base model '{modelPath}' is not a .gguf file. " +
                "Pass --model BASE.gguf, or merge instead (lorasharp merge ... --out merged.gguf --ollama).");
        using var loaded = ModelLoader.Load(modelPath, new ModelLoadOptions { BaseDType = "stored" });
        var weights = peft ?? AdapterLoader.Read(options.AdapterPath, loaded.Config, residualRelative: options.ToLora);
        DoraConversionReport? conversion = null;
        if (options.ToLora && weights.ResidualInit != null)
        {
            // PiSSA/OLoRA saved unconverted: [B' | −B0]·[A'; A0] with B0, A0 recomputed from the original base (exact).
            weights = PissaConversion.FromOriginalBase(weights, loaded.Tensors);
            progress?.Log($"{weights.Source}: rank {string.Join("/", weights.Modules.Select(m => m.Rank).Distinct())} on the original base (exact)");
        }
        else if (options.ToLora)
        {
            if (!weights.Modules.Any(m => m.IsDora))
                throw new Core.UserErrorException($"{weights.Source} is a plain LoRA adapter; --to-lora converts DoRA adapters only. Leave it out.");
            (weights, conversion) = DoraConversion.ToPlainLora(weights, loaded.Tensors, options.Rank);
            foreach (var m in conversion.Modules)
                progress?.Log(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{m.Module}: rank {m.Rank}, relative error {m.RelativeError:E3}"));
            progress?.Log(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"DoRA -> LoRA conversion: relative error {conversion.RelativeError:E3} over all modules (||dW - B'A'||_F / ||dW||_F; merging instead is exact)"));
        }
        if (format == "peft") weights.SavePeft(full, options.Overwrite, weights.BaseModel);
        else GgufLoraAdapter.Write(weights, loaded.Config, full, dtype);
        progress?.Log($"{weights.Modules.Count} modules -> {full}");
        if (options.Ollama)
        {
            string modelfile = Ollama.OllamaModelfile.Write(Path.GetDirectoryName(full)!, Path.GetFullPath(modelPath!), "./" + Path.GetFileName(full),
                Ollama.OllamaModelfile.ReadChatTemplate(modelPath!));
            progress?.Log($"Ollama Modelfile: {modelfile}");
        }
        return (weights, conversion);
    }
}
