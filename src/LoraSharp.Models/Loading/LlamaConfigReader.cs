// Builds LlamaConfig from a Hugging Face config.json (model_type llama, mistral, qwen2, qwen3, smollm3, gemma2, gemma3_text)
// or from GGUF metadata (general.architecture llama, qwen2, qwen3, smollm3, gemma2, gemma3). Defaults for absent fields
// follow transformers' LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, SmolLM3Config, Gemma2Config and
// Gemma3TextConfig; every value
// is validated (LlamaConfig.Validate) with the source file named. A config.json field that changes the math in a way
// this model type does not implement (a soft-cap, a partial rotary factor, sliding-window layers, experts, ...) is
// refused by name rather than silently ignored (s_mathFields).
// Does not read tensors (the loader checks shapes against the config).
using LoraSharp.Core.Kernels;
using LoraSharp.Formats;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Json;

namespace LoraSharp.Models.Loading;

/// <summary>Reads <see cref="LlamaConfig"/> from config.json or GGUF metadata.</summary>
public static class LlamaConfigReader
{
    /// <summary>model_type values this project runs.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["llama", "mistral", "qwen2", "qwen3", "smollm3", "gemma2", "gemma3_text", "phi3"];

    // config.json fields of other architectures that change the forward pass. Present with a value other than the
    // neutral one listed, they make the load fail with the field named (instead of a silently different model).
    private static readonly (string Field, string[] Neutral)[] s_mathFields =
    [
        ("attn_logit_softcapping", ["null"]), ("final_logit_softcapping", ["null"]), ("query_pre_attn_scalar", ["null"]),
        ("partial_rotary_factor", ["1", "1.0"]), ("rope_local_base_freq", ["null"]), ("sliding_window_pattern", ["null"]),
        ("layer_types", ["null"]), ("use_qk_norm", ["false"]), ("qk_layernorm", ["false"]), ("num_experts", ["0", "1"]),
        ("num_local_experts", ["0", "1"]), ("logits_scaling", ["1", "1.0"]), ("embedding_multiplier", ["1", "1.0"]),
        ("residual_multiplier", ["1", "1.0"]), ("attention_multiplier", ["null"]), ("no_rope_layers", ["null"]),
        ("use_sliding_window", ["false"]), ("clip_qkv", ["null"]), ("alibi", ["false"]), ("layer_norm_type", ["null"]),
        ("use_bidirectional_attention", ["false"]), ("altup_num_inputs", ["null"]), ("laurel_rank", ["null"]),
    ];

    // The fields of s_mathFields that each model type implements (or checks itself).
    private static IReadOnlyList<string> HandledMathFields(string type) => type switch
    {
        "qwen2" => ["use_sliding_window", "layer_types"],
        "qwen3" => ["use_sliding_window", "layer_types"],
        "smollm3" => ["no_rope_layers", "use_sliding_window", "layer_types"],
        "gemma3_text" => ["query_pre_attn_scalar", "rope_local_base_freq", "sliding_window_pattern", "layer_types"],
        "phi3" => ["partial_rotary_factor"],
        "gemma2" => ["attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar", "layer_types"],
        _ => [],
    };

    /// <summary>Reads and maps a config.json file.</summary>
    public static LlamaConfig FromHfFile(string path) => FromHf(HfModelConfigJson.Read(path));

