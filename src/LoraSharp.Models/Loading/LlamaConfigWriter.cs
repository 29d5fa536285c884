// The inverse of LlamaConfigReader.FromGguf: a LlamaConfig as GGUF metadata of its llama.cpp architecture
// (general.*, {arch}.*: llama for llama/mistral, qwen2, qwen3, smollm3, gemma3 for gemma3_text). Tokenizer metadata is
// added by the caller. gemma3: llama.cpp hard-codes its layer pattern, local RoPE base and attention scale, so a config
// that differs is refused. gemma2: the soft-caps and the window are written as keys; llama.cpp hard-codes the
// alternating layers and the attention scale (1/sqrt(head_dim), 27B: 1/sqrt(hidden/heads)) and has no "no cap", so
// a config that differs or has no cap is refused.
// phi3: rope.dimension_count is the rotary dimension (partial_rotary_factor); LongRoPE is the factor tensors
// rope_factors_long / rope_factors_short (GgufTensors) with rope.scaling.attn_factor and original_context_length.
// smollm3: llama.cpp has no key for the NoPE layers and hard-codes every 4th layer, so any other pattern is refused.
using LoraSharp.Formats.Gguf;

namespace LoraSharp.Models.Loading;

/// <summary>Writes a config as GGUF metadata.</summary>
public static class LlamaConfigWriter
{
    /// <summary>GGUF key/values describing <paramref name="c"/> (its llama.cpp architecture).</summary>
    public static List<KeyValuePair<string, GgufValue>> ToGguf(LlamaConfig c, string name, uint fileType)
    {
        if (c.ModelType is not ("llama" or "mistral" or "qwen2" or "qwen3" or "smollm3" or "gemma2" or "gemma3_text" or "phi3"))
            throw new Core.UserErrorException($"GGUF output is not supported for {c.ModelType}; write a Hugging Face folder instead.");
        if (c.ModelType == "mistral" && c.SlidingWindow is not null)
            throw new Core.UserErrorException("GGUF output of a mistral model with a sliding window is not supported (llama.cpp's llama architecture has no window); write a Hugging Face folder instead.");
        if (c.NoRopeLayers is { } nr && !nr.SequenceEqual(LlamaConfigReader.SmolLm3LlamaCppNoRope(c.NumHiddenLayers)))
            throw new Core.UserErrorException("no_rope_layers is not 'every 4th layer without RoPE', the only pattern llama.cpp's smollm3 runs (it has no GGUF key for it); write a Hugging Face folder instead.");
        if (c.ModelType == "gemma3_text")
        {
            // llama.cpp's gemma3 hard-codes a global layer every 6th, a local RoPE base of 10000 and 1/sqrt(head_dim).
            string? why = c.SlidingLayers is not { } sl || !sl.SequenceEqual(LlamaConfigReader.Gemma3LlamaCppSlidingLayers(c.NumHiddenLayers))
                ? "its layer_types are not 'every 6th layer global'"
                : c.RopeLocalTheta != 10000.0 ? $"rope_local_base_freq is {c.RopeLocalTheta}, not 10000"
                : c.QueryPreAttnScalar != c.HeadDim ? $"query_pre_attn_scalar {c.QueryPreAttnScalar} differs from head_dim {c.HeadDim}"
                : c.NumHiddenLayers == 62 ? "it has 62 layers (27B), whose attention scale llama.cpp derives otherwise" : null;
            if (why != null)
                throw new Core.UserErrorException($"GGUF output of this gemma3 model would not run the same in llama.cpp: {why}. Write a Hugging Face folder instead.");
        }
        if (c.ModelType == "gemma2")
        {
            int scalar = LlamaConfigReader.Gemma2LlamaCppQueryPreAttnScalar(c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.HeadDim);
            string? why = c.SlidingLayers is not { } sl || !sl.SequenceEqual(LlamaConfigReader.Gemma2LlamaCppSlidingLayers(c.NumHiddenLayers))
                ? "its layer_types are not 'even layers sliding, odd layers global'"
                : c.QueryPreAttnScalar != scalar ? $"query_pre_attn_scalar {c.QueryPreAttnScalar} differs from the {scalar} llama.cpp derives for {c.NumHiddenLayers} layers"
                : c.AttnLogitSoftcapping is null ? "attn_logit_softcapping is null (llama.cpp's gemma2 always caps)"
                : c.FinalLogitSoftcapping is null ? "final_logit_softcapping is null (llama.cpp's gemma2 always caps)" : null;
            if (why != null)
                throw new Core.UserErrorException($"GGUF output of this gemma2 model would not run the same in llama.cpp: {why}. Write a Hugging Face folder instead.");
        }
        string arch = c.GgufArchitecture;
        var list = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.From(arch)),
            new("general.name", GgufValue.From(name)),
            new($"{arch}.context_length", GgufValue.From((uint)c.MaxPositionEmbeddings)),
            new($"{arch}.embedding_length", GgufValue.From((uint)c.HiddenSize)),
            new($"{arch}.block_count", GgufValue.From((uint)c.NumHiddenLayers)),
            new($"{arch}.feed_forward_length", GgufValue.From((uint)c.IntermediateSize)),
            new($"{arch}.rope.dimension_count", GgufValue.From((uint)c.RotaryDim)),
            new($"{arch}.attention.head_count", GgufValue.From((uint)c.NumAttentionHeads)),
            new($"{arch}.attention.head_count_kv", GgufValue.From((uint)c.NumKeyValueHeads)),
            new($"{arch}.attention.layer_norm_rms_epsilon", GgufValue.From((float)c.RmsNormEps)),
            new($"{arch}.rope.freq_base", GgufValue.From((float)c.RopeTheta)),
            new($"{arch}.vocab_size", GgufValue.From((uint)c.VocabSize)),
            new("general.file_type", GgufValue.From(fileType)),
        };
        if (c.HeadDim * c.NumAttentionHeads != c.HiddenSize)
        {
            list.Add(new($"{arch}.attention.key_length", GgufValue.From((uint)c.HeadDim)));
            list.Add(new($"{arch}.attention.value_length", GgufValue.From((uint)c.HeadDim)));
        }
        if (c.ModelType is "gemma3_text" or "gemma2") list.Add(new($"{arch}.attention.sliding_window", GgufValue.From((uint)c.SlidingWindow!.Value)));
        if (c.ModelType == "gemma2")
        {
            list.Add(new($"{arch}.attn_logit_softcapping", GgufValue.From((float)c.AttnLogitSoftcapping!.Value)));
            list.Add(new($"{arch}.final_logit_softcapping", GgufValue.From((float)c.FinalLogitSoftcapping!.Value)));
        }
        // phi3: convert_hf_to_gguf writes sliding_window (0 = none); llama.cpp currently runs phi3 without a window.
        if (c.ModelType == "phi3") list.Add(new($"{arch}.attention.sliding_window", GgufValue.From((uint)(c.SlidingWindow ?? 0))));
        if (c.RopeScaling is { IsLongRope: true } lr)
        {
            // As convert_hf_to_gguf.py: the attention factor and original context as keys, the factors as tensors.
            list.Add(new($"{arch}.rope.scaling.attn_factor", GgufValue.From((float)lr.LongRopeAttentionFactor)));
            list.Add(new($"{arch}.rope.scaling.original_context_length", GgufValue.From((uint)lr.OriginalMaxPositionEmbeddings)));
        }
        else if (c.RopeScaling is { } rs)
        {
            if (rs.RopeType != "linear") throw new Core.UserErrorException($"rope_scaling type '{rs.RopeType}' cannot be written to GGUF by LoraSharp yet; write a Hugging Face folder instead.");
            list.Add(new($"{arch}.rope.scaling.type", GgufValue.From("linear")));
            list.Add(new($"{arch}.rope.scaling.factor", GgufValue.From((float)rs.Factor)));
        }
        return list;
    }

    /// <summary>Tensors a GGUF file of <paramref name="c"/> needs beyond the model's weights: phi3's LongRoPE factors
    /// (rope_factors_long.weight, rope_factors_short.weight, F32 [rd/2]); empty otherwise. The caller disposes them.</summary>
    public static List<KeyValuePair<string, Core.Tensors.Tensor>> GgufTensors(LlamaConfig c)
    {
        var list = new List<KeyValuePair<string, Core.Tensors.Tensor>>();
        if (c.RopeScaling is { IsLongRope: true } lr)
        {
            list.Add(new("rope_factors_long.weight", Core.Tensors.Tensor.FromFloats([.. lr.LongFactor!], lr.LongFactor!.Count)));
            list.Add(new("rope_factors_short.weight", Core.Tensors.Tensor.FromFloats([.. lr.ShortFactor!], lr.ShortFactor!.Count)));
        }
        return list;
    }
}
