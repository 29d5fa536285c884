// Use case "merge adapters into a base model", shared by the CLI and the web UI: parses adapter specs
// (PATH[:SCALE]), runs AdapterMerger and reports what it did. Not here: option parsing or presentation.
using LoraSharp.App.Progress;
using LoraSharp.Training.Adapters;

namespace LoraSharp.App;

/// <summary>Options of <see cref="MergeJob"/>.</summary>
public sealed record MergeJobOptions
{
    /// <summary>Base model: Hugging Face folder or GGUF file.</summary>
    public required string ModelPath { get; init; }

    /// <summary>Adapters as PATH[:SCALE] (PEFT folder or GGUF LoRA file).</summary>
    public required IReadOnlyList<string> Adapters { get; init; }

    /// <summary>Output folder (hf) or file (gguf).</summary>
    public required string OutPath { get; init; }

    /// <summary>hf or gguf; null = gguf when OutPath ends in .gguf, else hf.</summary>
    public string? Format { get; init; }

    /// <summary>Output dtype (f32, f16, bf16, q8_0) or null for the base's.</summary>
    public string? DType { get; init; }

    /// <summary>Check every merged value is finite before writing.</summary>
    public bool Safe { get; init; }

    /// <summary>Replace an existing output.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Also write an Ollama Modelfile beside a GGUF output (FROM it, TEMPLATE and stops from the chat template).</summary>
    public bool Ollama { get; init; }
}

/// <summary>Merges adapters into a base model.</summary>
public static class MergeJob
{
    /// <summary>Runs the merge; throws with a clear message on bad input (nothing is written then).</summary>
    public static MergeReport Run(MergeJobOptions options, IProgressSink? progress = null)
    {
        if (options.Adapters.Count == 0) throw new Core.UserErrorException("Give at least one adapter (--adapter PATH[:SCALE]).");
        var specs = options.Adapters.Select(AdapterLoader.ParseSpec).ToList();
        string format = options.Format ?? (options.OutPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? "gguf" : "hf");
        if (options.Ollama && format != "gguf")
            throw new Core.UserErrorException($"--ollama writes a Modelfile for a GGUF file, but the output format is {format}; give --out NAME.gguf (or --format gguf).");
        progress?.SetTotal(1);
        var report = AdapterMerger.Merge(options.ModelPath, specs, options.OutPath,
            new MergeOptions { Format = format, DType = options.DType, Safe = options.Safe, Overwrite = options.Overwrite });
        foreach (var note in report.Notes) progress?.Log("note: " + note);
        if (options.Ollama)
        {
            // The merged file's own template when it carries one, else the base model's.
            string out_ = Path.GetFullPath(options.OutPath);
            string? template = Ollama.OllamaModelfile.ReadChatTemplate(out_) ?? Ollama.OllamaModelfile.ReadChatTemplate(options.ModelPath);
            string modelfile = Ollama.OllamaModelfile.Write(Path.GetDirectoryName(out_)!, "./" + Path.GetFileName(out_), null, template);
            progress?.Log($"Ollama Modelfile: {modelfile} ({Ollama.OllamaModelfile.Detect(template)?.Name ?? "no chat template translated"})");
        }
        progress?.Report(1, $"{report.MergedWeights} weights merged");
        return report;
    }
}
