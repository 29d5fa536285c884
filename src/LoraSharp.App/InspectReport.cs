// What `lorasharp inspect` shows about a model folder, a GGUF file or a PEFT adapter folder. Plain data; the CLI
// and the web UI format it.
namespace LoraSharp.App;

/// <summary>Result of <see cref="InspectJob.Run"/>.</summary>
public sealed record InspectReport
{
    /// <summary>Full path inspected.</summary>
    public required string Path { get; init; }

    /// <summary>"hf" (Hugging Face model folder), "gguf" (GGUF file) or "adapter" (PEFT adapter folder).</summary>
    public required string Kind { get; init; }

    /// <summary>Model config (null for adapters).</summary>
    public Models.LlamaConfig? Config { get; init; }

    /// <summary>Total parameters (model or adapter).</summary>
    public long ParameterCount { get; init; }

    /// <summary>Tensor kinds with stored dtypes.</summary>
    public IReadOnlyList<TensorKindSummary> TensorKinds { get; init; } = [];

    /// <summary>Tokenizer kind: tokenizer.json model.type ("BPE", ...) or GGUF tokenizer.ggml.model ("llama", "gpt2", ...); null when none found.</summary>
    public string? TokenizerKind { get; init; }

    /// <summary>Tokenizer vocabulary size (null when no tokenizer was found).</summary>
    public int? TokenizerVocabSize { get; init; }

    /// <summary>LoRA memory estimate with the base weights loaded as by default (models only).</summary>
    public LoraMemoryEstimate? Memory { get; init; }

    /// <summary>LoRA memory estimate with the base weights widened to f32 (models only).</summary>
    public LoraMemoryEstimate? MemoryF32 { get; init; }

    /// <summary>modules_to_save the memory estimates assume (embed_tokens, lm_head trained in full; empty: none).</summary>
    public IReadOnlyList<string> ModulesToSave { get; init; } = [];

    /// <summary>What DoRA (use_dora) on all linears adds to <see cref="Memory"/>: its buffers and the magnitudes with grads and AdamW state (models only).</summary>
    public long? DoraExtraBytes { get; init; }

    /// <summary>Adapter rank r (adapters only).</summary>
    public int? Rank { get; init; }

    /// <summary>Adapter lora_alpha.</summary>
    public double? Alpha { get; init; }

    /// <summary>Adapter target_modules.</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>Number of tensors in the adapter file.</summary>
    public int? AdapterTensorCount { get; init; }

    /// <summary>base_model_name_or_path of an adapter.</summary>
    public string? BaseModel { get; init; }

    /// <summary>Tensors present in the file but not used by the model.</summary>
    public IReadOnlyList<string> IgnoredTensors { get; init; } = [];
}