    /// <summary>Maps parsed config.json values, applying transformers' per-model-type defaults.</summary>
    public static LlamaConfig FromHf(HfModelConfigJson j)
    {
        string src = j.SourcePath;
        string type = j.ModelType ?? throw new ModelFormatException(src, "model_type", "is missing; cannot tell which architecture this is.");
        if (!SupportedModelTypes.Contains(type))
            throw new ModelFormatException(src, "model_type", $"'{type}' is not supported (supported: {string.Join(", ", SupportedModelTypes)}).");
        var handled = HandledMathFields(type);
        foreach (var (field, neutral) in s_mathFields)
            if (!handled.Contains(field) && j.Present.TryGetValue(field, out string? raw) && !neutral.Contains(raw.Trim()))
                throw new ModelFormatException(src, field, $"is {Short(raw)}, which changes the model's math in a way LoraSharp does not implement for model_type '{type}'; " +
                    "this checkpoint cannot be run exactly (remove the field only if it is a leftover with no effect).");
        if (type == "phi3")
        {
            // Phi3Config's dropouts act in training mode (LoRA fine-tuning would see them): only zero is implemented.
            foreach (string drop in (string[])["resid_pdrop", "embd_pdrop", "attention_dropout"])
                if (j.Present.TryGetValue(drop, out string? dv) && double.TryParse(dv, System.Globalization.CultureInfo.InvariantCulture, out double d) && d != 0)
                    throw new ModelFormatException(src, drop, $"is {dv}; phi3 dropout inside the base model is not implemented (the released Phi-3.5 / Phi-4-mini have 0.0).");
            if (j.Present.TryGetValue("lm_head_bias", out string? lb) && lb.Trim() == "true")
                throw new ModelFormatException(src, "lm_head_bias", "is true; an lm_head bias is not implemented for phi3.");
            if (j.Present.ContainsKey("layer_types") && j.Present["layer_types"].Contains("sliding", StringComparison.Ordinal))
                throw new ModelFormatException(src, "layer_types", "has sliding-attention layers, which are not implemented for phi3 (sliding_window applies to every layer).");
        }
        int hidden = j.HiddenSize ?? throw new ModelFormatException(src, "hidden_size", "is missing.");
        int heads = j.NumAttentionHeads ?? throw new ModelFormatException(src, "num_attention_heads", "is missing.");
        int layers = j.NumHiddenLayers ?? throw new ModelFormatException(src, "num_hidden_layers", "is missing.");
        // transformers defaults: LlamaConfig kv heads = heads; MistralConfig 8; Qwen2Config 32; Qwen3Config 32; SmolLM3Config 4;
        // Gemma3TextConfig 4.
        // Gemma2Config 4.
        int kvHeads = j.NumKeyValueHeads ?? type switch { "mistral" => 8, "qwen2" => 32, "qwen3" => 32, "smollm3" => 4, "gemma3_text" or "gemma2" => 4, _ => heads };
        bool gemma = type is "gemma3_text" or "gemma2", gemma2 = type == "gemma2";
        IReadOnlyList<bool>? slidingLayers = null;
        if (gemma)
        {
            // Gemma3TextConfig: layer_types, else "sliding_attention" unless (i + 1) % sliding_window_pattern (6) == 0.
            // Gemma2Config: layer_types, else "sliding_attention" when (i + 1) % 2 != 0 (even layers slide); it has no
            // sliding_window_pattern (a value there is refused as a math field).
            int pattern = gemma2 ? 2 : j.SlidingWindowPattern ?? 6;
            if (j.LayerTypes is null && pattern <= 0) throw new ModelFormatException(src, "sliding_window_pattern", $"must be positive (is {pattern}).");
            if (j.LayerTypes is { } types)
            {
                if (types.Length != layers) throw new ModelFormatException(src, "layer_types", $"has {types.Length} entries but the model has {layers} layers.");
                foreach (string t in types)
                    if (t is not ("sliding_attention" or "full_attention"))
                        throw new ModelFormatException(src, "layer_types", $"has '{t}'; only sliding_attention and full_attention are known.");
                slidingLayers = types.Select(t => t == "sliding_attention").ToArray();
            }
            else
            {
                slidingLayers = Enumerable.Range(0, layers).Select(l => (l + 1) % pattern != 0).ToArray();
            }
        }
        if (type is "qwen3" or "smollm3" && j.UseSlidingWindow == true)
            throw new ModelFormatException(src, "use_sliding_window", $"is true; sliding-window layers of {type} are not implemented (the released checkpoints have it false).");
        if (type is "qwen2" or "qwen3" && j.Present.TryGetValue("layer_types", out string? lt) && lt.Contains("sliding", StringComparison.Ordinal) && j.UseSlidingWindow == true)
            throw new ModelFormatException(src, "layer_types", "mixes sliding and full attention layers, which is not implemented.");
        if (type == "smollm3" && j.Present.TryGetValue("layer_types", out string? slt) && slt.Contains("sliding", StringComparison.Ordinal))
            throw new ModelFormatException(src, "layer_types", "has sliding-attention layers, which are not implemented for smollm3.");
        int? window = type switch
        {
            "mistral" => j.SlidingWindow,
            // Qwen2 only uses its sliding_window when use_sliding_window is true (default false).
            "qwen2" => j.UseSlidingWindow == true ? j.SlidingWindow : null,
            "gemma3_text" or "gemma2" => j.SlidingWindow ?? 4096,
            "phi3" => j.SlidingWindow,
            _ => null,
        };
        IReadOnlyList<int>? noRope = null;
        if (type == "smollm3")
        {
            // SmolLM3Config: no_rope_layers, else a NoPE layer every no_rope_layer_interval (default 4) layers.
            int interval = j.NoRopeLayerInterval ?? 4;
            if (j.NoRopeLayers is null && interval <= 0)
                throw new ModelFormatException(src, "no_rope_layer_interval", $"must be positive (is {interval}).");
            noRope = j.NoRopeLayers is { } given
                ? (given.Length >= layers ? given[..layers] : throw new ModelFormatException(src, "no_rope_layers", $"has {given.Length} entries but the model has {layers} layers."))
                : Enumerable.Range(0, layers).Select(l => (l + 1) % interval != 0 ? 1 : 0).ToArray();
            if (noRope.Any(v => v is not (0 or 1)))
                throw new ModelFormatException(src, "no_rope_layers", "must hold only 0 (no RoPE) and 1 (RoPE).");
        }
        var cfg = new LlamaConfig
        {
            ModelType = type,
            HiddenSize = hidden,
            IntermediateSize = j.IntermediateSize ?? throw new ModelFormatException(src, "intermediate_size", "is missing."),
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            // Qwen3Config's head_dim defaults to 128 and Gemma3TextConfig's to 256, not hidden_size / heads.
            HeadDim = j.HeadDim ?? (type == "qwen3" ? 128 : gemma ? 256 : heads > 0 ? hidden / heads : 0),   // Gemma2Config: 256 too
            VocabSize = j.VocabSize ?? throw new ModelFormatException(src, "vocab_size", "is missing."),
            MaxPositionEmbeddings = j.MaxPositionEmbeddings ?? type switch { "mistral" => 4096 * 32, "qwen2" or "qwen3" or "smollm3" => 32768, "gemma3_text" => 131072, "gemma2" => 8192, "phi3" => 4096, _ => 2048 },
            RmsNormEps = j.RmsNormEps ?? (type == "phi3" ? 1e-5 : 1e-6),
            RopeTheta = j.RopeTheta ?? type switch { "smollm3" => 2000000.0, "gemma3_text" => 1000000.0, _ => 10000.0 },
            RopeLocalTheta = gemma && !gemma2 ? j.RopeLocalBaseFreq ?? 10000.0 : null,
            // Gemma2Config: 50.0 and 30.0 when absent; an explicit null turns the cap off.
            AttnLogitSoftcapping = gemma2 ? j.AttnLogitSoftcapping ?? (j.ExplicitNulls.Contains("attn_logit_softcapping") ? null : 50.0) : null,
            FinalLogitSoftcapping = gemma2 ? j.FinalLogitSoftcapping ?? (j.ExplicitNulls.Contains("final_logit_softcapping") ? null : 30.0) : null,
            SlidingLayers = slidingLayers,
            QueryPreAttnScalar = gemma ? j.QueryPreAttnScalar ?? 256 : null,
            RopeScaling = MapRopeScaling(src, j.RopeScaling, j, type),
            PartialRotaryFactor = type == "phi3" ? j.PartialRotaryFactor ?? 1.0 : 1.0,
            // LlamaConfig, MistralConfig, Qwen2Config and Qwen3Config default tie_word_embeddings to False, SmolLM3Config and
            // Gemma3TextConfig to True.
            TieWordEmbeddings = j.TieWordEmbeddings ?? type is "smollm3" or "gemma3_text" or "gemma2",
            NoRopeLayers = noRope,
            // Phi3Attention / Phi3MLP build their projections without biases whatever attention_bias / mlp_bias say.
            AttentionBias = type is not ("qwen2" or "phi3") && (j.AttentionBias ?? false),
            MlpBias = type != "phi3" && (j.MlpBias ?? false),
            SlidingWindow = window,
            // Gemma reads hidden_activation (hidden_act is a deprecated leftover there).
            HiddenAct = gemma ? j.HiddenActivation ?? "gelu_pytorch_tanh" : j.HiddenAct ?? "silu",
            BosTokenId = j.BosTokenId,
            EosTokenIds = j.EosTokenIds ?? [],
            PadTokenId = j.PadTokenId,
            TorchDtype = j.TorchDtype,
        };
        cfg.Validate(src);
        return cfg;
    }

