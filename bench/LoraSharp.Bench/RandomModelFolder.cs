// A Hugging Face model folder with random weights at a benchmark shape: config.json (llama, or another family's
// model_type with its own fields: qwen2, qwen3, smollm3, gemma3_text, gemma2, phi3), model.safetensors in
// f32, bf16 or f16, and a tokenizer.json copied from a given folder (stories260K's: its 512 ids are valid in any
// larger vocabulary). `lorasharp bench random-model` writes one so that `lorasharp train` and `bench train --model`
// can be timed end to end (file mapping, loading, batching, the loop) at the sizes people fine-tune, without
// downloading a checkpoint. Not a trained model: its text is noise.
using System.Text.Json;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;

namespace LoraSharp.Bench;

/// <summary>Writes random-weight Hugging Face folders.</summary>
public static class RandomModelFolder
{
    /// <summary>The model families a folder can be written as (config.json model_type; llama the default).</summary>
    public static IReadOnlyList<string> Families { get; } = ["llama", "qwen2", "qwen3", "smollm3", "gemma3_text", "gemma2", "phi3"];

    /// <summary>Writes <paramref name="folder"/> (created; files written under temporary names, then renamed) as a
    /// <paramref name="family"/> model with the shape's dims (one of <see cref="Families"/>).</summary>
    public static void Write(TrainBench.Shape shape, DType dtype, string folder, string tokenizerFolder, string family = "llama")
    {
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"A random model folder holds f32, bf16 or f16 weights, not {dtype}.");
        string tokenizer = Path.Combine(tokenizerFolder, "tokenizer.json");
        if (!File.Exists(tokenizer)) throw new FileNotFoundException($"{tokenizer} not found: pass a folder with a tokenizer.json (e.g. ../shared/models/stories260K-hf).", tokenizer);
        var config = Config(shape.Config, family, dtype);
        Directory.CreateDirectory(folder);
        string configPath = Path.Combine(folder, "config.json");
        Atomic(configPath, tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true })));
        // The weights follow the config as the loader reads it (its defaults included), so the two always agree.
        var c = LlamaConfigReader.FromHfFile(configPath);
        var weights = RandomWeights.Create(c, seed: 0, dtype);
        try
        {
            if (c.TieWordEmbeddings) weights.Remove("lm_head.weight", out _);
            Atomic(Path.Combine(folder, "model.safetensors"), tmp => SafetensorsWriter.Write(tmp, weights, new Dictionary<string, string> { ["format"] = "pt" }));
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
        Atomic(Path.Combine(folder, "tokenizer.json"), tmp => File.Copy(tokenizer, tmp, overwrite: true));
    }

    /// <summary>
    /// The config.json of <paramref name="family"/> at the dims of <paramref name="c"/>, with the family's own fields at
    /// the values of its released small checkpoints (Qwen2.5/Qwen3, SmolLM3-3B, gemma-3-1b, gemma-2-2b, Phi-3.5-mini):
    /// qwen3's explicit head_dim (q_norm/k_norm come with the model type), smollm3's no_rope_layers (every 4th layer
    /// without RoPE), gemma's query_pre_attn_scalar, sliding window and GeLU, gemma3_text's local RoPE base and layer
    /// pattern, gemma2's soft-caps; phi3 has no extra field (its fused qkv_proj / gate_up_proj follow from model_type).
    /// Tied embeddings, vocabulary and head size stay the shape's.
    /// </summary>
    public static Dictionary<string, object?> Config(LlamaConfig c, string family, DType dtype)
    {
        if (!Families.Contains(family))
            throw new Core.UserErrorException($"--family '{family}' is not a model family of random-model; valid: {string.Join(", ", Families)}.");
        string architecture = family switch
        {
            "llama" => "LlamaForCausalLM", "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", "smollm3" => "SmolLM3ForCausalLM",
            "gemma3_text" => "Gemma3ForCausalLM", "gemma2" => "Gemma2ForCausalLM", _ => "Phi3ForCausalLM",
        };
        bool gemma = family is "gemma3_text" or "gemma2";
        var config = new Dictionary<string, object?>
        {
            ["architectures"] = new[] { architecture }, ["model_type"] = family, ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize, ["num_hidden_layers"] = c.NumHiddenLayers, ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads, ["vocab_size"] = c.VocabSize,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings, ["rms_norm_eps"] = family == "phi3" ? 1e-5 : gemma ? 1e-6 : c.RmsNormEps,
            ["rope_theta"] = family switch { "qwen2" or "qwen3" or "gemma3_text" => 1000000.0, "smollm3" => 5000000.0, _ => c.RopeTheta },
            ["tie_word_embeddings"] = c.TieWordEmbeddings, ["hidden_act"] = gemma ? "gelu_pytorch_tanh" : "silu",
            ["bos_token_id"] = 1, ["eos_token_id"] = 2,
            ["torch_dtype"] = dtype switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" },
        };
        // Qwen2Config and Phi3Config have no head_dim: theirs is hidden_size / heads.
        bool headDimField = family is not ("qwen2" or "phi3");
        if (headDimField) config["head_dim"] = c.HeadDim;
        switch (family)
        {
            case "qwen2" or "qwen3":
                config["use_sliding_window"] = false;
                config["sliding_window"] = null;
                config["max_window_layers"] = c.NumHiddenLayers;
                if (family == "qwen3") config["attention_bias"] = false;
                break;
            case "smollm3":
                config["attention_bias"] = false;
                config["mlp_bias"] = false;
                config["use_sliding_window"] = false;
                config["no_rope_layer_interval"] = 4;
                config["no_rope_layers"] = Enumerable.Range(0, c.NumHiddenLayers).Select(l => (l + 1) % 4 != 0 ? 1 : 0).ToArray();
                break;
            case "gemma3_text" or "gemma2":
                config["hidden_activation"] = "gelu_pytorch_tanh";
                config["query_pre_attn_scalar"] = c.HeadDim;
                config["attention_bias"] = false;
                config["pad_token_id"] = 0;
                if (family == "gemma3_text")
                {
                    config["rope_local_base_freq"] = 10000.0;
                    config["sliding_window"] = 512;
                    config["sliding_window_pattern"] = 6;
                    config["attn_logit_softcapping"] = null;
                    config["final_logit_softcapping"] = null;
                }
                else
                {
                    config["sliding_window"] = 4096;
                    config["attn_logit_softcapping"] = 50.0;
                    config["final_logit_softcapping"] = 30.0;
                }
                break;
            case "phi3":
                config["original_max_position_embeddings"] = c.MaxPositionEmbeddings;
                config["partial_rotary_factor"] = 1.0;
                config["rope_scaling"] = null;
                config["sliding_window"] = null;
                config["attention_bias"] = false;
                config["attention_dropout"] = 0.0;
                config["embd_pdrop"] = 0.0;
                config["resid_pdrop"] = 0.0;
                break;
        }
        if (!headDimField && c.HeadDim * c.NumAttentionHeads != c.HiddenSize)
            throw new Core.UserErrorException($"A {family} config has no head_dim field, so its head size is hidden_size / heads = {c.HiddenSize / c.NumAttentionHeads}, not this shape's {c.HeadDim}.");
        return config;
    }

    private static void Atomic(string path, Action<string> write)
    {
        string tmp = path + ".tmp";
        try
        {
            write(tmp);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
