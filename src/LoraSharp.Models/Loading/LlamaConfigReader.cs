// Builds LlamaConfig from a Hugging Face config.json (model_type llama, mistral, qwen2) or from GGUF metadata
// (general.architecture llama or qwen2). Defaults for absent fields follow transformers' LlamaConfig,
// MistralConfig and Qwen2Config; every value is validated (LlamaConfig.Validate) with the source file named.
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
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["llama", "mistral", "qwen2"];

    /// <summary>Reads and maps a config.json file.</summary>
    public static LlamaConfig FromHfFile(string path) => FromHf(HfModelConfigJson.Read(path));

    /// <summary>Maps parsed config.json values, applying transformers' per-model-type defaults.</summary>
    public static LlamaConfig FromHf(HfModelConfigJson j)
    {
        string src = j.SourcePath;
        string type = j.ModelType ?? throw new ModelFormatException(src, "model_type", "is missing; cannot tell which architecture this is.");
        if (!SupportedModelTypes.Contains(type))
            throw new ModelFormatException(src, "model_type", $"'{type}' is not supported (supported: {string.Join(", ", SupportedModelTypes)}).");
        int hidden = j.HiddenSize ?? throw new ModelFormatException(src, "hidden_size", "is missing.");
        int heads = j.NumAttentionHeads ?? throw new ModelFormatException(src, "num_attention_heads", "is missing.");
        // transformers defaults: LlamaConfig kv heads = heads; MistralConfig 8; Qwen2Config 32.
        int kvHeads = j.NumKeyValueHeads ?? type switch { "mistral" => 8, "qwen2" => 32, _ => heads };
        int? window = type switch
        {
            "mistral" => j.SlidingWindow,
            // Qwen2 only uses its sliding_window when use_sliding_window is true (default false).
            "qwen2" => j.UseSlidingWindow == true ? j.SlidingWindow : null,
            _ => null,
        };
        var cfg = new LlamaConfig
        {
            ModelType = type,
            HiddenSize = hidden,
            IntermediateSize = j.IntermediateSize ?? throw new ModelFormatException(src, "intermediate_size", "is missing."),
            NumHiddenLayers = j.NumHiddenLayers ?? throw new ModelFormatException(src, "num_hidden_layers", "is missing."),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = j.HeadDim ?? (heads > 0 ? hidden / heads : 0),
            VocabSize = j.VocabSize ?? throw new ModelFormatException(src, "vocab_size", "is missing."),
            MaxPositionEmbeddings = j.MaxPositionEmbeddings ?? type switch { "mistral" => 4096 * 32, "qwen2" => 32768, _ => 2048 },
            RmsNormEps = j.RmsNormEps ?? 1e-6,
            RopeTheta = j.RopeTheta ?? 10000.0,
            RopeScaling = MapRopeScaling(src, j.RopeScaling),
            // LlamaConfig, MistralConfig and Qwen2Config all default tie_word_embeddings to False.
            TieWordEmbeddings = j.TieWordEmbeddings ?? false,
            AttentionBias = type != "qwen2" && (j.AttentionBias ?? false),
            MlpBias = j.MlpBias ?? false,
            SlidingWindow = window,
            HiddenAct = j.HiddenAct ?? "silu",
            BosTokenId = j.BosTokenId,
            EosTokenIds = j.EosTokenIds ?? [],
            PadTokenId = j.PadTokenId,
            TorchDtype = j.TorchDtype,
        };
        cfg.Validate(src);
        return cfg;
    }

    private static RopeScaling? MapRopeScaling(string src, HfRopeScalingJson? r)
    {
        if (r == null || r.RopeType == "default") return null;
        return r.RopeType switch
        {
            "linear" or "dynamic" => new RopeScaling(r.RopeType, r.Factor ?? throw new ModelFormatException(src, "rope_scaling.factor", "is missing.")),
            "llama3" => new RopeScaling("llama3",
                r.Factor ?? throw new ModelFormatException(src, "rope_scaling.factor", "is missing."),
                r.LowFreqFactor ?? throw new ModelFormatException(src, "rope_scaling.low_freq_factor", "is missing."),
                r.HighFreqFactor ?? throw new ModelFormatException(src, "rope_scaling.high_freq_factor", "is missing."),
                r.OriginalMaxPositionEmbeddings ?? throw new ModelFormatException(src, "rope_scaling.original_max_position_embeddings", "is missing.")),
            _ => throw new ModelFormatException(src, "rope_scaling", $"type '{r.RopeType}' is not supported (linear, dynamic, llama3 are)."),
        };
    }

    /// <summary>Maps GGUF metadata ({arch}.* keys, tokenizer.ggml.*) of a llama or qwen2 file.</summary>
    public static LlamaConfig FromGguf(GgufFile g)
    {
        string src = g.Path;
        string arch = (g.Get("general.architecture") is { } archValue ? Get(src, "general.architecture", archValue, v => v.AsString()) : null)
            ?? throw new ModelFormatException(src, "general.architecture", "is missing.");
        if (arch is not ("llama" or "qwen2"))
            throw new ModelFormatException(src, "general.architecture", $"'{arch}' is not supported (llama, qwen2 are).");

        GgufValue Req(string key) => g.Get($"{arch}.{key}") ?? throw new ModelFormatException(src, $"{arch}.{key}", "is missing.");
        int Int(string key) => Get(src, $"{arch}.{key}", Req(key), v => checked((int)v.AsInt64()));
        int? OptInt(string key) => g.Get($"{arch}.{key}") is { } v ? Get(src, $"{arch}.{key}", v, x => checked((int)x.AsInt64())) : null;
        double Double(string key) => Get(src, $"{arch}.{key}", Req(key), AsDecimalDouble);
        double? OptDouble(string key) => g.Get($"{arch}.{key}") is { } v ? Get(src, $"{arch}.{key}", v, AsDecimalDouble) : null;

        int hidden = Int("embedding_length");
        int heads = Int("attention.head_count");
        int headDim = OptInt("attention.key_length") ?? (heads > 0 ? hidden / heads : 0);
        int? ropeDims = OptInt("rope.dimension_count");
        if (ropeDims is int rd && rd != headDim)
            throw new ModelFormatException(src, $"{arch}.rope.dimension_count", $"is {rd} but the head size is {headDim}; partial rotary embeddings are not supported.");

        int? tokens = g.Get("tokenizer.ggml.tokens")?.Count;
        int vocab = OptInt("vocab_size") ?? tokens ?? 0;
        // The embedding matrix decides: some files pad it beyond the token list.
        if (g.Contains("token_embd.weight")) vocab = g.Info("token_embd.weight").Shape[0];

        RopeScaling? scaling = null;
        if ((g.Get($"{arch}.rope.scaling.type") is { } stv ? Get(src, $"{arch}.rope.scaling.type", stv, v => v.AsString()) : null) is { } st && st != "none")
        {
            if (st != "linear") throw new ModelFormatException(src, $"{arch}.rope.scaling.type", $"'{st}' is not supported (linear is).");
            scaling = new RopeScaling("linear", OptDouble("rope.scaling.factor") ?? 1.0);
        }

        var eos = new List<int>();
        if (g.Get("tokenizer.ggml.eos_token_id") is { } e) eos.Add(Get(src, "tokenizer.ggml.eos_token_id", e, v => checked((int)v.AsInt64())));
        var cfg = new LlamaConfig
        {
            ModelType = arch,
            HiddenSize = hidden,
            IntermediateSize = Int("feed_forward_length"),
            NumHiddenLayers = Int("block_count"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = OptInt("attention.head_count_kv") ?? heads,
            HeadDim = headDim,
            VocabSize = vocab,
            MaxPositionEmbeddings = Int("context_length"),
            RmsNormEps = Double("attention.layer_norm_rms_epsilon"),
            RopeTheta = OptDouble("rope.freq_base") ?? 10000.0,
            RopeScaling = scaling,
            TieWordEmbeddings = !g.Contains("output.weight"),
            AttentionBias = arch == "llama" && g.Contains("blk.0.attn_q.bias"),
            MlpBias = g.Contains("blk.0.ffn_up.bias"),
            HiddenAct = "silu",
            BosTokenId = g.Get("tokenizer.ggml.bos_token_id") is { } b ? Get(src, "tokenizer.ggml.bos_token_id", b, v => checked((int)v.AsInt64())) : null,
            EosTokenIds = eos,
            PadTokenId = g.Get("tokenizer.ggml.padding_token_id") is { } pd ? Get(src, "tokenizer.ggml.padding_token_id", pd, v => checked((int)v.AsInt64())) : null,
        };
        cfg.Validate(src);
        return cfg;
    }

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