    private static string Short(string raw) => raw.Length > 60 ? raw[..60] + "..." : raw;

    private static RopeScaling? MapRopeScaling(string src, HfRopeScalingJson? r, HfModelConfigJson j, string type)
    {
        if (r == null || r.RopeType == "default") return null;
        if (r.RopeType is "longrope" or "su")
        {
            if (type != "phi3") throw new ModelFormatException(src, "rope_scaling", $"type '{r.RopeType}' is only supported for model_type phi3.");
            // transformers' _compute_longrope_parameters: the top-level original_max_position_embeddings wins and then
            // factor = max_position_embeddings / original; otherwise rope_scaling's own fields.
            int maxPos = j.MaxPositionEmbeddings ?? 4096;
            int orig = j.OriginalMaxPositionEmbeddings ?? r.OriginalMaxPositionEmbeddings ?? maxPos;
            if (orig <= 0) throw new ModelFormatException(src, "original_max_position_embeddings", $"must be positive (is {orig}).");
            double factor = j.OriginalMaxPositionEmbeddings is int o ? (double)maxPos / o : r.Factor ?? 1.0;
            float[] Factors(double[]? v, string name) => v is null
                ? throw new ModelFormatException(src, $"rope_scaling.{name}", "is missing (LongRoPE needs short_factor and long_factor).")
                : v.Select(x => x > 0 && double.IsFinite(x) ? (float)x : throw new ModelFormatException(src, $"rope_scaling.{name}", $"has {x}; every factor must be a positive number.")).ToArray();
            var scaling = new RopeScaling("longrope", factor, OriginalMaxPositionEmbeddings: orig)
            {
                ShortFactor = Factors(r.ShortFactor, "short_factor"),
                LongFactor = Factors(r.LongFactor, "long_factor"),
                AttentionFactor = r.AttentionFactor,
            };
            if (scaling.ShortFactor.Count != scaling.LongFactor.Count)
                throw new ModelFormatException(src, "rope_scaling", $"short_factor has {scaling.ShortFactor.Count} entries but long_factor {scaling.LongFactor.Count}; both need one per rotary frequency.");
            return scaling;
        }
        return r.RopeType switch
        {
            "linear" or "dynamic" => new RopeScaling(r.RopeType, r.Factor ?? throw new ModelFormatException(src, "rope_scaling.factor", "is missing.")),
            "llama3" => new RopeScaling("llama3",
                r.Factor ?? throw new ModelFormatException(src, "rope_scaling.factor", "is missing."),
                r.LowFreqFactor ?? throw new ModelFormatException(src, "rope_scaling.low_freq_factor", "is missing."),
                r.HighFreqFactor ?? throw new ModelFormatException(src, "rope_scaling.high_freq_factor", "is missing."),
                r.OriginalMaxPositionEmbeddings ?? throw new ModelFormatException(src, "rope_scaling.original_max_position_embeddings", "is missing.")),
            _ => throw new ModelFormatException(src, "rope_scaling", $"type '{r.RopeType}' is not supported (linear, dynamic, llama3, longrope for phi3 are)."),
        };
    }

