// Use case "export an adapter to llama.cpp's GGUF LoRA format". The base config (architecture, head counts for the
// q/k row order, shapes) comes from --model, or from the adapter's base_model_name_or_path when that is a local
// path. Not here: option parsing or presentation.
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

    /// <summary>Also write an Ollama Modelfile beside the output: FROM the base GGUF, ADAPTER the exported file, TEMPLATE and stops.</summary>
    public bool Ollama { get; init; }
}

/// <summary>Exports adapters to GGUF.</summary>
public static class ExportJob
{
    /// <summary>Runs the export; returns the adapter written.</summary>
    public static LoraWeights Run(ExportJobOptions options, IProgressSink? progress = null)
    {
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
            peft = AdapterLoader.Read(options.AdapterPath, null);
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
        var weights = peft ?? AdapterLoader.Read(options.AdapterPath, loaded.Config);
        GgufLoraAdapter.Write(weights, loaded.Config, full, dtype);
        progress?.Log($"{weights.Modules.Count} modules -> {full}");
        if (options.Ollama)
        {
            string modelfile = Ollama.OllamaModelfile.Write(Path.GetDirectoryName(full)!, Path.GetFullPath(modelPath!), "./" + Path.GetFileName(full),
                Ollama.OllamaModelfile.ReadChatTemplate(modelPath!));
            progress?.Log($"Ollama Modelfile: {modelfile}");
        }
        return weights;
    }
}
