// The one entry point for adapters given on a command line: a PEFT folder (adapter_config.json +
// adapter_model.safetensors, or the safetensors file inside one) or a llama.cpp GGUF LoRA file (general.type
// "adapter"). Also parses "PATH[:SCALE]" adapter specs. Not here: what the tools do with the adapter.
using System.Globalization;
using LoraSharp.Formats.Peft;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;

namespace LoraSharp.Training.Adapters;

/// <summary>Reads and attaches adapters in any supported format.</summary>
public static class AdapterLoader
{
    /// <summary>
    /// Reads the adapter at <paramref name="path"/>. <paramref name="config"/> (the base's config) is needed for GGUF
    /// adapters (q/k row order, shape checks); PEFT folders are read without it.
    /// </summary>
    /// <paramref name="residualRelative"/>: accept a PEFT adapter trained against a residual base (PiSSA/OLoRA; see
    /// <see cref="LoraWeights.ResidualInit"/>) instead of refusing it.
    public static LoraWeights Read(string path, LlamaConfig? config, bool residualRelative = false)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            if (File.Exists(Path.Combine(full, PeftAdapterConfig.FileName))) return LoraWeights.ReadPeft(full, residualRelative);
            var ggufs = Directory.GetFiles(full, "*.gguf");
            if (ggufs.Length == 1 && GgufLoraAdapter.IsAdapterFile(ggufs[0])) return ReadGguf(ggufs[0], config);
            throw new FileNotFoundException($"{full} is not an adapter: it has no {PeftAdapterConfig.FileName} (PEFT folder) and no single GGUF LoRA file.", full);
        }
        if (!File.Exists(full)) throw new FileNotFoundException($"{full}: no such adapter file or folder.", full);
        if (Path.GetFileName(full) is "adapter_model.safetensors" or PeftAdapterConfig.FileName) return LoraWeights.ReadPeft(Path.GetDirectoryName(full)!, residualRelative);
        if (GgufLoraAdapter.IsAdapterFile(full)) return ReadGguf(full, config);
        if (Path.GetExtension(full).Equals(".gguf", StringComparison.OrdinalIgnoreCase))
            throw new Core.UserErrorException($"{full} is a GGUF file but not a LoRA adapter (general.type is not 'adapter'); pass a base model with --model instead.");
        throw new Core.UserErrorException($"{full} is not an adapter: pass a PEFT folder (adapter_config.json + adapter_model.safetensors) or a GGUF LoRA file.");
    }

    private static LoraWeights ReadGguf(string file, LlamaConfig? config) =>
        GgufLoraAdapter.Read(file, config ?? throw new Core.UserErrorException($"{file} is a GGUF LoRA adapter; reading it needs the base model (its head counts decide the q/k row order). Pass --model."));

    /// <summary>Reads the adapter at <paramref name="path"/> and attaches it to <paramref name="model"/> (scales times <paramref name="scale"/>).</summary>
    public static IReadOnlyList<LoraAdapter> Attach(LlamaModel model, string path, string adapterName = "default", double scale = 1.0) =>
        Read(path, model.Config).AttachTo(model, adapterName, scale);

    /// <summary>Splits "PATH[:SCALE]" (SCALE a number, e.g. 0.5 or -1) into its path and scale (1 when absent).</summary>
    public static (string Path, double Scale) ParseSpec(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && colon < spec.Length - 1 &&
            double.TryParse(spec.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double scale))
        {
            if (!double.IsFinite(scale)) throw new Core.UserErrorException($"Adapter '{spec}': the scale must be a finite number.");
            return (spec[..colon], scale);
        }
        return (spec, 1.0);
    }
}
