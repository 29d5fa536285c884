// Hugging Face config.json for decoder models, parsed into raw nullable values (absent or null = null). Only the
// bytes -> values step: defaults per model type and validation belong to the model loader (Models/Loading).
using System.Text.Json;

namespace LoraSharp.Formats.Json;

/// <summary>Fields of a Hugging Face config.json, as written (null when absent).</summary>
public sealed record HfModelConfigJson
{
    /// <summary>Where it was read from.</summary>
    public required string SourcePath { get; init; }
    /// <summary>architectures, e.g. ["LlamaForCausalLM"].</summary>
    public string[]? Architectures { get; init; }
    /// <summary>model_type.</summary>
    public string? ModelType { get; init; }
    /// <summary>hidden_size.</summary>
    public int? HiddenSize { get; init; }
    /// <summary>intermediate_size.</summary>
    public int? IntermediateSize { get; init; }
    /// <summary>num_hidden_layers.</summary>
    public int? NumHiddenLayers { get; init; }
    /// <summary>num_attention_heads.</summary>
    public int? NumAttentionHeads { get; init; }
    /// <summary>num_key_value_heads.</summary>
    public int? NumKeyValueHeads { get; init; }
    /// <summary>head_dim.</summary>
    public int? HeadDim { get; init; }
    /// <summary>vocab_size.</summary>
    public int? VocabSize { get; init; }
    /// <summary>max_position_embeddings.</summary>
    public int? MaxPositionEmbeddings { get; init; }
    /// <summary>rms_norm_eps.</summary>
    public double? RmsNormEps { get; init; }
    /// <summary>rope_theta.</summary>
    public double? RopeTheta { get; init; }
    /// <summary>rope_scaling.</summary>
    public HfRopeScalingJson? RopeScaling { get; init; }
    /// <summary>tie_word_embeddings.</summary>
    public bool? TieWordEmbeddings { get; init; }
    /// <summary>attention_bias.</summary>
    public bool? AttentionBias { get; init; }
    /// <summary>mlp_bias.</summary>
    public bool? MlpBias { get; init; }
    /// <summary>sliding_window.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>use_sliding_window (qwen2).</summary>
    public bool? UseSlidingWindow { get; init; }
    /// <summary>hidden_act.</summary>
    public string? HiddenAct { get; init; }
    /// <summary>bos_token_id.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>eos_token_id (an int or a list).</summary>
    public int[]? EosTokenIds { get; init; }
    /// <summary>pad_token_id.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>torch_dtype (or the newer "dtype").</summary>
    public string? TorchDtype { get; init; }
    /// <summary>no_rope_layers (smollm3): one entry per layer, 1 = the layer applies RoPE, 0 = it does not.</summary>
    public int[]? NoRopeLayers { get; init; }
    /// <summary>no_rope_layer_interval (smollm3): every n-th layer skips RoPE when no_rope_layers is absent.</summary>
    public int? NoRopeLayerInterval { get; init; }
    /// <summary>hidden_activation (gemma2 / gemma3: "gelu_pytorch_tanh"; they ignore hidden_act).</summary>
    public string? HiddenActivation { get; init; }
    /// <summary>query_pre_attn_scalar (gemma): attention scores are scaled by its inverse square root.</summary>
    public double? QueryPreAttnScalar { get; init; }
    /// <summary>rope_local_base_freq (gemma3): the RoPE base of the sliding-window layers.</summary>
    public double? RopeLocalBaseFreq { get; init; }
    /// <summary>sliding_window_pattern (gemma3): every n-th layer is global, the others slide.</summary>
    public int? SlidingWindowPattern { get; init; }
    /// <summary>attn_logit_softcapping (gemma2): attention scores become cap·tanh(score/cap).</summary>
    public double? AttnLogitSoftcapping { get; init; }
    /// <summary>final_logit_softcapping (gemma2): logits become cap·tanh(logit/cap).</summary>
    public double? FinalLogitSoftcapping { get; init; }
    /// <summary>True when the field is present and explicitly null (gemma2: null turns a soft-cap off, absent means the default).</summary>
    public IReadOnlySet<string> ExplicitNulls { get; init; } = new HashSet<string>();
    /// <summary>layer_types: "sliding_attention" / "full_attention" per layer.</summary>
    public string[]? LayerTypes { get; init; }
    /// <summary>original_max_position_embeddings (phi3, top level): the pre-training context LongRoPE extends.</summary>
    public int? OriginalMaxPositionEmbeddings { get; init; }
    /// <summary>partial_rotary_factor (phi3): the fraction of each head's dimensions that rotate.</summary>
    public double? PartialRotaryFactor { get; init; }
    /// <summary>Every top-level field that is present and not null, with its raw JSON text (for refusing fields a model type cannot honour).</summary>
    public IReadOnlyDictionary<string, string> Present { get; init; } = new Dictionary<string, string>();

