// The one tensor-name map for Llama-family checkpoints: Hugging Face <-> GGUF (llama.cpp llama-arch.cpp names)
// <-> PEFT adapter keys. Names are strings here and nowhere else. Covers weights and biases of every linear,
// the norms, the embedding and lm_head (absent when embeddings are tied). Does not know shapes or dtypes.
//
//   GGUF                      Hugging Face
//   token_embd.weight         model.embed_tokens.weight
//   output_norm.weight        model.norm.weight
//   output.weight             lm_head.weight
//   blk.N.attn_norm.weight    model.layers.N.input_layernorm.weight
//   blk.N.attn_q.{weight,bias}      model.layers.N.self_attn.q_proj.{weight,bias}   (rows interleaved in GGUF, see RopePermutation)
//   blk.N.attn_k.{weight,bias}      model.layers.N.self_attn.k_proj.{weight,bias}   (ditto)
//   blk.N.attn_v / attn_output      model.layers.N.self_attn.v_proj / o_proj
//   blk.N.ffn_norm.weight     model.layers.N.post_attention_layernorm.weight
//   blk.N.ffn_gate / ffn_up / ffn_down   model.layers.N.mlp.gate_proj / up_proj / down_proj
//   blk.N.attn_q_norm / attn_k_norm      model.layers.N.self_attn.q_norm / k_norm   (qwen3, gemma3: per-head RMSNorm, [HS])
//   gemma ("sandwich" norms, sandwich: true), instead of ffn_norm <-> post_attention_layernorm:
//   blk.N.post_attention_norm model.layers.N.post_attention_layernorm   (on the attention output)
//   blk.N.ffn_norm            model.layers.N.pre_feedforward_layernorm
//   blk.N.post_ffw_norm       model.layers.N.post_feedforward_layernorm
//   phi3 (fused, fused: true): blk.N.attn_qkv <-> self_attn.qkv_proj (rows [q | k | v]), blk.N.ffn_up <-> mlp.gate_up_proj
//   (rows [gate | up]); global rope_factors_long / rope_factors_short (LongRoPE factors) have no HF tensor
//   PEFT: base_model.model.{HF module}.lora_A.weight / lora_B.weight (module = HF name without ".weight")
using System.Globalization;

namespace LoraSharp.Models.Loading;

/// <summary>Maps tensor names between Hugging Face, GGUF and PEFT conventions.</summary>
public static class TensorNames
{
    /// <summary>HF name of the token embedding.</summary>
    public const string Embedding = "model.embed_tokens.weight";

    /// <summary>HF name of the final norm.</summary>
    public const string FinalNorm = "model.norm.weight";

    /// <summary>HF name of the output projection (absent when tied).</summary>
    public const string LmHead = "lm_head.weight";

    /// <summary>PEFT's prefix in adapter files.</summary>
    public const string PeftPrefix = "base_model.model.";

    private static readonly (string Gguf, string Hf)[] s_global =
    [
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ];

    private static readonly (string Gguf, string Hf)[] s_layer =
    [
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
    ];