    /// <summary>general.architecture values this project reads.</summary>
    public static IReadOnlyList<string> SupportedGgufArchitectures { get; } = ["llama", "qwen2", "qwen3", "smollm3", "gemma2", "gemma3", "phi3"];

    /// <summary>Maps GGUF metadata ({arch}.* keys, tokenizer.ggml.*) of a llama, qwen2, qwen3 or smollm3 file.</summary>
    public static LlamaConfig FromGguf(GgufFile g)
    {
        string src = g.Path;
        string arch = (g.Get("general.architecture") is { } archValue ? Get(src, "general.architecture", archValue, v => v.AsString()) : null)
            ?? throw new ModelFormatException(src, "general.architecture", "is missing.");
        if (!SupportedGgufArchitectures.Contains(arch))
            throw new ModelFormatException(src, "general.architecture", $"'{arch}' is not supported ({string.Join(", ", SupportedGgufArchitectures)} are).");

        GgufValue Req(string key) => g.Get($"{arch}.{key}") ?? throw new ModelFormatException(src, $"{arch}.{key}", "is missing.");
        int Int(string key) => Get(src, $"{arch}.{key}", Req(key), v => checked((int)v.AsInt64()));
        int? OptInt(string key) => g.Get($"{arch}.{key}") is { } v ? Get(src, $"{arch}.{key}", v, x => checked((int)x.AsInt64())) : null;
        double Double(string key) => Get(src, $"{arch}.{key}", Req(key), AsDecimalDouble);
        double? OptDouble(string key) => g.Get($"{arch}.{key}") is { } v ? Get(src, $"{arch}.{key}", v, AsDecimalDouble) : null;

        int hidden = Int("embedding_length");
        int layers = Int("block_count");
        int heads = Int("attention.head_count");
        int headDim = OptInt("attention.key_length") ?? (heads > 0 ? hidden / heads : 0);
        int? ropeDims = OptInt("rope.dimension_count");
        // phi3 (Phi-4-mini): rope.dimension_count < head size is its partial_rotary_factor.
        if (ropeDims is int rd && rd != headDim && (arch != "phi3" || rd <= 0 || rd > headDim || rd % 2 != 0))
            throw new ModelFormatException(src, $"{arch}.rope.dimension_count", $"is {rd} but the head size is {headDim}; partial rotary embeddings are supported only for phi3 (an even count up to the head size).");
        double partial = arch == "phi3" && ropeDims is int prd ? (double)prd / headDim : 1.0;

        int? tokens = g.Get("tokenizer.ggml.tokens")?.Count;
        int vocab = OptInt("vocab_size") ?? tokens ?? 0;
        // The embedding matrix decides: some files pad it beyond the token list.
        if (g.Contains("token_embd.weight")) vocab = g.Info("token_embd.weight").Shape[0];

        RopeScaling? scaling = null;
        if (arch == "gemma3" && layers == 62)
            throw new ModelFormatException(src, "gemma3.block_count", "is 62 (Gemma 3 27B), whose attention scale llama.cpp derives differently; not supported.");
        if ((g.Get($"{arch}.rope.scaling.type") is { } stv ? Get(src, $"{arch}.rope.scaling.type", stv, v => v.AsString()) : null) is { } st && st != "none")
        {
            if (st != "linear") throw new ModelFormatException(src, $"{arch}.rope.scaling.type", $"'{st}' is not supported (linear is).");
            scaling = new RopeScaling("linear", OptDouble("rope.scaling.factor") ?? 1.0);
        }

        var eos = new List<int>();
        if (g.Get("tokenizer.ggml.eos_token_id") is { } e) eos.Add(Get(src, "tokenizer.ggml.eos_token_id", e, v => checked((int)v.AsInt64())));
        // llama.cpp's smollm3 has no key for its NoPE layers: it hard-codes a step of 4 ((il + 1) % 4 == 0 skips RoPE).
        IReadOnlyList<int>? noRope = arch == "smollm3" ? SmolLm3LlamaCppNoRope(layers) : null;
        bool gemma3 = arch == "gemma3", gemma2 = arch == "gemma2";
        if (!gemma2)
            foreach (string capKey in (string[])["attn_logit_softcapping", "final_logit_softcapping"])
                if (g.Get($"{arch}.{capKey}") is { } cap && Get(src, $"{arch}.{capKey}", cap, AsDecimalDouble) != 0)
                    throw new ModelFormatException(src, $"{arch}.{capKey}", $"is set; logit soft-capping is implemented for gemma2 only, not {arch}.");
        // llama.cpp's gemma2 (llama-model.cpp): soft-caps default to 50 and 30 when the keys are absent, window 4096, even
        // layers slide (set_swa_pattern(2)), one RoPE base, q scaled by 1/sqrt(head_dim), except 27B (46 layers):
        // 1/sqrt(hidden / heads).
        double? attnCap = gemma2 ? OptDouble("attn_logit_softcapping") ?? 50.0 : null;
        double? finalCap = gemma2 ? OptDouble("final_logit_softcapping") ?? 30.0 : null;
        var cfg = new LlamaConfig
        {
            ModelType = gemma3 ? "gemma3_text" : arch,
            AttnLogitSoftcapping = attnCap,
            FinalLogitSoftcapping = finalCap,
            HiddenSize = hidden,
            IntermediateSize = Int("feed_forward_length"),
            NumHiddenLayers = layers,
            NoRopeLayers = noRope,
            NumAttentionHeads = heads,
            NumKeyValueHeads = OptInt("attention.head_count_kv") ?? heads,
            HeadDim = headDim,
            VocabSize = vocab,
            MaxPositionEmbeddings = Int("context_length"),
            RmsNormEps = Double("attention.layer_norm_rms_epsilon"),
            RopeTheta = OptDouble("rope.freq_base") ?? 10000.0,
            RopeScaling = arch == "phi3" ? Phi3LongRope(g, src, ropeDims ?? headDim, Int("context_length")) : scaling,
            PartialRotaryFactor = partial,
            TieWordEmbeddings = !g.Contains("output.weight"),
            AttentionBias = arch is "llama" or "qwen3" or "smollm3" && g.Contains("blk.0.attn_q.bias"),
            MlpBias = g.Contains("blk.0.ffn_up.bias"),
            HiddenAct = gemma3 || gemma2 ? "gelu_pytorch_tanh" : "silu",
            // llama.cpp's gemma3 hard-codes these (llama-model.cpp): a global layer every 6th, local RoPE base 10000,
            // scores scaled by 1/sqrt(head_dim) (except 27B, which LoraSharp does not special-case: refused below).
            SlidingWindow = gemma3 ? Int("attention.sliding_window") : gemma2 ? OptInt("attention.sliding_window") ?? 4096 : null,
            SlidingLayers = gemma3 ? Gemma3LlamaCppSlidingLayers(layers) : gemma2 ? Gemma2LlamaCppSlidingLayers(layers) : null,
            RopeLocalTheta = gemma3 ? 10000.0 : null,
            QueryPreAttnScalar = gemma3 ? headDim : gemma2 ? Gemma2LlamaCppQueryPreAttnScalar(layers, hidden, heads, headDim) : null,
            BosTokenId = g.Get("tokenizer.ggml.bos_token_id") is { } b ? Get(src, "tokenizer.ggml.bos_token_id", b, v => checked((int)v.AsInt64())) : null,
            EosTokenIds = eos,
            PadTokenId = g.Get("tokenizer.ggml.padding_token_id") is { } pd ? Get(src, "tokenizer.ggml.padding_token_id", pd, v => checked((int)v.AsInt64())) : null,
        };
        cfg.Validate(src);
        return cfg;
    }