    /// <summary>Reads and parses <paramref name="path"/>; a field of the wrong type throws <see cref="ModelFormatException"/> naming it.</summary>
    public static HfModelConfigJson Read(string path)
    {
        using var doc = JsonFields.ParseFile(path);
        var f = new JsonFields(doc.RootElement, path);
        HfRopeScalingJson? rope = null;
        if (f.Child("rope_scaling") is { } rs)
        {
            string type = rs.String("rope_type") ?? rs.String("type")
                ?? throw new ModelFormatException(path, "rope_scaling", "has neither 'rope_type' nor 'type'.");
            rope = new HfRopeScalingJson(type, rs.Double("factor"), rs.Double("low_freq_factor"), rs.Double("high_freq_factor"),
                rs.Int("original_max_position_embeddings"))
            {
                ShortFactor = rs.Doubles("short_factor"),
                LongFactor = rs.Doubles("long_factor"),
                AttentionFactor = rs.Double("attention_factor"),
            };
        }
        return new HfModelConfigJson
        {
            SourcePath = path,
            Architectures = f.StringOrStrings("architectures"),
            ModelType = f.String("model_type"),
            HiddenSize = f.Int("hidden_size"),
            IntermediateSize = f.Int("intermediate_size"),
            NumHiddenLayers = f.Int("num_hidden_layers"),
            NumAttentionHeads = f.Int("num_attention_heads"),
            NumKeyValueHeads = f.Int("num_key_value_heads"),
            HeadDim = f.Int("head_dim"),
            VocabSize = f.Int("vocab_size"),
            MaxPositionEmbeddings = f.Int("max_position_embeddings"),
            RmsNormEps = f.Double("rms_norm_eps"),
            RopeTheta = f.Double("rope_theta"),
            RopeScaling = rope,
            TieWordEmbeddings = f.Bool("tie_word_embeddings"),
            AttentionBias = f.Bool("attention_bias"),
            MlpBias = f.Bool("mlp_bias"),
            SlidingWindow = f.Int("sliding_window"),
            UseSlidingWindow = f.Bool("use_sliding_window"),
            HiddenAct = f.String("hidden_act"),
            BosTokenId = f.Int("bos_token_id"),
            EosTokenIds = f.IntOrInts("eos_token_id"),
            PadTokenId = f.Int("pad_token_id"),
            TorchDtype = f.String("torch_dtype") ?? f.String("dtype"),
            NoRopeLayers = f.IntOrInts("no_rope_layers"),
            NoRopeLayerInterval = f.Int("no_rope_layer_interval"),
            HiddenActivation = f.String("hidden_activation"),
            QueryPreAttnScalar = f.Double("query_pre_attn_scalar"),
            RopeLocalBaseFreq = f.Double("rope_local_base_freq"),
            SlidingWindowPattern = f.Int("sliding_window_pattern"),
            LayerTypes = f.StringOrStrings("layer_types"),
            OriginalMaxPositionEmbeddings = f.Int("original_max_position_embeddings"),
            PartialRotaryFactor = f.Double("partial_rotary_factor"),
            AttnLogitSoftcapping = f.Double("attn_logit_softcapping"),
            FinalLogitSoftcapping = f.Double("final_logit_softcapping"),
            ExplicitNulls = doc.RootElement.ValueKind == JsonValueKind.Object
                ? doc.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Null).Select(p => p.Name).ToHashSet(StringComparer.Ordinal)
                : new HashSet<string>(),
            Present = doc.RootElement.ValueKind == JsonValueKind.Object
                ? doc.RootElement.EnumerateObject().Where(p => p.Value.ValueKind != JsonValueKind.Null)
                    .GroupBy(p => p.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Value.GetRawText(), StringComparer.Ordinal)
                : new Dictionary<string, string>(),
        };
    }
}
