// A Hugging Face model folder with random weights at a benchmark shape: config.json (Llama), model.safetensors in
// f32, bf16 or f16, and a tokenizer.json copied from a given folder (stories260K's: its 512 ids are valid in any
// larger vocabulary). `lorasharp bench random-model` writes one so that `lorasharp train` and `bench train --model`
// can be timed end to end (file mapping, loading, batching, the loop) at the sizes people fine-tune, without
// downloading a checkpoint. Not a trained model: its text is noise.
using System.Text.Json;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;

namespace LoraSharp.Bench;

/// <summary>Writes random-weight Hugging Face folders.</summary>
public static class RandomModelFolder
{
    /// <summary>Writes <paramref name="folder"/> (created; files written under temporary names, then renamed).</summary>
    public static void Write(TrainBench.Shape shape, DType dtype, string folder, string tokenizerFolder)
    {
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"A random model folder holds f32, bf16 or f16 weights, not {dtype}.");
        string tokenizer = Path.Combine(tokenizerFolder, "tokenizer.json");
        if (!File.Exists(tokenizer)) throw new FileNotFoundException($"{tokenizer} not found: pass a folder with a tokenizer.json (e.g. ../shared/models/stories260K-hf).", tokenizer);
        Directory.CreateDirectory(folder);
        var c = shape.Config;
        var config = new Dictionary<string, object>
        {
            ["architectures"] = new[] { "LlamaForCausalLM" }, ["model_type"] = "llama", ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize, ["num_hidden_layers"] = c.NumHiddenLayers, ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads, ["head_dim"] = c.HeadDim, ["vocab_size"] = c.VocabSize,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings, ["rms_norm_eps"] = c.RmsNormEps, ["rope_theta"] = c.RopeTheta,
            ["tie_word_embeddings"] = c.TieWordEmbeddings, ["hidden_act"] = "silu", ["bos_token_id"] = 1, ["eos_token_id"] = 2,
            ["torch_dtype"] = dtype switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" },
        };
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
        Atomic(Path.Combine(folder, "config.json"), tmp => File.WriteAllText(tmp, JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true })));
        Atomic(Path.Combine(folder, "tokenizer.json"), tmp => File.Copy(tokenizer, tmp, overwrite: true));
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