    /// <summary>
    /// phi3's LongRoPE from a GGUF file: rope_factors_short.weight / rope_factors_long.weight [rd/2] (F32), with
    /// phi3.rope.scaling.original_context_length and phi3.rope.scaling.attn_factor; null when the tensors are absent.
    /// </summary>
    private static RopeScaling? Phi3LongRope(GgufFile g, string src, int rotaryDim, int context)
    {
        bool hasShort = g.Contains("rope_factors_short.weight"), hasLong = g.Contains("rope_factors_long.weight");
        if (!hasShort && !hasLong) return null;
        float[] Factors(string name)
        {
            if (!g.Contains(name)) throw new ModelFormatException(src, name, "is missing (a phi3 LongRoPE file needs rope_factors_short and rope_factors_long).");
            using var t = g.GetTensor(name);
            if (t.DType != Core.Tensors.DType.F32 || t.ElementCount != rotaryDim / 2)
                throw new ModelFormatException(src, name, $"is {t.DType} {t.ShapeText}; expected F32 [{rotaryDim / 2}] (one factor per rotary frequency).");
            return t.Floats.ToArray();
        }
        int orig = g.Get("phi3.rope.scaling.original_context_length") is { } o ? Get(src, "phi3.rope.scaling.original_context_length", o, v => checked((int)v.AsInt64()))
            : throw new ModelFormatException(src, "phi3.rope.scaling.original_context_length", "is missing (LongRoPE needs the original context length).");
        if (orig <= 0) throw new ModelFormatException(src, "phi3.rope.scaling.original_context_length", $"must be positive (is {orig}).");
        double? attn = g.Get("phi3.rope.scaling.attn_factor") is { } a ? Get(src, "phi3.rope.scaling.attn_factor", a, AsDecimalDouble) : null;
        return new RopeScaling("longrope", (double)context / orig, OriginalMaxPositionEmbeddings: orig)
        {
            ShortFactor = Factors("rope_factors_short.weight"),
            LongFactor = Factors("rope_factors_long.weight"),
            AttentionFactor = attn,
        };
    }

