// The one config type for every Llama-family model (llama, mistral, qwen2, qwen3, smollm3, gemma2, gemma3_text), named after Hugging Face
// config.json fields. Loaders fill it from config.json or from GGUF metadata; the model reads only this.
// Family deltas from Llama are flags derived here, so the model code asks "QkNorm?" rather than "qwen3?":
//   qwen3    per-head RMSNorm on q and k (q_norm, k_norm, weight [HS]) before RoPE; head_dim explicit
//   smollm3  layers without RoPE (no_rope_layers[l] = 0)
//   gemma3_text  RMSNorm weights used as (1 + w); norms before and after attention and MLP ("sandwich"); embeddings
//            scaled by sqrt(hidden); GeGLU (gelu tanh); q/k norms; scores scaled by query_pre_attn_scalar^-1/2;
//            sliding-window layers (sliding_window_pattern) with their own RoPE base (rope_local_base_freq)
//   phi3     fused projections (self_attn.qkv_proj = [q | k | v], mlp.gate_up_proj = [gate | up]), partial rotary
//            (partial_rotary_factor), LongRoPE (rope_scaling longrope/su: short/long factors, attention factor)
//   gemma2   gemma3_text's norms, embedding scale, GeGLU and query_pre_attn_scalar, without q/k norms or a local RoPE
//            base; sliding and global layers alternate (even layers slide); attention scores soft-capped
//            (attn_logit_softcapping) inside the attention kernel, logits soft-capped (final_logit_softcapping)
using LoraSharp.Core.Kernels;

namespace LoraSharp.Models;

/// <summary>Architecture hyperparameters of a Llama-family decoder (HF config.json names in PascalCase).</summary>
public sealed record LlamaConfig
{
    /// <summary>"llama", "mistral", "qwen2", "qwen3", "smollm3", "gemma2", "gemma3_text" or "phi3".</summary>
    public string ModelType { get; init; } = "llama";

    /// <summary>Model width C.</summary>
    public int HiddenSize { get; init; }

    /// <summary>MLP width (gate/up out features).</summary>
    public int IntermediateSize { get; init; }

    /// <summary>Number of decoder layers L.</summary>
    public int NumHiddenLayers { get; init; }

    /// <summary>Query heads NH.</summary>
    public int NumAttentionHeads { get; init; }

    /// <summary>Key/value heads NKV (grouped-query attention when smaller than NH).</summary>
    public int NumKeyValueHeads { get; init; }

    /// <summary>Head size HS; HiddenSize / NumAttentionHeads unless config.json says otherwise.</summary>
    public int HeadDim { get; init; }

    /// <summary>Vocabulary size V.</summary>
    public int VocabSize { get; init; }

    /// <summary>Context length the model was trained for.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary>RoPE scaling (null = none).</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>The output projection shares the embedding matrix (no lm_head.weight).</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>q/k/v/o projections have biases (qwen2: q/k/v only, see <see cref="QkvBias"/>).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>MLP projections have biases.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Sliding-window attention size (mistral), null when the model attends to the whole context.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Activation of the MLP gate ("silu").</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary>Beginning-of-sequence token id.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence token ids (some models list several).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Padding token id.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>dtype the weights were saved in ("float32", "bfloat16", ...).</summary>
    public string? TorchDtype { get; init; }

    /// <summary>smollm3's no_rope_layers: one entry per layer, 1 = RoPE, 0 = none; null = every layer uses RoPE.</summary>
    public IReadOnlyList<int>? NoRopeLayers { get; init; }

    /// <summary>True when layer <paramref name="layer"/> rotates q and k (false for smollm3's NoPE layers).</summary>
    public bool UsesRope(int layer) => NoRopeLayers is not { } n || n[layer] != 0;

    /// <summary>True when every query and key head is RMS-normalised (q_norm / k_norm, weight [HS]) before RoPE (qwen3, gemma3).</summary>
    public bool QkNorm => ModelType is "qwen3" or "gemma3_text";

    /// <summary>Gemma: every RMSNorm multiplies by (1 + weight); checkpoints store weight (GGUF files store 1 + weight).</summary>
    public bool GemmaNorms => ModelType is "gemma3_text" or "gemma2";

    /// <summary>Gemma: a norm after attention (post_attention_layernorm) and after the MLP (post_feedforward_layernorm) on
    /// the branch before the residual add; the MLP's input norm is pre_feedforward_layernorm.</summary>
    public bool SandwichNorms => ModelType is "gemma3_text" or "gemma2";

    /// <summary>Embedding rows are multiplied by this (gemma: sqrt(hidden_size) rounded to float32; 1 otherwise).</summary>
    public float EmbeddingScale => GemmaNorms ? (float)Math.Sqrt(HiddenSize) : 1f;

    /// <summary>query_pre_attn_scalar (gemma): scores are scaled by its inverse square root instead of head_dim's.</summary>
    public double? QueryPreAttnScalar { get; init; }

