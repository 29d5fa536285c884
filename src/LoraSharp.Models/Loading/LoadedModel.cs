// A loaded Llama-family checkpoint: config, tensors under HF names (q/k rows in HF order, [out, in] shapes), and
// the open memory maps that views point into. Disposing frees converted copies and unmaps the files; tensors must
// not be used afterwards. Holds no model logic.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;

namespace LoraSharp.Models.Loading;

/// <summary>A checkpoint loaded by <see cref="ModelLoader"/>.</summary>
public sealed class LoadedModel : IDisposable
{
    private readonly List<IDisposable> _resources;

    /// <summary>Architecture hyperparameters.</summary>
    public LlamaConfig Config { get; }

    /// <summary>Tensors by HF name (no lm_head.weight when embeddings are tied).</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>The dtype each tensor had in the file, by HF name.</summary>
    public IReadOnlyDictionary<string, DType> StoredDTypes { get; }

    /// <summary>The folder or file loaded.</summary>
    public string SourcePath { get; }

    /// <summary>"hf" or "gguf".</summary>
    public string Format { get; }

    /// <summary>The GGUF metadata (tokenizer.ggml.* included) in file order, or null for Hugging Face folders.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>>? GgufMetadata { get; }

    /// <summary>Tensors in the file that are not part of the model (e.g. rope_freqs.weight, rotary_emb.inv_freq), by stored name.</summary>
    public IReadOnlyList<string> IgnoredTensors { get; }

    /// <summary>What the loader decided that the user should know (tensors kept in another dtype than asked, and why).</summary>
    public IReadOnlyList<string> Notes { get; }

    internal LoadedModel(LlamaConfig config, Dictionary<string, Tensor> tensors, Dictionary<string, DType> stored, string sourcePath, string format,
        IReadOnlyList<KeyValuePair<string, GgufValue>>? ggufMetadata, List<string> ignored, List<IDisposable> resources, List<string> notes)
    {
        Notes = notes;
        Config = config;
        Tensors = tensors;
        StoredDTypes = stored;
        SourcePath = sourcePath;
        Format = format;
        GgufMetadata = ggufMetadata;
        IgnoredTensors = ignored;
        _resources = resources;
    }

    /// <summary>Total number of parameters (elements of every tensor; tied embeddings counted once).</summary>
    public long ParameterCount => Tensors.Values.Sum(t => t.ElementCount);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
        foreach (var r in _resources) r.Dispose();
        _resources.Clear();
    }
}