    /// <summary>The sliding layers llama.cpp uses for gemma3 (set_swa_pattern(6): every 6th layer is global).</summary>
    public static bool[] Gemma3LlamaCppSlidingLayers(int layers) => Enumerable.Range(0, layers).Select(l => (l + 1) % 6 != 0).ToArray();

    /// <summary>The sliding layers llama.cpp uses for gemma2 (set_swa_pattern(2): even layers slide, odd layers are global).</summary>
    public static bool[] Gemma2LlamaCppSlidingLayers(int layers) => Enumerable.Range(0, layers).Select(l => l % 2 == 0).ToArray();

    /// <summary>The query_pre_attn_scalar llama.cpp's gemma2 implies: head_dim, or hidden / heads (integer) for 27B (46 layers).</summary>
    public static int Gemma2LlamaCppQueryPreAttnScalar(int layers, int hidden, int heads, int headDim) => layers == 46 && heads > 0 ? hidden / heads : headDim;

    /// <summary>The no_rope_layers llama.cpp uses for smollm3 (a NoPE layer every 4th layer; it has no GGUF key for it).</summary>
    public static int[] SmolLm3LlamaCppNoRope(int layers) => Enumerable.Range(0, layers).Select(l => (l + 1) % 4 != 0 ? 1 : 0).ToArray();

    // An f32 value as the double of its shortest decimal form: f32 1e-5 becomes 1e-5 (as config.json says), not 9.9999997e-6.
    private static double AsDecimalDouble(GgufValue v) => v.Value is float f
        ? double.Parse(f.ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture)
        : v.AsDouble();

    private static T Get<T>(string src, string key, GgufValue v, Func<GgufValue, T> f)
    {
        try
        {
            return f(v);
        }
        catch (Exception e) when (e is InvalidCastException or OverflowException)
        {
            throw new ModelFormatException(src, key, $"has type {v.Type} ({v}), which is not usable here: {e.Message}", e);
        }
    }
}