    /// <summary>The attention score scale: 1/sqrt(head_dim), or query_pre_attn_scalar^-1/2 (gemma).</summary>
    public float AttentionScale => QueryPreAttnScalar is double q ? (float)Math.Pow(q, -0.5) : 1f / MathF.Sqrt(HeadDim);

    /// <summary>gemma2's attn_logit_softcapping: attention scores become cap·tanh(score/cap); null = no cap.</summary>
    public double? AttnLogitSoftcapping { get; init; }

    /// <summary>gemma2's final_logit_softcapping: logits become cap·tanh(logit/cap) (before softmax / cross-entropy); null = no cap.</summary>
    public double? FinalLogitSoftcapping { get; init; }

    /// <summary>The attention soft-cap as the kernels take it (0 = none).</summary>
    public float AttentionSoftCap => AttnLogitSoftcapping is double c ? (float)c : 0f;

    /// <summary>The final logit soft-cap as the kernels take it (0 = none).</summary>
    public float LogitSoftCap => FinalLogitSoftcapping is double c ? (float)c : 0f;

    /// <summary>Per layer: true where the layer attends through <see cref="SlidingWindow"/>; null = every layer alike.</summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }

    /// <summary>RoPE base of the sliding-window layers (gemma3's rope_local_base_freq, no scaling); null = rope_theta everywhere.</summary>
    public double? RopeLocalTheta { get; init; }

    /// <summary>The sliding window of layer <paramref name="layer"/> (0 = it attends to the whole context).</summary>
    public int LayerWindow(int layer) => SlidingWindow is not int w ? 0 : SlidingLayers is not { } s || s[layer] ? w : 0;

    /// <summary>True when layer <paramref name="layer"/> uses the local RoPE table (gemma3's sliding layers).</summary>
    public bool UsesLocalRope(int layer) => RopeLocalTheta != null && SlidingLayers is { } s && s[layer];

    /// <summary>general.architecture of a GGUF file for this model (mistral is written as llama, as llama.cpp does).</summary>
    public string GgufArchitecture => ModelType switch { "mistral" => "llama", "gemma3_text" => "gemma3", _ => ModelType };   // gemma2 -> gemma2

    /// <summary>
    /// True when llama.cpp rotates consecutive pairs for this architecture (LLAMA_ROPE_TYPE_NORM: llama, smollm3), so
    /// GGUF files hold q/k rows interleaved (RopePermutation); false for NEOX (half-offset) architectures (qwen2, qwen3),
    /// whose GGUF rows are in Hugging Face order.
    /// </summary>
    public bool GgufInterleavedQk => ModelType is "llama" or "mistral" or "smollm3";

    /// <summary>True for the MLP gate gelu_tanh(gate) * up (gemma's hidden_activation gelu_pytorch_tanh) instead of SwiGLU.</summary>
    public bool GatedGelu => HiddenAct is "gelu_pytorch_tanh";

    /// <summary>True when q/k/v projections carry biases (qwen2 always; llama/mistral when attention_bias).</summary>
    public bool QkvBias => ModelType == "qwen2" || AttentionBias;

    /// <summary>True when o_proj carries a bias (llama/mistral with attention_bias; never qwen2).</summary>
    public bool OutputBias => ModelType != "qwen2" && AttentionBias;

    /// <summary>phi3's partial_rotary_factor: the fraction of each head's dimensions that rotate (1 = all).</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;

    /// <summary>Rotated dimensions per head: int(head_dim * partial_rotary_factor), as transformers computes it.</summary>
    /// (A GGUF file gives rd itself; rd / head_dim times head_dim may land a hair under rd, hence the 1e-9.)
    public int RotaryDim => PartialRotaryFactor == 1.0 ? HeadDim : (int)(HeadDim * PartialRotaryFactor + 1e-9);

    /// <summary>phi3: q/k/v are one projection (self_attn.qkv_proj, rows [q | k | v]) and gate/up one (mlp.gate_up_proj,
    /// rows [gate | up]); LoRA targets these fused names, as PEFT does.</summary>
    public bool FusedProjections => ModelType == "phi3";

