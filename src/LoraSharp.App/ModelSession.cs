// A model ready to use: weights loaded from a Hugging Face folder or GGUF file, its tokenizer, and any adapters
// attached. Shared by generate, perplexity, training and the web UI.
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Tokenizers;
using LoraSharp.Training.Adapters;

namespace LoraSharp.App;

/// <summary>An adapter to attach: a folder (or file) and a scale.</summary>
/// <param name="Path">PEFT adapter folder.</param>
/// <param name="Scale">Multiplier of the adapter's alpha/r scaling.</param>
public sealed record AdapterSpec(string Path, double Scale = 1.0)
{
    /// <summary>Parses "path" or "path:scale" (a trailing ":number").</summary>
    public static AdapterSpec Parse(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon > 0 && double.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double s))
            return new AdapterSpec(text[..colon], s);
        return new AdapterSpec(text);
    }
}

/// <summary>A loaded model with its tokenizer.</summary>
public sealed class ModelSession : IDisposable
{
    private ModelSession(LlamaModel model, Tokenizer tokenizer, string source, IReadOnlyList<string> notes)
    {
        Model = model;
        Tokenizer = tokenizer;
        Source = source;
        Notes = notes;
    }

    /// <summary>The model.</summary>
    public LlamaModel Model { get; }

    /// <summary>Its tokenizer.</summary>
    public Tokenizer Tokenizer { get; }

    /// <summary>The chat template the model ships (tokenizer_config.json / GGUF tokenizer.chat_template), or null.</summary>
    public Tokenizers.Chat.ModelChatTemplate? ChatTemplate { get; private init; }

    /// <summary>The folder or file it was loaded from.</summary>
    public string Source { get; }

    /// <summary>What the loader decided that the user should know (tensors kept in another dtype than asked).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Loads <paramref name="path"/> and attaches <paramref name="adapters"/> (frozen, named adapter0, adapter1, ...).</summary>
    /// <param name="baseDType">--base-dtype: f32, bf16, f16, q8_0, q4_0, nf4, stored (null: auto, bf16/f16 matrices of HF folders as stored and f32 otherwise, stored for GGUF).</param>
    /// <param name="doubleQuant">With nf4: double-quantize the block scales.</param>
    public static ModelSession Open(string path, IReadOnlyList<AdapterSpec>? adapters = null, string? baseDType = null, bool fullFineTuning = false,
        bool doubleQuant = false)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new FileNotFoundException($"Model '{path}' does not exist: give a Hugging Face folder (config.json, *.safetensors, tokenizer.json) or a .gguf file.", path);
        using var loaded = ModelLoader.Load(path, new ModelLoadOptions { BaseDType = baseDType });
        var tokenizer = GgufTokenizer.ForModel(loaded);
        var model = LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath, fullFineTuning, doubleQuant, consumeTensors: true);
        var session = new ModelSession(model, tokenizer, loaded.SourcePath, loaded.Notes) { ChatTemplate = ModelChatTemplates.For(loaded, tokenizer) };
        try
        {
            if (adapters != null) session.AttachAdapters(adapters);   // stay attached for the session's life
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return session;
    }

    /// <summary>
    /// Attaches <paramref name="adapters"/> (frozen, named adapter0, adapter1, ...; PEFT folders or GGUF LoRA files)
    /// until the returned handle is disposed, which detaches and frees them: a long-lived session (the web UI's
    /// cached model) answers with and without adapters without loading the model again.
    /// </summary>
    public IDisposable AttachAdapters(IReadOnlyList<AdapterSpec> adapters)
    {
        var attached = new AttachedAdapters(Model);
        try
        {
            for (int i = 0; i < adapters.Count; i++)
            {
                string name = $"adapter{i}";
                attached.Names.Add(name);
                attached.Adapters.AddRange(AdapterLoader.Attach(Model, adapters[i].Path, name, adapters[i].Scale));
            }
        }
        catch
        {
            attached.Dispose();
            throw;
        }
        return attached;
    }

    private sealed class AttachedAdapters(LlamaModel model) : IDisposable
    {
        public readonly List<string> Names = [];
        public readonly List<Models.Lora.LoraAdapter> Adapters = [];

        public void Dispose()
        {
            foreach (var name in Names) model.DetachAdapter(name);
            foreach (var a in Adapters) a.Dispose();
            Names.Clear();
            Adapters.Clear();
        }
    }

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}