    private static readonly (string Gguf, string Hf)[] s_fusedLayer =
    [
        ("attn_norm", "input_layernorm"),
        ("attn_qkv", "self_attn.qkv_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_norm", "post_attention_layernorm"),
        ("ffn_up", "mlp.gate_up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ];

    private static readonly (string Gguf, string Hf)[] s_sandwichLayer =
    [
        .. s_layer.Where(p => p.Gguf != "ffn_norm"),
        ("post_attention_norm", "post_attention_layernorm"),
        ("ffn_norm", "pre_feedforward_layernorm"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
    ];

    /// <summary>The linear modules of a decoder layer, by their HF short names (PEFT target_modules values).</summary>
    public static IReadOnlyList<string> LinearModules { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>phi3's fused linear modules (LlamaConfig.FusedProjections), PEFT target_modules values.</summary>
    public static IReadOnlyList<string> FusedLinearModules { get; } = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

    /// <summary>HF name of a per-layer tensor: Layer(3, "self_attn.q_proj.weight") = "model.layers.3.self_attn.q_proj.weight".</summary>
    public static string Layer(int layer, string suffix) => $"model.layers.{layer.ToString(CultureInfo.InvariantCulture)}.{suffix}";

    /// <summary>HF name of linear <paramref name="module"/> ("q_proj", ..., "down_proj") in a layer, ".weight" or ".bias".</summary>
    public static string Linear(int layer, string module, string part = "weight") => Layer(layer, ModulePath(module) + "." + part);

    /// <summary>"q_proj" -> "self_attn.q_proj", "gate_proj" -> "mlp.gate_proj".</summary>
    public static string ModulePath(string module) => module switch
    {
        "q_proj" or "k_proj" or "v_proj" or "o_proj" or "qkv_proj" => "self_attn." + module,
        "gate_proj" or "up_proj" or "down_proj" or "gate_up_proj" => "mlp." + module,
        _ => throw new ArgumentException($"'{module}' is not a Llama linear module ({string.Join(", ", LinearModules)})."),
    };

    /// <summary>The HF name for a GGUF tensor name, or null when it has none (e.g. rope_freqs.weight).</summary>
    /// <param name="gguf">The GGUF tensor name.</param>
    /// <param name="sandwich">Gemma's norm names (LlamaConfig.SandwichNorms).</param>
    /// <param name="fused">phi3's fused qkv_proj / gate_up_proj (LlamaConfig.FusedProjections).</param>
    public static string? GgufToHf(string gguf, bool sandwich = false, bool fused = false)
    {
        var table = fused ? s_fusedLayer : sandwich ? s_sandwichLayer : s_layer;
        if (!SplitSuffix(gguf, out string stem, out string part)) return null;
        foreach (var (g, h) in s_global)
            if (stem == g) return h + "." + part;
        if (!stem.StartsWith("blk.", StringComparison.Ordinal)) return null;
        int dot = stem.IndexOf('.', 4);
        if (dot < 0 || !int.TryParse(stem.AsSpan(4, dot - 4), NumberStyles.None, CultureInfo.InvariantCulture, out int layer)) return null;
        string rest = stem[(dot + 1)..];
        foreach (var (g, h) in table)
            if (rest == g) return Layer(layer, h + "." + part);
        return null;
    }

    /// <summary>The GGUF tensor name for an HF name, or null when it has none.</summary>
    /// <param name="hf">The Hugging Face tensor name.</param>
    /// <param name="sandwich">Gemma's norm names (LlamaConfig.SandwichNorms).</param>
    /// <param name="fused">phi3's fused qkv_proj / gate_up_proj (LlamaConfig.FusedProjections).</param>
    public static string? HfToGguf(string hf, bool sandwich = false, bool fused = false)
    {
        var table = fused ? s_fusedLayer : sandwich ? s_sandwichLayer : s_layer;
        if (!SplitSuffix(hf, out string stem, out string part)) return null;
        foreach (var (g, h) in s_global)
            if (stem == h) return g + "." + part;
        if (LayerIndex(hf) is not int layer) return null;
        string rest = stem[(Layer(layer, "").Length)..];
        foreach (var (g, h) in table)
            if (rest == h) return $"blk.{layer.ToString(CultureInfo.InvariantCulture)}.{g}.{part}";
        return null;
    }

    /// <summary>The layer index of an HF per-layer name ("model.layers.7...." -> 7), or null.</summary>
    public static int? LayerIndex(string hf)
    {
        const string prefix = "model.layers.";
        if (!hf.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = hf.IndexOf('.', prefix.Length);
        if (dot < 0) return null;
        return int.TryParse(hf.AsSpan(prefix.Length, dot - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : null;
    }

    /// <summary>The name with its layer index replaced by N, for grouping ("model.layers.N.mlp.up_proj.weight").</summary>
    public static string Kind(string hf) => LayerIndex(hf) is int n ? "model.layers.N" + hf[(("model.layers." + n.ToString(CultureInfo.InvariantCulture)).Length)..] : hf;

    /// <summary>PEFT key of a LoRA factor: HfToPeft("model.layers.0.self_attn.q_proj.weight", "lora_A") = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".</summary>
    public static string HfToPeft(string hfWeight, string loraPart)
    {
        if (loraPart is not ("lora_A" or "lora_B" or "lora_magnitude_vector"))
            throw new ArgumentException($"'{loraPart}' is not lora_A, lora_B or lora_magnitude_vector.", nameof(loraPart));
        if (!hfWeight.EndsWith(".weight", StringComparison.Ordinal))
            throw new ArgumentException($"'{hfWeight}' is not a weight name (must end in .weight).", nameof(hfWeight));
        return PeftPrefix + hfWeight[..^".weight".Length] + "." + loraPart + ".weight";
    }

    /// <summary>
    /// Splits a PEFT key into the HF weight it adapts and the factor ("lora_A"/"lora_B"); accepts the in-memory
    /// form with an adapter name ("...q_proj.lora_A.default.weight"). Null when the key is not a LoRA factor.
    /// </summary>
    public static (string HfWeight, string LoraPart)? PeftToHf(string key)
    {
        if (!key.StartsWith(PeftPrefix, StringComparison.Ordinal) || !key.EndsWith(".weight", StringComparison.Ordinal)) return null;
        string body = key[PeftPrefix.Length..^".weight".Length];
        foreach (string part in (string[])["lora_A", "lora_B", "lora_magnitude_vector"])
        {
            int at = body.LastIndexOf("." + part, StringComparison.Ordinal);
            if (at < 0) continue;
            string after = body[(at + part.Length + 1)..];
            if (after.Length == 0 || (after[0] == '.' && after.IndexOf('.', 1) < 0))
                return (body[..at] + ".weight", part);
        }
        return null;
    }

    /// <summary>True for an RMSNorm weight (gemma stores 1 + w in GGUF files, w in Hugging Face checkpoints).</summary>
    public static bool IsNorm(string hf) => hf.EndsWith("norm.weight", StringComparison.Ordinal);

    /// <summary>True for q_proj weight/bias (rotary rows, permuted between GGUF and HF with NH heads).</summary>
    public static bool IsQuery(string hf) => hf.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal) || hf.EndsWith(".self_attn.q_proj.bias", StringComparison.Ordinal);

    /// <summary>True for k_proj weight/bias (rotary rows, permuted with NKV heads).</summary>
    public static bool IsKey(string hf) => hf.EndsWith(".self_attn.k_proj.weight", StringComparison.Ordinal) || hf.EndsWith(".self_attn.k_proj.bias", StringComparison.Ordinal);

    private static bool SplitSuffix(string name, out string stem, out string part)
    {
        foreach (string p in (string[])["weight", "bias"])
        {
            if (name.EndsWith("." + p, StringComparison.Ordinal))
            {
                stem = name[..^(p.Length + 1)];
                part = p;
                return true;
            }
        }
        stem = part = "";
        return false;
    }
}