    /// <summary>
    /// target_modules when the user gives none, per model_type: PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    /// (peft/utils/constants.py) for the families it lists (llama, mistral, qwen2, qwen3, gemma2, gemma3_text: q_proj,
    /// v_proj). PEFT has no entry for phi3 or smollm3 (it asks for target_modules); ours: phi3 qkv_proj (its fused
    /// q/k/v, the module holding PEFT's q_proj and v_proj), smollm3 q_proj v_proj (Llama's projections). A model type
    /// not listed gets q_proj v_proj.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> PeftDefaultTargetModules { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        ["llama"] = ["q_proj", "v_proj"],
        ["mistral"] = ["q_proj", "v_proj"],
        ["qwen2"] = ["q_proj", "v_proj"],
        ["qwen3"] = ["q_proj", "v_proj"],
        ["gemma2"] = ["q_proj", "v_proj"],
        ["gemma3_text"] = ["q_proj", "v_proj"],
        ["smollm3"] = ["q_proj", "v_proj"],   // not in PEFT's table
        ["phi3"] = ["qkv_proj"],              // not in PEFT's table
    };

    /// <summary>This family's target_modules when the user gives none (<see cref="PeftDefaultTargetModules"/>).</summary>
    public IReadOnlyList<string> DefaultTargetModules => DefaultTargetModulesFor(ModelType);

    /// <summary>The target_modules default of model type <paramref name="modelType"/> (q_proj v_proj when not listed).</summary>
    public static IReadOnlyList<string> DefaultTargetModulesFor(string? modelType) =>
        modelType is not null && PeftDefaultTargetModules.TryGetValue(modelType, out var t) ? t : ["q_proj", "v_proj"];

    /// <summary>True when the model uses LongRoPE, whose frequencies switch to long_factor for sequences longer than
    /// <see cref="RopeScaling"/>.OriginalMaxPositionEmbeddings.</summary>
    public bool LongRope => RopeScaling is { IsLongRope: true };

    /// <summary>Throws with a message naming the field if the config is inconsistent.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string field, string what)
        {
            if (!ok) throw new Formats.ModelFormatException(source, null, $"'{field}' {what}.");
        }
        Require(HiddenSize > 0, "hidden_size", $"must be positive (is {HiddenSize})");
        Require(IntermediateSize > 0, "intermediate_size", $"must be positive (is {IntermediateSize})");
        Require(NumHiddenLayers > 0, "num_hidden_layers", $"must be positive (is {NumHiddenLayers})");
        Require(NumAttentionHeads > 0, "num_attention_heads", $"must be positive (is {NumAttentionHeads})");
        Require(NumKeyValueHeads > 0 && NumAttentionHeads % NumKeyValueHeads == 0, "num_key_value_heads",
            $"must divide num_attention_heads {NumAttentionHeads} (is {NumKeyValueHeads})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, "head_dim", $"must be a positive even number (is {HeadDim})");
        Require(VocabSize > 0, "vocab_size", $"must be positive (is {VocabSize})");
        Require(RmsNormEps > 0, "rms_norm_eps", $"must be positive (is {RmsNormEps})");
        Require(RopeTheta > 0, "rope_theta", $"must be positive (is {RopeTheta})");
        Require(HiddenAct is "silu" or "swish" || (HiddenAct == "gelu_pytorch_tanh" && GemmaNorms), "hidden_act",
            $"must be silu (gemma: gelu_pytorch_tanh) (is {HiddenAct})");
        Require(SlidingLayers is null || SlidingLayers.Count == NumHiddenLayers, "layer_types", $"must have one entry per layer ({NumHiddenLayers})");
        Require(QueryPreAttnScalar is null || QueryPreAttnScalar > 0, "query_pre_attn_scalar", $"must be positive (is {QueryPreAttnScalar})");
        Require(RopeLocalTheta is null || RopeLocalTheta > 0, "rope_local_base_freq", $"must be positive (is {RopeLocalTheta})");
        Require(PartialRotaryFactor > 0 && PartialRotaryFactor <= 1 && RotaryDim > 0 && RotaryDim % 2 == 0, "partial_rotary_factor",
            $"must give a positive even number of rotary dimensions (head_dim {HeadDim} x {PartialRotaryFactor} = {HeadDim * PartialRotaryFactor})");
        Require(PartialRotaryFactor == 1.0 || FusedProjections, "partial_rotary_factor", $"is only supported for phi3 (is {PartialRotaryFactor})");
        Require(!LongRope || FusedProjections, "rope_scaling", "longrope is only supported for phi3");
        Require(!LongRope || (RopeScaling!.ShortFactor?.Count == RotaryDim / 2 && RopeScaling.LongFactor?.Count == RotaryDim / 2), "rope_scaling",
            $"short_factor and long_factor must have rotary_dim / 2 = {RotaryDim / 2} entries each (have {RopeScaling?.ShortFactor?.Count} and {RopeScaling?.LongFactor?.Count})");
        Require(AttnLogitSoftcapping is null || (AttnLogitSoftcapping > 0 && double.IsFinite(AttnLogitSoftcapping.Value)), "attn_logit_softcapping",
            $"must be a positive number or null (is {AttnLogitSoftcapping})");
        Require(FinalLogitSoftcapping is null || (FinalLogitSoftcapping > 0 && double.IsFinite(FinalLogitSoftcapping.Value)), "final_logit_softcapping",
            $"must be a positive number or null (is {FinalLogitSoftcapping})");
        Require(NoRopeLayers is null || NoRopeLayers.Count == NumHiddenLayers, "no_rope_layers",
            $"must have one entry per layer ({NumHiddenLayers}; has {NoRopeLayers?.Count})");
    }
}
