// PEFT's modules_to_save for a causal LM: the embedding (embed_tokens) and/or the output head (lm_head) trained in
// full, in f32, beside the LoRA adapters; or, when an adapter that carries them is attached, replaced by the
// adapter's copies until it is detached.
// Tied embeddings follow PEFT without ensure_weight_tying: each listed module gets its own copy (PEFT's
// ModulesToSaveWrapper deep-copies the module), so training unties them. lm_head alone trains a copy of the
// embedding as the head while the lookup keeps the base embedding; embed_tokens alone trains the lookup while the
// head stays the base embedding; both train two separate copies. Saved, they are two tensors, and merging writes an
// untied model (lm_head.weight beside model.embed_tokens.weight).
// Not here: saving and loading (Training/Peft, Training/Adapters), the optimizer (it sees TrainableParameters).
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>The modules PEFT's modules_to_save can name for this model, in PEFT's short form.</summary>
    public static readonly string[] SaveableModules = ["embed_tokens", "lm_head"];

    private string[] _modulesToSave = [];
    private string? _replacedBy;
    private Tensor? _replacedEmbedding;
    private PackedWeight? _replacedOutput;
    private bool _replacedEmbeddingWasSet;

    /// <summary>Modules trained in full beside the adapters (<see cref="SaveableModules"/> order); empty when none.</summary>
    public IReadOnlyList<string> ModulesToSave => _modulesToSave;

    /// <summary>The Hugging Face weight name of a saveable module (model.embed_tokens.weight, lm_head.weight).</summary>
    public static string ModuleWeightName(string module) => module switch
    {
        "embed_tokens" => "model.embed_tokens.weight",
        "lm_head" => "lm_head.weight",
        _ => throw new ArgumentException($"'{module}' is not one of {string.Join(", ", SaveableModules)}.", nameof(module)),
    };

    /// <summary>
    /// PEFT's module names (embed_tokens, model.embed_tokens, lm_head) in canonical short form and order; a clear error
    /// for anything else (a LoRA target, a layer norm: LoraSharp trains only the embedding and the head in full).
    /// </summary>
    public static string[] NormalizeModulesToSave(IEnumerable<string> modules, string where = "modules_to_save")
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in modules)
        {
            string m = raw.Trim();
            if (m.Length == 0) continue;
            string shortName = m switch { "embed_tokens" or "model.embed_tokens" => "embed_tokens", "lm_head" => "lm_head", _ => "" };
            if (shortName.Length == 0)
                throw new Core.UserErrorException($"{where}: '{m}' cannot be trained in full; LoraSharp supports {string.Join(" and ", SaveableModules)} (e.g. --modules-to-save embed_tokens,lm_head).");
            set.Add(shortName);
        }
        return [.. SaveableModules.Where(set.Contains)];
    }

    // The gradient the cross-entropy adds the output projection's part into: lm_head's own when it trains (full
    // fine-tuning untied, or modules_to_save), the embedding's in tied full fine-tuning, none when the head is frozen.
    private Tensor? HeadGrad => GradOutput ?? (OutputWeightF32 == null && _modulesToSave.Length == 0 ? GradEmbedding : null);

    /// <summary>
    /// Makes <paramref name="modules"/> (embed_tokens, lm_head) trainable in f32 with their gradients, as PEFT's
    /// modules_to_save: untied copies of the base weights (see the file header), so the base itself never changes.
    /// </summary>
    public void TrainModulesToSave(IReadOnlyList<string> modules)
    {
        var list = NormalizeModulesToSave(modules);
        if (list.Length == 0) return;
        if (GradEmbedding != null || GradOutput != null || _modulesToSave.Length > 0)
            throw new InvalidOperationException("The embedding or the head already trains (full fine-tuning, or modules_to_save set before).");
        if (_replacedBy != null)
            throw new Core.UserErrorException($"Adapter '{_replacedBy}' already replaces the embedding or the head; detach it before training modules_to_save.");
        int V = Config.VocabSize, C = Config.HiddenSize;
        bool embed = list.Contains("embed_tokens"), head = list.Contains("lm_head");
        // The head's copy is taken before the embedding changes: in a tied model both start from the same matrix.
        float[]? headInit = head ? OutputF32() : null;
        if (embed || (head && TiedOutput && Embedding == null))
        {
            // The lookup needs its own table once the (tied) output panels become the trained head, and a trained
            // embedding is an f32 copy of the base one.
            var old = Embedding;
            Embedding = Tensor.FromFloats(EmbeddingF32(), V, C);
            if (old != null)
            {
                // A tied compressed head reads the old embedding's bytes in place; if it stays frozen it keeps its own copy.
                if (TiedOutput && !head && old.DType != DType.F32) Output = PackedWeight.FromStored(old);
                old.Dispose();
            }
        }
        if (embed) GradEmbedding = Tensor.Zeros(DType.F32, V, C);
        if (head)
        {
            OutputWeightF32 = Tensor.FromFloats(headInit!, V, C);
            GradOutput = Tensor.Zeros(DType.F32, V, C);
            Output = PackedWeight.FromF32(headInit, V, C);
        }
        _modulesToSave = list;
    }

    /// <summary>
    /// Replaces the embedding and/or the head with an adapter's saved copies (f32 [V, C] each, null to keep the
    /// base's) until <see cref="DetachAdapter"/> of <paramref name="adapterName"/>. One adapter at a time.
    /// </summary>
    public void ReplaceModules(string adapterName, float[]? embedding, float[]? head)
    {
        if (embedding == null && head == null) return;
        int V = Config.VocabSize, C = Config.HiddenSize;
        if (_replacedBy != null)
            throw new Core.UserErrorException($"Adapters '{_replacedBy}' and '{adapterName}' both replace the embedding or the head (modules_to_save); attach only one of them, or merge them one at a time.");
        if (_modulesToSave.Length > 0 || GradEmbedding != null)
            throw new Core.UserErrorException($"Adapter '{adapterName}' replaces the embedding or the head, but the model trains them; load it without training them.");
        if (embedding != null && embedding.Length != (long)V * C || head != null && head.Length != (long)V * C)
            throw new ArgumentException($"A replaced embedding or head must hold [{V}, {C}] floats.");
        _replacedBy = adapterName;
        _replacedEmbedding = Embedding;
        _replacedEmbeddingWasSet = true;
        _replacedOutput = Output;
        if (embedding != null || (head != null && TiedOutput && Embedding == null))
            Embedding = Tensor.FromFloats(embedding ?? EmbeddingF32(), V, C);
        if (head != null) Output = PackedWeight.FromF32(head, V, C);
    }

    // Undoes ReplaceModules of adapterName (called by DetachAdapter).
    private void RestoreModules(string adapterName)
    {
        if (_replacedBy != adapterName) return;
        if (_replacedEmbeddingWasSet && !ReferenceEquals(Embedding, _replacedEmbedding))
        {
            Embedding?.Dispose();
            Embedding = _replacedEmbedding;
        }
        Output = _replacedOutput!;
        _replacedBy = null;
        _replacedEmbedding = null;
        _replacedOutput = null;
        _replacedEmbeddingWasSet = false;
    }

    /// <summary>The embedding as it is used now, decoded to f32 [V, C] row-major.</summary>
    public float[] EmbeddingF32()
    {
        int V = Config.VocabSize, C = Config.HiddenSize;
        var ids = new int[V];
        for (int i = 0; i < V; i++) ids[i] = i;
        var f = new float[(long)V * C];
        if (Embedding == null) Output.GatherRows(ids, f);
        else if (Embedding.DType == DType.F32) Embedding.Floats.CopyTo(f);
        else Core.Kernels.Embedding.ForwardStored(ids, Embedding.DType, Embedding.Bytes, f, V, C);
        return f;
    }

    /// <summary>The output projection as it is used now, decoded to f32 [V, C] row-major.</summary>
    public float[] OutputF32()
    {
        if (OutputWeightF32 != null) return OutputWeightF32.Floats.ToArray();
        int V = Config.VocabSize, C = Config.HiddenSize;
        var ids = new int[V];
        for (int i = 0; i < V; i++) ids[i] = i;
        var f = new float[(long)V * C];
        Output.GatherRows(ids, f);
        return f;
    }
}
