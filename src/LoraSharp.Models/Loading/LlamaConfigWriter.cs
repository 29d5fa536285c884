// The inverse of LlamaConfigReader.FromGguf: a LlamaConfig as GGUF "llama" architecture metadata
// (general.*, llama.*). Tokenizer metadata is added by the caller.
using LoraSharp.Formats.Gguf;

namespace LoraSharp.Models.Loading;

/// <summary>Writes a config as GGUF metadata.</summary>
public static class LlamaConfigWriter
{
    /// <summary>GGUF key/values describing <paramref name="c"/> (llama architecture).</summary>
    public static List<KeyValuePair<string, GgufValue>> ToGguf(LlamaConfig c, string name, uint fileType)
    {
        if (c.ModelType != "llama") throw new Core.UserErrorException($"GGUF output is supported for llama models, not {c.ModelType}; write a Hugging Face folder instead.");
        const string arch = "llama";
        var list = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.From(arch)),
            new("general.name", GgufValue.From(name)),
            new($"{arch}.context_length", GgufValue.From((uint)c.MaxPositionEmbeddings)),
            new($"{arch}.embedding_length", GgufValue.From((uint)c.HiddenSize)),
            new($"{arch}.block_count", GgufValue.From((uint)c.NumHiddenLayers)),
            new($"{arch}.feed_forward_length", GgufValue.From((uint)c.IntermediateSize)),
            new($"{arch}.rope.dimension_count", GgufValue.From((uint)c.HeadDim)),
            new($"{arch}.attention.head_count", GgufValue.From((uint)c.NumAttentionHeads)),
            new($"{arch}.attention.head_count_kv", GgufValue.From((uint)c.NumKeyValueHeads)),
            new($"{arch}.attention.layer_norm_rms_epsilon", GgufValue.From((float)c.RmsNormEps)),
            new($"{arch}.rope.freq_base", GgufValue.From((float)c.RopeTheta)),
            new($"{arch}.vocab_size", GgufValue.From((uint)c.VocabSize)),
            new("general.file_type", GgufValue.From(fileType)),
        };
        if (c.HeadDim * c.NumAttentionHeads != c.HiddenSize) list.Add(new($"{arch}.attention.key_length", GgufValue.From((uint)c.HeadDim)));
        if (c.RopeScaling is { } rs)
        {
            if (rs.RopeType != "linear") throw new Core.UserErrorException($"rope_scaling type '{rs.RopeType}' cannot be written to GGUF by LoraSharp yet; write a Hugging Face folder instead.");
            list.Add(new($"{arch}.rope.scaling.type", GgufValue.From("linear")));
            list.Add(new($"{arch}.rope.scaling.factor", GgufValue.From((float)rs.Factor)));
        }
        return list;
    }
}
